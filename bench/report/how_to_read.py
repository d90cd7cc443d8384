"""The "How to read this" text under the main table: what its numbers are, for this dataset's
classes and this ranking protocol."""

from __future__ import annotations

import textwrap

from bench.report.protocols import is_kfold

SINGLE_SPLIT = ("Entries are ranked by accuracy on the held-out test split; the validation split alone chose "
                "each entry's epoch. Values in brackets are bootstrap 95 % intervals over test images: entries "
                "whose intervals overlap are not clearly different on this test set.")
CROSS_VALIDATION = ("Entries are ranked by their mean accuracy over the folds of cross-validation: each fold's "
                    "model trains on the other folds' images and is tested on its own fold, and a validation "
                    "split inside its training side alone chose its epoch. ± is the sample standard deviation "
                    "over folds: how much the score moves with the split. Pooled values score the out-of-fold "
                    "predictions of all folds together, every image once; values in brackets are bootstrap "
                    "95 % intervals over those images. A model with a failed or missing fold is marked "
                    "incomplete (\"3 of 5\"), gets no rank and comes after the complete ones: its mean covers "
                    "only the folds that finished.")
RATES = ("Sensitivity is recall (share of a class's images found), specificity the share of other images not "
         "called that class.")
REST = ("ECE is the expected calibration error (0 = confidence matches accuracy). GMACs counts multiply-adds of "
        "one image (one multiply-add = one MAC, not two FLOPs). Latency is batch 1, median over many timed runs "
        "after warm-up; throughput is images per second at batch 64. \"n/a\" marks a value that is undefined or "
        "was not measured, with the reason where one was recorded. Training time marked \"from store\" was spent "
        "in an earlier run that produced the stored checkpoint.")
MANY_CLASSES = 6  # past this, the tumour classes are counted rather than listed


def how_to_read(ranking_protocol: dict, classes: tuple[str, ...], no_tumor: str | None,
                per_class_columns: bool) -> str:
    """The paragraph, wrapped as the leaderboard wraps its text."""
    parts = [CROSS_VALIDATION if is_kfold(ranking_protocol) else SINGLE_SPLIT, RATES]
    if not per_class_columns:
        parts.append(f"With {len(classes)} classes the table shows macro sensitivity (their mean); the per-class "
                     "table below has every class.")
    parts += [tumour_missed_text(classes, no_tumor), REST]
    return textwrap.fill(" ".join(parts), width=100, break_long_words=False, break_on_hyphens=False)


def tumour_missed_text(classes: tuple[str, ...], no_tumor: str | None) -> str:
    if no_tumor is None:
        return ("This dataset has no no-tumour class (every image shows a tumour), so the share of tumours called "
                "normal is undefined here and the table has no column for it.")
    tumours = [c for c in classes if c != no_tumor]
    named = ", ".join(tumours) if len(tumours) <= MANY_CLASSES else f"the {len(tumours)} tumour classes"
    return (f"Tumor missed is the clinically worst error: the share of tumor images ({named}) called "
            f"{no_tumor}.")

