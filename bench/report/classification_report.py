"""entries/<entry>/report.txt: an sklearn-style classification report built from the row alone.

No predictions are needed: every number is a row key, except support, which is the row sums
of the stored confusion matrix.
"""

from __future__ import annotations

from pathlib import Path

from bench.io import write_text_atomically
from bench.report.fmt import NA, missing, num, pct, pct_interval
from bench.report.rows import class_names, class_support, entry_dir, is_ok, no_tumor_class

REPORT_TXT = "report.txt"
COLUMNS = ("precision", "sensitivity", "specificity", "f1-score", "AUC", "support", "sensitivity 95 % CI")


def write_classification_reports(results: dict, out_dir: Path) -> list[Path]:
    classes, no_tumor = class_names(results), no_tumor_class(results)
    written = []
    for row in filter(is_ok, results["rows"]):
        path = entry_dir(Path(out_dir), row["entry"]) / REPORT_TXT
        write_text_atomically(path, classification_report(row, classes, no_tumor))
        written.append(path)
    return written


def classification_report(row: dict, classes: tuple[str, ...], no_tumor: str | None = "notumor") -> str:
    """no_tumor: the dataset's no-tumour class; None (every image a tumour) drops the tumour-missed line."""
    support = class_support(row, len(classes))
    total = sum(support) if support else row.get("test_n")
    width = max(len("weighted avg"), *(len(c) for c in classes))
    lines = [f"classification report: {row['entry']} (test split, {_int(total)} images)", "",
             " " * width + "".join(f"{c:>13}" for c in COLUMNS[:-1]) + f"  {COLUMNS[-1]}"]
    for i, c in enumerate(classes):
        cells = [row.get(f"test_{k}_{c}") for k in ("precision", "sensitivity", "specificity", "f1", "auc")]
        lines.append(_line(c, width, cells, support[i] if support else None,
                           _interval(row.get(f"test_sensitivity_{c}_ci95"))))
    lines.append("")
    for avg in ("macro", "weighted"):
        cells = [row.get(f"test_{avg}_{k}") for k in ("precision", "sensitivity", "specificity", "f1")]
        # The row has no weighted AUC, and this report does not invent numbers the runner did not compute.
        cells.append(row.get("test_macro_auc") if avg == "macro" else None)
        lines.append(_line(f"{avg} avg", width, cells, total, ""))
    lines += ["", *_summary(row, no_tumor)]
    return "\n".join(lines) + "\n"


def _line(name: str, width: int, values: list, support, interval: str) -> str:
    cells = "".join(f"{num(v):>13}" if not missing(v) else f"{'' if v is None else NA:>13}" for v in values)
    return f"{name:>{width}}{cells}{_int(support):>13}  {interval}".rstrip()


def _summary(row: dict, no_tumor: str | None) -> list[str]:
    """Single-number metrics, each with its interval where the runner computed one."""
    f1_ci = row.get("test_macro_f1_ci95")
    items = [("accuracy", pct_interval(row.get("test_acc"), row.get("test_acc_ci95"))),
             ("macro-F1", num(row.get("test_macro_f1")) + (f" {_interval(f1_ci)}" if _interval(f1_ci) else ""))]
    if no_tumor is not None:
        items.append(("tumor missed", _missed(row.get("test_tumor_missed_rate"), no_tumor)))
    items += [("ECE", num(row.get("test_ece"))), ("mean confidence", num(row.get("test_mean_confidence"))),
              ("test loss", num(row.get("test_loss")))]
    return [f"{label:<16}{value}" for label, value in items] + [
        "", "Intervals are bootstrap 95 % intervals over test images."]


def _missed(rate, no_tumor: str) -> str:
    return NA if missing(rate) else f"{pct(rate)} % of tumor images called {no_tumor}"


def _interval(pair) -> str:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or any(missing(v) for v in pair):
        return ""
    return f"[{num(pair[0])}, {num(pair[1])}]"


def _int(value) -> str:
    return NA if missing(value) else str(int(value))
