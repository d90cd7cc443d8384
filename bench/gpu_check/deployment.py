"""Every deployment mode of a run (bench.deploy.modes.MODE_GROUPS) through bench.deploy.deployment_row.

A mode passes with a latency, or is n/a for an expected absence (its prepare raised ModeUnavailable:
no CUDA, a package not installed). Any other note is an error, and so is a full-precision mode
whose top-1 predictions disagree with eager's; reduced-precision modes only report their agreement
(fp16/bf16 rounding may flip a near-tie of a briefly trained model).
"""

from __future__ import annotations

import torch

from bench.data.batches import to_model_input
from bench.deploy import AGREEMENT_THRESHOLD, MODES, ModeUnavailable, deployment_row
from bench.gpu_check.runner import CheckFailed
from bench.deploy.modes import MODE_GROUPS
from bench.train.loop import train_model

REDUCED_PRECISION = ("eager_fp16", "eager_bf16", "tensorrt_fp16")
# A full-precision mode may flip a near-tie too (TF32 convolutions, another summation order): with
# 80 check images one flip is already below AGREEMENT_THRESHOLD. It is an error only when its logits
# also differ from eager's by more than rounding can explain.
FP32_MAX_ABS_DIFF = 0.05
# Few iterations: this checks that every mode runs and agrees; bench/test_latency.py and the runner time them.
TIMING = {"cpu": {"batch1_warmup": 2, "batch1_iters": 5, "throughput_warmup": 1, "throughput_iters": 2},
          "cuda": {"batch1_warmup": 5, "batch1_iters": 20, "throughput_warmup": 2, "throughput_iters": 5,
                   "min_time_s": 0.2}}


def run_modes() -> tuple[str, ...]:
    """Plain eager (the reference, timed for comparison) and every mode a suite can name."""
    return ("eager", *(mode for group in MODE_GROUPS.values() for mode in group))


def recording_unavailable(unavailable: set[str]):
    """MODES with each prepare function noting when it raises ModeUnavailable (then re-raising it),
    so an expected absence can be told from an error whose note looks alike."""
    def recorded(mode, prepare):
        def prepare_and_record(model, example, device, max_batch):
            try:
                return prepare(model, example, device, max_batch)
            except ModeUnavailable:
                unavailable.add(mode)
                raise
        return prepare_and_record
    return {mode: recorded(mode, prepare) for mode, prepare in MODES.items()}


def briefly_trained(ctx):
    """A small model trained for two epochs: confident enough that agreement with eager means something."""
    name, size = ctx.sizes.small_entry, ctx.sizes.small_size
    entry, data = ctx.entry_data(name, size)
    recipe = entry.recipe.with_overrides(input_size=size, epochs=2, batch_size=ctx.sizes.batch_size, lr=1e-2,
                                         dropout=0.0)
    train, val = data.train_val_split(recipe.val_fraction, recipe.seed)
    torch.manual_seed(recipe.seed)
    model = entry.build(input_size=size, dropout=recipe.dropout)
    train_model(model, train, val, recipe, ctx.normalizer(entry), progress=False, label=name)
    return entry, data, model


def mode_outcome(mode: str, row: dict, unavailable: set[str]) -> tuple[str, object]:
    """('ok', latency ms) | ('n/a', note) | ('error', why) for one mode of a deployment row."""
    latency, note = row.get(f"latency_ms_b1_{mode}"), row.get(f"latency_note_{mode}")
    if note is not None:
        return ("n/a", note) if mode in unavailable else ("error", note)
    if not isinstance(latency, float):
        return "error", f"no latency and no note (got {latency!r})"
    if (row.get(f"agreement_flag_{mode}") and mode not in REDUCED_PRECISION
            and row[f"max_abs_diff_{mode}"] > FP32_MAX_ABS_DIFF):
        return "error", (f"top-1 agreement with eager {row[f'agreement_{mode}']:.3f}, logits off by up to "
                         f"{row[f'max_abs_diff_{mode}']:.3g}")
    return "ok", latency


def check_deployment_modes(ctx) -> dict:
    entry, data, model = briefly_trained(ctx)
    size, batch = ctx.sizes.small_size, ctx.sizes.deploy_batch
    normalize = ctx.normalizer(entry)
    with torch.no_grad():
        check_images = to_model_input(data.decoded.test.images, normalize)
    unavailable: set[str] = set()
    modes = run_modes()
    row = deployment_row(model, (1, entry.in_channels, size, size), ctx.device, check_images, modes=modes,
                         throughput_batch=batch, check_batch=batch, e2e_image=data.decoded.test.images[0],
                         normalize=normalize, registry=recording_unavailable(unavailable), **TIMING[ctx.device.type])
    outcomes = {mode: mode_outcome(mode, row, unavailable) for mode in modes}
    measured = {"entry": entry.name, "input_size": size,
                "modes": {mode: value for mode, (_, value) in outcomes.items()},
                "agreement": {mode: row.get(f"agreement_{mode}") for mode in modes if mode != "eager"},
                "max_abs_diff": {mode: row.get(f"max_abs_diff_{mode}") for mode in modes if mode != "eager"},
                "compile_s": {mode: row.get(f"compile_s_{mode}") for mode in modes if row.get(f"compile_s_{mode}")},
                "provider_onnxruntime": row.get("provider_onnxruntime")}
    errors = [f"{mode}: {value}" for mode, (kind, value) in outcomes.items() if kind == "error"]
    if errors:
        raise CheckFailed("; ".join(errors), measured)
    timed = [mode for mode, (kind, _) in outcomes.items() if kind == "ok"]
    missing = [mode for mode, (kind, _) in outcomes.items() if kind == "n/a"]
    flagged = [f"{mode} {row[f'agreement_{mode}']:.3f}" for mode in modes if row.get(f"agreement_flag_{mode}")]
    low = f"; agreement below {AGREEMENT_THRESHOLD} (near-ties): {', '.join(flagged)}" if flagged else ""
    return measured | {"detail": f"{len(timed)} timed ({', '.join(timed)}); n/a: {', '.join(missing) or 'none'}{low}"}
