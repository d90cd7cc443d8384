"""`brainbench bench-train ENTRY`: training throughput of the model alone, brainbench's pipeline, and
a plain ImageFolder + DataLoader pipeline, with their ratios."""

from __future__ import annotations

import argparse
import json

import zoo
from bench.commands.checks import writable_file, writable_folder
from bench.commands.train import add_common_data_options
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.device import resolve_device
from bench.environment import environment
from bench.io import write_text_atomically
from bench.paths import dataset_dir, decoded_cache_dir
from bench.throughput import ThroughputSettings, default_workers, markdown_table, measure_train_throughput
from zoo.recipe import AUGMENT_POLICIES

NAME = "bench-train"


def add_parser(subparsers) -> None:
    defaults = ThroughputSettings(batch_size=1, input_size=1)
    parser = subparsers.add_parser(
        NAME, help="training throughput: model alone vs brainbench's pipeline vs ImageFolder",
        description="Images per second of training ENTRY (freshly initialized, never downloaded weights) "
                    "through (a) the model alone on a synthetic batch already on the device, the ceiling; "
                    "(b) brainbench's pipeline: the decoded uint8 cache on the device with the recipe's "
                    "augmentation in batch; (c) torchvision ImageFolder + DataLoader decoding JPEGs every "
                    "epoch. The three are timed in turn for several rounds, so a slow spell on a shared machine hits "
                    "each of them alike; each figure is its median over rounds. Prints a Markdown table with "
                    "(b)/(a) and (b)/(c).")
    parser.add_argument("entry", help="zoo entry name, e.g. resnet50.scratch (see `brainbench list`)")
    add_common_data_options(parser)
    parser.add_argument("--batch-size", type=int, help="default: the entry recipe's")
    parser.add_argument("--input-size", type=int, help="square input side in pixels (default: the entry's)")
    parser.add_argument("--augment", choices=AUGMENT_POLICIES, help="augmentation policy (default: the recipe's)")
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help=f"timed steps per pipeline and round (default {defaults.steps})")
    parser.add_argument("--rounds", type=int, default=defaults.rounds,
                        help=f"rounds of (a), (b), (c) in turn; each figure is the median over rounds "
                             f"(default {defaults.rounds})")
    parser.add_argument("--warmup", type=int, default=defaults.warmup,
                        help=f"untimed steps per pipeline before its first round (default {defaults.warmup})")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help=f"DataLoader workers of the ImageFolder pipeline (default min(4, CPUs) = {default_workers()})")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="autocast (default: bf16, else fp16, on CUDA; fp32 on CPU; --amp on CPU is bf16)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (compiled during warm-up)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", help="also write the result as JSON (name, environ, config, metrics) to this file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    entry = zoo.get(args.entry)
    settings = ThroughputSettings(
        batch_size=args.batch_size if args.batch_size is not None else entry.recipe.batch_size,
        input_size=args.input_size if args.input_size is not None else entry.recipe.input_size or entry.input_size,
        steps=args.steps, rounds=args.rounds, warmup=args.warmup, workers=args.workers, amp=args.amp, compile=args.compile,
        seed=args.seed)
    overrides = {"batch_size": settings.batch_size, "input_size": settings.input_size}
    if args.augment is not None:
        overrides["augment"] = args.augment
    recipe = entry.recipe.with_overrides(**overrides)
    device = resolve_device(args.device)
    out = writable_file(args.out, "--out") if args.out else None  # before minutes of measuring
    data = load_dataset(dataset_dir(args.data), Preprocessing(settings.input_size, entry.in_channels,
                                                              recipe.crop_to_content, entry.resize),
                        writable_folder(decoded_cache_dir(args.cache), "--cache"))
    result = measure_train_throughput(entry, recipe, data, settings, device)
    print(markdown_table(result))
    if out is not None:
        record = {"name": NAME, "environ": environment(device), "config": result.config(),
                  "metrics": result.metrics()}
        write_text_atomically(out, json.dumps(record, indent=2) + "\n")
        print(f"\nwritten: {out}")
    return 0
