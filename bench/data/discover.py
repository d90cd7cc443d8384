"""Find the images of a dataset folder and check its shape before anything expensive runs.

Two layouts are accepted:
- Kaggle: ``Training/`` and ``Testing/``, each with one folder per class.
- flat: one folder per class; the test split is then drawn by a seeded, stratified split
  whose ratio and seed are recorded in the index.

Nothing is decoded here (that is `cache.py`'s job); this module only lists files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.data.labels import CLASS_NAMES, normalize_class_name
from bench.data.splits import stratified_split
from bench.errors import DatasetError

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

    def record(self) -> dict:
        """What a run record says about where its data came from."""
        return {
            "path": str(self.root),
            "layout": self.layout,
            "n_train_files": len(self.train),
            "n_test_files": len(self.test),
            "n_non_image_files_skipped": len(self.non_image_files),
            "test_split": self.test_split or "official (the dataset's own test folder)",
        }


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name == "__MACOSX"


def _visible_children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not is_hidden(p))


def _files_under(folder: Path) -> list[Path]:
    """All visible files below `folder`, skipping hidden files and anything in hidden folders."""
    found = []
    for child in _visible_children(folder):
        found.extend(_files_under(child) if child.is_dir() else [child])
    return found


def _scan_class_folders(split_dir: Path, root: Path) -> tuple[list[Sample], list[str]]:
    """Samples of one split folder, plus the relative paths of files that are not images."""
    samples: list[Sample] = []
    skipped: list[str] = []
    owner_of_label: dict[str, Path] = {}
    for child in _visible_children(split_dir):
        if not child.is_dir():
            skipped.append(child.relative_to(root).as_posix())
            continue
        label = normalize_class_name(child.name)
        if label in owner_of_label:
            raise DatasetError(
                f"folders {owner_of_label[label].name!r} and {child.name!r} in {split_dir} "
                f"both mean class {label!r}; merge or remove one"
            )
        owner_of_label[label] = child
        for file in _files_under(child):
            rel = file.relative_to(root).as_posix()
            if file.suffix.lower() in IMAGE_SUFFIXES:
                samples.append(Sample(file, rel, CLASS_NAMES.index(label)))
            else:
                skipped.append(rel)
    return samples, skipped


def _find_split_folder(root: Path, names: set[str]) -> Path | None:
    matches = [p for p in _visible_children(root) if p.is_dir() and p.name.lower() in names]
    if len(matches) > 1:
        raise DatasetError(f"{root} has several folders for one split: {[p.name for p in matches]}")
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


def discover(root: Path | str) -> DatasetIndex:
    """List a dataset folder's images by split and class; raise DatasetError if it cannot be used."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    train_dir = _find_split_folder(root, TRAIN_FOLDER_NAMES)
    test_dir = _find_split_folder(root, TEST_FOLDER_NAMES)
    if train_dir and test_dir:
        train, skipped_train = _scan_class_folders(train_dir, root)
        test, skipped_test = _scan_class_folders(test_dir, root)
        _check_classes(train, test, root)
        return DatasetIndex(root, "kaggle", tuple(train), tuple(test), tuple(skipped_train + skipped_test))
    if train_dir or test_dir:
        present, missing = ("Training", "Testing") if train_dir else ("Testing", "Training")
        raise DatasetError(f"{root} has a {present} folder but no {missing} folder")
    return _discover_flat(root)


def _discover_flat(root: Path) -> DatasetIndex:
    samples, skipped = _scan_class_folders(root, root)
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
    return DatasetIndex(root, "flat", tuple(train), tuple(test), tuple(skipped), split)
