"""The main table when the ranking protocol is kfold: one line per cross-validation summary."""

from __future__ import annotations

from bench.report.fmt import NA, cell, missing, num, pct, pct_interval
from bench.report.folds import fold_count_text
from bench.report.honesty import significance_cell
from bench.report.rows import is_ok
from bench.report.tables import COST_HEADERS, cost_cells, not_run_line, quality_cells, quality_headers


def cv_main_table(summaries: list[dict], classes: tuple[str, ...], no_tumor: str | None,
                  comparisons: dict | None = None) -> tuple[list[str], list[list[str]]]:
    """summaries ranked by rank_summaries. Only complete summaries get a rank number: a mean over
    some folds is not comparable with a mean over all of them. "vs top" is the runner's McNemar test
    on the pooled out-of-fold predictions (bench.runner.significance.ranked_units)."""
    study = any(row.get("setting") for row in summaries)
    headers = (["rank", "entry"] + (["setting"] if study else [])
               + ["acc mean ± std over folds (%)", "folds", "pooled acc [95 % CI]", "vs top",
                  "pooled macro-F1 [95 % CI]"]
               + quality_headers(classes, no_tumor, prefix="pooled ") + COST_HEADERS[:-1] + ["training (all folds)"])
    body, rank = [], 0
    for row in summaries:
        name = [row.get("zoo_entry", row["entry"]), row.get("setting") or ""] if study else [row["entry"]]
        if not is_ok(row):
            body.append(not_run_line(row, name, len(headers)))
            continue
        if row.get("complete"):
            rank += 1
        body.append([str(rank) if row.get("complete") else "–"] + name
                    + [mean_std_text(row.get("cv_acc_mean"), row.get("cv_acc_std")), cell(fold_count_text(row)),
                       pooled_acc_text(row), significance_cell(row, comparisons), _number_interval(row.get("pooled_macro_f1"),
                                                               row.get("pooled_macro_f1_ci95"))]
                    + quality_cells(row, "pooled_", classes, no_tumor) + cost_cells(row))
    return headers, body


def mean_std_text(mean, std) -> str:
    """"93.1 ± 1.2" in percent; the std is n/a with a single finished fold."""
    if missing(mean):
        return NA
    return f"{pct(mean)} ± {NA if missing(std) else pct(std)}"


def pooled_acc_text(row: dict) -> str:
    if missing(row.get("pooled_acc")):
        return cell(f"{NA} ({row['pooled_note']})") if row.get("pooled_note") else NA
    return pct_interval(row["pooled_acc"], row.get("pooled_acc_ci95"))


def _number_interval(value, interval) -> str:
    if missing(value):
        return NA
    if isinstance(interval, (list, tuple)) and len(interval) == 2 and not any(missing(v) for v in interval):
        return f"{num(value)} [{num(interval[0])}, {num(interval[1])}]"
    return num(value)
