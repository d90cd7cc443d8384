"""The split protocols a results file was run under, and the rows each protocol's tables show.

results["protocols"] lists the protocol records in the order the suite ran them; the first is the
ranking protocol. Results written before protocols existed have none: all their rows are one
"official" protocol (the dataset's own train/test folders).
"""

from __future__ import annotations

from pathlib import Path

from bench.report.fmt import missing, pct
from bench.report.folds import rank_summaries, summarize_folds
from bench.report.rows import class_names, no_tumor_class, rank_key, ranked

LEGACY_PROTOCOL = {"name": "official", "kind": "official", "test_fraction": None, "folds": None,
                   "fold_column": None, "groups": None, "seed": None,
                   "description": "the dataset's own train and test folders"}


def protocol_records(results: dict) -> list[dict]:
    """The declared protocols in run order; a protocol a row names but the list lacks is added
    after them (its rows must show somewhere), with the kind the row gives."""
    records = [dict(p) for p in results.get("protocols") or [] if isinstance(p, dict) and p.get("name")]
    if not records:
        records = [dict(LEGACY_PROTOCOL)]
    known = {p["name"] for p in records}
    for row in results.get("rows") or []:
        name = row.get("protocol")
        if name and name not in known:
            records.append({"name": name, "kind": row.get("protocol_kind") or "official", "description": ""})
            known.add(name)
    return records


def row_protocol(row: dict, records: list[dict]) -> str:
    """The protocol a row ran under; a row without one (an older results file) is the first's."""
    return row.get("protocol") or records[0]["name"]


def protocol_views(results: dict, out_dir: Path) -> dict[str, list[dict]]:
    """Per protocol name, in run order: the rows its tables show, ranked. A kfold protocol shows one
    summary row per group of folds (bench/report/folds.py); the others show their rows as they are."""
    records = protocol_records(results)
    classes, no_tumor = class_names(results), no_tumor_class(results)
    views = {}
    for record in records:
        rows = [r for r in results["rows"] if row_protocol(r, records) == record["name"]]
        if record.get("kind") == "kfold":
            views[record["name"]] = rank_summaries(summarize_folds(rows, out_dir, classes, record, no_tumor))
        else:
            # The clean split re-ranks the official test split; a holdout split has no clean subset.
            key = rank_key(results) if record.get("kind") == "official" else "test_acc"
            views[record["name"]] = ranked(rows, key)
    return views


def main_view(results: dict, out_dir: Path) -> list[dict]:
    """The ranking protocol's rows: what the main table, the latency tables and the plots show."""
    return protocol_views(results, out_dir)[protocol_records(results)[0]["name"]]


def protocol_title(record: dict) -> str:
    """A protocol in a few words: "`patient-wise`: 5-fold cross-validation, keeps `pid` groups whole"."""
    kind = record.get("kind")
    if kind == "official":
        return "official test split"
    if kind == "kfold":
        if not missing(record.get("folds")):
            how = f"{int(record['folds'])}-fold cross-validation"
        elif record.get("fold_column"):
            how = f"cross-validation over the folds of column `{record['fold_column']}`"
        else:
            how = "cross-validation"
    else:
        fraction = record.get("test_fraction")
        how = "holdout split" + ("" if missing(fraction) else f" ({pct(fraction, 0)} % test)")
    return f"`{record['name']}`: {how}, {grouping_text(record)}"


def grouping_text(record: dict) -> str:
    """What a protocol keeps on one side of the split, from its `groups` field."""
    if record.get("kind") == "official":
        return "as the dataset's authors split it"
    groups = record.get("groups")
    if groups is None:
        return "keeps the dataset's own groups whole"
    if groups == "none":
        return "image by image (record-wise: images of one patient can fall on both sides)"
    if groups == "duplicates":
        return "keeps duplicate groups (near-identical images) whole"
    return f"keeps `{groups}` groups whole"


def is_kfold(record: dict) -> bool:
    return record.get("kind") == "kfold"
