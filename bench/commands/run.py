"""`brainbench run --suite NAME`: train or load, evaluate and measure every entry; write leaderboards."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.commands.checks import writable_folder
from bench.commands.train import add_common_data_options, add_protocol_options, add_training_options
from bench.device import resolve_device
from bench.errors import OptionError
from bench.leakage.index import DEFAULT_CLEAN_THRESHOLD
from bench.paths import dataset_dir, decoded_cache_dir, store_dir
from bench.runner.run_suite import SPLITS, RunOptions, run_suite
from bench.segmentation.runner import run_segmentation_suite
from bench.suites import load_suite
from bench.train.store import CheckpointStore


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a benchmark suite and write its leaderboard",
        description="Train or load each entry of a suite, evaluate it on the test split, measure its "
                    "efficiency, and write results/<suite>/<machine>/ (leaderboard.md, .csv, results.json, "
                    "plots). Finished rows are reused; an interrupted run resumes where it stopped.")
    parser.add_argument("--suite", default="quick", help="suite name (suites/NAME.toml) or path to a .toml file")
    add_common_data_options(parser)
    add_protocol_options(parser)
    parser.add_argument("--models", help="only these suite entries: comma-separated names or patterns (cnn*)")
    parser.add_argument("--add-model", action="append", default=[], metavar="FILE",
                        help="benchmark an imported ONNX or TorchScript classifier (trained elsewhere) described by a TOML file "
                             "(repeatable; see README)")
    parser.add_argument("--out", default="results", help="results root (default: ./results)")
    parser.add_argument("--fresh", action="store_true", help="recompute finished rows and retrain checkpoints")
    add_training_options(parser)
    honest = parser.add_argument_group("honest evaluation")
    honest.add_argument("--split", choices=SPLITS, default=None,
                        help="run the dataset's official protocol alone (by default a run applies the dataset's "
                             "ranking protocols: on the Kaggle set the patient split, with the official one beside "
                             "it). official: the published Training/Testing protocol, its clean subset reported "
                             "beside it. clean: the same, but validation keeps duplicate groups whole and the "
                             "leaderboard ranks by the test images with no duplicate in training; results go to "
                             "<machine>-clean")
    honest.add_argument("--clean-threshold", type=float, default=DEFAULT_CLEAN_THRESHOLD, metavar="SIM",
                        help="similarity (0-1, any orientation) at which two images count as one picture "
                             f"(default {DEFAULT_CLEAN_THRESHOLD:g}, the audit's)")
    honest.add_argument("--external", action="append", default=[], metavar="DIR",
                        help="also score every entry on this dataset folder, untrained (repeatable): class "
                             "folders at any depth, four classes or some of them, or yes/no (tumor vs notumor)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite).with_imported(args.add_model)
    # Every place the run writes is checked first: a bad --out must not fail after an hour of training.
    options = RunOptions(data_dir=dataset_dir(args.data), out_root=writable_folder(args.out, "--out"),
                         store=CheckpointStore(writable_folder(store_dir(args.store), "--store")),
                         device=resolve_device(args.device),
                         cache_dir=writable_folder(decoded_cache_dir(args.cache), "--cache"),
                         models=args.models, fresh=args.fresh, split=args.split or "official",
                         official_only=args.split is not None,
                         clean_threshold=args.clean_threshold, external=tuple(Path(d) for d in args.external),
                         nproc=args.nproc, compile_step=args.compile_step, declaration=args.declaration,
                         protocols=_protocols(args), folds=args.folds, groups=args.groups)
    started = time.perf_counter()
    out_dir = run_segmentation_suite(suite, options) if suite.task == "segmentation" else run_suite(suite, options)
    print(f"suite {suite.name} finished in {time.perf_counter() - started:.0f} s; leaderboard: "
          f"{out_dir / 'leaderboard.md'}")
    return 0


def _protocols(args: argparse.Namespace) -> tuple[str, ...]:
    """--protocol's names; with --split (the official protocol alone) only "official" agrees."""
    named = tuple(p.strip() for p in args.protocol.split(",") if p.strip()) if args.protocol else ()
    if args.split is not None and named and named != ("official",):
        raise OptionError(f"--split {args.split} runs the official protocol alone, but --protocol names "
                          f"{args.protocol!r}: give one of the two")
    return named
