"""`brainbench bench-train`'s measurement (bench.throughput.measure_train_throughput) with few steps."""

from __future__ import annotations

import zoo
from bench.throughput import (
    ThroughputSettings,
    default_workers,
    measure_train_throughput,
)
from bench.throughput.measure import GOAL_CACHED_OVER_MODEL_ONLY


def check_bench_train(ctx) -> dict:
    """(b)/(a) and (b)/(c); on CUDA the goal (b)/(a) >= 0.9 is recorded, not enforced: a few steps on a
    shared machine are a smoke test of the path and a first reading, not the benchmark itself."""
    s = ctx.sizes
    entry = zoo.get(s.throughput_entry)
    size = s.throughput_size or entry.recipe.input_size or entry.input_size
    batch = s.throughput_batch or entry.recipe.batch_size
    settings = ThroughputSettings(batch_size=batch, input_size=size, steps=s.throughput_steps,
                                  rounds=s.throughput_rounds, warmup=s.throughput_warmup,
                                  workers=default_workers() if s.throughput_workers is None else s.throughput_workers,
                                  progress=False)
    recipe = entry.recipe.with_overrides(batch_size=batch, input_size=size)
    result = measure_train_throughput(entry, recipe, ctx.dataset(size, entry.in_channels), settings, ctx.device)
    ratios = result.ratios
    measured = {"entry": entry.name, "input_size": size, "batch_size": batch, "amp_dtype": result.amp_dtype,
                "steps": settings.steps, "rounds": settings.rounds, "workers": settings.workers,
                **result.metrics()}
    b_over_a, b_over_c = ratios["cached_over_model_only"], ratios["cached_over_imagefolder"]
    text = f"{entry.name} {size} px b{batch} {result.amp_dtype}: (b)/(a) = {b_over_a:.2f}, (b)/(c) = {b_over_c:.2f}"
    if ctx.cuda:
        met = b_over_a >= GOAL_CACHED_OVER_MODEL_ONLY
        measured["goal_cached_over_model_only"] = GOAL_CACHED_OVER_MODEL_ONLY
        measured["goal_met"] = met
        text += "" if met else f" (below goal {GOAL_CACHED_OVER_MODEL_ONLY})"
    else:
        text += " (cpu: path only, no goal)"
    return measured | {"detail": text}
