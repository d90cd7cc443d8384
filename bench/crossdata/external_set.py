"""An external test set as scored against one model: its images, each labelled with a class of the
scoring task, and how the model's predictions map onto that task.

Two tasks exist. Multi-class: the task's classes are the model's own (its label set's names), so
a prediction is used as it is; images whose class the model does not have were left out before
this point and are only counted (`not_in_task`). Tumor vs notumor (a yes/no set): the model's
no-tumour class is "notumor" and every other class "tumor"; a model without a no-tumour class
cannot be scored on it, and the set says so (`unscorable`) instead of giving numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.discover import Sample
from bench.data.labels import TUMOR, LabelSet

NOTUMOR = "notumor"  # the binary task's second class, whatever the model calls its no-tumour class
BINARY_CLASSES = (TUMOR, NOTUMOR)
NO_NO_TUMOR_CLASS = "n/a: the model has no no-tumour class"
_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}


@dataclass(frozen=True)
class ExternalSet:
    root: Path
    name: str  # column-name part: the folder's name, made safe
    samples: tuple[Sample, ...]  # the images scored; label: index into `classes`
    classes: tuple[str, ...]  # the task's classes: the model's, or BINARY_CLASSES
    prediction_map: tuple[int, ...]  # model output column -> index into `classes`
    labels_from: str  # how the images got their task labels, for the record
    set_counts: dict[str, int]  # images per class as the set names it (folder meaning or declared class)
    not_in_task: dict[str, int] = field(default_factory=dict)  # set classes the model lacks: images left out
    unscorable: str | None = None  # why no metric can be given (the model has no no-tumour class)
    skipped_entries: tuple[dict, ...] = ()  # not regular files, folder links, repeats (warned about)

    @property
    def binary(self) -> bool:
        return self.classes == BINARY_CLASSES

    @property
    def task(self) -> str:
        if self.binary:
            return "tumor vs notumor"
        return f"{_COUNT_WORDS.get(len(self.classes), len(self.classes))}-class"

    def class_counts(self) -> dict[str, int]:
        """Images per class as the set names them (the left-out ones included)."""
        return dict(sorted(self.set_counts.items()))

    def task_predictions(self, model_preds: Sequence[int]) -> list[int]:
        """The model's predicted columns as indices into `classes`."""
        return [self.prediction_map[int(p)] for p in model_preds]

    def record(self) -> dict:
        return {"name": self.name, "path": str(self.root), "task": self.task, "binary": self.binary,
                "classes": list(self.classes), "labels_from": self.labels_from, "n_images": len(self.samples),
                "images_per_folder_class": self.class_counts(),
                "n_not_in_task": sum(self.not_in_task.values()), "classes_not_in_task": sorted(self.not_in_task),
                "scored": self.unscorable or "yes",
                "n_unusable_entries_skipped": len(self.skipped_entries),
                "unusable_entries_skipped": list(self.skipped_entries)}


def multiclass_task(model_labels: LabelSet) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(classes, prediction_map) of a set scored in the model's own classes."""
    return model_labels.names, tuple(range(len(model_labels)))


def binary_task(model_labels: LabelSet) -> tuple[tuple[str, ...], tuple[int, ...], str | None]:
    """(classes, prediction_map, unscorable) of a tumor vs notumor set: any prediction but the
    model's no-tumour class is "tumor". Without such a class every prediction would be "tumor"."""
    if model_labels.no_tumor is None:
        return BINARY_CLASSES, (BINARY_CLASSES.index(TUMOR),) * len(model_labels), NO_NO_TUMOR_CLASS
    normal = model_labels.index(model_labels.no_tumor)
    column = [BINARY_CLASSES.index(NOTUMOR if i == normal else TUMOR) for i in range(len(model_labels))]
    return BINARY_CLASSES, tuple(column), None
