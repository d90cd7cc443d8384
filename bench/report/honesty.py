"""The leaderboard's honesty sections: how leaky the split is, the clean split, the leakage curve,
external datasets and seeds. Each function returns (headers, rows) of text, or text."""

from __future__ import annotations

import statistics
from collections import defaultdict

from bench.leakage.bands import BAND_KEYS, BANDS
from bench.report.fmt import NA, count, missing, num, pct, pct_interval
from bench.report.protocols import protocol_records, protocol_title
from bench.report.rows import is_ok

MEMORY_REFERENCE = "knn.pixels"


def _reference_row(rows: list[dict]) -> dict | None:
    return next((r for r in rows if is_ok(r) and r.get("zoo_entry", r["entry"]) == MEMORY_REFERENCE), None)


def header_paragraph(results: dict, rows: list[dict]) -> str:
    """What split this is, how much of the official test split repeats training, and the
    memorization reference: the first thing a reader must know before reading a number."""
    leakage = results.get("leakage")
    split = results.get("split", "official")
    records = protocol_records(results)
    if results.get("protocols") and records[0].get("kind") != "official":
        return _protocol_header(results, records, rows)
    if not leakage:
        return ("These are official-split numbers without a leakage analysis (an older results file): "
                "the test split may repeat training images. Rerun the suite to add it.")
    threshold = leakage["threshold"]
    share = pct(leakage["test_duplicated_share"])
    duplicated = f"{leakage['n_test_duplicated']:,} of {leakage['n_test']:,} ({share} %)"
    text = [f"**Split: {split}.** {duplicated} official test images repeat a training image (similarity "
            f">= {threshold:g} after normalizing brightness and contrast, in any of four orientations, "
            f"counting neighbouring-slice chains), so official accuracy partly measures memory."]
    if split == "clean":
        text.append(f"This run ranks by the {leakage['n_clean_test']:,} clean test images (no duplicate in "
                    "training) and chose each epoch on a validation split that keeps duplicate groups whole.")
    else:
        text.append(f"The clean columns score the same models on the {leakage['n_clean_test']:,} test images "
                    "with no duplicate in training (`--split clean` also makes validation leak-free).")
    reference = _reference_row(rows)
    if reference is not None:
        official = pct_interval(reference.get("test_acc"), reference.get("test_acc_ci95"))
        clean = pct_interval(reference.get("clean_acc"), reference.get("clean_acc_ci95"))
        text.append(f"`{MEMORY_REFERENCE}` is the memorization reference: a nearest neighbour on raw pixels "
                    f"that learns nothing. It scores {official} on the official test split and {clean} "
                    "on the clean one; an entry that does not beat it has not shown it generalizes, and its "
                    "clean score says how clean the clean split really is.")
    else:
        text.append(f"Add `{MEMORY_REFERENCE}` (the raw-pixel nearest neighbour) to the suite to see what memory "
                    "alone scores.")
    return " ".join(text)


def _protocol_header(results: dict, records: list[dict], rows: list[dict]) -> str:
    """The header of a leaderboard ranked by a protocol other than the official split: which split
    ranks and why, its test side's class balance, and what the official split beside it leaks."""
    first = records[0]
    text = [f"**Ranked by the {protocol_title(first)}.**"]
    if results.get("ranking_why"):
        text.append(f"Why: {results['ranking_why']}")
    text.append(_balance_text(first))
    leakage = results.get("leakage")
    official = next((r for r in records if r.get("kind") == "official"), None)
    if leakage and official is not None:
        text.append(f"Beside it, the official split: {leakage['n_test_duplicated']:,} of {leakage['n_test']:,} "
                    f"official test images ({pct(leakage['test_duplicated_share'])} %) repeat a training image "
                    f"(similarity >= {leakage['threshold']:g}, any orientation), so official accuracy partly "
                    "measures memory.")
    elif official is None:
        text.append("A protocol that keeps patients or duplicate groups whole is the guard against test images "
                    "that repeat training ones; this results file has no official split to compare with.")
    # One fold of a cross-validation is not its score; the reference is quoted for single splits only.
    references = {r.get("protocol") or first["name"]: r for r in rows
                  if is_ok(r) and r.get("zoo_entry", r["entry"]) == MEMORY_REFERENCE and r.get("fold") is None}
    if first["name"] in references:
        scores = [f"{_accuracy(references[first['name']])} here"]
        if official is not None and official["name"] in references:
            scores.append(f"{_accuracy(references[official['name']])} on the official split")
        text.append(f"`{MEMORY_REFERENCE}`, a nearest neighbour on raw pixels that learns nothing, scores "
                    f"{' and '.join(scores)}.")
    return " ".join(text)


def _accuracy(row: dict) -> str:
    return pct_interval(row.get("test_acc"), row.get("test_acc_ci95"))


def _balance_text(record: dict) -> str:
    """The test side's size and class shares (k-fold: the range over folds), and the floor checked."""
    balance = [b for b in record.get("test_balance") or [] if b.get("n_test")]
    if not balance:
        return ""
    floor = record.get("min_test_share")
    floor_text = "" if missing(floor) else f"; every class at least {pct(floor, 0)} %, the protocol's floor"
    if len(balance) == 1:
        n, per_class = balance[0]["n_test"], balance[0]["per_class"]
        shares = ", ".join(f"{name} {100 * k / n:.1f} %" for name, k in per_class.items())
        return f"Its test side: {n:,} images ({shares}{floor_text})."
    smallest = min(min(b["per_class"].values()) / b["n_test"] for b in balance)
    sizes = [b["n_test"] for b in balance]
    return (f"Its {len(balance)} test folds hold {min(sizes):,} to {max(sizes):,} images; the smallest class share "
            f"of any fold is {100 * smallest:.1f} %{floor_text}.")


def clean_balance_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """Images per class in the official and clean test splits: the clean split is not balanced."""
    leakage = results["leakage"]
    official, clean = leakage["official_test_per_class"], leakage["clean_test_per_class"]
    n_clean = max(1, leakage["n_clean_test"])
    body = [[c, count(official[c]), count(clean[c]), f"{100 * clean[c] / n_clean:.1f} %",
             f"{100 * clean[c] / official[c]:.1f} %" if official[c] else NA] for c in official]
    return ["class", "official test images", "clean test images", "share of clean split",
            "official images kept"], body


CLEAN_NOTE = ("Clean: test images whose duplicate group (images linked by similarity at or above the "
              "threshold, transitively) holds no training image. The clean split is not balanced (table "
              "below), so balanced accuracy (mean sensitivity over the classes present) and macro-F1 over "
              "the classes present matter more than plain accuracy there.")


def clean_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    headers = ["entry", "official acc [95 % CI]", "clean acc [95 % CI]", "clean balanced acc [95 % CI]",
               "clean macro-F1", "drop (points)"]
    body = []
    for row in rows:
        if not is_ok(row) or "clean_acc" not in row:  # rows of another protocol have no clean subset
            continue
        official, clean = row.get("test_acc"), row.get("clean_acc")
        drop = NA if missing(official) or missing(clean) else f"{100 * (official - clean):.1f}"
        body.append([row["entry"], pct_interval(official, row.get("test_acc_ci95")),
                     pct_interval(clean, row.get("clean_acc_ci95")),
                     pct_interval(row.get("clean_balanced_acc"), row.get("clean_balanced_acc_ci95")),
                     num(row.get("clean_macro_f1")), drop])
    return headers, body


LEAKAGE_NOTE = ("Accuracy of each entry on the official test images, grouped by how similar each image is "
                "to its nearest training image (any orientation). Where an entry's accuracy falls to the "
                f"level of `{MEMORY_REFERENCE}`, it stops beating memory; the rightmost band is the nearest "
                "thing to new patients this dataset has.")


def leakage_table(rows: list[dict], results: dict) -> tuple[list[str], list[list[str]]]:
    counts = (results.get("leakage") or {}).get("band_counts", {})
    headers = ["entry"] + [f"similarity {label} (n = {counts.get(key, '?')})" for (label, _, _), key
                           in zip(BANDS, BAND_KEYS)]
    body = [[row["entry"]] + [pct(row.get(f"leak_acc_{key}")) for key in BAND_KEYS]
            for row in rows if is_ok(row) and f"leak_acc_{BAND_KEYS[0]}" in row]
    return headers, body


def external_sections(rows: list[dict], results: dict) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(title, note, headers, rows) per external dataset."""
    sections = []
    for info in results.get("external_datasets") or []:
        name, prefix = info["name"], f"ext_{info['name']}_"
        note = (f"`{info['path']}`, {info['n_images']:,} images ({info['task']}; folders: "
                + ", ".join(f"{k} {v}" for k, v in info["images_per_folder_class"].items())
                + f"). Never trained on. Audit against {info.get('audited_against', 'the training split')}: "
                  f"{info['n_repeating_training_image']:,} "
                  f"images ({pct(info['repeating_share'])} %) repeat a training image (similarity >= "
                  f"{info['overlap_threshold']:g}); the last column scores only the others.")
        if info.get("n_not_in_task"):
            note += (f" {info['n_not_in_task']:,} images of classes the models do not predict "
                     f"({', '.join(info.get('classes_not_in_task') or [])}) are left out.")
        if info.get("n_not_audited"):
            note += (f" {info['n_not_audited']:,} images could not be audited and are counted neither as "
                     f"repeating nor as new.")
        # Results written before label sets were declared say only "four-class" or a binary task.
        binary = info["binary"] if "binary" in info else info["task"] != "four-class"
        headers = ["entry", "acc [95 % CI]", "balanced acc [95 % CI]"]
        headers += ["tumor found (%)", "notumor kept (%)"] if binary else ["macro-F1"]
        headers += ["acc on images new to training [95 % CI]"]
        body = []
        for row in rows:
            if not is_ok(row) or prefix + "acc" not in row:
                continue
            line = [row["entry"], pct_interval(row.get(prefix + "acc"), row.get(prefix + "acc_ci95")),
                    pct_interval(row.get(prefix + "balanced_acc"), row.get(prefix + "balanced_acc_ci95"))]
            line += ([pct(row.get(prefix + "sensitivity_tumor")), pct(row.get(prefix + "sensitivity_notumor"))]
                     if binary else [num(row.get(prefix + "macro_f1"))])
            new_n = row.get(prefix + "new_n")
            line.append(f"{pct_interval(row.get(prefix + 'new_acc'), row.get(prefix + 'new_acc_ci95'))} "
                        f"(n = {count(new_n)})")
            body.append(line)
        sections.append((f"External: {name}", note, headers, body))
    return sections


SEEDS_NOTE = ("Each row trained once per seed. Mean and standard deviation across seeds show training "
              "noise; each seed's bootstrap interval shows test-set noise. Both matter when comparing rows.")


def seeds_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Rows grouped by entry and setting across seeds; empty when no row repeats over seeds.
    Rows of different protocols or folds test different images, so they never share a group."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in filter(is_ok, rows):
        if "@" in row["entry"] and "seed=" in row["entry"]:
            groups[(_seeds_name(row), row.get("setting") or "", row.get("protocol"), row.get("fold"))].append(row)
    headers = ["entry", "setting", "seeds", "official acc mean ± std", "clean acc mean ± std",
               "each seed: official acc [95 % CI]"]
    body = []
    for (entry, setting, _, _), members in groups.items():
        members.sort(key=lambda r: r.get("seed", 0))
        body.append([entry, setting or "–", ", ".join(str(r.get("seed")) for r in members),
                     _mean_std([r.get("test_acc") for r in members]),
                     _mean_std([r.get("clean_acc") for r in members]),
                     "; ".join(f"seed {r.get('seed')}: {pct_interval(r.get('test_acc'), r.get('test_acc_ci95'))}"
                               for r in members)])
    return headers, body


def _seeds_name(row: dict) -> str:
    name = row.get("zoo_entry", row["entry"])
    if row.get("protocol"):
        name += f" ({row['protocol']}" + (f", fold {row['fold']}" if not missing(row.get("fold")) else "") + ")"
    return name


def _mean_std(values: list) -> str:
    values = [v for v in values if not missing(v)]
    if not values:
        return NA
    spread = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{100 * statistics.mean(values):.1f} ± {NA if missing(spread) else f'{100 * spread:.1f}'} %"


def significance_cell(row: dict, comparisons: dict | None) -> str:
    """The top entry is the reference; others show the McNemar p-value, marked when not significant."""
    if not comparisons:
        return NA
    if row["entry"] == comparisons["reference"]:
        return "reference"
    test = comparisons["rows"].get(row["entry"])
    if test is None:
        return "skipped" if row["entry"] in comparisons.get("skipped", {}) else NA
    p = test["p_value"]
    text = f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"
    return text + (" (n.s.)" if not test["significant"] else "")
