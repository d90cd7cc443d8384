"""A protocol applied to a discovered dataset: its folds, each with what validation keeps whole.

The protocol module works on plain arrays; this one reads them off the dataset (labels, the
group column, the fold column, the official split) and, for `groups = "duplicates"`, finds the
duplicate groups with the audit's picture matching (44c has no patient id, but repeats slices).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np

from bench.data.dataset import SplitView
from bench.data.discover import DatasetIndex
from bench.data.protocols import (
    DERIVED_GROUPS,
    DUPLICATE_GROUPS,
    PATIENT_GROUPS,
    ProtocolSpec,
    make_folds,
    parse_protocol,
    resolve_groups,
)
from bench.errors import DatasetError
from bench.leakage.groups import duplicate_groups
from bench.leakage.pictures import audit_pictures
from bench.patients.groups import copies_of_matched, group_unmatched
from bench.patients.shipped import shipped_patients


def _duplicate_groups(index: DatasetIndex, fingerprint: str, cache_root: Path, threshold: float) -> list[str]:
    """One group label per sample of index.samples: near-identical pictures (any orientation) and
    byte-identical files share one. Unreadable files (no picture) are groups of their own."""
    train, test = audit_pictures(index, fingerprint, cache_root)
    ids = duplicate_groups(np.concatenate([train.pixels, test.pixels]), train.sha256 + test.sha256, threshold)
    group_of = {rel: f"dup{g}" for rel, g in zip(train.rels + test.rels, ids.tolist())}
    return [group_of.get(s.rel, f"alone:{s.rel}") for s in index.samples]


def _patient_groups(index: DatasetIndex, fingerprint: str, cache_root: Path, threshold: float) -> list[str]:
    """One group per sample: its patient family where brainbench's shipped map knows the image (by
    content hash; `brainbench patients` made the map from figshare-cheng), else its near-duplicate
    group among the unmatched images, at the threshold `brainbench patients` chooses (the lowest before
    groups of different people chain together). An unmatched copy (>= `threshold`, the audit's) of a
    matched image joins that image's patient."""
    patients = shipped_patients(index)
    train, test = audit_pictures(index, fingerprint, cache_root)
    rels, sha256 = train.rels + test.rels, train.sha256 + test.sha256
    pixels, labels = np.concatenate([train.pixels, test.pixels]), np.concatenate([train.labels, test.labels])
    unmatched = [i for i, rel in enumerate(rels) if rel not in patients]
    family_sizes = Counter(family for _, family in patients.values())
    grouping = group_unmatched(pixels[unmatched], [sha256[i] for i in unmatched],
                               [index.labels.names[labels[i]] for i in unmatched], max(family_sizes.values(), default=1))
    group_of = {rel: f"patient:{family}" for rel, (_, family) in patients.items()}
    group_of |= {rels[i]: f"dup{grouping.threshold:g}:{g}" for i, g in zip(unmatched, grouping.group)}
    # A copy of a matched slice that the reference matching missed joins that patient, and its
    # near-duplicate group with it (a group must stay whole).
    matched = [i for i, rel in enumerate(rels) if rel in patients]
    copy_of = copies_of_matched(pixels[unmatched], pixels[matched], threshold) if matched else []
    joined = {group_of[rels[i]]: group_of[rels[matched[m]]] for i, m in zip(unmatched, copy_of) if m >= 0}
    return [joined.get(group, group) for group in (group_of.get(s.rel, f"alone:{s.rel}") for s in index.samples)]


def _groups(index: DatasetIndex, spec: ProtocolSpec, fingerprint: str, cache_root: Path,
            threshold: float) -> list[str] | None:
    by = resolve_groups(spec, index.declaration.group_column)
    if by is None:
        return None
    if by == DUPLICATE_GROUPS:
        return _duplicate_groups(index, fingerprint, cache_root, threshold)
    if by == PATIENT_GROUPS:
        return _patient_groups(index, fingerprint, cache_root, threshold)
    if by != index.declaration.group_column:
        raise DatasetError(f"protocol {spec.name!r} groups by {by!r}, but the dataset {index.root} declares "
                           f"{'no group column' if index.declaration.group_column is None else 'group column ' + repr(index.declaration.group_column)}")
    return [s.group for s in index.samples]


def _fold_values(index: DatasetIndex, spec: ProtocolSpec) -> list[int] | None:
    if spec.fold_column is None:
        return None
    if spec.fold_column != index.declaration.fold_column:
        raise DatasetError(f"protocol {spec.name!r} reads folds from column {spec.fold_column!r}, but the dataset "
                           f"{index.root} declares fold column {index.declaration.fold_column!r}")
    return [s.fold for s in index.samples]


def _where(index: DatasetIndex, spec: ProtocolSpec) -> str:
    """What a fold error names: the metadata table (its fold and group values are what to fix) or
    the declaration, and the command line for a protocol built there."""
    declaration = index.declaration
    place = str(index.root / declaration.table) if declaration.table else declaration.where
    if spec not in declaration.protocols:
        return f"--protocol {spec.name} on {place}"
    return place


def protocol_views(index: DatasetIndex, spec: ProtocolSpec, fingerprint: str, cache_root: Path,
                   threshold: float) -> list[SplitView]:
    """The folds of `spec` on this dataset (one for official and holdout), in fold order."""
    samples = index.samples
    groups = _groups(index, spec, fingerprint, cache_root, threshold)
    official = [i >= len(index.train) for i in range(len(samples))] if index.has_official_split else None
    where = _where(index, spec)
    folds = make_folds(spec, [s.label for s in samples], index.labels.names, groups=groups,
                       fold_values=_fold_values(index, spec), official_test=official, where=where)
    by_rel = None if groups is None else {s.rel: str(g) for s, g in zip(samples, groups)}
    derived = resolve_groups(spec, index.declaration.group_column) in DERIVED_GROUPS
    return [SplitView(spec, fold, by_rel, _membership(samples, fold, groups) if derived else "") for fold in folds]


def _membership(samples, fold, groups: list[str]) -> str:
    """10 hex digits of which image is on which side in which group."""
    test = set(fold.test)
    placed = sorted((s.rel, position in test, str(groups[position])) for position, s in enumerate(samples))
    return hashlib.sha256(json.dumps(placed).encode()).hexdigest()[:10]


BUILT_IN = ("official", "holdout", "kfold")


def choose_protocols(index: DatasetIndex, names: tuple[str, ...], folds: int | None = None,
                     groups: str | None = None) -> tuple[ProtocolSpec, ...]:
    """The protocols a run applies, in order (the first ranks): each name is one the dataset
    declares, or a built-in kind (official; holdout; kfold, which needs `folds` or the dataset's
    fold column). `folds` and `groups` (from the command line) shape the built-in kinds only.
    Unnamed, the dataset's default (bench.runner.protocol_views.default_protocols)."""
    declaration = index.declaration
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DatasetError(f"--protocol names {repeated[0]!r} twice: each protocol runs once")
    chosen = []
    for name in names or default_protocols(index):
        declared = {p.name: p for p in declaration.protocols}
        if name in declared and folds is None and groups is None:
            chosen.append(declared[name])
        elif name in BUILT_IN:
            chosen.append(_built_in(name, declaration, folds, groups))
        elif name in declared:
            raise DatasetError(f"--folds and --groups shape the built-in protocols ({', '.join(BUILT_IN)}), "
                               f"not {name!r}, which the dataset declares")
        else:
            built_in = [k for k in BUILT_IN if k != "official" or index.has_official_split]
            offered = ", ".join(dict.fromkeys([*declared, *built_in]))
            raise DatasetError(f"protocol {name!r} is not one the dataset {declaration.name} offers: {offered}")
    return tuple(chosen)


def default_protocols(index: DatasetIndex) -> tuple[str, ...]:
    """The protocols of the declaration's [ranking] that apply to this copy (official needs Training/
    and Testing/); without a [ranking], or none applying, the first declared protocol that applies."""
    declaration = index.declaration

    def applies(spec: ProtocolSpec) -> bool:
        return spec.kind != "official" or index.has_official_split

    ranking = tuple(name for name in declaration.ranking if applies(declaration.protocol(name)))
    if ranking:
        return ranking
    return (next((p.name for p in declaration.protocols if applies(p)), declaration.default_protocol().name),)


def _built_in(kind: str, declaration, folds: int | None, groups: str | None) -> ProtocolSpec:
    table: dict = {"name": kind, "kind": kind}
    if groups is not None:
        table["groups"] = groups
    if kind == "kfold":
        if folds is not None:
            table |= {"folds": folds, "name": f"kfold{folds}"}
        elif declaration.fold_column is not None:
            table["fold_column"] = declaration.fold_column
        else:
            raise DatasetError(f"dataset {declaration.name} has no fold column: give --folds K with --protocol kfold")
    elif folds is not None:
        raise DatasetError(f"--folds applies to --protocol kfold, not {kind}")
    where = f"--protocol {kind}" + (f" --folds {folds}" if folds is not None else "") \
        + (f" --groups {groups}" if groups is not None else "")
    return parse_protocol(table, where)


def group_overlap(index: DatasetIndex, views: list[SplitView]) -> list[dict] | None:
    """Per fold: how many groups (patients) the test side holds, and how many of them also have
    images on the training side; what a record-wise split leaks, measured. None without a group column."""
    if index.declaration.group_column is None:
        return None
    samples = index.samples
    overlap = []
    for view in views:
        test = {samples[p].group for p in view.fold.test}
        train = {samples[p].group for p in view.fold.train}
        overlap.append({"fold": view.fold.number, "test_groups": len(test), "also_in_training": len(test & train)})
    return overlap


def test_balance(index: DatasetIndex, views: list[SplitView]) -> list[dict]:
    """Per fold: its test side's images per class, what a protocol's min_test_share was checked on."""
    names = index.labels.names
    balance = []
    for view in views:
        counts = Counter(names[index.samples[p].label] for p in view.fold.test)
        balance.append({"fold": view.fold.number, "n_test": len(view.fold.test),
                        "per_class": {name: counts.get(name, 0) for name in names}})
    return balance
