"""The `brainbench` command line: subcommands live in bench/commands/."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from bench.commands import audit, bench_train, datasets, explain, listing, patients, predict, report, run, train
from bench.errors import BrainbenchError
from zoo.registry import UnknownEntryError
from zoo.weights import WeightsMismatchError, WeightsUnavailableError

# Errors whose message is meant for the user: it names the file or value; no traceback. zoo's own
# errors are among them (zoo never imports bench, so they cannot derive from BrainbenchError).
USER_ERRORS = (BrainbenchError, UnknownEntryError, WeightsUnavailableError, WeightsMismatchError, ValueError)

COMMANDS = (listing, datasets, train, run, report, predict, explain, audit, patients, bench_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brainbench", description="Benchmark and model zoo for brain tumor MRI classification.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="brainbench: %(levelname)s: %(message)s")
    if getattr(args, "weights_dir", None):
        # zoo reads the weights folder from the environment (zoo never imports bench's options)
        os.environ["BRAINBENCH_WEIGHTS"] = str(Path(args.weights_dir).expanduser().resolve())
    try:
        return args.run(args)
    except USER_ERRORS as error:
        print(f"brainbench: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("brainbench: interrupted; finished checkpoints and results are kept", file=sys.stderr)
        return 130


def _one_line(error: BaseException) -> str:
    # KeyError (UnknownEntryError) quotes its message; a multi-line message keeps its first line,
    # where brainbench's errors say what and where (the rest is detail such as a fetch command).
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return str(text).strip()


if __name__ == "__main__":
    sys.exit(main())
