"""Split protocols: how a dataset's images become training and test sides, once or once per fold.

- `official`: the dataset's own split folders (Training/ and Testing/).
- `holdout`: one seeded, stratified test split of `test_fraction`; with groups, whole groups
  (patients, or duplicate groups found by the audit) go to one side.
- `kfold`: every image is tested once. The folds come from a fold column of the metadata
  (`fold_column = "cheng_fold"`, Cheng's published patient-wise folds) or are drawn
  (`folds = 5`), stratified and, with groups, group-wise.

`groups` names what must stay whole: a metadata column (`pid_family`), "duplicates" (the audit's
duplicate groups of near-identical pictures), or "none" (each image alone: a record-wise split,
which puts slices of one patient on both sides). Unset, it is the dataset's own group column.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bench.data.splits import stratified_group_split, stratified_split
from bench.errors import DatasetError

KINDS = ("official", "holdout", "kfold")
NO_GROUPS = "none"
DUPLICATE_GROUPS = "duplicates"
# The patients brainbench recovered for the Kaggle set (bench/patients), near-duplicate groups for the rest.
PATIENT_GROUPS = "patients"
DERIVED_GROUPS = (DUPLICATE_GROUPS, PATIENT_GROUPS)  # groups found from the images, not read from a column
PROTOCOL_KEYS = {"name", "kind", "test_fraction", "folds", "fold_column", "groups", "seed", "min_test_share",
                 "description"}
# What the protocol's key leaves out: names and words, and checks on a split that do not change it.
NOT_DECISIVE = ("name", "description", "min_test_share")


@dataclass(frozen=True)
class ProtocolSpec:
    """One split protocol, as a dataset declaration, a suite or the command line names it."""

    name: str
    kind: str
    test_fraction: float = 0.2  # holdout only
    folds: int | None = None  # kfold drawn: how many folds
    fold_column: str | None = None  # kfold from the metadata: the column holding each image's fold
    groups: str | None = None  # a column, "duplicates", "none"; None: the dataset's group column
    seed: int = 0  # holdout and drawn folds
    # Every class must be at least this share of each test side (holdout and kfold); a split that
    # misses it is refused, not run: a class with a handful of test images cannot be ranked on.
    min_test_share: float | None = None
    description: str = ""

    def key(self) -> str:
        """What decides the split (the name, the description and the floor check do not)."""
        decisive = {k: v for k, v in asdict(self).items() if k not in NOT_DECISIVE}
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:10]

    def record(self) -> dict:
        return asdict(self)


def parse_protocol(table: dict, where: str) -> ProtocolSpec:
    """A protocol from a TOML table; unknown keys, wrong types and impossible values are errors
    naming `where` (the file and table) and the value."""
    if not isinstance(table, dict):
        raise DatasetError(f"{where}: a protocol must be a table, got {table!r}")
    unknown = sorted(set(table) - PROTOCOL_KEYS)
    if unknown:
        raise DatasetError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(PROTOCOL_KEYS))})")
    kind = table.get("kind")
    if kind not in KINDS:
        raise DatasetError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    name = table.get("name", kind)
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise DatasetError(f"{where}: name must be letters, digits, '-', '_' or '.', got {name!r}")
    spec = ProtocolSpec(name=name, kind=kind,
                        test_fraction=_number(table, "test_fraction", 0.2, where),
                        folds=_integer(table, "folds", None, where),
                        fold_column=_string(table, "fold_column", where),
                        groups=_string(table, "groups", where),
                        seed=_integer(table, "seed", 0, where),
                        min_test_share=_number(table, "min_test_share", None, where),
                        description=_string(table, "description", where) or "")
    _check_combination(spec, where)
    return spec


def _check_combination(spec: ProtocolSpec, where: str) -> None:
    if not 0.0 < spec.test_fraction < 1.0:
        raise DatasetError(f"{where}: test_fraction must be between 0 and 1, got {spec.test_fraction}")
    if spec.seed < 0:
        raise DatasetError(f"{where}: seed must be 0 or more, got {spec.seed}")
    if spec.min_test_share is not None:
        if spec.kind == "official":
            raise DatasetError(f"{where}: min_test_share checks a drawn test side; the official one is the dataset's")
        if not 0.0 < spec.min_test_share < 1.0:
            raise DatasetError(f"{where}: min_test_share must be between 0 and 1, got {spec.min_test_share}")
    if spec.kind == "kfold":
        if (spec.folds is None) == (spec.fold_column is None):
            raise DatasetError(f"{where}: a kfold protocol needs either folds = K or fold_column = \"...\", "
                               "not both")
        if spec.folds is not None and not 2 <= spec.folds <= 50:
            raise DatasetError(f"{where}: folds must be between 2 and 50, got {spec.folds}")
    elif spec.folds is not None or spec.fold_column is not None:
        raise DatasetError(f"{where}: folds and fold_column belong to kfold protocols, not {spec.kind}")
    if spec.kind == "official" and spec.groups not in (None, NO_GROUPS):
        raise DatasetError(f"{where}: the official protocol uses the dataset's own folders; groups do not apply")


def _number(table: dict, key: str, default: float | None, where: str) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _integer(table: dict, key: str, default: int | None, where: str) -> int | None:
    value = table.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise DatasetError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def _string(table: dict, key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise DatasetError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value


def resolve_groups(spec: ProtocolSpec, group_column: str | None) -> str | None:
    """What the protocol keeps whole: its own `groups` if set ("none": nothing), else the dataset's
    group column (None when it has none). "duplicates" comes back as is: the caller computes the
    duplicate groups from the audit's pictures."""
    if spec.groups is None:
        return group_column
    return None if spec.groups == NO_GROUPS else spec.groups


@dataclass(frozen=True)
class Fold:
    """One training/test division of the pool (the images a protocol splits), as positions."""

    protocol: str  # the spec's name
    kind: str  # the spec's kind
    number: int | None  # 1-based fold number for kfold; None for official and holdout
    n_folds: int | None  # how many folds the protocol has; None for official and holdout
    train: tuple[int, ...]  # positions into the pool, sorted
    test: tuple[int, ...]  # positions into the pool, sorted

    def key(self, spec_key: str) -> str:
        """A readable data-key suffix. Empty for official, so checkpoints trained before protocols
        existed keep their keys."""
        if self.kind == "official":
            return ""
        if self.kind == "holdout":
            return f"holdout-{spec_key}"
        return f"kfold-{spec_key}-f{self.number}"


def validation_split(labels: Sequence[int], groups: Sequence[str | int] | None, fraction: float,
                     seed: int) -> tuple[list[int], list[int]]:
    """Carve validation out of a fold's training side: positions 0..n-1 -> (kept, held), stratified
    and seeded; with groups, whole groups go to one side, so validation does not see the training
    side's patients (or duplicates) either."""
    if groups is None:
        return stratified_split(labels, fraction, seed)
    return stratified_group_split(labels, _group_codes(groups).tolist(), fraction, seed)


def make_folds(spec: ProtocolSpec, labels: Sequence[int], class_names: Sequence[str], *,
               groups: Sequence[str | int] | None = None,
               fold_values: Sequence[int] | None = None,
               official_test: Sequence[bool] | None = None,
               where: str = "dataset") -> list[Fold]:
    """The folds of `spec` over a pool of images given as plain arrays, one entry per position.

    `labels` index `class_names`; `groups` (strings or integers) are what must stay whole (None:
    each image alone); `fold_values` is the fold column of a kfold protocol with `fold_column`;
    `official_test` marks the dataset's own test images for the official protocol. Every problem
    a user can fix is a one-line DatasetError naming `where`.

    With a fold column, the folds are numbered by the sorted distinct values: values 1..5 give
    folds 1..5, values 0..4 give folds 1..5 too (fold 1 tests the images whose value is 0).
    """
    pool = _Pool.of(labels, class_names, groups, where)
    if spec.kind == "official":
        return [_official_fold(spec, pool, official_test)]
    if spec.kind == "holdout":
        return [_holdout_fold(spec, pool)]
    if spec.fold_column is not None:
        return _column_folds(spec, pool, fold_values)
    return _drawn_folds(spec, pool)


@dataclass(frozen=True)
class _Pool:
    labels: np.ndarray
    class_names: Sequence[str]
    groups: np.ndarray | None  # integer codes, one per position
    group_names: list | None  # the groups as given, for messages
    where: str

    @classmethod
    def of(cls, labels: Sequence[int], class_names: Sequence[str], groups: Sequence[str | int] | None,
           where: str) -> _Pool:
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            raise DatasetError(f"{where}: there are no images to split")
        if groups is not None and len(groups) != len(labels):
            raise DatasetError(f"{where}: {len(groups)} group values for {len(labels)} images")
        codes = None if groups is None else _group_codes(groups)
        return cls(labels, class_names, codes, None if groups is None else list(groups), where)

    @property
    def unit(self) -> str:
        return "images" if self.groups is None else "groups"

    def classes(self) -> list[int]:
        return np.unique(self.labels).tolist()

    def name(self, label: int) -> str:
        return self.class_names[label]

    def count(self, label: int | None = None) -> int:
        """Images, or distinct groups, of one class (or of the whole pool): what a fold draws."""
        members = np.ones(len(self.labels), bool) if label is None else self.labels == label
        return int(members.sum()) if self.groups is None else len(np.unique(self.groups[members]))

    def missing_class(self, train: Sequence[int], test: Sequence[int]) -> tuple[int, str] | None:
        """The first class of the pool that one side lacks, with that side ("test" or "training")."""
        for side_name, side in (("test", test), ("training", train)):
            present = set(self.labels[np.asarray(side, dtype=np.int64)].tolist())
            for label in self.classes():
                if label not in present:
                    return label, side_name
        return None


def _group_codes(groups: Sequence[str | int]) -> np.ndarray:
    """Integer codes for the groups. Integer groups are kept as they are, so callers that passed
    integers before get the same split; anything else is coded by its sorted text."""
    raw = np.asarray(groups)
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64)
    return np.unique(raw.astype(str), return_inverse=True)[1].astype(np.int64)


def _fold(spec: ProtocolSpec, number: int | None, n_folds: int | None, train: Sequence[int] | np.ndarray,
          test: Sequence[int] | np.ndarray) -> Fold:
    return Fold(spec.name, spec.kind, number, n_folds,
                tuple(sorted(int(i) for i in train)), tuple(sorted(int(i) for i in test)))


def _official_fold(spec: ProtocolSpec, pool: _Pool, official_test: Sequence[bool] | None) -> Fold:
    no_split = f"{pool.where}: the dataset has no official test split; use a holdout or kfold protocol"
    if official_test is None:
        raise DatasetError(no_split)
    is_test = np.asarray(official_test, dtype=bool)
    if len(is_test) != len(pool.labels):
        raise DatasetError(f"{pool.where}: {len(is_test)} official-split marks for {len(pool.labels)} images")
    if not is_test.any():
        raise DatasetError(no_split)
    if is_test.all():
        raise DatasetError(f"{pool.where}: the dataset's official split has no training images")
    return _fold(spec, None, None, np.flatnonzero(~is_test), np.flatnonzero(is_test))


def _holdout_fold(spec: ProtocolSpec, pool: _Pool) -> Fold:
    if pool.groups is None:
        train, test = stratified_split(pool.labels.tolist(), spec.test_fraction, spec.seed)
    else:
        train, test = stratified_group_split(pool.labels.tolist(), pool.groups.tolist(), spec.test_fraction,
                                             spec.seed)
    missing = pool.missing_class(train, test)
    if missing is not None:
        label, side = missing
        raise DatasetError(f"{pool.where}: class {pool.name(label)!r} has {pool.count(label)} {pool.unit}, "
                           f"so the {spec.name} holdout leaves its {side} side without one")
    _check_test_shares(spec, pool, test, f"the {spec.name} holdout (seed {spec.seed})")
    return _fold(spec, None, None, train, test)


def class_shares(labels: Sequence[int], class_names: Sequence[str]) -> dict[str, float]:
    """Each class's share of a side, as a fraction; what a protocol's floor is checked against."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    total = max(1, int(counts.sum()))
    return {name: int(n) / total for name, n in zip(class_names, counts.tolist())}


def _check_test_shares(spec: ProtocolSpec, pool: _Pool, test: Sequence[int], what: str) -> None:
    if spec.min_test_share is None:
        return
    shares = class_shares(pool.labels[np.asarray(test, dtype=np.int64)], pool.class_names)
    present = {pool.name(label) for label in pool.classes()}
    short = [(name, share) for name, share in shares.items() if name in present and share < spec.min_test_share]
    if short:
        name, share = min(short, key=lambda item: item[1])
        raise DatasetError(f"{pool.where}: class {name!r} is {100 * share:.1f} % of the test side of {what}, under "
                           f"the protocol's floor min_test_share = {spec.min_test_share:g}; try another seed or "
                           "test_fraction, or lower the floor")


def _column_folds(spec: ProtocolSpec, pool: _Pool, fold_values: Sequence[int] | None) -> list[Fold]:
    column, where = spec.fold_column, pool.where
    if fold_values is None:
        raise DatasetError(f"{where}: protocol {spec.name} reads its folds from column {column!r}, "
                           "which the dataset does not have")
    values = np.asarray(fold_values)
    if len(values) != len(pool.labels):
        raise DatasetError(f"{where}: column {column!r} has {len(values)} values for {len(pool.labels)} images")
    if len(values) and values.dtype.kind not in "iu":
        raise DatasetError(f"{where}: column {column!r} must hold integers, got {values[0]!r}")
    distinct = np.unique(values).tolist()
    if len(distinct) < 2:
        raise DatasetError(f"{where}: column {column!r} holds {len(distinct)} fold value ({distinct}); "
                           "a kfold protocol needs at least 2")
    if pool.groups is not None:
        _check_groups_within_folds(pool, values, column)
    folds = []
    for number, value in enumerate(distinct, start=1):
        in_fold = values == value
        train, test = np.flatnonzero(~in_fold), np.flatnonzero(in_fold)
        _check_column_fold(pool, train, test, _fold_name(number, value, column))
        _check_test_shares(spec, pool, test, _fold_name(number, value, column))
        folds.append(_fold(spec, number, len(distinct), train, test))
    return folds


def _fold_name(number: int, value: int, column: str) -> str:
    return f"fold {number} of {column}" if number == value else f"fold {number} ({column} = {value})"


def _check_groups_within_folds(pool: _Pool, values: np.ndarray, column: str) -> None:
    """A group split across folds would be trained on and tested in the same fold: the leak the
    fold column exists to prevent."""
    first_value: dict[int, int] = {}
    for position, (code, value) in enumerate(zip(pool.groups.tolist(), values.tolist())):
        seen = first_value.setdefault(code, value)
        if seen != value:
            raise DatasetError(f"{pool.where}: group {pool.group_names[position]!r} spans folds {seen} and "
                               f"{value} of {column}; a group must sit in one fold")


def _check_column_fold(pool: _Pool, train: np.ndarray, test: np.ndarray, fold: str) -> None:
    missing = pool.missing_class(train, test)
    if missing is None:
        return
    label, side = missing
    if side == "test":
        raise DatasetError(f"{pool.where}: {fold} has no {pool.name(label)!r} image")
    raise DatasetError(f"{pool.where}: every {pool.name(label)!r} image is in {fold}, so its training side "
                       "has none")


def _drawn_folds(spec: ProtocolSpec, pool: _Pool) -> list[Fold]:
    # Imported here: scikit-learn adds over a second to every command that reads a protocol,
    # and only drawn folds need it.
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    n_folds, where = spec.folds, pool.where
    if n_folds > pool.count():
        raise DatasetError(f"{where}: protocol {spec.name} asks for {n_folds} folds, but there are only "
                           f"{pool.count()} {pool.unit}")
    for label in pool.classes():
        if pool.count(label) < n_folds:
            raise DatasetError(f"{where}: class {pool.name(label)!r} has {pool.count(label)} {pool.unit}, "
                               f"fewer than the {n_folds} folds of {spec.name}")
    if pool.groups is None:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=spec.seed)
    else:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=spec.seed)
    folds = []
    for number, (train, test) in enumerate(splitter.split(pool.labels, pool.labels, pool.groups), start=1):
        _check_drawn_fold(spec, pool, train, test, number)
        _check_test_shares(spec, pool, test, f"fold {number} of {spec.name} (seed {spec.seed})")
        folds.append(_fold(spec, number, n_folds, train, test))
    return folds


def _check_drawn_fold(spec: ProtocolSpec, pool: _Pool, train: np.ndarray, test: np.ndarray, number: int) -> None:
    """StratifiedGroupKFold balances classes greedily, so with few groups of a class one fold can
    still miss it even though the class has K groups or more."""
    missing = pool.missing_class(train, test)
    if missing is not None:
        label, side = missing
        raise DatasetError(f"{pool.where}: class {pool.name(label)!r} has {pool.count(label)} {pool.unit}, but "
                           f"fold {number} of the {spec.folds} folds of {spec.name} (seed {spec.seed}) has none "
                           f"on its {side} side; try another seed or fewer folds")
