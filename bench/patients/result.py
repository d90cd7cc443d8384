"""What patient recovery finds: one row per image, each official test image's nearest training
image, and how the thresholds were chosen. Plain data, so that cache.py can store it as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.patients.groups import Grouping
from bench.patients.recover import Gap


@dataclass(frozen=True)
class PatientRow:
    """One image of the dataset; the reference and patient columns are empty when kind is none."""
    file: str
    split: str  # "train" or "test"
    label: str
    sha256: str
    similarity: float  # to the nearest reference slice, in `orientation`
    orientation: str
    kind: str  # the audit's kinds: exact, identical-pixels, flipped, near, none
    reference_file: str
    reference_index: str
    reference_label: str
    pid: str
    pid_family: str
    group: str  # "patient:<pid_family>", or "dup:<n>" for a near-duplicate group of unmatched images

    @property
    def matched(self) -> bool:
        return self.kind != "none"


@dataclass(frozen=True)
class TestNeighbour:
    """An official test image and its nearest training image (the 1-nearest-neighbour of knn.pixels)."""
    file: str
    similarity: float
    train_file: str
    same_label: bool


@dataclass
class PatientAnalysis:
    data_root: str
    data_fingerprint: str
    reference_root: str
    reference_fingerprint: str
    class_names: tuple[str, ...]  # the dataset's
    n_reference_slices: int  # readable ones
    n_reference_patients: int
    n_reference_families: int
    threshold: float
    threshold_source: str  # "gap" (chosen from the histogram) or "--threshold"
    gap: Gap
    rows: list[PatientRow]
    neighbours: list[TestNeighbour]  # one per official test image
    grouping: Grouping  # of the unmatched images, in row order
    skipped: list[str] = field(default_factory=list)  # unreadable images, left out
    seconds: dict[str, float] = field(default_factory=dict)
    from_cache: bool = False

    def by_file(self) -> dict[str, PatientRow]:
        return {row.file: row for row in self.rows}
