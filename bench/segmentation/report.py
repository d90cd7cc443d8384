"""The segmentation leaderboard, rebuilt from results.json alone (and each fold's test_counts.csv).

Ranked by mean Dice over test slices (every slice weighs the same, so a missed small tumour
costs as much as a missed large one); pooled Dice, IoU and the pixel rates stand beside it. A
k-fold protocol is ranked by its folds pooled: every slice tested once, intervals over all of them.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench.io import write_text_atomically
from bench.mode_notes import note_reason, note_status
from bench.report.fmt import NA, cell, missing, num, pct, pct_interval, sig
from bench.report.leaderboard import title_lines
from bench.report.protocols import protocol_title
from bench.report.provenance import provenance_markdown
from bench.segmentation.evaluate import COUNTS_FILE, read_counts
from bench.segmentation.metrics import metrics_from_counts
from bench.segmentation.modes import THROUGHPUT_BATCH

LEADERBOARD = "leaderboard.md"
RATE_COLUMNS = (("pixel_acc", "pixel acc (%)"), ("precision", "precision (%)"), ("recall", "recall (%)"),
                ("fpr", "FPR (%)"), ("fnr", "FNR (%)"))

HOW_TO_READ = (
    "Dice = 2|P∩T| / (|P| + |T|) and IoU = |P∩T| / |P∪T| of the predicted (P) and true (T) tumour pixels, per "
    "test slice, then averaged; 95 % intervals are bootstrap intervals over slices. *Pooled* Dice sums every "
    "slice's pixels first, so large tumours weigh more: a model that finds big tumours and misses small ones has "
    "a pooled Dice above its mean. Pixel accuracy is dominated by the background (a tumour is a few % of a "
    "slice) and says little; FPR is the share of background marked tumour, FNR the share of tumour missed. "
    "Protocols keep each patient on one side, so the numbers are about new patients.")
MODES_NOTE = ("Model-only latency at batch 1 and throughput at batch 16, warm-up first. Agreement is the mean "
              "IoU between the mode's mask and eager's on real test slices (probability 0.5); a mode below "
              "0.995 is flagged. `n/a`: the mode cannot run on this machine; `error`: it failed.")


def write_segmentation_report(results_path: Path | str, out_dir: Path | str) -> list[Path]:
    results = json.loads(Path(results_path).read_text())
    out_dir = Path(out_dir)
    path = out_dir / LEADERBOARD
    write_text_atomically(path, leaderboard_markdown(results, out_dir))
    return [path]


def ranked_rows(results: dict, out_dir: Path) -> list[dict]:
    """The ranking protocol's rows, k-fold ones pooled per model, best mean Dice first."""
    first = results["protocols"][0]["name"]
    rows = [r for r in results["rows"] if r.get("status") == "ok" and r.get("protocol") == first]
    if results["protocols"][0]["kind"] == "kfold":
        rows = pooled_folds(rows, out_dir, results["class_names"])
    return sorted(rows, key=lambda r: -(r.get("test_dice") if not missing(r.get("test_dice")) else -1.0))


def pooled_folds(rows: list[dict], out_dir: Path, class_names: list[str]) -> list[dict]:
    """One row per cross-validation group: the metrics of every fold's test slices together."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row.get("cv_group") or row["entry"]].append(row)
    pooled = []
    for name, folds in groups.items():
        classes, counts = [], []
        for row in sorted(folds, key=lambda r: r.get("fold") or 0):
            fold_classes, fold_counts = read_counts(out_dir / "entries" / row["entry"] / COUNTS_FILE)
            classes += fold_classes
            counts.append(fold_counts)
        metrics = metrics_from_counts(np.concatenate(counts), classes=classes, class_names=class_names)
        first = folds[0]
        pooled.append({**{k: v for k, v in first.items() if not k.startswith("test_")},
                       **{f"test_{k}": v for k, v in metrics.items() if k != "dice_per_image"},
                       "entry": name, "folds_pooled": len(folds),
                       "train_seconds": sum(r.get("train_seconds") or 0 for r in folds)})
    return pooled


def leaderboard_markdown(results: dict, out_dir: Path) -> str:
    protocol = results["protocols"][0]
    rows = ranked_rows(results, out_dir)
    classes = results["class_names"]
    parts = title_lines(results) + [_header(results, protocol)]
    parts += ["## Where these numbers come from", provenance_markdown(results),
              f"## Ranking ({protocol_title(protocol)})", _table(*main_table(rows, classes)),
              "### How to read this", HOW_TO_READ]
    if results.get("published"):
        parts += ["### Published on this dataset", _table(*published_table(results["published"]))]
    modes = modes_table(rows)
    if modes[1]:
        parts += ["## Deployment modes", MODES_NOTE, _table(*modes)]
        if unavailable_modes(rows):
            parts.append(unavailable_modes(rows))
    parts += _failures(results["rows"])
    parts += _pictures(rows, out_dir)
    return "\n\n".join(parts) + "\n"


def _header(results: dict, protocol: dict) -> str:
    text = [f"**Segmentation, ranked by mean Dice on the {protocol_title(protocol)}.**"]
    if protocol.get("description"):
        text.append(f"The split: {protocol['description']}.")
    for item in results.get("published") or []:
        ours = "patient-wise" if protocol.get("groups") not in (None, "none") else "record-wise"
        text.append(f"Anchor: {item['source'].split(',')[0]} et al. report a mean Dice of {item['dice']:g} % "
                    f"({item['method']}; protocol `{item['protocol']}`, {item.get('note', '')}). Ours is {ours}: "
                    "no patient is on both sides, which is harder than a record-wise split.")
    return " ".join(text)


def main_table(rows: list[dict], classes: list[str]) -> tuple[list[str], list[list[str]]]:
    headers = ["rank", "entry", "mean Dice [95 % CI]", "mean IoU [95 % CI]", "pooled Dice [95 % CI]"]
    headers += [label for _, label in RATE_COLUMNS] + [f"Dice {c} (%)" for c in classes]
    headers += ["params", "GMACs", "size (MB)", "latency b1 eager (ms)", "epochs", "train time (s)"]
    body = []
    for rank, row in enumerate(rows, 1):
        line = [str(rank), row["entry"], pct_interval(row.get("test_dice"), row.get("test_dice_ci95")),
                pct_interval(row.get("test_iou"), row.get("test_iou_ci95")),
                pct_interval(row.get("test_pooled_dice"), row.get("test_pooled_dice_ci95"))]
        line += [pct(row.get(f"test_{key}"), 2) for key, _ in RATE_COLUMNS]
        line += [f"{pct(row.get(f'test_dice_{c}'))} (n = {row.get(f'test_n_{c}', NA)})" for c in classes]
        line += [f"{row['params']:,}" if not missing(row.get("params")) else NA, num(row.get("gmacs"), 2),
                 sig(row.get("size_mb")), num(row.get("latency_ms_b1_eager"), 1),
                 str(row.get("epochs_run", NA)), num(row.get("train_seconds"), 0)]
        body.append(line)
    return headers, body


def published_table(published: list[dict]) -> tuple[list[str], list[list[str]]]:
    return (["source", "method", "protocol", "mean Dice (%)", "note"],
            [[cell(p["source"]), cell(p["method"]), p["protocol"], f"{p['dice']:g}", cell(p.get("note", ""))]
             for p in published])


def modes_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Per entry, eager and every mode that ran or failed; modes that cannot run here are summed up
    in one line by unavailable_modes (a table of n/a helps nobody)."""
    body = []
    for row in rows:
        for mode in _modes(row):
            note = row.get(f"latency_note_{mode}")
            if mode != "eager" and note_status(note) == NA:
                continue
            latency, agreement = row.get(f"latency_ms_b1_{mode}"), row.get(f"agreement_{mode}")
            flag = " (flagged)" if row.get(f"agreement_flag_{mode}") else ""
            body.append([row["entry"], mode, num(latency, 1) if not missing(latency) else cell(note or NA),
                         num(row.get(f"throughput_ips_b{THROUGHPUT_BATCH}_{mode}"), 1),
                         _agreement_text(mode, agreement, flag)])
    return ["entry", "mode", "latency b1 (ms)", f"throughput b{THROUGHPUT_BATCH} (slices/s)", "mask IoU vs eager"], body


def _agreement_text(mode: str, agreement, flag: str) -> str:
    if mode == "eager":
        return "reference"
    return NA if missing(agreement) else num(agreement, 4) + flag


def unavailable_modes(rows: list[dict]) -> str:
    """'Not available here: eager_bf16, eager_fp16 (no CUDA device).' over all rows."""
    by_reason: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for mode in _modes(row):
            note = row.get(f"latency_note_{mode}")
            if mode != "eager" and note_status(note) == NA:
                by_reason[note_reason(note)].add(mode)
    if not by_reason:
        return ""
    return "Not available here: " + "; ".join(f"{', '.join(sorted(modes))} ({reason})"
                                              for reason, modes in sorted(by_reason.items())) + "."


def _modes(row: dict) -> list[str]:
    """eager first, then the modes the row has columns for; e2e (preprocessing + eager) is a classifier's."""
    # A mode that ran has latency and agreement columns; one that could not has a note.
    named = {key[len("latency_note_"):] for key in row if key.startswith("latency_note_")}
    named |= {key[len("agreement_"):] for key in row
              if key.startswith("agreement_") and not key.startswith("agreement_flag_")}
    return ["eager"] + sorted(named - {"eager", "e2e"}) if named else []


def _failures(rows: list[dict]) -> list[str]:
    failed = [r for r in rows if r.get("status") != "ok"]
    if not failed:
        return []
    return ["## Entries that did not run"] + [f"**{r['entry']}** ({r.get('status')}): `{r.get('error')}`"
                                              for r in failed]


def _pictures(rows: list[dict], out_dir: Path) -> list[str]:
    """Each entry's sheet of best, median and worst test slices (and attention maps), where drawn."""
    parts = []
    for row in rows:
        run_ids = [row["entry"]] if not row.get("folds_pooled") else [row["entry"] + ",fold=1"]
        for run_id in run_ids:
            for picture in row.get("pictures") or []:
                path = out_dir / "entries" / run_id / picture
                if path.is_file():
                    parts.append(f"### {run_id}: {picture.removesuffix('.png')}\n\n"
                                 f"![{run_id} {picture}]({os.path.relpath(path, out_dir)})")
    return (["## Pictures", "Ground truth outlined in bluish green, prediction filled and outlined in orange."]
            + parts) if parts else []


def _table(headers: list[str], body: list[list[str]]) -> str:
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
