"""Train one entry in N torchrun processes (DDP); the checkpoint lands in the store under its usual key.

The parent hands the workers a job file: the entry, recipe, store and the loaded dataset itself
(written with torch.save, memory-mapped by every worker), so the workers train on exactly the
data and split the parent sees, with no second decoding or discovery. The file is written by
this process into a private temporary folder and deleted afterwards, so unpickling it is safe.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import bench
from bench.data.dataset import LoadedDataset
from bench.errors import DistributedError
from bench.pretrain.get_or_pretrain import get_or_pretrain
from bench.train.distributed import Ranks, local_batch_size
from bench.train.store import CheckpointKey, CheckpointStore
from zoo.entry import ZooEntry
from zoo.recipe import Recipe

WORKER_MODULE = "bench.train.ddp_worker"


def check_nproc(nproc: int, device: torch.device, batch_size: int) -> None:
    """Fail here, before any process starts, on what would fail in every worker."""
    if nproc < 1:
        raise DistributedError(f"--nproc must be at least 1, got {nproc}")
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise DistributedError(f"--nproc {nproc} needs {nproc} GPUs (ranks use cuda:0 to cuda:{nproc - 1}; "
                               f"CUDA_VISIBLE_DEVICES picks them), but {torch.cuda.device_count()} are visible")
    local_batch_size(batch_size, Ranks(0, nproc))


def torchrun_command(nproc: int, job: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", WORKER_MODULE, str(job)]


def _worker_environment(nproc: int) -> dict[str, str]:
    """The workers import this very checkout, and on the CPU share its cores instead of each taking one."""
    env = dict(os.environ)
    root = str(Path(bench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def train_with_torchrun(entry: ZooEntry, recipe: Recipe, data: LoadedDataset, store: CheckpointStore,
                        key: CheckpointKey, device: torch.device, *, nproc: int, compile_step: bool,
                        fresh: bool, progress: bool) -> None:
    """Run the training; returns once rank 0 has stored the checkpoint, raises DistributedError otherwise."""
    check_nproc(nproc, device, recipe.batch_size)
    if entry.pretraining is not None:
        # A MoCo backbone is pretrained once, here, not by every rank; the workers load it.
        get_or_pretrain(entry, recipe, data, store, device, fresh=fresh, progress=progress)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the workers need this process's cached GPU memory
    if fresh:  # the workers never see `fresh`: the old checkpoint and resume state go now
        store.begin(key)
        store.clear_resume(key)
    with tempfile.TemporaryDirectory(prefix="brainbench-ddp-") as folder:
        job = Path(folder) / "job.pt"
        torch.save({"entry": entry, "recipe": recipe, "data": data, "store": str(store.root),
                    "device_type": device.type, "compile_step": compile_step, "progress": progress}, job)
        completed = subprocess.run(torchrun_command(nproc, job), env=_worker_environment(nproc), check=False)
    if completed.returncode != 0:
        raise DistributedError(f"torchrun training of {entry.name} in {nproc} processes failed with exit status "
                               f"{completed.returncode} (the workers' output above says why); the next run resumes "
                               f"from the last epoch finished in {store.folder(key)}, if any")
