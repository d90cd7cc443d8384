"""The "Protocols side by side" section: one model per line, one column per protocol, and the
difference between the second and the first protocol; then published results on the dataset."""

from __future__ import annotations

from bench.report.fmt import NA, cell, missing, pct, pct_interval
from bench.report.folds import group_key
from bench.report.protocols import grouping_text, is_kfold, protocol_title
from bench.report.rows import SUMMARY_KIND, is_ok


def side_by_side_table(views: dict[str, list[dict]],
                       records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Lines in the ranking protocol's order, then models only other protocols ran."""
    first, second = records[0]["name"], records[1]["name"]
    by_model: dict[tuple, dict[str, dict]] = {}
    for record in records:
        for row in views[record["name"]]:
            by_model.setdefault(_model_key(row), {})[record["name"]] = row
    headers = ["entry", "setting", "seed"] + [f"{r['name']} acc (%)" for r in records]
    headers.append(f"{second} − {first} (points)")
    body = []
    for (entry, setting, seed), cells in by_model.items():
        line = [entry, setting or "–", "–" if seed is None else str(seed)]
        line += [protocol_cell(cells.get(r["name"])) for r in records]
        line.append(difference_cell(cells.get(first), cells.get(second)))
        body.append(line)
    return headers, body


def protocol_cell(row: dict | None) -> str:
    """"93.1 ± 1.2 (pooled 93.0 [92.1, 93.9])" for a kfold summary, "93.1 [92.0, 94.1]" otherwise."""
    if row is None:
        return "–"
    if not is_ok(row):
        return "not run"
    if row.get("row_kind") != SUMMARY_KIND:
        return pct_interval(row.get("test_acc"), row.get("test_acc_ci95")).replace(" %", "")
    std = row.get("cv_acc_std")
    text = f"{pct(row.get('cv_acc_mean'))} ± {NA if missing(std) else pct(std)}"
    if not missing(row.get("pooled_acc")):
        text += f" (pooled {pct_interval(row['pooled_acc'], row.get('pooled_acc_ci95')).replace(' %', '')})"
    if not row.get("complete"):
        text += f", {row.get('folds_done', 0)} of {row['n_folds']} folds"
    return text


def headline_accuracy(row: dict | None):
    """The accuracy a protocol ranks by: mean over folds for a kfold summary, else test accuracy."""
    if row is None or not is_ok(row):
        return None
    return row.get("cv_acc_mean") if row.get("row_kind") == SUMMARY_KIND else row.get("test_acc")


def difference_cell(first: dict | None, second: dict | None) -> str:
    a, b = headline_accuracy(first), headline_accuracy(second)
    if missing(a) or missing(b):
        return NA
    text = f"{100 * (b - a):+.1f}"
    incomplete = [r for r in (first, second) if r.get("row_kind") == SUMMARY_KIND and not r.get("complete")]
    if incomplete:
        # A mean over some folds is not the protocol's number: the difference must not pass for one.
        text += " (incomplete: " + "; ".join(f"{r['protocol']} {r.get('folds_done', 0)} of {r['n_folds']} folds"
                                         for r in incomplete) + ")"
    return text


def side_by_side_note(records: list[dict]) -> str:
    """What each column is and what the difference column measures, from the protocol records."""
    lines = ["The same models under each split protocol, in the order the suite ran them. A kfold cell is "
             "the mean ± sample standard deviation of the fold accuracies, then the accuracy of the pooled "
             "out-of-fold predictions with its bootstrap 95 % interval over images; other cells are the "
             "accuracy on the protocol's test split with its interval.", ""]
    for record in records:
        description = str(record.get("description") or "").strip()
        lines.append(f"- {protocol_title(record)}" + (f": {cell(description)}" if description else "")
                     + overlap_text(record))
    first, second = records[0], records[1]
    measure = "mean accuracy over folds" if is_kfold(first) or is_kfold(second) else "accuracy"
    lines += ["", f"The last column is `{second['name']}` minus `{first['name']}` ({measure}, in points). "
              f"`{first['name']}` {grouping_text(first)}; `{second['name']}` {grouping_text(second)}."]
    if first.get("groups") != second.get("groups"):
        lines[-1] += (" The protocols differ in what they keep whole and the models are the same, so the "
                      "difference measures that grouping (test images that share a patient or a near-copy with "
                      "training images are easier), not one model against another.")
    return "\n".join(lines)


PUBLISHED_NOTE = ("Each of these was trained and tested by its authors under the protocol named, and is printed "
                  "as published, for reference: it was not re-measured here, and a different protocol (above all a "
                  "record-wise one) makes a figure not comparable with the rows above.")
PUBLISHED_HEADERS = ["source", "method", "protocol", "accuracy (%)", "note"]


def published_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """The dataset's published results, every field as given (never recomputed, never rounded)."""
    body = [[cell(_as_given(item.get(key))) for key in ("source", "method", "protocol", "accuracy", "note")]
            for item in results.get("published") or [] if isinstance(item, dict)]
    return PUBLISHED_HEADERS, body


def _as_given(value) -> str:
    return "" if value is None else str(value)


def _model_key(row: dict) -> tuple:
    zoo_entry, setting, seed, _ = group_key(row)
    return zoo_entry, setting, seed


def overlap_text(record: dict) -> str:
    """". Test sides hold 233 `pid` groups, 0 of them also in training." from the runner's count per
    fold (summed over folds); "" when the dataset has no group column or the results predate it."""
    overlap = record.get("group_overlap")
    if not isinstance(overlap, list) or not overlap:
        return ""
    test = sum(int(f.get("test_groups", 0)) for f in overlap)
    shared = sum(int(f.get("also_in_training", 0)) for f in overlap)
    column = record.get("group_column") or "group"
    where = "over its folds' test sides" if len(overlap) > 1 else "on its test side"
    return (f". Measured {where}: {test:,} `{column}` groups, {shared:,} of them "
            f"({100 * shared / test:.0f} %) also on the training side" if test else "")
