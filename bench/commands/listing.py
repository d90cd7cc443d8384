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
        rows.append([entry.name, entry.variant, f"{entry.in_channels}x{entry.input_size}x{entry.input_size}",
                     f"{params / 1e6:.3f}", entry.recipe.epochs, entry.source])
    if not rows:
        print(f"no zoo entry matches {args.pattern!r}")
        return 1
    headers = ["entry", "variant", "input", "params (M)", "epochs", "source"]
    print(tabulate(rows, headers=headers, maxcolwidths=[None, None, None, None, None, 60]))
    return 0
