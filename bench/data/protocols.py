"""Split protocols: how a dataset's images become training and test sides, once or once per fold.

- `official`: the dataset's own split folders (Training/ and Testing/).
- `holdout`: one seeded, stratified test split of `test_fraction`; with groups, whole groups
  (patients, or duplicate groups found by the audit) go to one side.
- `kfold`: every image is tested once. The folds come from a fold column of the metadata
  (`fold_column = "cheng_fold"`, Cheng's published patient-wise folds) or are drawn
  (`folds = 5`), stratified and, with groups, group-wise.

`groups` names what must stay whole: a metadata column (`pid_family`), "duplicates" (the audit's
duplicate groups of near-identical pictures), or "none" (each image alone: a record-wise split,
which puts slices of one patient on both sides). Unset, it is the dataset's own group column.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from bench.errors import DatasetError

KINDS = ("official", "holdout", "kfold")
NO_GROUPS = "none"
DUPLICATE_GROUPS = "duplicates"
PROTOCOL_KEYS = {"name", "kind", "test_fraction", "folds", "fold_column", "groups", "seed", "description"}


@dataclass(frozen=True)
class ProtocolSpec:
    """One split protocol, as a dataset declaration, a suite or the command line names it."""

    name: str
    kind: str
    test_fraction: float = 0.2  # holdout only
    folds: int | None = None  # kfold drawn: how many folds
    fold_column: str | None = None  # kfold from the metadata: the column holding each image's fold
    groups: str | None = None  # a column, "duplicates", "none"; None: the dataset's group column
    seed: int = 0  # holdout and drawn folds
    description: str = ""

    def key(self) -> str:
        """What decides the split (the name and description do not)."""
        decisive = {k: v for k, v in asdict(self).items() if k not in ("name", "description")}
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:10]

    def record(self) -> dict:
        return asdict(self)


def parse_protocol(table: dict, where: str) -> ProtocolSpec:
    """A protocol from a TOML table; unknown keys, wrong types and impossible values are errors
    naming `where` (the file and table) and the value."""
    if not isinstance(table, dict):
        raise DatasetError(f"{where}: a protocol must be a table, got {table!r}")
    unknown = sorted(set(table) - PROTOCOL_KEYS)
    if unknown:
        raise DatasetError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(PROTOCOL_KEYS))})")
    kind = table.get("kind")
    if kind not in KINDS:
        raise DatasetError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    name = table.get("name", kind)
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise DatasetError(f"{where}: name must be letters, digits, '-', '_' or '.', got {name!r}")
    spec = ProtocolSpec(name=name, kind=kind,
                        test_fraction=_number(table, "test_fraction", 0.2, where),
                        folds=_integer(table, "folds", None, where),
                        fold_column=_string(table, "fold_column", where),
                        groups=_string(table, "groups", where),
                        seed=_integer(table, "seed", 0, where),
                        description=_string(table, "description", where) or "")
    _check_combination(spec, where)
    return spec


def _check_combination(spec: ProtocolSpec, where: str) -> None:
    if not 0.0 < spec.test_fraction < 1.0:
        raise DatasetError(f"{where}: test_fraction must be between 0 and 1, got {spec.test_fraction}")
    if spec.seed < 0:
        raise DatasetError(f"{where}: seed must be 0 or more, got {spec.seed}")
    if spec.kind == "kfold":
        if (spec.folds is None) == (spec.fold_column is None):
            raise DatasetError(f"{where}: a kfold protocol needs either folds = K or fold_column = \"...\", "
                               "not both")
        if spec.folds is not None and not 2 <= spec.folds <= 50:
            raise DatasetError(f"{where}: folds must be between 2 and 50, got {spec.folds}")
    elif spec.folds is not None or spec.fold_column is not None:
        raise DatasetError(f"{where}: folds and fold_column belong to kfold protocols, not {spec.kind}")
    if spec.kind == "official" and spec.groups not in (None, NO_GROUPS):
        raise DatasetError(f"{where}: the official protocol uses the dataset's own folders; groups do not apply")


def _number(table: dict, key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _integer(table: dict, key: str, default: int | None, where: str) -> int | None:
    value = table.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise DatasetError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def _string(table: dict, key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise DatasetError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value
