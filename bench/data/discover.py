"""Find the images of a dataset folder and check its shape before anything expensive runs.

What a folder holds is described by its declaration (bench/data/declaration.py): the label set,
and where each image's label comes from. Three layouts result:
- kaggle: ``Training/`` and ``Testing/``, each with class folders: the dataset's official split.
- flat: class folders at the root, and no official split: every image is in `train`, and the
  split protocols (bench/data/protocols.py) draw the test side.
- metadata: a CSV table listing each image with its class (and patient group, fold, mask).

Nothing is decoded here (that is `cache.py`'s job); this module only lists files, by the rules
of `entries.py`: only regular files (or links to them) are read, each real file once, and
folder links are never followed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.declaration import DECLARATION_FILE, Declaration, declaration_for
from bench.data.entries import FolderWalk, is_hidden, printable
from bench.data.labels import LabelSet
from bench.data.metadata import read_metadata
from bench.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "DatasetIndex", "Sample", "discover", "is_hidden"]

log = logging.getLogger("brainbench")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
TRAIN_FOLDER_NAMES = {"training", "train"}
TEST_FOLDER_NAMES = {"testing", "test"}


@dataclass(frozen=True)
class Sample:
    path: Path  # absolute, for reading
    rel: str  # POSIX path relative to the dataset root, for fingerprints and reports
    label: int  # index into DatasetIndex.labels.names
    group: str | None = None  # the declaration's group column (a patient), when it has one
    fold: int | None = None  # the declaration's fold column, when it has one
    mask: Path | None = None  # the declaration's mask column, when it has one


@dataclass(frozen=True)
class DatasetIndex:
    root: Path
    layout: str  # "kaggle" (Training/ and Testing/), "flat" (class folders) or "metadata" (a table)
    train: tuple[Sample, ...]  # the official training split, or every image when there is no official split
    test: tuple[Sample, ...]  # the official test split, or () when there is none
    labels: LabelSet
    declaration: Declaration
    non_image_files: tuple[str, ...] = ()
    # Entries that are not readable files (FIFOs, broken links, folder links, repeats), warned about.
    skipped_entries: tuple[dict, ...] = ()
    empty_classes: tuple[str, ...] = ()  # declared classes that hold no image

    @property
    def samples(self) -> tuple[Sample, ...]:
        """The pool the split protocols index into: train, then test."""
        return self.train + self.test

    @property
    def has_official_split(self) -> bool:
        return bool(self.test)

    def record(self) -> dict:
        """What a run record says about where its data came from."""
        record = {
            "path": str(self.root),
            "layout": self.layout,
            "declaration": self.declaration.record(),
            "labels": list(self.labels.names),
            "n_train_files": len(self.train),
            "n_test_files": len(self.test),
            "n_non_image_files_skipped": len(self.non_image_files),
            "n_unusable_entries_skipped": len(self.skipped_entries),
            "unusable_entries_skipped": list(self.skipped_entries),
            "empty_classes": list(self.empty_classes),
        }
        groups = {s.group for s in self.samples if s.group is not None}
        if groups:
            record["n_groups"] = len(groups)
        return record


def discover(root: Path | str, declaration: Declaration | str | None = None) -> DatasetIndex:
    """List a dataset folder's images with their classes; raise DatasetError if it cannot be used.
    `declaration`: a Declaration, a shipped name or a .toml path; None: the one the folder gets."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    if not isinstance(declaration, Declaration):
        declaration = declaration_for(root, declaration)
    if declaration.images_from == "metadata":
        return _discover_metadata(root, declaration)
    train_dir = _find_split_folder(root, TRAIN_FOLDER_NAMES)
    test_dir = _find_split_folder(root, TEST_FOLDER_NAMES)
    if train_dir and test_dir:
        return _discover_kaggle(root, train_dir, test_dir, declaration)
    if train_dir or test_dir:
        present, missing = ("Training", "Testing") if train_dir else ("Testing", "Training")
        raise DatasetError(f"{root} has a {present} folder but no {missing} folder (use both, or the flat "
                           "layout: one folder per class, no split folders)")
    return _discover_flat(root, declaration)


# --- class folders -------------------------------------------------------------------------------


@dataclass
class _Scan:
    """What one split folder (or the flat root) holds."""
    samples: list[Sample] = field(default_factory=list)
    non_images: list[str] = field(default_factory=list)
    class_folders: dict[int, list[str]] = field(default_factory=dict)  # label -> its folders' rels


def _class_of(folder: Path, declaration: Declaration) -> str | None:
    try:
        return declaration.folder_class(folder.name)
    except DatasetError as error:
        raise DatasetError(f"{printable(str(folder))}: {error}") from None


def _scan_class_folders(split_dir: Path, walk: FolderWalk, declaration: Declaration) -> _Scan:
    """Samples of one split folder, plus the relative paths of files that are not images."""
    scan = _Scan()
    owner_of_label: dict[str, Path] = {}
    folders, loose_files = walk.children(split_dir)
    # A dataset's own declaration file is part of the dataset's description, not a stray file.
    scan.non_images.extend(walk.rel(file) for file in loose_files if file != walk.root / DECLARATION_FILE)
    for child in folders:
        if declaration.skips_folder(child.name):
            continue
        label = _class_of(child, declaration)
        if label is None:
            walk.skip(child, f"no class of {declaration.name} (unmapped = \"skip\")")
            continue
        # Without a folder pattern, two folders of one class are two spellings of it in one
        # split (no_tumor/ and notumor/): surely a mistake. With a pattern, folders such as
        # "Astrocitoma T1" and "Astrocitoma T2" are meant to share a class.
        if declaration.folder_pattern is None and label in owner_of_label:
            raise DatasetError(
                f"folders {owner_of_label[label].name!r} and {child.name!r} in {split_dir} "
                f"both mean class {label!r}; merge or remove one"
            )
        owner_of_label.setdefault(label, child)
        index = declaration.labels.index(label)
        scan.class_folders.setdefault(index, []).append(walk.rel(child))
        for file in walk.files_below(child):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                scan.samples.append(Sample(file, walk.rel(file), index))
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


def _empty_classes(scans: list[_Scan], labels: LabelSet) -> tuple[str, ...]:
    """Classes that have a folder but no image in any split: warned about, then left out."""
    with_images = {s.label for scan in scans for s in scan.samples}
    empty = []
    for label in sorted({label for scan in scans for label in scan.class_folders}):
        if label not in with_images:
            folders = [rel for scan in scans for rel in scan.class_folders.get(label, [])]
            log.warning("class %r has no images (empty folder %s); it is left out of training and testing, "
                        "and its metrics will be missing", labels.names[label], " and ".join(folders))
            empty.append(labels.names[label])
    return tuple(empty)


def _discover_kaggle(root: Path, train_dir: Path, test_dir: Path, declaration: Declaration) -> DatasetIndex:
    walk = FolderWalk(root)
    scans = [_scan_class_folders(train_dir, walk, declaration), _scan_class_folders(test_dir, walk, declaration)]
    # One file reached from both splits (a link in Testing/ to a training image) counts once, in training.
    tagged = [("train", s) for s in scans[0].samples] + [("test", s) for s in scans[1].samples]
    kept = walk.once_each(tagged, lambda item: item[1].path)
    train = [s for split, s in kept if split == "train"]
    test = [s for split, s in kept if split == "test"]
    empty = _empty_classes(scans, declaration.labels) if kept else ()
    _check_official_split(train, test, root, declaration.labels)
    return DatasetIndex(root, "kaggle", tuple(train), tuple(test), declaration.labels, declaration,
                        tuple(scans[0].non_images + scans[1].non_images),
                        tuple(s.record() for s in walk.skipped), empty)


def _discover_flat(root: Path, declaration: Declaration) -> DatasetIndex:
    walk = FolderWalk(root)
    scan = _scan_class_folders(root, walk, declaration)
    samples = walk.once_each(scan.samples, lambda s: s.path)
    if not samples:
        raise DatasetError(
            f"dataset {root} contains no images (expected Training/ and Testing/ "
            "folders, or one folder per class)"
        )
    empty = _empty_classes([scan], declaration.labels)
    _check_two_classes(samples, root, declaration.labels, "images")
    return DatasetIndex(root, "flat", tuple(samples), (), declaration.labels, declaration, tuple(scan.non_images),
                        tuple(s.record() for s in walk.skipped), empty)


# --- checks ----------------------------------------------------------------------------------------


def _check_official_split(train: list[Sample], test: list[Sample], root: Path, labels: LabelSet) -> None:
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
            f"class {labels.names[label]!r} has images in the {present} split of {root} "
            f"but none in the {absent} split"
        )
    _check_two_classes(train, root, labels, "training images")


def _check_two_classes(samples: list[Sample], root: Path, labels: LabelSet, what: str) -> None:
    classes = {s.label for s in samples}
    if len(classes) < 2:
        only = labels.names[next(iter(classes))]
        raise DatasetError(f"only class {only!r} has {what} in {root}; a classifier needs at least two classes")


# --- a metadata table ------------------------------------------------------------------------------


def _discover_metadata(root: Path, declaration: Declaration) -> DatasetIndex:
    rows = read_metadata(root, declaration)
    table = printable(str(root / declaration.table))
    if not rows:
        raise DatasetError(f"{table} lists no images")
    samples = [Sample(row.path, row.rel, declaration.labels.index(row.label), row.group, row.fold, row.mask)
               for row in rows]
    present = {s.label for s in samples}
    empty = tuple(name for i, name in enumerate(declaration.labels.names) if i not in present)
    for name in empty:
        log.warning("class %r has no images in %s; it is left out of training and testing, and its metrics "
                    "will be missing", name, table)
    _check_two_classes(samples, root, declaration.labels, "images")
    return DatasetIndex(root, "metadata", tuple(samples), (), declaration.labels, declaration, empty_classes=empty)
