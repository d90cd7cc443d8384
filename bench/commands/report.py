"""`brainbench report DIR`: rebuild a results folder's leaderboards and plots from its results.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.report import RESULTS_JSON, rebuild
from bench.segmentation.report import write_segmentation_report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="rebuild leaderboards and plots from results.json",
        description="Rewrite leaderboard.md, leaderboard.csv and every plot of a results folder "
                    "(e.g. results/quick/cpu-fp32) from its results.json, without running any model.")
    parser.add_argument("folder", type=Path, help="a results folder holding results.json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    results = args.folder / RESULTS_JSON
    if _task(results) == "segmentation":
        written = write_segmentation_report(results, args.folder)
    else:
        written = rebuild(args.folder)
    print(f"rebuilt {len(written)} files in {args.folder}")
    return 0


def _task(results: Path) -> str:
    """The task a results.json was written for; classification when it says none (or cannot be read:
    the classification loader then names the problem)."""
    try:
        return json.loads(results.read_text()).get("task", "classification")
    except (OSError, ValueError, AttributeError):
        return "classification"
