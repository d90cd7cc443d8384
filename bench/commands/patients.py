"""`brainbench patients`: recover each image's patient by matching a reference with patient ids."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.commands.checks import writable_folder
from bench.data.discover import discover
from bench.errors import OptionError
from bench.paths import dataset_dir, decoded_cache_dir
from bench.patients.analysis import analyse_patients
from bench.patients.histogram import write_histogram
from bench.patients.reference import read_reference
from bench.patients.report import write_report
from bench.patients.shipped import write_patient_map
from bench.patients.table import write_patients_csv

DEFAULT_OUT = Path("results") / "patients"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "patients", help="recover each image's patient from a reference with patient ids",
        description="Match every image of a dataset against the slices of a reference dataset whose patients "
                    "are known (figshare-cheng), in any orientation, resized, re-encoded or contrast-changed; "
                    "group the images no slice matches by near-duplicate clusters. Writes patients.csv, "
                    "patient-map.csv, similarity_histogram.png and report.md.")
    parser.add_argument("--data", help="dataset folder (default: $BRAINBENCH_DATA, else the embedded mini dataset)")
    parser.add_argument("--reference", required=True,
                        help="reference dataset with patient ids, such as figshare-cheng")
    parser.add_argument("--out", help=f"output folder (default: {DEFAULT_OUT}/<dataset fingerprint>)")
    parser.add_argument("--threshold", type=float,
                        help="similarity from which an image is a reference slice (default: the middle of the widest "
                             "gap in the similarity histogram)")
    parser.add_argument("--cache", help="cache folder for decoded pictures and the analysis "
                                        "(default: $BRAINBENCH_CACHE, else the user cache)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        raise OptionError(f"--threshold {args.threshold}: a similarity threshold must be in (0, 1]")
    if args.out:
        writable_folder(args.out, "--out")
    cache = writable_folder(decoded_cache_dir(args.cache), "--cache")
    index = discover(dataset_dir(args.data))
    reference = read_reference(args.reference)
    analysis = analyse_patients(index, reference, cache, args.threshold)
    out = writable_folder(args.out or DEFAULT_OUT / analysis.data_fingerprint, "--out")
    write_patients_csv(analysis, out / "patients.csv")
    write_patient_map(analysis, out / "patient-map.csv")
    write_histogram(analysis, out / "similarity_histogram.png")
    write_report(analysis, out / "report.md")
    matched = sum(r.matched for r in analysis.rows)
    source = "read from the cache" if analysis.from_cache else "computed"
    print(f"{matched} of {len(analysis.rows)} images have a patient (threshold {analysis.threshold:g}); "
          f"{analysis.grouping.threshold:.2f} groups the rest; {source}; wrote {out} "
          f"in {time.perf_counter() - started:.1f} s")
    return 0
