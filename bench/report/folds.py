"""Cross-validation summaries: the folds of one model under one kfold protocol, as one row.

A kfold protocol trains one model per fold; each fold row scores its own test fold. The summary
row of a group (zoo entry, setting, seed, protocol) carries two views of those folds:
- `cv_acc_mean` / `cv_acc_std`: mean and sample standard deviation (ddof=1) of the fold
  accuracies, over the folds that finished. The std says how much the score moves with the split.
- `pooled_*`: every metric of the out-of-fold predictions of all folds together (each image is
  tested exactly once), with bootstrap intervals over those images, from the folds'
  test_predictions.csv and the same metric function the runner uses for one test split.

A group with a failed or missing fold is `complete = False` and says which folds are lacking;
its mean covers the finished folds only and the tables say so ("3 of 5 folds").
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.errors import BrainbenchError
from bench.evaluate.metrics import classification_metrics
from bench.report.fmt import missing
from bench.report.rows import SUMMARY_KIND, entry_dir, is_ok

PREDICTIONS_CSV = "test_predictions.csv"
FOLD_KIND = "fold"
# Columns a fold row measured on its own model that are the same model in every fold (size, speed):
# the summary shows their median over the finished folds.
PER_MODEL_PREFIXES = ("params", "gmacs", "size_mb", "latency_ms_", "throughput_ips_", "throughput_batch_",
                      "compile_s_", "agreement_", "max_abs_diff_", "input_size", "in_channels")
_FOLD_IN_ENTRY = re.compile(r"[,@]?fold=\d+")


def group_key(row: dict) -> tuple[str, str, object, str]:
    """(zoo entry, setting, seed, protocol): what one summary row stands for."""
    return (row.get("zoo_entry") or row["entry"], row.get("setting") or "", row.get("seed"),
            row.get("protocol") or "")


def summarize_folds(fold_rows: list[dict], out_dir: Path, classes: tuple[str, ...], protocol: dict | None = None,
                    no_tumor: str | None = None) -> list[dict]:
    """One summary row per group of kfold rows, in first-seen order (rank them with rank_summaries).
    no_tumor: the dataset's no-tumour class (None: it has none), for the pooled tumour-missed rate."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in fold_rows:
        groups[group_key(row)].append(row)
    return [fold_summary(members, out_dir, classes, protocol, no_tumor) for members in groups.values()]


def fold_summary(members: list[dict], out_dir: Path, classes: tuple[str, ...], protocol: dict | None = None,
                 no_tumor: str | None = None) -> dict:
    """The summary row of one group's fold rows (see the module docstring)."""
    first = members[0]
    n_folds = _n_folds(members, protocol)
    by_fold = {int(r["fold"]): r for r in members if not missing(r.get("fold"))}
    done = [by_fold[k] for k in sorted(by_fold) if is_ok(by_fold[k])]
    lacking = [f"fold {k} {'absent' if k not in by_fold else by_fold[k].get('status', 'not ok')}"
               for k in range(1, n_folds + 1) if k not in by_fold or not is_ok(by_fold[k])]
    summary = {"entry": summary_entry_name(members), "row_kind": SUMMARY_KIND,
               "zoo_entry": first.get("zoo_entry") or first["entry"], "setting": first.get("setting"),
               "seed": first.get("seed"), "protocol": first.get("protocol"), "protocol_kind": "kfold",
               "fold": None, "n_folds": n_folds, "folds_done": len(done),
               "complete": not lacking and len(done) == n_folds,
               "folds_note": "; ".join(lacking) or None,
               "fold_entries": [r["entry"] for r in sorted(members, key=_fold_number)],
               "fold_accs": [by_fold[k].get("test_acc") if k in by_fold and is_ok(by_fold[k]) else None
                             for k in range(1, n_folds + 1)]}
    for key in ("arch", "variant", "recipe_hash", "split"):
        if key in first:
            summary[key] = first[key]
    if not done:
        summary.update(status="failed", error=f"none of the {n_folds} folds finished ({summary['folds_note']})")
        return summary
    summary["status"] = "ok"
    for name in ("acc", "macro_f1"):
        summary[f"cv_{name}_mean"], summary[f"cv_{name}_std"] = mean_std([r.get(f"test_{name}") for r in done])
    summary["train_seconds"] = _sum([r.get("train_seconds") for r in done])
    summary["loaded_from_store"] = any(r.get("loaded_from_store") for r in done)
    summary.update(_per_model_medians(done))
    try:
        labels, probs = pooled_predictions(done, out_dir, classes)
        metrics = classification_metrics(labels, probs, classes, no_tumor=no_tumor)
    except (BrainbenchError, ValueError) as error:  # ValueError: probabilities that are not softmax rows
        # One unreadable fold must not take the report down; the tables print this note instead.
        summary["pooled_note"] = str(error)
        return summary
    summary.update({f"pooled_{key}": value for key, value in metrics.items()})
    return summary


def summary_entry_name(members: list[dict]) -> str:
    """The group's name: the runner's `cv_group` (the run id without the fold), else the first fold's
    entry without its fold part ("resnet18.scratch@patient-wise,fold=2" -> "resnet18.scratch@patient-wise"),
    else one built from the group key."""
    group = next((r["cv_group"] for r in members if isinstance(r.get("cv_group"), str) and r["cv_group"]), None)
    if group:
        return group
    first = members[0]
    name = _FOLD_IN_ENTRY.sub("", first["entry"]).rstrip("@,")
    if name != first["entry"] and name:
        return name
    zoo_entry, setting, seed, protocol = group_key(first)
    extras = [setting] if setting else []
    extras += [f"seed={seed}"] if seed is not None else []
    return f"{zoo_entry}@" + ",".join(extras + [protocol or "kfold"])


def mean_std(values: list) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the defined values; NaN where undefined
    (no value; a single value has no spread)."""
    values = [float(v) for v in values if not missing(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def pooled_predictions(fold_rows: list[dict], out_dir: Path,
                       classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Labels (N,) and probabilities (N, K) of the folds' test predictions, concatenated in fold
    order. A missing file, a missing column, an unknown class or an image tested by two folds
    (the folds would then not partition the images) is a BrainbenchError naming it."""
    labels, probs, seen = [], [], {}
    for row in sorted(fold_rows, key=_fold_number):
        path = entry_dir(Path(out_dir), row["entry"]) / PREDICTIONS_CSV
        for image, label, p in read_predictions(path, classes):
            if image in seen:
                raise BrainbenchError(f"pooled metrics not computed: {image} is tested by both {seen[image]} and "
                                      f"{row['entry']}, so the folds do not partition the images")
            seen[image] = row["entry"]
            labels.append(label)
            probs.append(p)
    if not labels:
        raise BrainbenchError("pooled metrics not computed: the folds' prediction files hold no image")
    return np.asarray(labels, dtype=np.int64), np.asarray(probs, dtype=np.float64)


def read_predictions(path: Path, classes: tuple[str, ...]):
    """(path, class index, probabilities) per line of one test_predictions.csv."""
    if not path.is_file():
        raise BrainbenchError(f"pooled metrics not computed: {path} is missing")
    index = {name: i for i, name in enumerate(classes)}
    columns = ["path", "label"] + [f"p_{c}" for c in classes]
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            absent = [c for c in columns if c not in (reader.fieldnames or [])]
            if absent:
                raise BrainbenchError(f"pooled metrics not computed: {path} has no column {absent[0]!r}")
            lines = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise BrainbenchError(f"pooled metrics not computed: cannot read {path}: {error}") from error
    for number, line in enumerate(lines, start=2):
        if line["label"] not in index:
            raise BrainbenchError(f"pooled metrics not computed: {path} line {number} has label "
                                  f"{line['label']!r}, not one of {list(classes)}")
        try:
            p = [float(line[f"p_{c}"]) for c in classes]
        except (TypeError, ValueError) as error:
            raise BrainbenchError(f"pooled metrics not computed: {path} line {number}: {error}") from error
        yield line["path"], index[line["label"]], p


def rank_summaries(summaries: list[dict]) -> list[dict]:
    """Complete summaries by mean fold accuracy, best first; then incomplete ones (the same way);
    then groups where no fold finished. Ties go by entry name."""
    def key(row: dict):
        acc = row.get("cv_acc_mean")
        tier = 0 if row.get("complete") else 1 if is_ok(row) else 2
        return (tier, 0.0 if missing(acc) else -acc, row["entry"])
    return sorted(summaries, key=key)


def fold_count_text(summary: dict) -> str:
    """"5" for a complete group, "3 of 5 (incomplete: fold 4 failed; fold 5 absent)" otherwise."""
    if summary.get("complete"):
        return str(summary["n_folds"])
    return f"{summary.get('folds_done', 0)} of {summary['n_folds']} (incomplete: {summary.get('folds_note')})"


def _n_folds(members: list[dict], protocol: dict | None) -> int:
    # The rows know how many folds they belong to; a fold_column protocol's record does not say.
    counts = [int(r["n_folds"]) for r in members if not missing(r.get("n_folds"))]
    declared = (protocol or {}).get("folds")
    numbers = [int(r["fold"]) for r in members if not missing(r.get("fold"))]
    return max(counts + ([int(declared)] if not missing(declared) else []) + numbers + [len(members)])


def _fold_number(row: dict) -> int:
    return int(row["fold"]) if not missing(row.get("fold")) else 0


def _sum(values: list) -> float | None:
    values = [v for v in values if not missing(v)]
    return float(sum(values)) if values else None


def _per_model_medians(done: list[dict]) -> dict:
    keys = {k for r in done for k in r if k.startswith(PER_MODEL_PREFIXES)}
    medians = {}
    for key in sorted(keys):
        values = [r[key] for r in done if isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool)
                  and not missing(r[key])]
        if values:
            medians[key] = statistics.median(values)
    # Why a mode has no number is the same for every fold's model: the first fold's note stands for all.
    medians.update({k: v for k, v in done[0].items() if k.startswith("latency_note_")})
    return medians
