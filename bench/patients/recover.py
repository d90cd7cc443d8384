"""Match every image of a dataset against the reference slices, and choose the match threshold.

The matching is the audit's (bench/audit): nearest reference picture over four orientations,
Pearson correlation of 32 px pooled grey pictures (unchanged by contrast, little changed by
resizing and JPEG), and the audit's kinds of match. It is run once at a threshold just above 0,
so every image keeps its nearest reference slice and the kind it would have as a match; the
threshold, chosen from the similarities themselves, then turns the weak ones into `none`.

Threshold: the nearest-reference similarities of images that are a reference slice sit near 1;
those of images from other sources stay well below. Between the two lies an empty interval of
the histogram; the threshold is its midpoint. It is searched above MATCH_FLOOR only: below 0.90
two pictures are different slices to the eye (bench/leakage/bands.py), never the same one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.audit.audit import Match, nearest_training_images
from bench.audit.load import AuditSplit
from bench.data.labels import LabelSet

MATCH_FLOOR = 0.90
# nearest_training_images demotes similarities below its threshold to "none"; just above 0 it
# keeps every real neighbour's kind (a blank picture has similarity 0 and stays "none").
KEEP_EVERY_NEIGHBOUR = float(np.nextafter(np.float32(0), np.float32(1)))


@dataclass(frozen=True)
class Gap:
    """The widest empty interval of nearest-reference similarities at or above the floor."""
    low: float  # highest similarity below the gap (the floor itself when nothing lies between)
    high: float  # lowest similarity above it
    n_below: int  # images at or below `low`
    n_above: int  # images at or above `high`

    @property
    def threshold(self) -> float:
        return round((self.low + self.high) / 2, 4)

    @property
    def width(self) -> float:
        return self.high - self.low


def similarity_gap(similarities: np.ndarray, floor: float = MATCH_FLOOR) -> Gap:
    """The widest gap between consecutive similarities in [floor, 1]; everything under the floor
    counts as the floor (those images are below any gap). With nothing above the floor, the gap
    runs from the floor to 1."""
    values = np.asarray(similarities, np.float64)
    ladder = np.unique(np.concatenate([[floor], values[values >= floor]]))
    if len(ladder) < 2:
        return Gap(floor, 1.0, len(values), 0)
    step = int(np.argmax(np.diff(ladder)))
    low, high = float(ladder[step]), float(ladder[step + 1])
    return Gap(low, high, int((values <= low).sum()), int((values >= high).sum()))


def combined_classes(dataset: LabelSet, reference: LabelSet) -> tuple[tuple[str, ...], np.ndarray]:
    """One name list for both label sets, and where each reference class sits in it.

    The dataset's classes first (its labels index them unchanged); a reference class is the
    dataset class of the same spelling (glioma_tumor is glioma), else appended, so a label
    disagreement is a difference of names."""
    names = list(dataset.names)
    position = []
    for name in reference.names:
        same = dataset.lookup(name)
        if same is None and name not in names:
            names.append(name)
        position.append(names.index(same if same is not None else name))
    return tuple(names), np.asarray(position, np.int64)


def nearest_reference(images: AuditSplit, reference: AuditSplit, names: Sequence[str],
                      reference_position: np.ndarray) -> list[Match]:
    """Each image (a) with its nearest reference slice (b) and the kind it would be as a match;
    `names` and `reference_position` from combined_classes."""
    relabelled = dataclasses.replace(reference, labels=reference_position[reference.labels])
    return nearest_training_images(images, relabelled, KEEP_EVERY_NEIGHBOUR, names)


def at_threshold(match: Match, threshold: float) -> Match:
    """The audit's kind at `threshold`: same bytes stay exact, anything weaker than it is none."""
    if match.kind in ("exact", "none") or match.similarity >= threshold:
        return match
    return dataclasses.replace(match, kind="none")
