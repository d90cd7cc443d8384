"""`brainbench audit`: which test images duplicate a training image (and which repeat within a split)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.audit import run_audit
from bench.audit.audit import DEFAULT_THRESHOLD
from bench.audit.report import write_duplicates_csv, write_report, write_within_csv
from bench.audit.sheet import write_sheet
from bench.commands.checks import writable_folder
from bench.data.discover import discover
from bench.data.fingerprint import dataset_fingerprint
from bench.paths import dataset_dir

DEFAULT_OUT = Path("results") / "audit"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "audit", help="find test images that duplicate training images",
        description="Find every test image that repeats a training image: same bytes, or the same picture "
                    "resized, re-encoded, brightened or mirrored. Also duplicates within a split and "
                    "duplicates whose labels disagree. Writes report.md, duplicates.csv, within_split.csv "
                    "and pairs_at_threshold.png.")
    parser.add_argument("--data", help="dataset folder (default: $BRAINBENCH_DATA, else the embedded mini dataset)")
    parser.add_argument("--out", help=f"output folder (default: {DEFAULT_OUT}/<dataset fingerprint>)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"similarity from which two pictures count as duplicates (default {DEFAULT_THRESHOLD})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.out:
        writable_folder(args.out, "--out")
    index = discover(dataset_dir(args.data))
    fingerprint = dataset_fingerprint(index)
    # Keyed by fingerprint: an audit describes exact files, and two copies of the dataset that
    # differ by a few files must not overwrite each other's report.
    out = writable_folder(args.out or DEFAULT_OUT / fingerprint, "--out")
    result = run_audit(index, args.threshold)
    write_duplicates_csv(result, out / "duplicates.csv")
    write_within_csv(result, out / "within_split.csv")
    write_sheet(result, out / "pairs_at_threshold.png")
    result.seconds["total"] = time.perf_counter() - started
    write_report(result, out / "report.md", fingerprint)
    n_dup = sum(m.is_duplicate for m in result.test_vs_train)
    print(f"{n_dup} of {len(result.test)} test images duplicate a training image; "
          f"{len(result.conflicts())} label conflicts; wrote {out} in {result.seconds['total']:.1f} s")
    return 0
