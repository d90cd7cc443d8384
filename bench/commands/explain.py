"""`brainbench explain ENTRY IMAGE...`: where a trained classifier looks, as class-activation maps.

The checkpoint is chosen and loaded as `brainbench predict` does, and each image is preprocessed
as that checkpoint's training images were. Per image, `<out>/<name>_<method>.png` shows the image
as the model saw it and the class-activation map of the predicted class over it (and of the true
class, with --true), the class probabilities in its title. A table says what was written.

Options:

- `ENTRY`: a classifier of the zoo (`brainbench list`). knn.pixels (no gradients) and the U-Nets
  (segmentation; `brainbench predict` draws their masks) are refused.
- `IMAGE...`: image files (JPEG, PNG, TIFF, ...).
- `--method NAME`: the class-activation method, one of bench.explain.cam.METHODS (gradcam,
  gradcam++, hirescam, xgradcam, layercam, gradcam-elementwise, eigengradcam, eigencam, scorecam),
  all from the pytorch-grad-cam package; default gradcam.
- `--layer NAME`: the module whose output the map weighs, a dotted name inside the built model
  (`layer3`, `features.22`); default the entry's `cam_layer`. An unknown name lists valid ones.
- `--true CLASS`: the images' true class (one of the checkpoint's classes), whose map is drawn
  beside the predicted class's when the two differ.
- `--feature-maps N`: also write `<out>/<name>_features.png`, the first N channels of each
  convolution block's output; refused for a transformer, which has no convolution blocks.
- `--out DIR`: where the PNGs go (default ./explanations).
- `--checkpoint DIR`: this checkpoint folder of ENTRY instead of its most recently trained one.
- `--store DIR`: the checkpoint store (default $BRAINBENCH_STORE, else ~/.cache/brainbench/store).
- `--device cpu|cuda[:N]`: default cuda when available.

An image that cannot be read is a row saying why; the others are still drawn and the exit
status is 1. A problem with the entry, an option or the checkpoint stops the command with
status 2 before any picture is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

import zoo
from bench.commands.checks import writable_folder
from bench.device import resolve_device
from bench.errors import BrainbenchError, OptionError
from bench.explain.cam import DEFAULT_METHOD, METHODS, check_explainable, method_class
from bench.explain.images import Explanation, explain_images
from bench.inference import key_of_folder, latest_checkpoint, load_checkpoint
from bench.paths import store_dir

REASON_WIDTH = 50  # wrap long decode errors instead of widening the whole table, as predict does


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain", help="class-activation maps (Grad-CAM and others) and feature maps for MRI images",
        description="Draw where a trained classifier looks: per image, the class-activation map of the predicted "
                    "(and, with --true, the true) class over the image as the model saw it, with the class "
                    "probabilities, from the entry's most recently trained checkpoint in the store.")
    parser.add_argument("entry", metavar="ENTRY", help="zoo entry name, e.g. resnet18.scratch (see `brainbench list`)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, TIFF, ...)")
    parser.add_argument("--method", default=DEFAULT_METHOD, metavar="NAME",
                        help=f"class-activation method: {', '.join(METHODS)} (default: {DEFAULT_METHOD})")
    parser.add_argument("--layer", metavar="NAME",
                        help="module whose output the map weighs, a dotted name in the model such as layer3 "
                             "(default: the entry's cam_layer, its last convolution block)")
    parser.add_argument("--true", dest="true_class", metavar="CLASS",
                        help="the images' true class: its map is drawn beside the predicted class's")
    parser.add_argument("--feature-maps", type=int, default=0, metavar="N",
                        help="also write a sheet of the first N channels of each convolution block's output")
    parser.add_argument("--out", default="explanations", metavar="DIR",
                        help="where the PNGs go (default: ./explanations)")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="use this checkpoint folder of ENTRY instead of its most recent one")
    parser.add_argument("--store", metavar="DIR",
                        help="checkpoint store (default: $BRAINBENCH_STORE, else ~/.cache/brainbench/store)")
    parser.add_argument("--device", help="cpu or cuda[:N] (default: cuda when available)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Options and the entry first: a typo is named before any checkpoint is read.
    device = resolve_device(args.device)
    method_class(args.method)
    if args.feature_maps < 0:
        raise OptionError(f"--feature-maps {args.feature_maps}: give a number of channels (0, the default, draws none)")
    entry = zoo.get(args.entry)
    check_explainable(entry, args.layer)
    out = writable_folder(args.out, "--out")
    loaded = load_checkpoint(_checkpoint_folder(entry.name, args.checkpoint, args.store), device)
    if args.true_class is not None and args.true_class not in loaded.contract.classes:
        raise OptionError(f"--true {args.true_class}: not a class of this checkpoint; its classes: "
                          f"{', '.join(loaded.contract.classes)}")
    print(loaded.describe())
    results = explain_images(loaded, args.images, out, method=args.method, layer=args.layer,
                             true_class=args.true_class, feature_maps=args.feature_maps)
    print()
    print(_table(results, args.true_class, with_features=bool(args.feature_maps)))
    unreadable = [str(r.prediction.path) for r in results if r.prediction.error]
    if unreadable:
        print(f"brainbench: {len(unreadable)} of {len(results)} image(s) could not be read: {', '.join(unreadable)}",
              file=sys.stderr)
    return 1 if unreadable else 0


def _checkpoint_folder(entry: str, checkpoint: str | None, store: str | None) -> Path:
    """--checkpoint DIR, checked to belong to ENTRY (the store layout names it), else the latest."""
    if checkpoint is None:
        return latest_checkpoint(store_dir(store), entry)
    _, key = key_of_folder(Path(checkpoint))
    if key.entry != entry:
        raise BrainbenchError(f"--checkpoint {checkpoint} is a checkpoint of {key.entry}, not of {entry}")
    return Path(checkpoint)


def _table(results: list[Explanation], true_class: str | None, *, with_features: bool) -> str:
    """A row per image: the predicted class and its probability (and the true class's), and the files."""
    names = [r.prediction.path.name for r in results]
    labels = names if len(set(names)) == len(names) else [str(r.prediction.path) for r in results]
    headers = ["image", "predicted", "predicted %"] + ([f"{true_class} %"] if true_class else []) + ["overlay"]
    headers += ["feature maps"] if with_features else []
    rows = []
    for label, r in zip(labels, results):
        p = r.prediction
        if p.probabilities is None:
            rows.append([label, f"unreadable: {p.error}"] + [""] * (len(headers) - 2))
            continue
        row = [label, p.predicted, f"{100 * p.probabilities[p.predicted]:.1f}"]
        row += [f"{100 * p.probabilities[true_class]:.1f}"] if true_class else []
        row += [str(r.overlay)] + ([str(r.feature_sheet)] if with_features else [])
        rows.append(row)
    return tabulate(rows, headers=headers, disable_numparse=True,
                    maxcolwidths=[None, REASON_WIDTH] + [None] * (len(headers) - 2))
