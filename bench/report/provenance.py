"""The "where these numbers come from" block at the top of a leaderboard."""

from __future__ import annotations

import json

from tabulate import tabulate

from bench.report.fmt import cell, missing

# (key, label) in reading order; any other key the runner records follows under its own name,
# so a field added to the environment later is shown without touching this file.
ENVIRONMENT_FIELDS = (
    ("torch", "torch"), ("cuda", "CUDA"), ("cudnn", "cuDNN"), ("python", "Python"),
    ("device", "device"), ("device_name", "device name"), ("cpu", "CPU"),
    ("git_revision", "git revision"), ("date", "date"),
)
DATASET_FIELDS = (
    ("path", "dataset path"), ("fingerprint", "dataset fingerprint"), ("layout", "dataset layout"),
    ("n_train_images", "train images"), ("n_test_images", "test images"),
    ("n_unreadable_skipped", "unreadable images skipped"),
    ("n_unusable_entries_skipped", "unusable entries skipped"),  # folder links, FIFOs, broken links, repeats
    ("empty_classes", "classes with empty folders"),
)


def provenance_markdown(results: dict) -> str:
    """A two-column table: suite file, machine, software, source revision, dataset."""
    suite = results.get("suite") or {}
    pairs = [("suite", suite.get("name")), ("suite file", suite.get("file")),
             ("suite file sha256", suite.get("file_sha256")),
             ("machine tag", results.get("machine_tag"))]
    pairs += _labelled(results.get("environment") or {}, ENVIRONMENT_FIELDS)
    pairs += _row_origins(results.get("rows") or [])
    pairs += _labelled(results.get("dataset") or {}, DATASET_FIELDS, extra_prefix="dataset ")
    rows = [(label, cell(_value_text(key_label=label, value=value))) for label, value in pairs]
    return tabulate(rows, headers=["field", "value"], tablefmt="github")


def _row_origins(rows: list[dict]) -> list[tuple[str, object]]:
    """When and at which revision the rows were computed: a resumed run reuses rows of earlier
    runs, so the environment above (the latest run's) is not necessarily where a number came from."""
    revisions = sorted({str(r["git_revision"]) for r in rows if r.get("git_revision")})
    dates = sorted(str(r["date"]) for r in rows if r.get("date"))
    if not revisions and not dates:
        return []
    span = f"{dates[0]} to {dates[-1]}" if dates and dates[0] != dates[-1] else (dates[0] if dates else None)
    return [("rows computed at revision", ", ".join(revisions) or None), ("rows computed by run(s) started", span)]


def _labelled(block: dict, fields, extra_prefix: str = "") -> list[tuple[str, object]]:
    known = [key for key, _ in fields]
    pairs = [(label, block.get(key)) for key, label in fields]
    pairs += [(extra_prefix + key, block[key]) for key in sorted(block) if key not in known]
    return pairs


def _value_text(key_label: str, value) -> str:
    if missing(value):
        # CUDA absent is a fact about the machine, not a gap in the record.
        return "none" if key_label == "CUDA" else "unknown"
    if key_label == "git revision" and str(value).endswith("+dirty"):
        return f"{value} (uncommitted changes: numbers may not match this revision)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
