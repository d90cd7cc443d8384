"""report.md of a patient analysis: who the images are, what the official split shares, and why
each threshold is where it is."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tabulate import tabulate

from bench.io import write_text_atomically
from bench.patients import tables
from bench.patients.groups import CANDIDATES, GROWTH_LIMIT
from bench.patients.recover import MATCH_FLOOR
from bench.patients.result import PatientAnalysis

LARGEST_GROUP_FILES = 10  # members of the largest group named in the report


def _table(table: tables.Table) -> str:
    headers, rows = table
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) if rows else "None."


def _threshold_section(a: PatientAnalysis) -> list[str]:
    gap = a.gap
    chosen = (f"the midpoint of that gap, **{a.threshold:g}**" if a.threshold_source == "gap"
              else f"**{a.threshold:g}**, as given by --threshold (the gap's midpoint would be {gap.threshold:g})")
    below = (f"the floor: no image lies between it and the gap; {gap.n_below} below it" if gap.low <= MATCH_FLOOR
             else f"the highest similarity below the gap; {gap.n_below} images at or under it")
    return [
        "## Match threshold",
        "",
        f"Every image's similarity to its nearest reference slice is in `similarity_histogram.png` (log-scale "
        f"counts, by class). Above {MATCH_FLOOR} (below it two pictures are different slices), the widest empty "
        f"interval runs from **{gap.low:.4f}** ({below}) to **{gap.high:.4f}** (the lowest similarity above it; "
        f"{gap.n_above} images at or above it), {gap.width:.4f} wide: "
        "images on the upper side are a reference slice, re-encoded, resized or mirrored; those below are "
        f"other pictures. The threshold is {chosen}.",
        "",
        "![similarity histogram](similarity_histogram.png)",
        "",
    ]


def _headline(a: PatientAnalysis) -> list[str]:
    matched = sum(r.matched for r in a.rows)
    _, test_rows = tables.test_patients_in_training(a)
    total = test_rows[-1] if test_rows else ["all", 0, 0, 0, 0]
    n_test = sum(r.split == "test" for r in a.rows)
    disagreements = tables.label_disagreements(a)
    lines = [f"**{matched} of {len(a.rows)} images ({100 * matched / max(1, len(a.rows)):.1f} %) are a reference "
             f"slice, so their patient is known.**"]
    if n_test:
        lines.append(f"**{total[2]} of {n_test} official test images share a patient (pid) with the training "
                     f"split ({total[3]} by pid family); the very slice of a training image: "
                     f"{total[4]} of them.**")
        shared, _, apart = tables.test_images_grouped_with_training(a)
        others = ", ".join(f"{name} {n}" for name, n in apart.most_common()) or "none"
        lines.append(f"Counting near-duplicate groups for the images without a patient, {shared} of {n_test} test "
                     f"images share a group with a training image (the others: {others}).")
    lines.append(f"Label disagreements between the dataset and the reference: {len(disagreements)}.")
    return [" ".join(lines), ""]


def _largest_group(a: PatientAnalysis) -> list[str]:
    groups = tables.unmatched_groups(a)
    if not groups:
        return []
    name, members = max(groups.items(), key=lambda item: len(item[1]))
    classes = ", ".join(f"{c} {n}" for c, n in Counter(r.label for r in members).most_common())
    splits = ", ".join(f"{s} {n}" for s, n in Counter(r.split for r in members).most_common())
    lines = [f"Largest group: `{name}`, **{len(members)} images** ({classes}; {splits}). Some of its files:", ""]
    lines += [f"- `{r.file}`" for r in members[:LARGEST_GROUP_FILES]]
    return lines + [""]


def _groups_section(a: PatientAnalysis) -> list[str]:
    n_unmatched = sum(not r.matched for r in a.rows)
    g = a.grouping
    return [
        f"## Images without a patient ({n_unmatched}): near-duplicate groups",
        "",
        "These are grouped by near-duplicate clusters: same bytes, or similarity >= t in any orientation, closed "
        f"under transitivity (bench/leakage/groups.py). Candidates for t run from {CANDIDATES[0]} down to "
        f"{CANDIDATES[-1]}; lowering t joins neighbouring slices to their groups, until chains of merely similar "
        f"pictures merge different people: a collapse is the largest group growing more than {GROWTH_LIMIT:g}x "
        "in one step to more images than any recovered patient has. "
        f"**Threshold {g.threshold:.2f}**: {g.reason}.",
        "",
        _table(tables.sweep_table(a)),
        "",
        f"Group sizes at {g.threshold:.2f}, per class (images in groups of each size):",
        "",
        _table(tables.group_size_table(a)),
        "",
        *_largest_group(a),
        "### Are neighbouring slices left apart?",
        "",
        "For the official test images, per similarity band of their nearest training image (the leakage bands "
        "of bench/leakage): the accuracy of that nearest image's label (the 1-nearest-neighbour rule of "
        "knn.pixels, computed here directly with the audit's matching, which also tries up-down mirrors: no "
        "trained model is needed). For images with a patient, how often that nearest training image is the same "
        "patient family says how far down a near-duplicate link still means the same patient. For images "
        f"without one, how many share a group with a training image at {g.threshold:.2f}: where 1-NN accuracy "
        "is high (memory), they should.",
        "",
        _table(tables.band_table(a)),
        "",
    ]


def write_report(a: PatientAnalysis, path: Path) -> Path:
    disagreements = tables.disagreement_table(a)
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in a.seconds.items())
    lines = [
        "# Patient recovery",
        "",
        f"Dataset: `{a.data_root}` (fingerprint `{a.data_fingerprint}`), "
        f"{sum(r.split == 'train' for r in a.rows)} training and {sum(r.split == 'test' for r in a.rows)} test "
        f"images. Reference: `{a.reference_root}` (fingerprint `{a.reference_fingerprint}`), "
        f"{a.n_reference_slices} slices of {a.n_reference_patients} patients ({a.n_reference_families} families).",
        "",
        *_headline(a),
        "## Method",
        "",
        "Every image is matched against every reference slice with the duplicate audit's matching "
        "(bench/audit): 64 px grey pictures pooled to 32 px and standardized, so that their dot product is "
        "their Pearson correlation (unchanged by contrast and brightness, little changed by resizing and "
        "JPEG), in four orientations (identity, h-flip, v-flip, both). Kinds, as in the audit: `exact` (same "
        "bytes), `identical-pixels`, `flipped`, `near`, and `none` (below the threshold: no patient).",
        "",
        *_threshold_section(a),
        "## Images with a patient, per class and split",
        "",
        _table(tables.matched_per_class(a)),
        "",
        "## Official test images whose patient is in Training",
        "",
        _table(tables.test_patients_in_training(a)),
        "",
        f"## Label disagreements ({len(disagreements[1])})",
        "",
        "Matched images whose dataset label differs from the reference slice's class.",
        "",
        _table(disagreements),
        "",
        *_groups_section(a),
    ]
    if a.skipped:
        lines += [f"## Unreadable images left out ({len(a.skipped)})", ""] + [f"- `{rel}`" for rel in a.skipped] + [""]
    lines += [
        "## Files",
        "",
        "- `patients.csv`: one row per image (file, split, label, sha256, reference index, pid, pid family, "
        "similarity, orientation, kind, reference label and file, group: `patient:<pid family>` or `dup:<n>`).",
        "- `patient-map.csv`: the matched images keyed by content hash (the map brainbench ships for the Kaggle "
        "dataset is this file).",
        "- `similarity_histogram.png`.",
        "",
        f"Time: {seconds}{' (read from the cache)' if a.from_cache else ''}.",
        "",
    ]
    write_text_atomically(path, "\n".join(lines))
    return path
