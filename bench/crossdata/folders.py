"""Find the labelled images of an external test folder, whatever its layout.

Every folder whose name is a class (any spelling the loader accepts, or yes/no, tumor/notumor)
labels the images below it; other folders (Training/, Testing/, a release name) are walked
through. All images found are test images: nothing here is ever trained on. Folders are walked by
the dataset's rules (`bench/data/entries.py`): regular files only, each once, and folder links are
never followed, so a link such as `up -> ..` can neither loop nor relabel images.

A set with a tumor/no-tumor folder pair is a two-class task: its glioma, meningioma and
pituitary images, if any, count as tumor, and a four-class prediction counts as tumor unless
it is notumor.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.data.discover import IMAGE_SUFFIXES, Sample
from bench.data.entries import FolderWalk
from bench.data.labels import CLASS_NAMES, EXTERNAL_CLASS_NAMES, NO_TUMOR, TUMOR, external_class_name
from bench.errors import DatasetError

BINARY_CLASSES = (TUMOR, NO_TUMOR)
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExternalSet:
    root: Path
    name: str  # column-name part: the folder's name, made safe
    samples: tuple[Sample, ...]  # label: index into EXTERNAL_CLASS_NAMES
    binary: bool  # scored as tumor vs notumor
    skipped_entries: tuple[dict, ...] = ()  # not regular files, folder links, repeats (warned about)

    @property
    def task(self) -> str:
        return "tumor vs notumor" if self.binary else "four-class"

    def class_counts(self) -> dict[str, int]:
        counts = Counter(EXTERNAL_CLASS_NAMES[s.label] for s in self.samples)
        return dict(sorted(counts.items()))

    def record(self) -> dict:
        return {"name": self.name, "path": str(self.root), "task": self.task, "n_images": len(self.samples),
                "images_per_folder_class": self.class_counts(),
                "n_unusable_entries_skipped": len(self.skipped_entries),
                "unusable_entries_skipped": list(self.skipped_entries)}


def _images(files: list[Path]) -> list[Path]:
    return [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]


def _collect(folder: Path, walk: FolderWalk, found: list[Sample]) -> None:
    folders, files = walk.children(folder)
    for child in folders:
        label = external_class_name(child.name)
        if label is None:
            _collect(child, walk, found)
            continue
        index = EXTERNAL_CLASS_NAMES.index(label)
        found.extend(Sample(path, walk.rel(path), index) for path in _images(walk.files_below(child)))
    if _images(files) and folder != walk.root:
        raise DatasetError(f"external set {walk.root}: folder {folder} holds images but its name is not a class "
                           f"(expected one of {', '.join(CLASS_NAMES)}, yes/no or tumor/notumor)")


def discover_external(root: Path | str) -> ExternalSet:
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"external dataset folder {root} does not exist or is not a folder")
    walk = FolderWalk(root)
    found: list[Sample] = []
    _collect(root, walk, found)
    samples = walk.once_each(found, lambda s: s.path)
    if not samples:
        raise DatasetError(f"external dataset {root} has no images in class folders (expected folders named "
                           f"{', '.join(CLASS_NAMES)}, or yes/no, tumor/notumor, at any depth)")
    binary = any(EXTERNAL_CLASS_NAMES[s.label] == TUMOR for s in samples)
    skipped = tuple(s.record() for s in walk.skipped)
    return ExternalSet(root, SAFE_NAME.sub("_", root.name), tuple(samples), binary, skipped)


def task_classes(binary: bool) -> tuple[str, ...]:
    return BINARY_CLASSES if binary else CLASS_NAMES


def task_labels(folder_labels, binary: bool) -> list[int]:
    """Folder labels (indices into EXTERNAL_CLASS_NAMES) as indices into task_classes(binary)."""
    if not binary:
        return [int(label) for label in folder_labels]
    no_tumor = EXTERNAL_CLASS_NAMES.index(NO_TUMOR)
    return [BINARY_CLASSES.index(NO_TUMOR) if label == no_tumor else BINARY_CLASSES.index(TUMOR)
            for label in folder_labels]


def task_predictions(four_class_preds, binary: bool) -> list[int]:
    """Four-class predictions mapped to the task: unchanged, or tumor unless notumor."""
    if not binary:
        return list(four_class_preds)
    no_tumor = CLASS_NAMES.index(NO_TUMOR)
    return [BINARY_CLASSES.index(NO_TUMOR) if p == no_tumor else BINARY_CLASSES.index(TUMOR)
            for p in four_class_preds]
