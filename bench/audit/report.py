"""Write an audit as report.md (for people), duplicates.csv and within_split.csv (for tools)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from tabulate import tabulate

from bench.audit.audit import DUPLICATE_KINDS, KINDS, AuditResult, Match
from bench.environment import environment
from bench.io import atomic_path, write_text_atomically
from bench.leakage.bands import BANDS

MAX_LISTED = 50  # rows of label conflicts and within-split pairs shown in report.md; CSVs hold all

CSV_COLUMNS = ("file", "label", "nearest_train_file", "nearest_train_label", "similarity", "orientation", "kind")
PAIR_COLUMNS = ("split", "file", "label", "other_file", "other_label", "similarity", "orientation", "kind")


def write_duplicates_csv(result: AuditResult, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for m in result.test_vs_train:
            writer.writerow((m.a_rel, m.a_label, m.b_rel, m.b_label, f"{m.similarity:.5f}", m.orientation, m.kind))


def write_within_csv(result: AuditResult, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PAIR_COLUMNS)
        for split, pairs in result.within.items():
            for m in pairs:
                writer.writerow((split, m.a_rel, m.a_label, m.b_rel, m.b_label, f"{m.similarity:.5f}",
                                 m.orientation, m.kind))


def _per_class_table(matches: list[Match], class_names: tuple[str, ...]) -> str:
    """One row per class of the dataset's label set that has test images, then all of them."""
    counts = Counter((m.a_label, m.kind) for m in matches)
    rows = []
    for name in (*class_names, None):  # None: the "all" row (a class may itself be named "all")
        selected = [m for m in matches if name in (None, m.a_label)]
        if not selected:
            continue
        dup = sum(m.is_duplicate for m in selected)
        per_kind = [sum(counts[(c, k)] for c in class_names if name in (None, c)) for k in KINDS]
        rows.append([name or "all", len(selected), *per_kind, dup, f"{100 * dup / len(selected):.1f} %"])
    return tabulate(rows, headers=["class", "test images", *KINDS, "duplicates", "share"], tablefmt="github")


def _band_table(matches: list[Match]) -> str:
    rows = [[label, sum(low <= m.similarity < high for m in matches)] for label, low, high in BANDS]
    return tabulate(rows, headers=["similarity to nearest training image", "test images"], tablefmt="github")


def _pairs_table(pairs: list[tuple[str, Match]]) -> str:
    rows = [[where, m.a_rel, m.a_label, m.b_rel, m.b_label, f"{m.similarity:.4f}", m.orientation, m.kind]
            for where, m in pairs[:MAX_LISTED]]
    table = tabulate(rows, headers=["where", "file", "label", "matches", "its label", "similarity",
                                    "orientation", "kind"], tablefmt="github")
    more = f"\n\n... and {len(pairs) - MAX_LISTED} more (see the CSV files)." if len(pairs) > MAX_LISTED else ""
    return table + more


def _within_summary(result: AuditResult) -> str:
    rows = []
    for split, pairs in result.within.items():
        kinds = Counter(m.kind for m in pairs)
        images = {m.a_rel for m in pairs} | {m.b_rel for m in pairs}
        n = len(result.train if split == "train" else result.test)
        conflicts = sum(where == f"{split}-{split}" for where, _ in result.conflicts())
        rows.append([split, n, len(pairs), len(images), *(kinds[k] for k in DUPLICATE_KINDS), conflicts])
    return tabulate(rows, headers=["split", "images", "duplicate pairs", "images in a pair", *DUPLICATE_KINDS,
                                   "label conflicts"], tablefmt="github")


def _environment_table(seconds: str) -> str:
    """The same environment block every brainbench result carries, plus how long the audit took."""
    env = environment("cpu")
    keys = ("python", "torch", "cpu", "cpu_count", "platform", "git_revision", "date")
    rows = [[key, env[key]] for key in keys] + [["audit time", seconds]]
    return tabulate(rows, headers=["field", "value"], tablefmt="github")


def write_report(result: AuditResult, path: Path, fingerprint: str) -> None:
    cross = result.test_vs_train
    n_dup = sum(m.is_duplicate for m in cross)
    conflicts = result.conflicts()
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    lines = [
        "# Duplicate audit",
        "",
        f"Dataset: `{result.index.root}` (layout {result.index.layout}, fingerprint `{fingerprint}`), "
        f"{len(result.train)} training and {len(result.test)} test images.",
        "",
        f"**{n_dup} of {len(cross)} test images ({100 * n_dup / max(1, len(cross)):.1f} %) duplicate a "
        f"training image.** A score on this test split partly measures recall of training images.",
        "",
        "## Where these numbers come from",
        "",
        _environment_table(seconds),
        "",
        "## Method and thresholds",
        "",
        "- `exact`: same file bytes (sha256).",
        "- Otherwise each image is decoded to 64 px grey (padded to a square), average-pooled to 32 px and "
        "standardized (zero mean, unit norm); the cosine of two such vectors is their Pearson correlation, "
        "unchanged by brightness or contrast. A test image is compared with every training image in four "
        "orientations (identity, h-flip, v-flip, both); the best counts.",
        f"- Threshold: similarity >= **{result.threshold}** is a duplicate: `identical-pixels` (same 64 px "
        "pixels), `flipped` (best in a mirrored orientation), else `near` (resized, re-encoded, "
        "brightness/contrast). `none`: below the threshold.",
        "- `pairs_at_threshold.png` shows pairs just above and just below the threshold, to judge it.",
        "",
        "## Test images against training images, per class and kind",
        "",
        _per_class_table(cross, result.index.labels.names),
        "",
        "## Similarity of each test image to its nearest training image",
        "",
        _band_table(cross),
        "",
        "## Duplicates within a split",
        "",
        "Each pair is listed once; every copy of a repeated file pairs with the first copy.",
        "",
        _within_summary(result),
        "",
        f"## Label conflicts ({len(conflicts)})",
        "",
        "Duplicate pairs whose class labels disagree: at least one label is wrong, or the copy is not a copy. "
        "For each image, the nearest duplicate with another label is searched for directly, so a conflict "
        "shows even where a same-label copy is nearer.",
        "",
        _pairs_table(conflicts) if conflicts else "None.",
        "",
    ]
    if result.skipped:
        lines += [f"## Unreadable images skipped ({len(result.skipped)})", ""]
        lines += [f"- `{s['path']}`: {s['reason']}" for s in result.skipped] + [""]
    lines += [f"Time: {seconds}.", ""]
    write_text_atomically(path, "\n".join(lines))
