"""leaderboard.md and leaderboard.csv of one suite on one machine, from results.json alone."""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from bench.io import write_text_atomically
from bench.report.cv_table import cv_main_table
from bench.report.fmt import NA
from bench.report.history import history_path
from bench.report.honesty import (
    CLEAN_NOTE,
    LEAKAGE_NOTE,
    SEEDS_NOTE,
    clean_balance_table,
    clean_table,
    external_sections,
    header_paragraph,
    leakage_table,
    seeds_table,
)
from bench.report.how_to_read import how_to_read
from bench.report.leaderboard_csv import write_leaderboard_csv
from bench.report.leakage_plot import LEAKAGE_PNG
from bench.report.modes import tradeoff_file_names
from bench.report.protocols import is_kfold, protocol_records, protocol_title, protocol_views
from bench.report.provenance import provenance_markdown
from bench.report.rows import class_names, entry_link, has_confusion, is_ok, no_tumor_class, rank_key, ranked
from bench.report.side_by_side import PUBLISHED_NOTE, published_table, side_by_side_note, side_by_side_table
from bench.report.tables import (
    COST_HEADERS,
    PROBE_NOTE,
    latency_tables,
    main_table,
    per_class_table,
    probe_table,
    shown_classes,
)

LEADERBOARD_MD = "leaderboard.md"
LEADERBOARD_CSV = "leaderboard.csv"


def write_leaderboard(results: dict, out_dir: Path, plot_mode: str = "eager") -> list[Path]:
    """Write leaderboard.md and leaderboard.csv into out_dir; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    views = protocol_views(results, out_dir)
    md_path, csv_path = out_dir / LEADERBOARD_MD, out_dir / LEADERBOARD_CSV
    write_text_atomically(md_path, leaderboard_markdown(results, out_dir, plot_mode, views))
    write_leaderboard_csv(views, results["rows"], class_names(results), csv_path)
    return [md_path, csv_path]


def leaderboard_markdown(results: dict, out_dir: Path, plot_mode: str = "eager",
                         views: dict[str, list[dict]] | None = None) -> str:
    """views: protocol_views(results, out_dir), passed by a caller that already computed them."""
    views = protocol_views(results, out_dir) if views is None else views
    records = protocol_records(results)
    ranking_protocol = records[0]
    rows = views[ranking_protocol["name"]]  # the ranking protocol's rows, or its cross-validation summaries
    every_row = ranked(results["rows"], rank_key(results))
    classes, no_tumor = class_names(results), no_tumor_class(results)
    parts = title_lines(results) + [header_paragraph(results, every_row)]
    parts += ["## Where these numbers come from", provenance_markdown(results),
              f"## Ranking ({_ranking_title(results, ranking_protocol)})", _table(*_main_table(results, rows)),
              "### How to read this",
              how_to_read(ranking_protocol, classes, no_tumor, bool(shown_classes(classes)))
              + _significance_note(results.get("comparisons"))]
    parts += _protocol_sections(results, records, views)
    parts += _failures(every_row)
    parts += _honesty_sections(results, every_row, out_dir)
    if any(is_ok(r) for r in rows):
        source = "pooled out-of-fold predictions" if is_kfold(ranking_protocol) else "test split"
        parts += [f"## Per class ({source})", _table(*per_class_table(rows, classes))]
        latency = latency_tables(rows)
        if latency:  # a suite that measures metrics only has none
            parts += ["## Latency and throughput", LATENCY_NOTE]
        for mode, headers, body in latency:
            parts += [f"### {mode}", _table(headers, body)]
    probe = probe_table(every_row)
    if probe[1]:
        parts += ["## Linear probe of pretrained backbones", PROBE_NOTE, _table(*probe)]
    parts += _tradeoff_section(rows, plot_mode)
    parts += _entry_links(every_row, out_dir)
    return "\n\n".join(parts) + "\n"


def title_lines(results: dict) -> list[str]:
    """A leaderboard's first lines, of either task: "# <suite> on <machine>" and the suite's description."""
    suite = results.get("suite") or {}
    title = f"# {suite.get('name', 'unknown suite')} on {results.get('machine_tag', 'unknown machine')}"
    return [title] + ([str(suite["description"])] if suite.get("description") else [])


def _ranking_title(results: dict, protocol: dict) -> str:
    if protocol.get("kind") == "official":
        return "clean test images" if results.get("split", "official") == "clean" else "official test split"
    return protocol_title(protocol)


def _main_table(results: dict, rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    protocol = protocol_records(results)[0]
    classes, no_tumor = class_names(results), no_tumor_class(results)
    if is_kfold(protocol):
        table = cv_main_table(rows, classes, no_tumor, results.get("comparisons"))
    else:
        acc_label = "official acc [95 % CI]" if protocol.get("kind") == "official" else "test acc [95 % CI]"
        table = main_table(rows, classes, results.get("comparisons"), no_tumor, acc_label)
    return _without_unmeasured_costs(*table)


def _without_unmeasured_costs(headers: list[str], body: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """A suite that measures metrics only (no "efficiency") has no parameters, MACs or latency: their
    columns would be n/a on every line, so they are left out (the suite's `measure` says why)."""
    unmeasured = [i for i, h in enumerate(headers) if h in COST_HEADERS[:-1]
                  and all(len(line) != len(headers) or line[i] in (NA, "") for line in body)]
    if not body or not unmeasured:
        return headers, body
    keep = [i for i in range(len(headers)) if i not in unmeasured]
    return [headers[i] for i in keep], [[line[i] for i in keep] if len(line) == len(headers) else line
                                        for line in body]


def _protocol_sections(results: dict, records: list[dict], views: dict[str, list[dict]]) -> list[str]:
    """Protocols side by side (with two or more), and the dataset's published results."""
    parts: list[str] = []
    if len(records) >= 2:
        parts += ["## Protocols side by side", side_by_side_note(records), _table(*side_by_side_table(views, records))]
    published = published_table(results)
    if published[1]:
        level = "###" if parts else "##"
        parts += [f"{level} Published results on this dataset", PUBLISHED_NOTE, _table(*published)]
    return parts


LATENCY_NOTE = ("Model-only latency: inputs already on the device, warm-up first, median and p90 over the "
                "timed runs; throughput at batch 64. Each compiled mode's outputs were compared with eager "
                "on real test images before its time counted. `e2e` adds preprocessing of a decoded image "
                "to the eager forward. A mode that cannot run here says why instead of a number: `n/a` means "
                "the mode cannot run on this machine, `error` that it failed.")


def _significance_note(comparisons: dict | None) -> str:
    if not comparisons:
        return ""
    note = ""
    if comparisons.get("reference"):
        note = (f" \"vs top\" is a paired exact McNemar test of each entry against `{comparisons['reference']}` on "
                f"the same {comparisons['images']}: \"(n.s.)\" marks a difference from the top entry that is not "
                f"significant at {100 * comparisons['level']:g} %.")
    skipped = comparisons.get("skipped") or {}
    if skipped:
        note += " Left out of the test: " + "; ".join(f"`{run_id}`: {why}" for run_id, why in sorted(skipped.items())) + "."
    return note


def _honesty_sections(results: dict, rows: list[dict], out_dir: Path) -> list[str]:
    """Clean split, leakage curve, external sets and seeds: what the official numbers hide."""
    parts: list[str] = []
    if results.get("leakage") and any("clean_acc" in r for r in rows):
        leakage = results["leakage"]
        parts += [f"## Official vs clean split (threshold {leakage['threshold']:g})", CLEAN_NOTE,
                  _table(*clean_table(rows)), "Class balance of the clean test split:",
                  _table(*clean_balance_table(results))]
    curve = leakage_table(rows, results)
    if curve[1]:
        parts += ["## Leakage curve", LEAKAGE_NOTE, _table(*curve)]
        if (Path(out_dir) / LEAKAGE_PNG).is_file():
            parts.append(f"![accuracy per similarity band]({LEAKAGE_PNG})")
    for title, note, headers, body in external_sections(rows, results):
        parts += [f"## {title}", note, _table(headers, body)]
    seeds = seeds_table(rows)
    if seeds[1]:
        parts += ["## Across seeds", SEEDS_NOTE, _table(*seeds)]
    return parts


def _table(headers: list[str], rows: list[list[str]]) -> str:
    # Cells are preformatted text; numparse would turn "0.940" into "0.94".
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _failures(rows: list[dict]) -> list[str]:
    failed = [r for r in rows if not is_ok(r)]
    if not failed:
        return []
    lines = ["## Entries that did not run",
             "They stay in the tables above so that a failure is never mistaken for an absence (a failed "
             "fold marks its model's cross-validation summary incomplete)."]
    for row in failed:
        error = str(row.get("error") or "no error recorded").strip()
        fence = "~~~" if "```" in error else "```"  # an error quoting markdown must not end the block
        lines.append(f"**{row['entry']}** ({row.get('status', 'no status')}):\n\n{fence}\n{error}\n{fence}")
    return lines


def _tradeoff_section(rows: list[dict], plot_mode: str) -> list[str]:
    files = tradeoff_file_names(rows, plot_mode)
    if not files:
        return []
    section = ["## Accuracy vs latency",
               "Error bars are the 95 % intervals; the step line is the Pareto front "
               "(no other entry is both faster and more accurate)."]
    for mode, name in files.items():
        section.append(f"![test accuracy vs batch-1 latency, {mode}]({name})")
    return section


def _entry_links(rows: list[dict], out_dir: Path) -> list[str]:
    lines = []
    for row in filter(is_ok, rows):
        entry = row["entry"]
        links = [f"[confusion matrix]({entry_link(entry, 'confusion.png')})"] if has_confusion(row) else []
        if history_path(out_dir, entry).is_file():
            links.append(f"[training curves]({entry_link(entry, 'curves.png')})")
        links.append(f"[classification report]({entry_link(entry, 'report.txt')})")
        lines.append(f"- {entry}: " + " · ".join(links))
    return ["## Per-entry files", "\n".join(lines)] if lines else []
