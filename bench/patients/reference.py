"""The reference collection: slices whose patient is known (figshare-cheng), read for matching.

A reference is any dataset brainbench can read whose declaration names a patient (group) column,
such as figshare-cheng's metadata.csv. Two optional columns of its table are read as well:
`pid_family` (ids of one person differing by a trailing letter; the pid where absent) and
`figshare_index` (how reports name a slice; the image's path where absent).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench.data.discover import DatasetIndex, discover
from bench.data.entries import printable
from bench.errors import DatasetError

FAMILY_COLUMN = "pid_family"
INDEX_COLUMN = "figshare_index"


@dataclass(frozen=True)
class Reference:
    index: DatasetIndex
    pid: dict[str, str]  # image rel -> patient id
    pid_family: dict[str, str]  # image rel -> patient family (the pid where the table has none)
    slice_id: dict[str, str]  # image rel -> the reference's own index of the slice (the rel where none)

    @property
    def root(self) -> Path:
        return self.index.root

    def columns_key(self) -> str:
        """12 hex digits of the family and slice-index columns, which the dataset fingerprint (files,
        classes, pids) does not cover: caches keyed by both change when either column is edited."""
        columns = json.dumps([sorted(self.pid_family.items()), sorted(self.slice_id.items())])
        return hashlib.sha256(columns.encode()).hexdigest()[:12]


def read_reference(root: Path | str) -> Reference:
    """The reference at `root`; DatasetError (one line naming the folder) when it is missing or
    its images carry no patient id."""
    index = discover(root)
    declaration = index.declaration
    if declaration.group_column is None or any(sample.group is None for sample in index.samples):
        raise DatasetError(f"reference {printable(str(index.root))} has no patient ids: its declaration "
                           f"{declaration.name!r} names no group column (use a dataset such as figshare-cheng, "
                           "whose metadata table has a pid column)")
    extra = _extra_columns(index)
    pid = {s.rel: s.group for s in index.samples}
    family = {rel: extra.get(rel, {}).get(FAMILY_COLUMN) or p for rel, p in pid.items()}
    slice_id = {rel: extra.get(rel, {}).get(INDEX_COLUMN) or rel for rel in pid}
    return Reference(index, pid, family, slice_id)


def _extra_columns(index: DatasetIndex) -> dict[str, dict[str, str]]:
    """rel -> {family, index} cells of the metadata table (discovery has already checked the table
    and its paths; this reads two more columns of the same rows)."""
    declaration = index.declaration
    table = index.root / declaration.table
    with open(table, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    cells = {}
    for row in rows:
        parts = [p for p in PurePosixPath((row.get(declaration.path_column) or "").strip()).parts if p != "."]
        cells["/".join(parts)] = {column: (row.get(column) or "").strip() for column in (FAMILY_COLUMN, INDEX_COLUMN)}
    return cells
