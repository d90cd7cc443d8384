"""Reports of one suite run, rebuilt from results.json alone (`brainbench report DIR`).

write_report(results, out_dir) writes, into out_dir:
    leaderboard.md, leaderboard.csv           ranked tables with the environment they came from
    accuracy_vs_latency.png                   accuracy vs batch-1 latency of the main mode (eager),
    accuracy_vs_latency_<mode>.png            and of every other mode that has numbers
    leakage_curve.png                         accuracy per similarity band of every entry
    entries/<entry>/confusion.png             per entry that ran
    entries/<entry>/curves.png                per entry with a history.csv from the runner
    entries/<entry>/report.txt                sklearn-style classification report
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.report.classification_report import write_classification_reports
from bench.report.leaderboard import write_leaderboard
from bench.report.leakage_plot import write_leakage_plot
from bench.report.load import RESULTS_JSON, check_results, load_results
from bench.report.pareto import pareto_front
from bench.report.plots import write_plots

__all__ = ["write_report", "rebuild", "load_results", "pareto_front", "RESULTS_JSON"]


def write_report(results: dict | str | os.PathLike, out_dir: str | os.PathLike, mode: str = "eager") -> list[Path]:
    """Write every report file into out_dir and return their paths.

    results is the parsed results dict or the path of a results.json. It is only read: the
    runner owns results.json. mode picks the latency mode of accuracy_vs_latency.png.
    """
    if isinstance(results, dict):
        check_results(results, "results dict")
    else:
        results = load_results(Path(results))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_plots(results, out_dir, mode)
    written += write_leakage_plot(results, results["rows"], out_dir)
    written += write_classification_reports(results, out_dir)
    # Last, so that its links point at files that now exist.
    written += write_leaderboard(results, out_dir, plot_mode=mode)
    return written


def rebuild(out_dir: str | os.PathLike, mode: str = "eager") -> list[Path]:
    """Re-create the reports of out_dir from out_dir/results.json (e.g. after a report change)."""
    return write_report(load_results(Path(out_dir) / RESULTS_JSON), out_dir, mode)
