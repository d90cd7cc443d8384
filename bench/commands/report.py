"""`brainbench report DIR`: rebuild a results folder's leaderboards and plots from its results.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.report import rebuild


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="rebuild leaderboards and plots from results.json",
        description="Rewrite leaderboard.md, leaderboard.csv and every plot of a results folder "
                    "(e.g. results/quick/cpu-fp32) from its results.json, without running any model.")
    parser.add_argument("folder", type=Path, help="a results folder holding results.json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    written = rebuild(args.folder)
    print(f"rebuilt {len(written)} files in {args.folder}")
    return 0
