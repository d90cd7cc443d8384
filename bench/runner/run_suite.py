"""Run a suite: every entry in turn, each row on disk as soon as it exists, then the reports.

An entry that fails (cannot build, out of memory, weights unavailable) gets a row with its error
and the suite goes on. Dataset problems stop the run before any training, since they would
fail every entry the same way.
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import io
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.audit.load import AuditSplit
from bench.crossdata.evaluate import ExternalSets
from bench.data.cache import DecodedDataset, Preprocessing, load_or_build
from bench.data.dataset import LoadedDataset, SplitView, fold_view
from bench.data.discover import discover
from bench.data.fingerprint import dataset_fingerprint
from bench.data.labels import LabelSet
from bench.data.protocols import NO_GROUPS, ProtocolSpec, resolve_groups
from bench.environment import environment
from bench.errors import BrainbenchError, CheckpointError, DatasetError
from bench.identity import ResultIdentity, same_result, training_identity
from bench.io import remove_stale_temporaries, write_text_atomically
from bench.leakage.index import DEFAULT_CLEAN_THRESHOLD, LeakageIndex, build_leakage_index
from bench.leakage.pictures import audit_pictures
from bench.paths import EMBEDDED_DATASET, decoded_cache_dir
from bench.report import RESULTS_JSON, write_report
from bench.runner.entry_pipeline import ENTRIES_DIR, Evaluation, identity_columns, run_entry
from bench.runner.machine import machine_tag
from bench.runner.protocol_views import choose_protocols, group_overlap, protocol_views, test_balance
from bench.runner.rows import ROWS_DIR, dump_json, read_row, write_row
from bench.runner.significance import compare_with_top, ranked_units
from bench.suites import Suite, SuiteRun
from bench.train.settings import TrainSettings
from bench.train.store import CheckpointStore

log = logging.getLogger("brainbench")


@dataclass(frozen=True)
class RunOptions:
    data_dir: Path
    out_root: Path
    store: CheckpointStore
    device: torch.device
    cache_dir: Path | None = None
    models: str | None = None  # comma-separated names or patterns selecting suite entries
    fresh: bool = False
    split: str = "official"  # "clean": validation keeps duplicate groups whole; ranked on clean test images
    official_only: bool = False  # --split given: the official protocol alone, not the dataset's ranking ones
    clean_threshold: float = DEFAULT_CLEAN_THRESHOLD  # similarity at which two images are one picture
    external: tuple[Path, ...] = ()  # other dataset folders every entry is scored on, untrained
    nproc: int = 1  # >1: each entry trains in that many torchrun processes (DDP); same checkpoint keys
    compile_step: bool = False  # torch.compile the training step
    declaration: str | None = None  # a dataset declaration (name or TOML path) instead of the recognised one
    protocols: tuple[str, ...] = ()  # --protocol: instead of the suite's (or the dataset's default)
    folds: int | None = None  # --folds K: the built-in kfold protocol draws K folds
    groups: str | None = None  # --groups: what the built-in protocols keep whole

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise BrainbenchError(f"--split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if not 0.0 < self.clean_threshold <= 1.0:
            raise BrainbenchError(f"--clean-threshold must be in (0, 1], got {self.clean_threshold}")


SPLITS = ("official", "clean")


def select_runs(suite: Suite, models: str | None) -> list[SuiteRun]:
    """The suite's rows to compute: every entry (once per study setting), filtered by --models."""
    entries = suite.all_entries()
    if models:
        patterns = [p.strip() for p in models.split(",") if p.strip()]
        entries = [e for e in entries if any(fnmatch.fnmatch(e.name, p) for p in patterns)]
        if not entries:
            raise BrainbenchError(f"--models {models!r} matches none of suite {suite.name!r}'s entries: "
                                  f"{', '.join(e.name for e in suite.all_entries())}")
    return [run for entry in entries for run in suite.runs(entry)]


@dataclass(frozen=True)
class DataIdentity:
    """What bench.identity reads of a view before it is decoded: which data, labels and split."""
    fingerprint: str
    labels: LabelSet
    clean_split: LeakageIndex | None
    split: SplitView | None


class DatasetViews:
    """The dataset discovered and fingerprinted once, decoded once per preprocessing; a view is one
    protocol fold of it (with a leakage index, the official view carries the clean split)."""

    def __init__(self, root: Path, cache_dir: Path | None, declaration: str | None = None,
                 clean_split: LeakageIndex | None = None):
        self.index = discover(root, declaration)
        self.fingerprint = dataset_fingerprint(self.index)
        self.cache_root = decoded_cache_dir(cache_dir)
        self._decoded: dict[Preprocessing, DecodedDataset] = {}
        self.clean_split = clean_split

    @property
    def labels(self) -> LabelSet:
        return self.index.labels

    def identity(self, split: SplitView | None) -> DataIdentity:
        official = split is None or split.spec.kind == "official"
        return DataIdentity(self.fingerprint, self.labels, self.clean_split if official else None, split)

    def get(self, prep: Preprocessing, split: SplitView | None = None) -> LoadedDataset:
        if prep not in self._decoded:
            self._decoded[prep] = load_or_build(self.index, self.fingerprint, prep, self.cache_root)
        decoded = self._decoded[prep] if split is None else fold_view(self._decoded[prep], self.index, split)
        return LoadedDataset(self.index, self.fingerprint, decoded, self.identity(split).clean_split, split)

    def record(self, prep: Preprocessing) -> dict:
        """Where the data came from and what was skipped; `prep` decodes (or loads) a view if none is yet."""
        record = self.get(next(iter(self._decoded), prep)).record()
        record.pop("preprocessing", None)  # differs per entry; each row states its input size
        return record


def _preprocessing(run: SuiteRun) -> Preprocessing:
    return Preprocessing(run.recipe.input_size or run.entry.input_size, run.entry.in_channels,
                         run.recipe.crop_to_content, run.entry.resize)


def _failed_row(run: SuiteRun, fingerprint: str, error: BaseException, out_dir: Path, split: str,
                view: SplitView | None) -> dict:
    first_line = (str(error).strip().splitlines() or [""])[0]
    message = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    error_file = out_dir / ENTRIES_DIR / run.run_id / "error.txt"
    write_text_atomically(error_file, "".join(traceback.format_exception(error)))
    log.error("%s failed: %s (traceback in %s); continuing with the next entry", run.run_id, message, error_file)
    identity = identity_columns(run, fingerprint, split, view)
    return {**identity, "status": "failed", "error": message}


def results_dir(out_root: Path, suite: Suite, device: torch.device, data_dir: Path, split: str = "official") -> Path:
    """results/<suite>/<machine tag>; runs on the embedded mini dataset go to <machine tag>-mini,
    so that a smoke test never overwrites a full dataset's committed results, and clean-split
    runs to <machine tag>[-mini]-clean."""
    tag = machine_tag(device)
    if Path(data_dir).resolve() == EMBEDDED_DATASET.resolve():
        tag += "-mini"
    if split != "official":
        tag += f"-{split}"
    return Path(out_root) / suite.name / tag


def prepare_evaluation(data: DatasetViews, options: RunOptions,
                       protocols: tuple[ProtocolSpec, ...]) -> dict[str, Evaluation]:
    """Per protocol, what its rows are scored on besides their test side: under the official
    protocol the leakage index (every leaderboard of a dataset with an official split shows its
    clean split and leakage curve), and for every protocol the audited external sets. Both before
    any training, so bad folders fail early."""
    if options.split == "clean" and any(p.kind != "official" for p in protocols):
        raise BrainbenchError("--split clean ranks the official test split's clean images; it does not apply to "
                              f"protocol(s) {', '.join(p.name for p in protocols if p.kind != 'official')}")
    leakage = None
    if any(p.kind == "official" for p in protocols):
        tqdm.write(f"leakage: matching test images against training (threshold {options.clean_threshold:g})")
        leakage = build_leakage_index(data.index, data.fingerprint, options.clean_threshold, data.cache_root)
    external = {"official": None, "other": None}
    if options.external:
        tqdm.write(f"external sets: auditing {len(options.external)} folder(s) against training")
        train, test = audit_pictures(data.index, data.fingerprint, data.cache_root)
        # Under a protocol other than the official one any image of the dataset may be in training
        # (a holdout or fold draws from both folders), so "new to training" is judged against all.
        everything = AuditSplit("train", train.rels + test.rels, np.concatenate([train.labels, test.labels]),
                                train.sha256 + test.sha256, np.concatenate([train.pixels, test.pixels]))
        for kind, pictures, against in (("official", train, ""), ("other", everything, "every image")):
            if any((p.kind == "official") == (kind == "official") for p in protocols):
                external[kind] = ExternalSets(list(options.external), pictures, options.clean_threshold,
                                              data.labels, against)
    if options.split == "clean":
        data.clean_split = leakage
    return {p.name: Evaluation(options.split, leakage if p.kind == "official" else None,
                               external["official" if p.kind == "official" else "other"]) for p in protocols}


def evaluation_key(suite: Suite, evaluation: Evaluation) -> str:
    """What a row measured; a row measured differently (other threshold, other external sets,
    other modes) is measured again from its stored checkpoint."""
    key = suite.measurement_key()
    key += f"|clean{evaluation.leakage.threshold:g}" if evaluation.leakage else ""
    return key + (f"|ext:{evaluation.external.key()}" if evaluation.external else "")


@dataclass(frozen=True)
class PlannedRow:
    """One row to compute: a suite run on one protocol fold, and what it is scored on."""
    run: SuiteRun
    view: SplitView
    evaluation: Evaluation


def plan_rows(runs: list[SuiteRun], protocols: tuple[ProtocolSpec, ...], views_of: dict[str, list[SplitView]],
              evaluations: dict[str, Evaluation]) -> list[PlannedRow]:
    """Every run once per fold of every protocol (one fold for official and holdout). Rows of the
    official protocol keep their plain names, so results from before protocols are still theirs."""
    planned = []
    for spec in protocols:
        views = views_of[spec.name]
        label = "" if spec.kind == "official" else spec.name
        planned += [PlannedRow(dataclasses.replace(run, protocol=label, fold=view.fold.number), view,
                               evaluations[spec.name]) for run in runs for view in views]
    return planned


SPLITS_DIR = "splits"


def write_split_files(out_dir: Path, index, views_of: dict[str, list[SplitView]]) -> None:
    """splits/<protocol>.csv: where every image went (train or test; under k-fold, the fold that
    tests it), so a split is a file others can reuse, not only a seed; the official one is the
    dataset's own folders and needs none."""
    for name, views in views_of.items():
        if views[0].spec.kind == "official":
            continue
        part: dict[str, str] = {}
        for view in views:
            tested = "test" if view.fold.number is None else f"fold {view.fold.number}"
            part |= {index.samples[p].rel: tested for p in view.fold.test}
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "label", "group", "part"])
        writer.writerows([s.rel, index.labels.names[s.label], (views[0].groups or {}).get(s.rel, ""),
                          part.get(s.rel, "train")] for s in index.samples)
        write_text_atomically(out_dir / SPLITS_DIR / f"{name}.csv", buffer.getvalue())


def run_suite(suite: Suite, options: RunOptions) -> Path:
    runs = select_runs(suite, options.models)
    out_dir = results_dir(options.out_root, suite, options.device, options.data_dir, options.split)
    # Dataset errors surface here, before training: the declaration, the folds, the leakage index.
    data = DatasetViews(options.data_dir, options.cache_dir, options.declaration)
    protocols = choose_protocols(data.index, _protocol_names(data.index, suite, options), options.folds,
                                 options.groups)
    evaluations = prepare_evaluation(data, options, protocols)
    views_of = {spec.name: protocol_views(data.index, spec, data.fingerprint, data.cache_root,
                                          options.clean_threshold) for spec in protocols}
    planned = plan_rows(runs, protocols, views_of, evaluations)
    write_split_files(out_dir, data.index, views_of)
    remove_stale_temporaries(out_dir / ROWS_DIR)  # rows half-written by a run killed with kill -9
    env = environment(options.device)
    run_ids = [p.run.run_id for p in planned]
    context = ResultsContext(suite, options.device, env, protocols, evaluations, run_ids, data.labels.record(),
                             [{k: v for k, v in dataclasses.asdict(p).items() if k != "dice"}
                              for p in data.index.declaration.published if p.task == "classification"],
                             data.index.declaration.group_column,
                             {name: group_overlap(data.index, views) for name, views in views_of.items()},
                             {name: test_balance(data.index, views) for name, views in views_of.items()},
                             data.index.declaration.ranking_why if not options.protocols and not suite.protocols
                             else "")
    for number, item in enumerate(planned, 1):
        run, view, evaluation = item.run, item.view, item.evaluation
        label = f"[{number}/{len(planned)}] {run.run_id}"
        prep = _preprocessing(run)
        measured = evaluation_key(suite, evaluation)
        previous = read_row(out_dir, run.run_id)
        identity = training_identity(run.entry, run.recipe, data.identity(view), measured)
        if previous is not None and previous.get("status") == "damaged":
            tqdm.write(f"{label}: {previous['error']}; computing it again")
        if not options.fresh and same_result(previous, identity):
            if _checkpoint_verifies(run, identity, options.store):
                tqdm.write(f"{label}: finished row found, skipping (use --fresh to recompute)")
                continue
            tqdm.write(f"{label}: finished row found, but its checkpoint is gone or damaged: computing it again")
        started = time.perf_counter()
        try:
            loaded = data.get(prep, view)
            row = run_entry(run, loaded, options.store, options.device, out_dir, measure=suite.measure,
                            fresh=options.fresh, stage=lambda stage: tqdm.write(f"{label}: {stage}"),
                            view_for=lambda p, v=view: data.get(p, v), modes=suite.modes, evaluation=evaluation,
                            settings=TrainSettings(options.nproc, options.compile_step), identity=identity)
            row = {**row, "status": "ok", "error": None}
        except Exception as error:  # noqa: BLE001 - one entry's failure must not stop the suite
            row = _failed_row(run, data.fingerprint, error, out_dir, options.split, view)
        row |= {"entry_seconds": round(time.perf_counter() - started, 2), "measured": measured,
                "date": env["date"],
                "git_revision": env["git_revision"], "device_name": env["device_name"]}
        write_row(out_dir, row)
        write_results(out_dir, context, data.record(prep))
        tqdm.write(f"{label}: {_summary(row)}")
    results_path = write_results(out_dir, context, data.record(_preprocessing(runs[0])))
    tqdm.write("writing leaderboard and plots")
    write_report(results_path, out_dir)
    return out_dir


def _protocol_names(index, suite: Suite, options: RunOptions) -> tuple[str, ...]:
    """--protocol's names, else --split's official protocol, else the suite's (empty: the dataset's default)."""
    if options.protocols or not options.official_only:
        return options.protocols or suite.protocols
    if not index.has_official_split:
        offered = ", ".join(p.name for p in index.declaration.protocols)
        raise DatasetError(f"--split {options.split} runs the official Training/Testing split, but {index.root} has "
                           f"none; its protocols are {offered} (choose one with --protocol)")
    return ("official",)


def _checkpoint_verifies(run: SuiteRun, identity: ResultIdentity, store: CheckpointStore) -> bool:
    """A row stands for its checkpoint: reusable only while that still loads and verifies
    (an interrupted --fresh retraining, for one, removes the manifest before it trains)."""
    if run.entry.variant == "imported":  # an imported model is its own file, hashed when it was registered
        return True
    try:
        store.load(identity.checkpoint_key())
        return True
    except CheckpointError:
        return False


def _summary(row: dict) -> str:
    if row["status"] != "ok":
        return f"not run: {row['error']}"
    acc = row.get("test_acc")
    return f"done in {row['entry_seconds']:.0f} s" + (f", test acc {acc:.4f}" if acc is not None else "")


@dataclass(frozen=True)
class ResultsContext:
    """What results.json says besides the rows, fixed for one run of a suite."""
    suite: Suite
    device: torch.device
    env: dict
    protocols: tuple[ProtocolSpec, ...]
    evaluations: dict[str, Evaluation]
    run_ids: list[str]
    labels: dict  # LabelSet.record(): the dataset's classes and its no-tumour class
    published: list[dict]  # the declaration's published results, printed beside ours
    group_column: str | None = None  # the dataset's: what a protocol without its own groups keeps whole
    overlap: dict = dataclasses.field(default_factory=dict)  # protocol name -> protocol_views.group_overlap
    balance: dict = dataclasses.field(default_factory=dict)  # protocol name -> protocol_views.test_balance
    ranking_why: str = ""  # the declaration's reason for its ranking protocol, when the run used its default

    def protocol_records(self) -> list[dict]:
        """Each protocol as run, its groups resolved (a column, "duplicates" or "none"), so the
        report can name what was kept whole, and how many test-side groups it shared with training."""
        return [p.record() | {"groups": resolve_groups(p, self.group_column) or NO_GROUPS,
                              "group_column": self.group_column, "group_overlap": self.overlap.get(p.name),
                              "test_balance": self.balance.get(p.name)}
                for p in self.protocols]


def write_results(out_dir: Path, context: ResultsContext, dataset: dict) -> Path:
    """results.json from every row on disk for the suite's entries, including earlier runs' rows.

    Only rows of this dataset (same fingerprint) are gathered: one leaderboard never mixes data.
    """
    # A damaged row cannot say which data it belongs to; it is shown (as damaged) rather than lost.
    rows = [row for name in context.run_ids if (row := read_row(out_dir, name)) is not None
            and (row.get("status") == "damaged" or row.get("dataset_fingerprint") == dataset["fingerprint"])]
    first = context.protocols[0]
    evaluation = context.evaluations[first.name]
    # The official protocol's leakage analysis, also when another protocol ranks: how much the
    # official test split repeats training is the reason the other one ranks.
    leakage = next((context.evaluations[p.name].leakage for p in context.protocols
                    if context.evaluations[p.name].leakage is not None), None)
    rank_key = "clean_acc" if evaluation.split == "clean" else "test_acc"
    results = {"suite": context.suite.record(), "machine_tag": machine_tag(context.device),
               "environment": context.env, "dataset": dataset, "split": evaluation.split, "rank_key": rank_key,
               "class_names": list(context.labels["names"]), "labels": context.labels,
               "protocols": context.protocol_records(), "ranking_why": context.ranking_why,
               "published": context.published,
               "leakage": leakage.record() if leakage else None,
               "external_datasets": evaluation.external.record() if evaluation.external else [],
               "rows": rows}
    clean_images = set(leakage.clean_test) if leakage and evaluation.split == "clean" else None
    ranked_rows = [r for r in rows if r.get("protocol", first.name) == first.name or r.get("status") == "damaged"]
    results["comparisons"] = compare_with_top(ranked_units(ranked_rows, rank_key), out_dir, rank_key, clean_images)
    path = out_dir / RESULTS_JSON
    dump_json(results, path)
    return path
