"""Checks of the store-backed training paths: resuming an interrupted run, and the torchrun launcher."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.distributed as dist

from bench.data.batches import to_model_input
from bench.gpu_check.runner import CheckFailed
from bench.train.interruption import Interrupted, interrupt_after
from bench.train.launch import train_with_torchrun
from bench.train.store import CheckpointStore
from bench.train.train_or_load import checkpoint_key, train_or_load

# On CUDA a few kernels (pooling backward, some cuDNN algorithms) add in a varying order, so two
# uninterrupted runs can differ in the last bits. A resume that lost the CUDA RNG would draw other
# dropout masks and differ by about as much as training moves the weights: far above this margin.
NOISE_MARGIN = 10.0





@contextlib.contextmanager
def deterministic_cudnn(device: torch.device) -> Iterator[None]:
    """Deterministic cuDNN algorithms while comparing weights bit by bit; the previous setting after."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point()),
               default=0.0)


def _weights(trained) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}


def _interrupted_state(ctx, entry, recipe, data, store: CheckpointStore) -> dict:
    interrupt_after(store, 1)
    try:
        train_or_load(entry, recipe, data, store, ctx.device, progress=False)
    except Interrupted:
        pass
    else:
        raise CheckFailed("the training was not interrupted after epoch 1")
    state = store.load_resume(checkpoint_key(entry, recipe, data))
    if state is None or state["epoch"] != 1:
        raise CheckFailed(f"no resume state after epoch 1 (found {state and state['epoch']})")
    if ctx.cuda and "cuda" not in state["rng"]:
        raise CheckFailed("the resume state holds no CUDA RNG state")
    return state


def check_resume_cuda_rng(ctx) -> dict:
    name, size = ctx.sizes.small_entry, ctx.sizes.small_size
    entry, data = ctx.entry_data(name, size)
    # The entry's dropout draws from the CUDA RNG on CUDA: a resume that did not restore it diverges.
    recipe = entry.recipe.with_overrides(input_size=size, epochs=2, batch_size=ctx.sizes.batch_size)
    with deterministic_cudnn(ctx.device):
        whole = _weights(train_or_load(entry, recipe, data, ctx.new_store("whole"), ctx.device, progress=False))
        store = ctx.new_store("resumed")
        state = _interrupted_state(ctx, entry, recipe, data, store)
        resumed = train_or_load(entry, recipe, data, CheckpointStore(store.root), ctx.device, progress=False)
        difference = max_difference(whole, _weights(resumed))
        measured = {"entry": name, "input_size": size, "resumed_after_epoch": resumed.manifest["resumed_after_epoch"],
                    "cuda_rng_saved": "cuda" in state["rng"], "max_abs_difference": difference}
        if resumed.manifest["resumed_after_epoch"] != 1:
            raise CheckFailed("the second training did not resume after epoch 1", measured)
        if difference == 0.0:
            return measured | {"detail": f"bit-identical to the uninterrupted run{' (CUDA RNG restored)' if ctx.cuda else ''}"}
        if not ctx.cuda:
            raise CheckFailed(f"resumed weights differ from uninterrupted ones by {difference:.3g}", measured)
        again = _weights(train_or_load(entry, recipe, data, ctx.new_store("again"), ctx.device, progress=False))
    noise = max_difference(whole, again)
    measured["run_to_run_noise"] = noise
    if noise == 0.0 or difference > NOISE_MARGIN * noise:
        raise CheckFailed(f"resumed weights differ by {difference:.3g}; two uninterrupted runs by {noise:.3g}",
                          measured)
    return measured | {"detail": f"within run-to-run noise ({difference:.2g} vs {noise:.2g}); CUDA RNG restored"}


def _finite_logits(model: torch.nn.Module, ctx, entry, data) -> bool:
    normalize = ctx.normalizer(entry)
    model.to(ctx.device).eval()
    with torch.no_grad():
        logits = model(to_model_input(data.decoded.test.images[:8], normalize))
    return bool(torch.isfinite(logits).all())


def check_ddp_one_process_nccl(ctx) -> dict:
    """One torchrun worker through bench.train.launch; NCCL on CUDA, gloo on the CPU (distributed.init_from_env).

    With one process the loop runs without DDP's gradient all-reduce (no second rank to reduce
    with): this checks the launcher, the job file, the process group and the checkpoint hand-back.
    """
    backend = "nccl" if ctx.cuda else "gloo"
    available = dist.is_nccl_available() if ctx.cuda else dist.is_gloo_available()
    if not available:
        raise CheckFailed(f"torch.distributed has no {backend} backend in this build")
    name, size = ctx.sizes.small_entry, ctx.sizes.small_size
    entry, data = ctx.entry_data(name, size)
    recipe = entry.recipe.with_overrides(input_size=size, epochs=1, batch_size=ctx.sizes.batch_size)
    store, key = ctx.new_store("ddp"), checkpoint_key(entry, recipe, data)
    train_with_torchrun(entry, recipe, data, store, key, ctx.device, nproc=1, compile_step=False, fresh=True,
                        progress=False)
    state, manifest = store.load(key)
    model = entry.build(input_size=size, dropout=recipe.dropout, pretrained=False)
    model.load_state_dict(state, strict=True)
    measured = {"entry": name, "input_size": size, "backend": backend, "processes": manifest.get("processes"),
                "worker_device": manifest.get("environment", {}).get("device"),
                "best_val_acc": manifest.get("best_val", {}).get("acc")}
    if manifest.get("processes") != 1 or torch.device(measured["worker_device"]).type != ctx.device.type:
        raise CheckFailed(f"checkpoint from {manifest.get('processes')} process(es) on {measured['worker_device']}",
                          measured)
    if not _finite_logits(model, ctx, entry, data):
        raise CheckFailed("the loaded checkpoint predicts non-finite logits", measured)
    return measured | {"detail": f"torchrun 1 x {backend} on {measured['worker_device']}; checkpoint loads and predicts"}
