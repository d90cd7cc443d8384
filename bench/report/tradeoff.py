"""accuracy_vs_latency*.png: what each entry costs at batch 1 for the accuracy it gives."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.report.figure import plt, save_figure
from bench.report.fmt import missing
from bench.report.modes import tradeoff_file_names
from bench.report.pareto import pareto_front
from bench.report.protocols import main_view
from bench.report.rows import is_ok, metric_prefix


def write_tradeoff_plots(results: dict, out_dir: Path, main_mode: str = "eager") -> list[Path]:
    """One plot per mode with data; main_mode's is accuracy_vs_latency.png, others are suffixed.
    The points are the ranking protocol's rows (cross-validation summaries for a kfold protocol)."""
    rows = main_view(results, out_dir)
    suite = (results.get("suite") or {}).get("name", "unknown suite")
    title = f"{suite} on {results.get('machine_tag', 'unknown machine')}"
    return [save_figure(tradeoff_figure(rows, mode, title), Path(out_dir) / name)
            for mode, name in tradeoff_file_names(rows, main_mode).items()]


def tradeoff_points(rows: list[dict], mode: str) -> list[dict]:
    """Entries with both a latency in this mode and a test accuracy, as plot-ready numbers (%)."""
    points = []
    for row in filter(is_ok, rows):
        # A cross-validation summary plots its pooled out-of-fold accuracy: the value its interval is around.
        prefix = metric_prefix(row)
        latency, acc = row.get(f"latency_ms_b1_{mode}"), row.get(f"{prefix}acc")
        if missing(latency) or missing(acc):
            continue
        low, high = row.get(f"{prefix}acc_ci95") or (acc, acc)
        low, high = (acc, acc) if missing(low) or missing(high) else (low, high)
        points.append({"entry": row["entry"], "latency": latency, "acc": 100 * acc,
                       "below": 100 * (acc - low), "above": 100 * (high - acc)})
    return points


def tradeoff_figure(rows: list[dict], mode: str, title: str):
    points = tradeoff_points(rows, mode)
    front = pareto_front([(p["latency"], p["acc"]) for p in points])
    fig, ax = plt.subplots(figsize=(8.0, 5.5))
    ax.errorbar([p["latency"] for p in points], [p["acc"] for p in points],
                yerr=[[p["below"] for p in points], [p["above"] for p in points]],
                fmt="o", color="tab:blue", ecolor="lightsteelblue", capsize=3, label="entry (95 % CI)")
    front_x = [points[i]["latency"] for i in front]
    front_y = [points[i]["acc"] for i in front]
    # "post": the best accuracy available within a latency budget holds until the next front point.
    ax.step(front_x, front_y, where="post", color="tab:red", linewidth=1.5, label="Pareto front")
    ax.plot(front_x, front_y, "o", color="tab:red", ms=11, mew=1.5, fillstyle="none")
    for p in points:
        ax.annotate(p["entry"], (p["latency"], p["acc"]), xytext=(5, 4), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    # Plain "2", "5", "10", "20" ms, not "2x10^0": a latency axis is read, not decoded.
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"batch-1 latency, {mode} (ms, median, log scale)")
    pooled = any(metric_prefix(row) == "pooled_" for row in rows)
    ax.set_ylabel("pooled out-of-fold accuracy (%)" if pooled else "test accuracy (%)")
    ax.set_title(f"{title}: accuracy vs latency ({mode})", fontsize=11)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return fig
