"""The leaderboard's tables as (headers, rows) of strings; leaderboard.py lays them out.

Every cell is already text, so tabulate must be called with disable_numparse=True:
otherwise it re-parses "0.940" as a number and prints "0.94".
"""

from __future__ import annotations

from bench.report.fmt import NA, cell, count, duration, missing, num, pct, pct_interval, sig
from bench.report.honesty import significance_cell
from bench.report.modes import latency_modes, mode_note
from bench.report.rows import class_support, is_ok

ERROR_CELL_CHARS = 120  # the full message is in the failures section below the tables


def main_table(ranked_rows: list[dict], classes: tuple[str, ...],
               comparisons: dict | None = None) -> tuple[list[str], list[list[str]]]:
    # A training study varies one setting across rows: it gets its own column, so the table
    # reads as the comparison it is. Ordinary suites have no setting and no such column.
    study = any(row.get("setting") for row in ranked_rows)
    clean = any("clean_acc" in row for row in ranked_rows)
    external = external_names(ranked_rows)
    headers = (["rank", "entry"] + (["setting"] if study else []) + ["official acc [95 % CI]"]
               + (["clean acc [95 % CI]", "vs top (McNemar)"] if clean else [])
               + [f"external {name} acc (%)" for name in external] + ["macro-F1"]
               + [f"sens. {c} (%)" for c in classes]
               + ["macro spec. (%)", "tumor missed (%)", "ECE", "params (M)", "GMACs", "size (MB)",
                  "b1 eager (ms)", "b64 eager (img/s)", "training"])
    rows, rank = [], 0
    for row in ranked_rows:
        name = [row.get("zoo_entry", row["entry"]), row.get("setting") or ""] if study else [row["entry"]]
        if is_ok(row):
            rank += 1
            honest = ([pct_interval(row.get("clean_acc"), row.get("clean_acc_ci95")),
                       significance_cell(row, comparisons)] if clean else [])
            honest += [pct(row.get(f"ext_{name}_acc")) for name in external]
            cells = _main_cells(row, classes)
            rows.append([str(rank)] + name + cells[:1] + honest + cells[1:])
        else:
            cells = ["–"] + name + [cell(_not_run(row))]
            rows.append(cells + [""] * (len(headers) - len(cells)))
    return headers, rows


def external_names(rows: list[dict]) -> list[str]:
    """Names of the external sets any row was scored on, in first-seen order."""
    names: dict[str, None] = {}
    for row in rows:
        names.update((key[len("ext_"):-len("_task")], None) for key in row
                     if key.startswith("ext_") and key.endswith("_task"))
    return list(names)


def _main_cells(row: dict, classes: tuple[str, ...]) -> list[str]:
    return ([pct_interval(row.get("test_acc"), row.get("test_acc_ci95")), num(row.get("test_macro_f1"))]
            + [pct(row.get(f"test_sensitivity_{c}")) for c in classes]
            + [pct(row.get("test_macro_specificity")), pct(row.get("test_tumor_missed_rate")),
               num(row.get("test_ece")), sig(row.get("params_m")), sig(row.get("gmacs")),
               sig(row.get("size_mb")), ms(row.get("latency_ms_b1_eager")),
               ips(row.get("throughput_ips_b64_eager")), _training(row)])


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
    headers = ["entry", "class", "support", "sensitivity [95 % CI]", "precision (%)",
               "specificity (%)", "F1", "AUC"]
    rows = []
    for row in filter(is_ok, ranked_rows):
        support = class_support(row, len(classes))
        for i, c in enumerate(classes):
            rows.append([row["entry"], c, count(support[i]) if support else NA,
                         pct_interval(row.get(f"test_sensitivity_{c}"), row.get(f"test_sensitivity_{c}_ci95")),
                         pct(row.get(f"test_precision_{c}")), pct(row.get(f"test_specificity_{c}")),
                         num(row.get(f"test_f1_{c}")), num(row.get(f"test_auc_{c}"))])
    return headers, rows


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
