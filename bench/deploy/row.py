"""One model, every deployment mode, one flat row: checked against eager, then timed alike.

For each mode: build it, compare its logits with eager's on real test images (before any time
counts), then time it with timing.mode_latency, the same warm-up/median/p90/throughput code eager
efficiency uses. A mode never disappears from the row and never raises out of it: its columns are
None and latency_note_<mode> says why, as `n/a: <reason>` when it cannot run here
(ModeUnavailable: no CUDA, a package missing) or `error: <Type>: <first line>` when it failed.
The unavailable ones make one log line per entry; each error makes its own warning.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import torch
from torch import nn

from bench.data.batches import Normalizer, to_model_input
from bench.deploy.agreement import agreement_columns, chunked_logits
from bench.deploy.modes import DEFAULT_MODES, EXTRA_COLUMNS, MODES, PER_BATCH_COMPILE_MODES, Prepare
from bench.deploy.prepared import ModeUnavailable, Prepared
from bench.evaluate.timing import _synchronize, measure_latency, mode_latency
from bench.mode_notes import NA, error_note, na_note, note_reason, note_status

# (mode, eager's outputs, the mode's outputs on the same check images) -> agreement columns.
Agreement = Callable[[str, torch.Tensor, torch.Tensor], dict]

log = logging.getLogger(__name__)

REFERENCE = "eager"

# Modest on a CPU, where a throughput batch takes a good fraction of a second. On a GPU pass
# min_time_s (e.g. 1.0) so that fast modes are timed long enough to be stable.
TIMING_DEFAULTS = dict(batch1_warmup=5, batch1_iters=20, throughput_warmup=1, throughput_iters=3)


def note_for(exc: BaseException) -> str:
    """'n/a: <reason>' for an expected absence, 'error: <Type>: <first line>' for anything else."""
    return na_note(exc) if isinstance(exc, ModeUnavailable) else error_note(exc)


def empty_columns(mode: str, throughput_batch: int) -> dict:
    """Every column a mode has, as None: the table keeps its shape whatever fails."""
    keys = (f"latency_ms_b1_{mode}", f"latency_ms_b1_{mode}_p90", f"latency_ms_b1_{mode}_std",
            f"throughput_ips_b{throughput_batch}_{mode}", f"throughput_batch_{mode}", f"compile_s_{mode}",
            f"max_abs_diff_{mode}", f"agreement_{mode}", f"agreement_flag_{mode}",
            *EXTRA_COLUMNS.get(mode, ()))
    if mode in PER_BATCH_COMPILE_MODES:
        keys += (f"compile_s_b1_{mode}", f"compile_s_b{throughput_batch}_{mode}")
    return dict.fromkeys(keys)


def _converter(prepared: Prepared) -> Callable[[torch.Tensor], Any]:
    """prepared.convert, plus compiling for the input's shape where the mode compiles per shape:
    every input the row makes goes through here before `forward` sees it, so no check or timed
    call ever meets a shape its mode has not compiled yet."""
    if prepared.compile_for is None:
        return prepared.convert

    def convert(x: torch.Tensor) -> Any:
        converted = prepared.convert(x)
        prepared.compile_for(converted)
        return converted
    return convert


def per_batch_compile_columns(mode: str, prepared: Prepared, throughput_batch: int, used_batch: int) -> dict:
    """compile_s_b1_<mode> and compile_s_b<N>_<mode> (named after the requested throughput batch,
    valued at the batch that ran, as the throughput column is); compile_s_<mode> becomes their sum:
    what compiling costs a deployment serving these two batch sizes."""
    b1, big = prepared.compile_s_by_batch.get(1), prepared.compile_s_by_batch.get(used_batch)
    total = None if b1 is None or big is None else b1 + (big if used_batch != 1 else 0.0)
    return {f"compile_s_b1_{mode}": b1, f"compile_s_b{throughput_batch}_{mode}": big, f"compile_s_{mode}": total}


def _release(prepared: Prepared | None, device: torch.device) -> None:
    if prepared is not None and prepared.release is not None:
        prepared.release()
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def measure_mode(mode: str, prepare: Prepare, model: nn.Module, chw: tuple[int, ...], device: torch.device,
                 check_images: torch.Tensor | None, reference: torch.Tensor | None, *,
                 throughput_batch: int, check_batch: int, timing: dict,
                 agreement: Agreement = agreement_columns) -> dict:
    """One mode's columns; never raises (the failure becomes latency_note_<mode>)."""
    row = empty_columns(mode, throughput_batch)
    prepared = None
    try:
        with torch.no_grad():
            example = torch.randn((1, *chw), device=device)
            prepared = prepare(model, example, device, throughput_batch)
            row |= prepared.extra
            row[f"compile_s_{mode}"] = prepared.compile_s
            convert = _converter(prepared)
            if mode != REFERENCE and reference is not None:
                logits = chunked_logits(prepared.forward, convert, check_images, check_batch)
                row |= agreement(mode, reference, logits)

            def make_runner(batch: int) -> Callable[[], Any]:
                x = convert(torch.randn((batch, *chw), device=device))
                _synchronize(device)
                return lambda: prepared.forward(x)

            with prepared.timing_context():
                row |= mode_latency(mode, make_runner, device, throughput_batch=throughput_batch, **timing)
            if prepared.compile_for is not None:
                row |= per_batch_compile_columns(mode, prepared, throughput_batch,
                                                 row[f"throughput_batch_{mode}"])
    except Exception as exc:  # noqa: BLE001 - a failing mode is a result, not a crash
        if not isinstance(exc, ModeUnavailable):  # unavailable ones are logged together, per entry
            log.warning("deployment mode %s: %s", mode, note_for(exc))
        log.debug("deployment mode %s failed", mode, exc_info=True)
        for key in (f"latency_ms_b1_{mode}", f"latency_ms_b1_{mode}_p90", f"latency_ms_b1_{mode}_std",
                    f"throughput_ips_b{throughput_batch}_{mode}", f"throughput_batch_{mode}"):
            row[key] = None  # agreement and compile time, if measured before the failure, stay
        row[f"latency_note_{mode}"] = note_for(exc)
    finally:
        _release(prepared, device)
    return row


def e2e_latency(model: nn.Module, image: torch.Tensor | None, normalize: Normalizer | None,
                device: torch.device, timing: dict) -> dict:
    """Batch-1 latency from one decoded uint8 image (on the CPU, as the cache holds it) to logits:
    to_model_input (copy to the device, scale, normalize) plus the eager forward. Its gap to
    latency_ms_b1_eager is what preprocessing costs a deployed model."""
    row = {"latency_ms_b1_e2e": None, "latency_ms_b1_e2e_p90": None, "latency_ms_b1_e2e_std": None}
    if image is None or normalize is None:
        return row | {"latency_note_e2e": na_note("no decoded image and normalizer given")}
    try:
        one = image[:1] if image.dim() == 4 else image.unsqueeze(0)
        with torch.no_grad():
            stats = measure_latency(lambda: model(to_model_input(one, normalize)), device=device,
                                    warmup=timing["batch1_warmup"], iters=timing["batch1_iters"],
                                    min_time_s=timing.get("min_time_s"))
    except Exception as exc:  # noqa: BLE001
        log.warning("end-to-end latency: %s", note_for(exc))
        return row | {"latency_note_e2e": note_for(exc)}
    return {"latency_ms_b1_e2e": stats["median_ms"], "latency_ms_b1_e2e_p90": stats["p90_ms"],
            "latency_ms_b1_e2e_std": stats["std_ms"]}


def log_unavailable(label: str, row: dict, modes: Sequence[str]) -> None:
    """One line for all the modes that cannot run here, grouped by reason:
    'cnn0.scratch: deployment modes not available here: eager_fp16, tensorrt (no CUDA device); ...'."""
    by_reason: dict[str, list[str]] = {}
    for mode in modes:
        note = row.get(f"latency_note_{mode}")
        if note_status(note) == NA:
            by_reason.setdefault(note_reason(note), []).append(mode)
    if by_reason:
        groups = "; ".join(f"{', '.join(names)} ({reason})" for reason, names in by_reason.items())
        log.info("%s: deployment modes not available here: %s", label, groups)


def _reference_logits(model: nn.Module, check_images: torch.Tensor | None, chunk: int) -> torch.Tensor | None:
    if check_images is None or len(check_images) == 0:
        return None
    with torch.no_grad():
        return chunked_logits(model, lambda x: x, check_images, chunk)


def deployment_row(model: nn.Module, input_shape: tuple[int, int, int, int], device: str | torch.device,
                   check_images: torch.Tensor | None, *, modes: Sequence[str] = DEFAULT_MODES,
                   throughput_batch: int = 64, e2e_image: torch.Tensor | None = None,
                   normalize: Normalizer | None = None, check_batch: int = 16,
                   registry: Mapping[str, Prepare] = MODES, label: str = "model",
                   agreement: Agreement = agreement_columns, **timing_kwargs: Any) -> dict:
    """Latency, throughput, compile time and agreement with eager for each of `modes`.

    model: an fp32 classifier; moved to `device` in place and put in eval mode (as eager_latency
      does). input_shape: (1, C, H, W). check_images: normalized float (N, C, H, W) test images
      (None skips the agreement check); any device, moved here. They run in chunks of
      min(check_batch, throughput_batch): small, so the check never needs the memory the
      throughput batch may not have.
    e2e_image + normalize: one decoded uint8 image (C, H, W) or (1, C, H, W) and the entry's
      Normalizer, for latency_ms_b1_e2e.
    label: names the model (the zoo entry) in the log line listing unavailable modes.
    agreement: (mode, eager outputs, mode outputs) -> columns; top-1 agreement for a classifier,
      mask IoU for a segmenter (bench.segmentation.modes).
    timing_kwargs: batch1_warmup, batch1_iters, throughput_warmup, throughput_iters, min_time_s
      (mode_latency's), defaulting to TIMING_DEFAULTS.
    Raises ValueError only for a bad call (unknown mode, bad shape); never for a failing mode.
    """
    unknown = [m for m in modes if m not in registry]
    if unknown:
        raise ValueError(f"unknown deployment modes {unknown}; known: {sorted(registry)}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or shape[0] != 1:
        raise ValueError(f"input_shape must be (1, C, H, W), got {input_shape!r}")
    device = device if isinstance(device, torch.device) else torch.device(device)
    timing = TIMING_DEFAULTS | timing_kwargs
    model.to(device).eval()
    if check_images is not None:
        check_images = check_images.to(device=device, dtype=torch.float32)

    check_batch = max(1, min(check_batch, throughput_batch))
    row: dict = {}
    try:
        reference = _reference_logits(model, check_images, check_batch)
    except Exception as exc:  # noqa: BLE001 - without a reference no mode can be trusted or timed
        note = error_note(exc, context="eager failed on the check images")
        log.warning("%s: %s", label, note)
        for mode in modes:
            row |= empty_columns(mode, throughput_batch) | {f"latency_note_{mode}": note}
        return row | e2e_latency(model, None, None, device, timing) | {"latency_note_e2e": note}

    for mode in modes:
        row |= measure_mode(mode, registry[mode], model, shape[1:], device, check_images, reference,
                            throughput_batch=throughput_batch, check_batch=check_batch, timing=timing,
                            agreement=agreement)
    log_unavailable(label, row, modes)
    return row | e2e_latency(model, e2e_image, normalize, device, timing)
