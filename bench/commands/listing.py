"""`brainbench list [PATTERN]`: the zoo as a table."""

from __future__ import annotations

import argparse

from tabulate import tabulate

import zoo


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list zoo entries", description="List the registered zoo entries.")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter such as 'cnn*' or '*.scratch'")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for entry in zoo.entries(args.pattern):
        params = entry.param_count()  # built on the meta device: no weights needed, no memory
        rows.append([entry.name, entry.variant if entry.task == "classification" else f"{entry.variant} ({entry.task})",
                     f"{entry.in_channels}x{entry.input_size}x{entry.input_size}",
                     f"{params / 1e6:.3f}", entry.recipe.epochs, entry.source])
    if not rows:
        print(f"no zoo entry matches {args.pattern!r}")
        return 1
    headers = ["entry", "variant", "input", "params (M)", "epochs", "source"]
    print(tabulate(rows, headers=headers, maxcolwidths=[None, None, None, None, None, 60]))
    study = _study_counts(zoo.entries(args.pattern))
    if study:
        print("\nParameter counts against the source study (ours built in the study's configuration, and as used "
              "here):")
        print(tabulate(study, headers=["entry", "task", "study's configuration", "study", "ours there", "difference",
                                       "ours here"]))
    return 0


def _study_counts(entries) -> list[list[str]]:
    """Entries whose source study reports a parameter count: its number beside ours, built the same way."""
    rows = []
    for entry in entries:
        if entry.study_count is None:
            continue
        count, ours = entry.study_count, entry.study_config_param_count()
        rows.append([entry.name, entry.task, f"{count.in_channels} in, {count.num_classes} out", f"{count.params:,}",
                     f"{ours:,}", f"{ours - count.params:+,}",
                     f"{entry.param_count():,} ({entry.in_channels} in, {entry.num_classes} out)"])
    return rows
