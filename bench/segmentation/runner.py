"""`brainbench run` for a suite with task = "segmentation": every U-Net on every fold of each protocol.

The shape is the classifiers' (bench/runner/run_suite.py), and so are its parts wherever the task
does not matter: entry selection, protocols and their folds (patients whole), split files, result
rows written the moment they exist, row and checkpoint identity, efficiency and deployment modes.
What differs is the data (slices with masks), the training (bench.segmentation.train), the
metrics (Dice and IoU, bench.segmentation.metrics) and the report (bench.segmentation.report).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from tqdm import tqdm

from bench.data.protocols import resolve_groups
from bench.environment import environment
from bench.errors import DatasetError
from bench.io import remove_stale_temporaries, write_atomically
from bench.report import RESULTS_JSON
from bench.runner.entry_pipeline import ENTRIES_DIR, identity_columns
from bench.runner.machine import machine_tag
from bench.runner.protocol_views import choose_protocols, group_overlap, protocol_views
from bench.runner.rows import ROWS_DIR, dump_json, read_row, write_row
from bench.runner.run_suite import (
    DatasetViews,
    RunOptions,
    _failed_row,
    plan_rows,
    results_dir,
    select_runs,
    write_split_files,
)
from bench.segmentation.data import load_masked_slices
from bench.segmentation.evaluate import evaluate_segmenter
from bench.segmentation.report import write_segmentation_report
from bench.segmentation.train import FoldData, segmentation_identity, train_or_load_segmenter
from bench.suites import Suite
from bench.train.store import HISTORY, WEIGHTS


def run_segmentation_suite(suite: Suite, options: RunOptions) -> Path:
    runs = select_runs(suite, options.models)
    if options.official_only or options.split != "official":
        raise DatasetError(f"--split {options.split} applies to classification suites (the Kaggle set's official "
                           f"split); suite {suite.name} segments: choose its protocol with --protocol")
    if options.external:
        raise DatasetError(f"--external scores classifiers on other datasets; suite {suite.name} segments")
    out_dir = results_dir(options.out_root, suite, options.device, options.data_dir)
    data = DatasetViews(options.data_dir, options.cache_dir, options.declaration)
    index = data.index
    if index.declaration.mask_column is None:  # before any decoding, a one-line reason
        raise DatasetError(f"dataset {index.root} ({index.declaration.name}) declares no mask column: suite "
                           f"{suite.name} segments, and needs a tumour mask per image")
    protocols = choose_protocols(index, options.protocols or suite.protocols, options.folds, options.groups)
    views_of = {spec.name: protocol_views(index, spec, data.fingerprint, data.cache_root, options.clean_threshold)
                for spec in protocols}
    planned = plan_rows(runs, protocols, views_of, {spec.name: None for spec in protocols})
    # Every slice and mask is read and checked before the first training: a bad mask fails now.
    sizes = sorted({run.recipe.input_size or run.entry.input_size for run in runs})
    slices = {size: load_masked_slices(index, data.fingerprint, size, data.cache_root) for size in sizes}
    write_split_files(out_dir, index, views_of)
    remove_stale_temporaries(out_dir / ROWS_DIR)
    env = environment(options.device)
    measured = suite.measurement_key()
    context = {"suite": suite, "env": env, "device": options.device, "protocols": protocols,
               "run_ids": [p.run.run_id for p in planned],
               "overlap": {name: group_overlap(index, views) for name, views in views_of.items()}}
    for number, item in enumerate(planned, 1):
        run, view = item.run, item.view
        label = f"[{number}/{len(planned)}] {run.run_id}"
        fold = FoldData.of(slices[run.recipe.input_size or run.entry.input_size], data.fingerprint, view,
                           run.recipe.val_fraction, run.recipe.seed)
        identity = segmentation_identity(run.entry, run.recipe, fold, measured)
        previous = read_row(out_dir, run.run_id)
        if (not options.fresh and previous is not None and previous.get("status") == "ok"
                and previous.get("result_key") == identity.hash() and options.store.exists(identity.checkpoint_key())):
            tqdm.write(f"{label}: finished row found, skipping (use --fresh to recompute)")
            continue
        started = time.perf_counter()
        try:
            row = _run_one(run, fold, identity, index.labels.names, options, out_dir, suite, label)
        except Exception as error:  # noqa: BLE001 - one entry's failure must not stop the suite
            row = _failed_row(run, data.fingerprint, error, out_dir, "official", view)
        row |= {"entry_seconds": round(time.perf_counter() - started, 2), "measured": measured, "date": env["date"],
                "git_revision": env["git_revision"], "device_name": env["device_name"]}
        write_row(out_dir, row)
        _write_results(out_dir, context, data)
        tqdm.write(f"{label}: " + (f"done in {row['entry_seconds']:.0f} s, test Dice {row['test_dice']:.4f}"
                                   if row["status"] == "ok" else f"not run: {row['error']}"))
    results_path = _write_results(out_dir, context, data)
    tqdm.write("writing leaderboard and pictures")
    write_segmentation_report(results_path, out_dir)
    return out_dir


def _run_one(run, fold: FoldData, identity, class_names, options: RunOptions, out_dir: Path, suite: Suite,
             label: str) -> dict:
    entry, recipe = run.entry, run.recipe
    entry_dir = out_dir / ENTRIES_DIR / run.run_id
    tqdm.write(f"{label}: {'training' if options.fresh else 'training or loading'}")
    trained = train_or_load_segmenter(entry, recipe, fold, options.store, options.device, fresh=options.fresh)
    key = identity.checkpoint_key()
    entry_dir.mkdir(parents=True, exist_ok=True)
    history = options.store.folder(key) / HISTORY
    if history.is_file():
        write_atomically(entry_dir / HISTORY, history.read_bytes())
    m = trained.manifest
    row = identity_columns(run, fold.fingerprint, "official", fold.view, identity) | {
        "task": "segmentation", "status": "ok", "error": None, "loaded_from_store": trained.loaded,
        "checkpoint": str(options.store.folder(key)), "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"],
        "val_dice": m["best_val"]["dice"], "train_seconds": m["train_seconds"], "recipe": m["recipe"],
        "n_train": len(fold.train), "n_val": len(fold.val), "test_n": len(fold.test)}
    tqdm.write(f"{label}: evaluating on test" + (" and measuring efficiency" if "efficiency" in suite.measure else ""))
    row |= evaluate_segmenter(trained.model, entry, fold, tuple(class_names), options.device, entry_dir,
                              measure=suite.measure, modes=suite.modes, weights=options.store.folder(key) / WEIGHTS)
    return row


def _write_results(out_dir: Path, context: dict, data: DatasetViews) -> Path:
    """results.json from every row of this suite's runs on this dataset (rows of another dataset never mix in)."""
    rows = [row for name in context["run_ids"] if (row := read_row(out_dir, name)) is not None
            and (row.get("status") == "damaged" or row.get("dataset_fingerprint") == data.fingerprint)]
    declaration = data.index.declaration
    suite = context["suite"]
    results = {
        "task": "segmentation", "suite": suite.record(), "machine_tag": machine_tag(context["device"]),
        "environment": context["env"], "rank_key": "test_dice",
        "dataset": {"path": str(data.index.root), "fingerprint": data.fingerprint, "n_images": len(data.index.samples),
                    "declaration": declaration.record()},
        "class_names": list(declaration.labels.names),
        "protocols": [p.record() | {"groups": resolve_groups(p, declaration.group_column) or "none",
                                    "group_column": declaration.group_column,
                                    "group_overlap": context["overlap"].get(p.name)} for p in context["protocols"]],
        "published": [dataclasses.asdict(p) for p in declaration.published if p.task == "segmentation"],
        "rows": rows,
    }
    path = out_dir / RESULTS_JSON
    dump_json(results, path)
    return path
