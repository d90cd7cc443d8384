"""Find the labelled images of an external test folder, whatever its layout, in a model's classes.

A folder with its own dataset declaration (a `brainbench-dataset.toml`, or one a shipped
declaration recognises) is read by that declaration: see `declared.py`. Any other folder is read
by its folder names: every folder whose name is one of the model's classes (any spelling its
label set accepts) or yes/no, tumor/notumor labels the images below it; other folders
(Training/, Testing/, a release name) are walked through. All images found are test images:
nothing here is ever trained on. Folders are walked by the dataset's rules
(`bench/data/entries.py`): regular files only, each once, and folder links are never followed, so
a link such as `up -> ..` can neither loop nor relabel images.

A set with a tumor (yes) folder is a two-class task: its folders named after the model's classes,
if any, count as tumor unless that class is the model's no-tumour class, and a prediction counts
as tumor unless it is that class. Otherwise the set is scored in the model's own classes; a
no-tumour folder (no, normal, ...) stands for the model's no-tumour class.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.crossdata.declared import declared_external, external_declaration
from bench.crossdata.external_set import NOTUMOR, ExternalSet, binary_task, multiclass_task
from bench.data.discover import IMAGE_SUFFIXES, Sample
from bench.data.entries import FolderWalk
from bench.data.labels import TUMOR, LabelSet, binary_word
from bench.errors import DatasetError

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class FolderMeaning:
    """What a class folder's name means: one of the model's classes, or a yes/no word."""

    name: str  # a class of the model's label set, or TUMOR / NOTUMOR
    word: bool  # a yes/no word (binary_word), not a class name


def folder_meaning(folder_name: str, model_labels: LabelSet) -> FolderMeaning | None:
    """The model's class a folder is named after, else its yes/no meaning, else None (walk through)."""
    found = model_labels.lookup(folder_name)
    if found is not None:
        return FolderMeaning(found, word=False)
    word = binary_word(folder_name)
    return FolderMeaning(word, word=True) if word is not None else None


def _images(files: list[Path]) -> list[Path]:
    return [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]


def _collect(folder: Path, walk: FolderWalk, model_labels: LabelSet,
             found: list[tuple[Sample, FolderMeaning]]) -> None:
    folders, files = walk.children(folder)
    for child in folders:
        meaning = folder_meaning(child.name, model_labels)
        if meaning is None:
            _collect(child, walk, model_labels, found)
            continue
        found.extend((Sample(path, walk.rel(path), -1), meaning) for path in _images(walk.files_below(child)))
    if _images(files) and folder != walk.root:
        raise DatasetError(f"external set {walk.root}: folder {folder} holds images but its name is not a class "
                           f"(expected one of {', '.join(model_labels.names)}, yes/no or tumor/notumor)")


def _binary_label(meaning: FolderMeaning, model_labels: LabelSet) -> str:
    normal = (meaning.word and meaning.name == NOTUMOR) or (not meaning.word and meaning.name == model_labels.no_tumor)
    return NOTUMOR if normal else TUMOR


def _multiclass_label(meaning: FolderMeaning, model_labels: LabelSet) -> str | None:
    """The model's class; a no-tumour word means the model's no-tumour class (None if it has none)."""
    return model_labels.no_tumor if meaning.word else meaning.name


def _folder_set(root: Path, walk: FolderWalk, found: list[tuple[Sample, FolderMeaning]],
                model_labels: LabelSet) -> ExternalSet:
    """The set scored on the task its folders name: tumor vs notumor when a tumor folder is among
    them, else the model's classes (folders whose meaning the model lacks left out and counted)."""
    binary = any(m.word and m.name == TUMOR for _, m in found)
    if binary:
        classes, prediction_map, unscorable = binary_task(model_labels)
        labelled = [(s, m, _binary_label(m, model_labels)) for s, m in found]
    else:
        (classes, prediction_map), unscorable = multiclass_task(model_labels), None
        labelled = [(s, m, _multiclass_label(m, model_labels)) for s, m in found]
    samples = [Sample(s.path, s.rel, classes.index(label)) for s, _, label in labelled if label is not None]
    left_out = Counter(m.name for _, m, label in labelled if label is None)
    return ExternalSet(root, SAFE_NAME.sub("_", root.name), tuple(samples), classes, prediction_map,
                       labels_from="class folder names", set_counts=dict(Counter(m.name for _, m in found)),
                       not_in_task=dict(left_out), unscorable=unscorable,
                       skipped_entries=tuple(s.record() for s in walk.skipped))


def discover_external(root: Path | str, model_labels: LabelSet) -> ExternalSet:
    """An external set's images labelled in the task of a model of `model_labels` (the label set
    of the dataset the run trains on)."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"external dataset folder {root} does not exist or is not a folder")
    declaration = external_declaration(root)
    if declaration is not None:
        return declared_external(root, declaration, model_labels, SAFE_NAME.sub("_", root.name))
    walk = FolderWalk(root)
    found: list[tuple[Sample, FolderMeaning]] = []
    _collect(root, walk, model_labels, found)
    kept = walk.once_each(found, lambda item: item[0].path)
    if not kept:
        raise DatasetError(f"external dataset {root} has no images in class folders (expected folders named "
                           f"{', '.join(model_labels.names)}, or yes/no, tumor/notumor, at any depth)")
    return _folder_set(root, walk, kept, model_labels)
