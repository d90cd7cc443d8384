"""`brainbench predict ENTRY IMAGE...`: class probabilities for image files, from stored checkpoints.

One entry: one table, a row per image. Several entries (ENTRY plus --models): one table per
image, a row per entry, so that the same class's probabilities line up in one column and a
disagreement between models is visible at a glance; its width (about 80 columns for four
classes) does not grow with the number of entries, as one wide table with a column per class
and entry would. The columns are the classes the checkpoints were trained on (their manifests'
input contract), so entries compared side by side must have been trained on the same classes.

An image that cannot be read is a row saying why; the other images are still predicted,
and the exit status is 1 so that scripts notice. Problems with an entry or its checkpoint
(unknown, untrained, corrupted) stop the command with status 2 before anything is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

import zoo
from bench.commands.checks import writable_folder
from bench.device import resolve_device
from bench.errors import BrainbenchError
from bench.inference import (
    NoCheckpointError,
    Prediction,
    key_of_folder,
    latest_checkpoint,
    load_checkpoint,
    predict_images,
)
from bench.paths import store_dir
from bench.segmentation.predict import predict_masks

REASON_WIDTH = 50  # wrap long decode errors instead of widening the whole table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="class probabilities for MRI images from a trained entry",
        description="Predict class probabilities (for the classes of the dataset the checkpoint was trained on, "
                    "e.g. glioma / meningioma / notumor / pituitary) for image files with an entry's most "
                    "recently trained checkpoint in the store (or the one --checkpoint names). "
                    "Images are preprocessed as that checkpoint's training images were.")
    parser.add_argument("entry", metavar="ENTRY",
                        help="zoo entry name, e.g. cnn3.scratch (see `brainbench list`)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, TIFF, ...)")
    parser.add_argument("--models", metavar="PATTERN_OR_LIST",
                        help="compare ENTRY with these entries: comma-separated names or shell patterns "
                             "('cnn1.scratch,resnet18.scratch', 'cnn*'); pattern matches without a trained "
                             "checkpoint are skipped")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="use this checkpoint folder of ENTRY instead of its most recent one")
    parser.add_argument("--store", metavar="DIR",
                        help="checkpoint store (default: $BRAINBENCH_STORE, else ~/.cache/brainbench/store)")
    parser.add_argument("--device", help="cpu or cuda[:N] (default: cuda when available)")
    parser.add_argument("--out", default="predictions", metavar="DIR",
                        help="segmentation entries: where each image's <name>_mask.png (0/255, the image's size) and "
                             "<name>_overlay.png go (default: ./predictions)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)  # options first: a typo there is named before any lookup
    names, optional = _entry_names(args.entry, args.models)
    store = store_dir(args.store)
    folders = _checkpoint_folders(names, store, args.checkpoint, optional=optional)
    # Load every checkpoint before printing anything: a corrupted one stops the command cleanly.
    first = load_checkpoint(folders[0], device)
    if first.entry.task == "segmentation":
        if len(folders) > 1:
            raise BrainbenchError(f"--models compares classifiers; {first.entry.name} segments (one entry at a time)")
        return _segment(first, args)
    classes = first.contract.classes
    # One column per class: every compared checkpoint must answer in ENTRY's classes.
    models = [first] + [load_checkpoint(folder, device, expected_classes=classes) for folder in folders[1:]]
    for loaded in models:
        print(loaded.describe())
    results = {loaded.entry.name: predict_images(loaded, args.images) for loaded in models}
    print()
    print(_single_table(results[args.entry], classes) if len(results) == 1
          else _comparison_tables(results, classes))
    return _report_unreadable(results, len(args.images))


def _segment(loaded, args: argparse.Namespace) -> int:
    """A mask and an overlay per image, and a table of what was written."""
    out = writable_folder(args.out, "--out")
    print(loaded.describe())
    results = predict_masks(loaded, [Path(p) for p in args.images], out)
    labels = _image_labels([r.path for r in results])
    rows = [[label, f"unreadable: {r.error}", "", ""] if r.error else
            [label, f"{100 * r.tumour_share:.2f}", str(r.mask_file), str(r.overlay_file)]
            for label, r in zip(labels, results)]
    print()
    print(tabulate(rows, headers=["image", "tumour pixels %", "mask", "overlay"], disable_numparse=True,
                   maxcolwidths=[None, REASON_WIDTH, None, None]))
    unreadable = [str(r.path) for r in results if r.error]
    if unreadable:
        print(f"brainbench: {len(unreadable)} of {len(results)} image(s) could not be read: {', '.join(unreadable)}",
              file=sys.stderr)
    return 1 if unreadable else 0


# --- which entries, which checkpoints ---------------------------------------------------------

def _is_pattern(text: str) -> bool:
    return any(char in text for char in "*?[")


def _entry_names(entry: str, models: str | None) -> tuple[list[str], set[str]]:
    """ENTRY then the --models entries in the order given, each once; and those matched only by a pattern."""
    names = [zoo.get(entry).name]  # an unknown entry is reported before any file is touched
    named, patterned = {entry}, set()
    for part in filter(None, (p.strip() for p in (models or "").split(","))):
        if _is_pattern(part):
            matched = zoo.names(part)
            if not matched:
                raise BrainbenchError(f"--models: no zoo entry matches {part!r} (see `brainbench list`)")
            patterned.update(matched)
        else:
            matched = [zoo.get(part).name]
            named.update(matched)
        names += [name for name in matched if name not in names]
    return names, patterned - named


def _checkpoint_folders(names: list[str], store: Path, checkpoint: str | None, *, optional: set[str]) -> list[Path]:
    """One checkpoint folder per entry: --checkpoint for ENTRY (names[0]), else each entry's latest.

    Entries matched only by a pattern may lack a checkpoint (`cnn*` when two of four are
    trained); they are skipped with a note. An entry the user named must have one.
    """
    folders, untrained = [], []
    for name in names:
        if checkpoint and name == names[0]:
            folders.append(_explicit_checkpoint(checkpoint, name))
            continue
        try:
            folders.append(latest_checkpoint(store, name))
        except NoCheckpointError:
            if name not in optional:
                raise
            untrained.append(name)
    if untrained:
        print(f"brainbench: skipping {', '.join(untrained)}: no trained checkpoint in {store}", file=sys.stderr)
    return folders


def _explicit_checkpoint(folder: str, entry: str) -> Path:
    """--checkpoint DIR, checked to be a checkpoint of ENTRY (the store layout names its entry)."""
    _, key = key_of_folder(Path(folder))
    if key.entry != entry:
        raise BrainbenchError(f"--checkpoint {folder} is a checkpoint of {key.entry}, not of {entry}")
    return Path(folder)


# --- output ---------------------------------------------------------------------------------

def _cells(prediction: Prediction, classes: tuple[str, ...]) -> list[str]:
    """predicted class and each class's probability in %, or the reason the image was unreadable."""
    if prediction.probabilities is None:
        return [f"unreadable: {prediction.error}"] + [""] * len(classes)
    return [prediction.predicted] + [f"{100 * prediction.probabilities[c]:.1f}" for c in classes]


def _table(rows: list[list[str]], first_header: str, classes: tuple[str, ...]) -> str:
    headers = [first_header, "predicted"] + [f"{name} %" for name in classes]
    widths = [None, REASON_WIDTH] + [None] * len(classes)
    return tabulate(rows, headers=headers, disable_numparse=True,
                    colalign=("left", "left") + ("right",) * len(classes), maxcolwidths=widths)


def _image_labels(paths: list[Path]) -> list[str]:
    """File names, which keep the table narrow; the paths as given if two files share a name."""
    names = [path.name for path in paths]
    return names if len(set(names)) == len(names) else [str(path) for path in paths]


def _single_table(predictions: list[Prediction], classes: tuple[str, ...]) -> str:
    labels = _image_labels([p.path for p in predictions])
    return _table([[label] + _cells(p, classes) for label, p in zip(labels, predictions)], "image", classes)


def _comparison_tables(results: dict[str, list[Prediction]], classes: tuple[str, ...]) -> str:
    per_image = list(zip(*results.values()))  # the i-th prediction of every entry is for the i-th image
    labels = _image_labels([predictions[0].path for predictions in per_image])
    blocks = []
    for label, predictions in zip(labels, per_image):
        rows = [[name] + _cells(p, classes) for name, p in zip(results, predictions)]
        blocks.append(f"{label}\n{_table(rows, 'entry', classes)}")
    return "\n\n".join(blocks)


def _report_unreadable(results: dict[str, list[Prediction]], n_images: int) -> int:
    """Exit status: 0 when every image was predicted, 1 when some could not be read."""
    unreadable = {p.path for predictions in results.values() for p in predictions if p.error}
    if not unreadable:
        return 0
    print(f"brainbench: {len(unreadable)} of {n_images} image(s) could not be read: "
          f"{', '.join(map(str, sorted(unreadable)))}", file=sys.stderr)
    return 1
