"""`brainbench train ENTRY`: train one zoo entry (or load its stored checkpoint)."""

from __future__ import annotations

import argparse
import time

import zoo
from bench.commands.checks import writable_folder
from bench.data.cache import Preprocessing
from bench.data.dataset import LoadedDataset
from bench.device import resolve_device
from bench.errors import OptionError
from bench.leakage.index import DEFAULT_CLEAN_THRESHOLD
from bench.paths import dataset_dir, decoded_cache_dir, store_dir
from bench.runner.protocol_views import choose_protocols, protocol_views
from bench.runner.run_suite import DatasetViews
from bench.train.settings import TrainSettings
from bench.train.store import CheckpointStore
from bench.train.train_or_load import train_or_load
from zoo.recipe import AUGMENT_POLICIES, OPTIMIZERS, SCHEDULERS


def add_common_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset folder (default: $BRAINBENCH_DATA, else the embedded mini dataset)")
    parser.add_argument("--store", help="checkpoint store (default: $BRAINBENCH_STORE, else ~/.cache/brainbench/store)")
    parser.add_argument("--cache", help="decoded-image cache (default: $BRAINBENCH_CACHE, else ~/.cache/brainbench/decoded)")
    parser.add_argument("--device", help="cpu or cuda[:N] (default: cuda when available)")
    parser.add_argument("--weights-dir", help="folder of ImageNet weight files placed by hand "
                                              "(default: $BRAINBENCH_WEIGHTS, then the libraries' caches)")
    add_declaration_option(parser)


def add_declaration_option(parser: argparse.ArgumentParser) -> None:
    """--declaration, the same for every command that reads a dataset folder."""
    parser.add_argument("--declaration", metavar="NAME_OR_TOML",
                        help="the dataset's declaration (label set, files, protocols): a shipped name such as "
                             "brain-tumor-44c-44classes, or a TOML file (default: the folder's "
                             "brainbench-dataset.toml, else the shipped one its layout matches)")


def add_protocol_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", metavar="NAME",
                        help="split protocol: one the dataset declares (e.g. patient-wise), or official, holdout, "
                             "kfold (default: the dataset's first; `brainbench datasets` lists them)")
    parser.add_argument("--folds", type=int, metavar="K", help="with --protocol kfold: draw K folds")
    parser.add_argument("--groups", metavar="COLUMN",
                        help="with a built-in protocol: what stays whole (the dataset's group column, "
                             "duplicates, or none for a record-wise split)")


def process_count(text: str) -> int:
    """argparse type of --nproc: a whole number of processes, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of processes, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """How training runs (never what it produces: neither option changes a checkpoint's key)."""
    parser.add_argument("--nproc", type=process_count, default=1, metavar="N",
                        help="train in N torchrun processes with DistributedDataParallel: one per GPU (NCCL), "
                             "or N CPU processes (gloo); the recipe's batch size is split across them")
    parser.add_argument("--compile", action="store_true", dest="compile_step",
                        help="torch.compile the training step (forward and backward); pays off on long GPU runs")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train one zoo entry, or load its checkpoint",
        description="Train one zoo entry with its default recipe and any overrides given here. A stored "
                    "checkpoint with the same entry, recipe and dataset fingerprint is loaded instead; an "
                    "interrupted training of it resumes from its last finished epoch.")
    parser.add_argument("entry", help="zoo entry name, e.g. cnn2.scratch (see `brainbench list`)")
    add_common_data_options(parser)
    add_protocol_options(parser)
    parser.add_argument("--fold", type=int, default=1, metavar="N",
                        help="with a k-fold protocol: which fold to train (1-based, default 1)")
    recipe = parser.add_argument_group("recipe overrides (default: the entry's recipe)")
    recipe.add_argument("--epochs", type=int)
    recipe.add_argument("--batch-size", type=int)
    recipe.add_argument("--lr", type=float)
    recipe.add_argument("--weight-decay", type=float)
    recipe.add_argument("--optimizer", choices=OPTIMIZERS)
    recipe.add_argument("--scheduler", choices=SCHEDULERS)
    recipe.add_argument("--augment", choices=AUGMENT_POLICIES)
    recipe.add_argument("--random-resized-crop", action="store_true", default=None,
                        help="add RandomResizedCrop (area 0.6-1) to the augmentation")
    recipe.add_argument("--autoaugment", action="store_true", default=None,
                        help="add AutoAugment (ImageNet policy, applied per image) to the augmentation")
    recipe.add_argument("--dropout", type=float, help="dropout of the classifier head")
    recipe.add_argument("--label-smoothing", type=float)
    recipe.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    recipe.add_argument("--input-size", type=int, help="square input side in pixels")
    recipe.add_argument("--seed", type=int)
    recipe.add_argument("--crop-to-content", action="store_true", default=None,
                        help="crop the black frame around the head before resizing")
    parser.add_argument("--fresh", action="store_true",
                        help="train from the first epoch even if a matching checkpoint or resume state exists")
    add_training_options(parser)
    parser.set_defaults(run=run)


RECIPE_OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "scheduler", "augment",
                  "random_resized_crop", "autoaugment", "dropout", "label_smoothing", "patience", "input_size", "seed", "crop_to_content")


def recipe_from_args(entry: zoo.ZooEntry, args: argparse.Namespace) -> zoo.Recipe:
    overrides = {name: getattr(args, name) for name in RECIPE_OPTIONS if getattr(args, name) is not None}
    return entry.recipe.with_overrides(**overrides)


def run(args: argparse.Namespace) -> int:
    entry = zoo.get(args.entry)
    if entry.task != "classification":
        raise OptionError(f"brainbench train trains classifiers; {entry.name} is a {entry.task} entry: run it in a "
                          f"{entry.task} suite (brainbench run --suite segmentation --data DIR)")
    recipe = recipe_from_args(entry, args)
    device = resolve_device(args.device)
    store = CheckpointStore(writable_folder(store_dir(args.store), "--store"))
    cache = writable_folder(decoded_cache_dir(args.cache), "--cache")
    prep = Preprocessing(recipe.input_size or entry.input_size, entry.in_channels, recipe.crop_to_content,
                         entry.resize)
    data = _one_view(args, prep, cache)
    started = time.perf_counter()
    trained = train_or_load(entry, recipe, data, store, device, fresh=args.fresh,
                            settings=TrainSettings(args.nproc, args.compile_step))
    _print_summary(entry.name, trained, data.record(), time.perf_counter() - started)
    return 0


def _one_view(args: argparse.Namespace, prep: Preprocessing, cache) -> LoadedDataset:
    """The protocol fold to train on: the dataset's default protocol, or --protocol; --fold of it."""
    views = DatasetViews(dataset_dir(args.data), cache, args.declaration)
    spec = choose_protocols(views.index, (args.protocol,) if args.protocol else (), args.folds,
                            args.groups)[0]
    folds = protocol_views(views.index, spec, views.fingerprint, views.cache_root, DEFAULT_CLEAN_THRESHOLD)
    if not 1 <= args.fold <= len(folds):
        raise OptionError(f"--fold {args.fold}: protocol {spec.name} has {len(folds)} fold(s)")
    return views.get(prep, folds[args.fold - 1])


def _print_summary(name: str, trained, data: dict, seconds: float) -> None:
    m = trained.manifest
    best = m["best_val"]
    print(f"data: {data['path']} (fingerprint {data['fingerprint']}, {data['n_train_images']} training images, "
          f"{data['n_unreadable_skipped']} unreadable skipped, {data['n_non_image_files_skipped']} non-image files, "
          f"{data.get('n_unusable_entries_skipped', 0)} unusable entries)")
    if trained.loaded:
        print(f"{name}: loaded stored checkpoint in {seconds:.1f} s (trained {m['epochs_run']} epochs, "
              f"best val acc {best['acc']:.4f} at epoch {m['best_epoch']})")
    else:
        per_epoch = m["train_seconds"] / m["epochs_run"]
        share = m["data_seconds"] / m["train_seconds"] if m["train_seconds"] else 0.0
        how = f" with {m['processes']} processes" if m.get("processes", 1) > 1 else ""
        if m.get("resumed_after_epoch"):
            how += f", resumed after epoch {m['resumed_after_epoch']}"
        print(f"{name}: trained {m['epochs_run']} epochs{how} in {m['train_seconds']:.1f} s ({per_epoch:.1f} s/epoch, "
              f"{share:.0%} of it data handling); best val acc {best['acc']:.4f} at epoch {m['best_epoch']}")
    print(f"checkpoint: {trained.checkpoint_dir}")
