"""Checks of the training loop's device paths: precision, layout, resident data, torch.compile.

Everything goes through bench.train.loop.train_model, the function `brainbench train` runs; what
the loop keeps to itself (the autocast dtype, the layout of a batch, where the uint8 training split
lives) is observed from forward hooks on the model's convolutions, never patched.
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass

import torch
from torch import nn

from bench.gpu_check.runner import CheckFailed, NotApplicable
from bench.train.loop import TrainResult, autocast_dtype_for, train_model

# First-epoch training loss, compiled step against eager: the same batches and weights, so only
# kernel rounding differs (fp32 on the CPU; bf16 autocast on CUDA, where it rounds much more).
COMPILE_LOSS_RTOL = {"cpu": 1e-3, "cuda": 2e-2}

DTYPE_NAMES = {None: "fp32", torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass
class Observation:
    """What the forward hooks saw on the first training-mode forward pass."""
    input_device: str  # the first convolution's input
    conv_output_dtype: str  # the first convolution's output: the autocast dtype at work
    layout_conv: str  # first conv with several input channels and a kernel > 1 (a 1-channel or 1x1
    # tensor is contiguous in both layouts, so it would prove nothing)
    input_channels_last: bool
    weight_channels_last: bool
    resident_split: bool  # a uint8 tensor of the whole training split's shape existed on the device


def _has_layout(tensor: torch.Tensor) -> bool:
    return tensor.is_contiguous(memory_format=torch.channels_last)


def _resident_split_on(device: torch.device, shape: torch.Size) -> bool:
    """Whether the uint8 training split is on `device` right now (the loop copies it once, into a local)."""
    return any(isinstance(obj, torch.Tensor) and obj.dtype == torch.uint8 and obj.shape == shape
               and obj.device.type == device.type for obj in gc.get_objects())


def _layout_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels > 1 and max(module.kernel_size) > 1:
            return name, module
    raise CheckFailed(f"{type(model).__name__} has no convolution with several input channels to inspect")


def _first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def observe_training(model: nn.Module, split_shape: torch.Size, device: torch.device) -> tuple[dict, list]:
    """Hooks that fill a dict on the first training-mode forward; the caller removes the handles."""
    seen: dict = {}
    layout_name, layout_conv = _layout_conv(model)

    def on_first_conv(module, inputs, output) -> None:
        if module.training and "input_device" not in seen:
            seen.update(input_device=str(inputs[0].device), conv_output_dtype=DTYPE_NAMES.get(output.dtype,
                        str(output.dtype)), resident_split=_resident_split_on(device, split_shape))

    def on_layout_conv(module, inputs, output) -> None:
        if module.training and "input_channels_last" not in seen:
            seen.update(layout_conv=layout_name, input_channels_last=_has_layout(inputs[0]),
                        weight_channels_last=_has_layout(module.weight))

    handles = [_first_conv(model).register_forward_hook(on_first_conv),
               layout_conv.register_forward_hook(on_layout_conv)]
    return seen, handles


@dataclass
class ObservedRun:
    entry: str
    size: int
    result: TrainResult
    observation: Observation
    initial: dict[str, torch.Tensor]
    final: dict[str, torch.Tensor]


def train_observed(ctx, entry_name: str, size: int, **train_kwargs) -> ObservedRun:
    """train_model on the mini dataset with hooks on the model, as `brainbench train` would run it."""
    entry, data = ctx.entry_data(entry_name, size)
    recipe = entry.recipe.with_overrides(input_size=size, epochs=ctx.sizes.epochs, batch_size=ctx.sizes.batch_size)
    train, val = data.train_val_split(recipe.val_fraction, recipe.seed)
    torch.manual_seed(recipe.seed)
    model = entry.build(input_size=size, dropout=recipe.dropout)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    seen, handles = observe_training(model, train.images.shape, ctx.device)
    try:
        result = train_model(model, train, val, recipe, ctx.normalizer(entry), progress=False, label=entry_name,
                             **train_kwargs)
    finally:
        for handle in handles:
            handle.remove()
    final = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    missing = sorted(set(Observation.__dataclass_fields__) - set(seen))
    if missing:
        raise CheckFailed(f"the hooks never saw a training-mode forward pass ({', '.join(missing)} unknown)")
    return ObservedRun(entry_name, size, result, Observation(**seen), initial, final)


def default_run(ctx) -> ObservedRun:
    """The one training run train_bf16 and channels_last_and_resident_batches both inspect."""
    return ctx.shared("default_run", lambda: train_observed(ctx, ctx.sizes.train_entry, ctx.sizes.train_size))


def _nonfinite_weights(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def training_health(run: ObservedRun) -> dict:
    """Raise CheckFailed unless losses and weights are finite, weights moved and val acc was recorded."""
    history = run.result.history
    measured = {"entry": run.entry, "input_size": run.size, "epochs_run": run.result.epochs_run,
                "train_loss": [row["train_loss"] for row in history], "val_acc": [row["val_acc"] for row in history],
                "best_val_acc": run.result.best_val.get("acc"), "train_seconds": round(run.result.seconds, 2),
                "conv_output_dtype": run.observation.conv_output_dtype}
    losses = [row[k] for row in history for k in ("train_loss", "val_loss")]
    if not history or not all(math.isfinite(x) for x in losses):
        raise CheckFailed(f"losses not finite: {losses}", measured)
    if bad := _nonfinite_weights(run.final):
        raise CheckFailed(f"weights not finite after training: {', '.join(bad[:3])}", measured)
    if not any(not torch.equal(run.initial[k].cpu(), v) for k, v in run.final.items() if v.is_floating_point()):
        raise CheckFailed("no weight changed during training", measured)
    if not all(isinstance(row.get("val_acc"), float) and 0 <= row["val_acc"] <= 1 for row in history):
        raise CheckFailed("validation accuracy missing from the history", measured)
    return measured


def check_train_bf16(ctx) -> dict:
    expected = autocast_dtype_for(ctx.device)
    if ctx.cuda and expected != torch.bfloat16:
        raise NotApplicable(f"this GPU has no bf16: the loop uses {DTYPE_NAMES[expected]} (see train_fp16_scaler)")
    run = default_run(ctx)
    measured = training_health(run)
    if run.observation.conv_output_dtype != DTYPE_NAMES[expected]:
        raise CheckFailed(f"convolutions ran in {run.observation.conv_output_dtype}, expected "
                          f"{DTYPE_NAMES[expected]}", measured)
    where = "bf16 autocast" if ctx.cuda else "cpu: the loop trains in fp32 here (autocast_dtype_for -> None)"
    detail = (f"{where}; {run.entry} {run.size} px, {run.result.epochs_run} epochs, loss "
              f"{measured['train_loss'][0]:.3f} -> {measured['train_loss'][-1]:.3f}, val acc {measured['val_acc'][-1]:.2f}")
    return measured | {"detail": detail}


def check_train_fp16_scaler(ctx) -> dict:
    # Forced even on a GPU that would pick bf16: the scaler's path must run somewhere.
    run = train_observed(ctx, ctx.sizes.train_entry, ctx.sizes.train_size, amp_dtype=torch.float16)
    measured = training_health(run)
    if run.observation.conv_output_dtype != "fp16":
        raise CheckFailed(f"amp_dtype=fp16 given, convolutions ran in {run.observation.conv_output_dtype}", measured)
    return measured | {"detail": "train_model(amp_dtype=fp16): fp16 autocast + GradScaler"}


def check_channels_last_and_resident_batches(ctx) -> dict:
    run = default_run(ctx)
    seen = run.observation
    measured = {"entry": run.entry, "input_size": run.size, "input_device": seen.input_device,
                "layout_conv": seen.layout_conv, "input_channels_last": seen.input_channels_last,
                "weight_channels_last": seen.weight_channels_last, "resident_train_split": seen.resident_split}
    want_layout = ctx.cuda  # the loop uses channels-last on CUDA only
    problems = [f"{what} is {'' if got else 'not '}channels-last" for what, got in
                (("the batch reaching " + seen.layout_conv, seen.input_channels_last),
                 (seen.layout_conv + ".weight", seen.weight_channels_last)) if got != want_layout]
    if torch.device(seen.input_device).type != ctx.device.type:
        problems.append(f"batches reach the model on {seen.input_device}")
    if not seen.resident_split:
        problems.append(f"no uint8 copy of the whole training split on {ctx.device} during training")
    if problems:
        raise CheckFailed("; ".join(problems), measured)
    layout = "channels-last" if want_layout else "cpu: contiguous NCHW, as the loop intends off CUDA"
    return measured | {"detail": f"{layout}; batches and the uint8 training split on {ctx.device.type}"}


def check_compile_step(ctx) -> dict:
    """compile_step=True against eager on the same seed: first-epoch training losses agree.

    Dropout is off: inductor draws its own random masks, so with dropout the two runs would train on
    different noise and their losses could not be compared this tightly.
    """
    name, size = ctx.sizes.small_entry, ctx.sizes.small_size
    entry, data = ctx.entry_data(name, size)
    recipe = entry.recipe.with_overrides(input_size=size, epochs=1, batch_size=ctx.sizes.batch_size, dropout=0.0)
    train, val = data.train_val_split(recipe.val_fraction, recipe.seed)
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(recipe.seed)
        model = entry.build(input_size=size, dropout=recipe.dropout)
        result = train_model(model, train, val, recipe, ctx.normalizer(entry), progress=False, label=name,
                             compile_step=compiled)
        losses["compiled" if compiled else "eager"] = result.history[0]
    eager, compiled = losses["eager"]["train_loss"], losses["compiled"]["train_loss"]
    rel = abs(compiled - eager) / max(abs(eager), 1e-12)
    tolerance = COMPILE_LOSS_RTOL[ctx.device.type]
    measured = {"entry": name, "input_size": size, "eager_train_loss": eager, "compiled_train_loss": compiled,
                "relative_difference": rel, "tolerance": tolerance,
                "eager_epoch_s": round(losses["eager"]["seconds"], 2),
                "compiled_epoch_s": round(losses["compiled"]["seconds"], 2)}
    if not (math.isfinite(compiled) and rel <= tolerance):
        raise CheckFailed(f"compiled first-epoch loss {compiled:.5f} vs eager {eager:.5f} "
                          f"(relative {rel:.2e} > {tolerance:g})", measured)
    return measured | {"detail": f"{name} {size} px: loss {compiled:.4f} vs eager {eager:.4f} (rel {rel:.1e}); "
                                 f"compiled epoch {measured['compiled_epoch_s']} s incl. compiling"}

