"""Find the images of a dataset folder and check its shape before anything expensive runs.

Two layouts are accepted:
- Kaggle: ``Training/`` and ``Testing/``, each with one folder per class.
- flat: one folder per class; the test split is then drawn by a seeded, stratified split
  whose ratio and seed are recorded in the index.

Nothing is decoded here (that is `cache.py`'s job); this module only lists files, by the rules
of `entries.py`: only regular files (or links to them) are read, each real file once, and
folder links are never followed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.entries import FolderWalk, is_hidden, printable
from bench.data.labels import CLASS_NAMES, normalize_class_name
from bench.data.splits import stratified_split
from bench.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "DatasetIndex", "Sample", "discover", "is_hidden"]

log = logging.getLogger("brainbench")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
TRAIN_FOLDER_NAMES = {"training", "train"}
TEST_FOLDER_NAMES = {"testing", "test"}
FLAT_TEST_FRACTION = 0.2
FLAT_TEST_SEED = 0


@dataclass(frozen=True)
class Sample:
    path: Path  # absolute, for reading
    rel: str  # POSIX path relative to the dataset root, for fingerprints and reports
    label: int  # index into CLASS_NAMES


@dataclass(frozen=True)
class DatasetIndex:
    root: Path
    layout: str  # "kaggle" or "flat"
    train: tuple[Sample, ...]
    test: tuple[Sample, ...]
    non_image_files: tuple[str, ...] = ()
    test_split: dict | None = field(default=None)  # {"fraction", "seed"} for the flat layout
    # Entries that are not readable files (FIFOs, broken links, folder links, repeats), warned about.
    skipped_entries: tuple[dict, ...] = ()
    empty_classes: tuple[str, ...] = ()  # classes whose folders hold no image in any split

    def record(self) -> dict:
        """What a run record says about where its data came from."""
        return {
            "path": str(self.root),
            "layout": self.layout,
            "n_train_files": len(self.train),
            "n_test_files": len(self.test),
            "n_non_image_files_skipped": len(self.non_image_files),
            "n_unusable_entries_skipped": len(self.skipped_entries),
            "unusable_entries_skipped": list(self.skipped_entries),
            "empty_classes": list(self.empty_classes),
            "test_split": self.test_split or "official (the dataset's own test folder)",
        }


@dataclass
class _Scan:
    """What one split folder (or the flat root) holds."""
    samples: list[Sample] = field(default_factory=list)
    non_images: list[str] = field(default_factory=list)
    class_folders: dict[int, str] = field(default_factory=dict)  # label -> folder rel


def _class_of(folder: Path) -> str:
    try:
        return normalize_class_name(folder.name)
    except DatasetError as error:
        raise DatasetError(f"{printable(str(folder))}: {error}") from None


def _scan_class_folders(split_dir: Path, walk: FolderWalk) -> _Scan:
    """Samples of one split folder, plus the relative paths of files that are not images."""
    scan = _Scan()
    owner_of_label: dict[str, Path] = {}
    folders, loose_files = walk.children(split_dir)
    scan.non_images.extend(walk.rel(file) for file in loose_files)
    for child in folders:
        label = _class_of(child)
        if label in owner_of_label:
            raise DatasetError(
                f"folders {owner_of_label[label].name!r} and {child.name!r} in {split_dir} "
                f"both mean class {label!r}; merge or remove one"
            )
        owner_of_label[label] = child
        scan.class_folders[CLASS_NAMES.index(label)] = walk.rel(child)
        for file in walk.files_below(child):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                scan.samples.append(Sample(file, walk.rel(file), CLASS_NAMES.index(label)))
            else:
                scan.non_images.append(walk.rel(file))
    return scan


def _find_split_folder(root: Path, names: set[str]) -> Path | None:
    matches = [p for p in sorted(root.iterdir()) if not is_hidden(p) and p.is_dir() and p.name.lower() in names]
    if len(matches) > 1:
        raise DatasetError(f"{root} has several folders for one split: {[p.name for p in matches]}")
    if matches and matches[0].is_symlink():
        raise DatasetError(
            f"{matches[0]} is a symbolic link to a folder; links to folders inside a dataset are not followed "
            "(one can loop or relabel images): replace it with the folder, or pass the real folder as --data")
    return matches[0] if matches else None


def _check_classes(train: list[Sample], test: list[Sample], root: Path) -> None:
    if not train and not test:
        raise DatasetError(f"dataset {root} contains no images")
    for split_name, samples in (("training", train), ("test", test)):
        if not samples:
            raise DatasetError(f"the {split_name} split of {root} contains no images")
    train_classes = {s.label for s in train}
    test_classes = {s.label for s in test}
    for label in sorted(train_classes ^ test_classes):
        present, absent = ("training", "test") if label in train_classes else ("test", "training")
        raise DatasetError(
            f"class {CLASS_NAMES[label]!r} has images in the {present} split of {root} "
            f"but none in the {absent} split"
        )
    if len(train_classes) < 2:
        only = CLASS_NAMES[next(iter(train_classes))]
        raise DatasetError(f"only class {only!r} has training images in {root}; a classifier needs "
                           "at least two classes")


def _empty_classes(scans: list[_Scan]) -> tuple[str, ...]:
    """Classes that have a folder but no image in any split: warned about, then left out."""
    with_images = {s.label for scan in scans for s in scan.samples}
    empty = []
    for label in sorted({label for scan in scans for label in scan.class_folders}):
        if label not in with_images:
            folders = [scan.class_folders[label] for scan in scans if label in scan.class_folders]
            log.warning("class %r has no images (empty folder %s); it is left out of training and testing, "
                        "and its metrics will be missing", CLASS_NAMES[label], " and ".join(folders))
            empty.append(CLASS_NAMES[label])
    return tuple(empty)


def discover(root: Path | str) -> DatasetIndex:
    """List a dataset folder's images by split and class; raise DatasetError if it cannot be used."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    train_dir = _find_split_folder(root, TRAIN_FOLDER_NAMES)
    test_dir = _find_split_folder(root, TEST_FOLDER_NAMES)
    if train_dir and test_dir:
        return _discover_kaggle(root, train_dir, test_dir)
    if train_dir or test_dir:
        present, missing = ("Training", "Testing") if train_dir else ("Testing", "Training")
        raise DatasetError(f"{root} has a {present} folder but no {missing} folder (use both, or the flat "
                           "layout: one folder per class, no split folders)")
    return _discover_flat(root)


def _discover_kaggle(root: Path, train_dir: Path, test_dir: Path) -> DatasetIndex:
    walk = FolderWalk(root)
    scans = [_scan_class_folders(train_dir, walk), _scan_class_folders(test_dir, walk)]
    # One file reached from both splits (a link in Testing/ to a training image) counts once, in training.
    tagged = [("train", s) for s in scans[0].samples] + [("test", s) for s in scans[1].samples]
    kept = walk.once_each(tagged, lambda item: item[1].path)
    train = [s for split, s in kept if split == "train"]
    test = [s for split, s in kept if split == "test"]
    empty = _empty_classes(scans) if kept else ()
    _check_classes(train, test, root)
    return DatasetIndex(root, "kaggle", tuple(train), tuple(test), tuple(scans[0].non_images + scans[1].non_images),
                        skipped_entries=tuple(s.record() for s in walk.skipped), empty_classes=empty)


def _discover_flat(root: Path) -> DatasetIndex:
    walk = FolderWalk(root)
    scan = _scan_class_folders(root, walk)
    samples = walk.once_each(scan.samples, lambda s: s.path)
    empty = _empty_classes([scan]) if samples else ()
    if not samples:
        raise DatasetError(
            f"dataset {root} contains no images (expected Training/ and Testing/ "
            "folders, or one folder per class)"
        )
    train_pos, test_pos = stratified_split([s.label for s in samples], FLAT_TEST_FRACTION, FLAT_TEST_SEED)
    train = [samples[i] for i in train_pos]
    test = [samples[i] for i in test_pos]
    _check_classes(train, test, root)
    split = {"fraction": FLAT_TEST_FRACTION, "seed": FLAT_TEST_SEED, "method": "stratified"}
    return DatasetIndex(root, "flat", tuple(train), tuple(test), tuple(scan.non_images), split,
                        tuple(s.record() for s in walk.skipped), empty)
