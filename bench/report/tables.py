"""The leaderboard's tables as (headers, rows) of strings; leaderboard.py lays them out.

Every cell is already text, so tabulate must be called with disable_numparse=True:
otherwise it re-parses "0.940" as a number and prints "0.94".
"""

from __future__ import annotations

from bench.report.fmt import NA, cell, count, duration, missing, num, pct, pct_interval, sig
from bench.report.honesty import significance_cell
from bench.report.modes import latency_modes, mode_note
from bench.report.rows import class_support, is_ok, metric_prefix

ERROR_CELL_CHARS = 120  # the full message is in the failures section below the tables


# Beyond this many classes one column per class makes the tables unreadable (44c has 15): the main
# table shows the macro average instead and the per-class table turns to one line per class.
MAX_CLASS_COLUMNS = 6


def shown_classes(classes: tuple[str, ...]) -> tuple[str, ...]:
    """The classes that get a column of their own in the main table."""
    return classes if len(classes) <= MAX_CLASS_COLUMNS else ()


def main_table(ranked_rows: list[dict], classes: tuple[str, ...], comparisons: dict | None = None,
               no_tumor: str | None = "notumor",
               acc_label: str = "official acc [95 % CI]") -> tuple[list[str], list[list[str]]]:
    # A training study varies one setting across rows: it gets its own column, so the table
    # reads as the comparison it is. Ordinary suites have no setting and no such column.
    study = any(row.get("setting") for row in ranked_rows)
    clean = any("clean_acc" in row for row in ranked_rows)
    external = external_names(ranked_rows)
    headers = (["rank", "entry"] + (["setting"] if study else []) + [acc_label]
               + (["clean acc [95 % CI]", "vs top (McNemar)"] if clean else [])
               + [f"external {name} acc (%)" for name in external] + ["macro-F1"]
               + quality_headers(classes, no_tumor) + COST_HEADERS)
    rows, rank = [], 0
    for row in ranked_rows:
        name = [row.get("zoo_entry", row["entry"]), row.get("setting") or ""] if study else [row["entry"]]
        if is_ok(row):
            rank += 1
            honest = ([pct_interval(row.get("clean_acc"), row.get("clean_acc_ci95")),
                       significance_cell(row, comparisons)] if clean else [])
            honest += [pct(row.get(f"ext_{name}_acc")) for name in external]
            rows.append([str(rank)] + name + [pct_interval(row.get("test_acc"), row.get("test_acc_ci95"))]
                        + honest + [num(row.get("test_macro_f1"))]
                        + quality_cells(row, "test_", classes, no_tumor) + cost_cells(row))
        else:
            rows.append(not_run_line(row, name, len(headers)))
    return headers, rows


def quality_headers(classes: tuple[str, ...], no_tumor: str | None, prefix: str = "") -> list[str]:
    shown = shown_classes(classes)
    return ([f"{prefix}sens. {c} (%)" for c in shown] + ([] if shown else [f"{prefix}macro sens. (%)"])
            + [f"{prefix}macro spec. (%)"] + ([f"{prefix}tumor missed (%)"] if no_tumor else [])
            + [f"{prefix}ECE"])


def quality_cells(row: dict, prefix: str, classes: tuple[str, ...], no_tumor: str | None) -> list[str]:
    """Sensitivities, specificity, missed tumours and calibration, from the test_ or pooled_ metrics."""
    shown = shown_classes(classes)
    return ([pct(row.get(f"{prefix}sensitivity_{c}")) for c in shown]
            + ([] if shown else [pct(row.get(f"{prefix}macro_sensitivity"))])
            + [pct(row.get(f"{prefix}macro_specificity"))]
            + ([pct(row.get(f"{prefix}tumor_missed_rate"))] if no_tumor else [])
            + [num(row.get(f"{prefix}ece"))])


COST_HEADERS = ["params (M)", "GMACs", "size (MB)", "b1 eager (ms)", "b64 eager (img/s)", "training"]


def cost_cells(row: dict) -> list[str]:
    return [sig(row.get("params_m")), sig(row.get("gmacs")), sig(row.get("size_mb")),
            ms(row.get("latency_ms_b1_eager")), ips(row.get("throughput_ips_b64_eager")), _training(row)]


def not_run_line(row: dict, name: list[str], width: int) -> list[str]:
    cells = ["–"] + name + [cell(_not_run(row))]
    return cells + [""] * (width - len(cells))


def external_names(rows: list[dict]) -> list[str]:
    """Names of the external sets any row was scored on, in first-seen order."""
    names: dict[str, None] = {}
    for row in rows:
        # ext_<set>_task holds the task's name (a string); ext_<set>_n_not_in_task, a count, ends alike.
        names.update((key[len("ext_"):-len("_task")], None) for key, value in row.items()
                     if key.startswith("ext_") and key.endswith("_task") and isinstance(value, str))
    return list(names)


def _not_run(row: dict) -> str:
    error = str(row.get("error") or "").strip()
    first_line = error.splitlines()[0] if error else "no error recorded"
    if len(first_line) > ERROR_CELL_CHARS:
        first_line = first_line[:ERROR_CELL_CHARS - 1] + "…"
    return f"not run: {first_line}"


def _training(row: dict) -> str:
    text = duration(row.get("train_seconds"))
    # A stored checkpoint's time was spent in an earlier run, maybe on another machine.
    return f"{text} (from store)" if row.get("loaded_from_store") else text


def per_class_table(ranked_rows: list[dict], classes: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """One line per entry and class; past MAX_CLASS_COLUMNS classes, one line per class instead
    (per_class_by_class). A cross-validation summary shows its pooled out-of-fold metrics."""
    if len(classes) > MAX_CLASS_COLUMNS:
        return per_class_by_class(ranked_rows, classes)
    headers = ["entry", "class", "support", "sensitivity [95 % CI]", "precision (%)",
               "specificity (%)", "F1", "AUC"]
    rows = []
    for row in filter(is_ok, ranked_rows):
        p = metric_prefix(row)
        support = class_support(row, len(classes), p)
        for i, c in enumerate(classes):
            rows.append([row["entry"], c, count(support[i]) if support else NA,
                         pct_interval(row.get(f"{p}sensitivity_{c}"), row.get(f"{p}sensitivity_{c}_ci95")),
                         pct(row.get(f"{p}precision_{c}")), pct(row.get(f"{p}specificity_{c}")),
                         num(row.get(f"{p}f1_{c}")), num(row.get(f"{p}auc_{c}"))])
    return headers, rows


def per_class_by_class(ranked_rows: list[dict], classes: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """Many classes: one line per class (every class), one column per entry holding
    "sensitivity / specificity (%) / F1", so 15 classes read down one table."""
    ok = list(filter(is_ok, ranked_rows))
    supports = [s for s in (class_support(r, len(classes), metric_prefix(r)) for r in ok) if s]
    headers = ["class", "support"] + [f"{row['entry']}: sens. / spec. (%) / F1" for row in ok]
    body = []
    for i, c in enumerate(classes):
        # Entries of one protocol test the same images; should they not, every count shows.
        support = "/".join(dict.fromkeys(count(s[i]) for s in supports)) or NA
        line = [c, support]
        for row in ok:
            p = metric_prefix(row)
            line.append(f"{pct(row.get(f'{p}sensitivity_{c}'))} / {pct(row.get(f'{p}specificity_{c}'))} / "
                        f"{num(row.get(f'{p}f1_{c}'))}")
        body.append(line)
    return headers, body


AGREEMENT_FLOOR = 0.995  # below this share of top-1 agreement with eager, a mode's speed is suspect


def latency_tables(ranked_rows: list[dict]) -> list[tuple[str, list[str], list[list[str]]]]:
    """One table per mode (and precision): rows are entries. A mode that could not run says why."""
    tables = []
    for mode in latency_modes(ranked_rows):
        headers = ["entry", "b1 median (ms)", "b1 p90 (ms)", "b64 (img/s)", "compile (s)",
                   "speed-up vs eager fp32", "top-1 agreement with eager"]
        body = [[row["entry"]] + _mode_cells(row, mode) for row in filter(is_ok, ranked_rows)]
        tables.append((mode, headers, body))
    return tables


def _mode_cells(row: dict, mode: str) -> list[str]:
    median = row.get(f"latency_ms_b1_{mode}")
    if missing(median):
        # A mode that could not run says why, in the place its number would be.
        return [cell(mode_note(row, mode))] + [""] * 5
    throughput = ips(row.get(f"throughput_ips_b64_{mode}"))
    batch = row.get(f"throughput_batch_{mode}")
    if not missing(batch) and int(batch) != 64 and throughput != NA:
        throughput += f" (batch {int(batch)})"
    eager = row.get("latency_ms_b1_eager")
    speedup = NA if missing(eager) or not median else f"{eager / median:.2f}x"
    compile_s = row.get(f"compile_s_{mode}")
    return [ms(median), ms(row.get(f"latency_ms_b1_{mode}_p90")), throughput,
            NA if missing(compile_s) else f"{compile_s:.1f}", speedup, _agreement(row, mode)]


def _agreement(row: dict, mode: str) -> str:
    if mode == "eager":
        return "reference"
    share = row.get(f"agreement_{mode}")
    if missing(share):
        return NA
    text = f"{100 * share:.1f} %"
    diff = row.get(f"max_abs_diff_{mode}")
    if not missing(diff):
        text += f" (max logit diff {diff:.1e})"
    return text + (" **FLAGGED: below 99.5 %**" if share < AGREEMENT_FLOOR else "")


def ms(value) -> str:
    """Milliseconds with about three significant digits, never in exponent notation."""
    if missing(value):
        return NA
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def ips(value) -> str:
    if missing(value):
        return NA
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


PROBE_NOTE = ("Frozen backbone, logistic regression on its pooled features (fit on the training split, "
              "scored on the test split): how much the self-supervised pretraining learned before any "
              "label was seen, next to the same architecture with random weights.")
PROBE_COLUMNS = (("probe_acc_mocov2", "MoCo v2 backbone"), ("probe_acc_imagenet", "ImageNet backbone"),
                 ("probe_acc_random", "random backbone"))


def probe_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Linear-probe accuracies of the entries that have them (pretrained variants)."""
    present = [(key, label) for key, label in PROBE_COLUMNS if any(key in row for row in rows)]
    headers = ["entry"] + [f"{label} (%)" for _, label in present]
    body = [[row["entry"]] + [_probe_cell(row, key) for key, _ in present]
            for row in rows if is_ok(row) and any(key in row for key, _ in present)]
    if any("probe_note_imagenet" in row for row in rows) and "probe_acc_imagenet" not in dict(present):
        headers.insert(2, "ImageNet backbone (%)")
        for line, row in zip(body, [r for r in rows if is_ok(r) and any(k in r for k, _ in present)]):
            line.insert(2, cell(row.get("probe_note_imagenet", NA)))
    return headers, body


def _probe_cell(row: dict, key: str) -> str:
    note = row.get(key.replace("probe_acc_", "probe_note_"))
    return cell(note) if missing(row.get(key)) and note else pct(row.get(key))
