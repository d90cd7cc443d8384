"""Data-parallel training across torchrun processes: which rank we are, and the few collectives we need.

One process per GPU (NCCL) or per CPU share (gloo). Every rank draws the same shuffled order and
the same augmentation table from the same seed, and takes its slice of each global batch; DDP
averages gradients, so an update equals the one-process update on the whole global batch. Without
a process group everything here is a no-op and training runs as one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bench.errors import DistributedError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the checkpoint store and prints progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def current() -> Ranks:
    """This process's rank and the world size; (0, 1) when no process group is running."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES) and int(os.environ["WORLD_SIZE"]) > 1


def init_from_env(device_type: str) -> torch.device:
    """Join the process group torchrun set up; the device this rank trains on (cuda:LOCAL_RANK or cpu)."""
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise DistributedError(f"not started by torchrun: environment variable(s) {', '.join(missing)} missing")
    local_rank = int(os.environ["LOCAL_RANK"])
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(f"rank with LOCAL_RANK={local_rank} has no GPU: "
                                   f"{torch.cuda.device_count()} visible")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_batch_size(global_batch: int, ranks: Ranks) -> int:
    """Images per rank per step; the global batch must split evenly so that averaged gradients are exact."""
    if global_batch % ranks.world_size:
        raise DistributedError(f"batch size {global_batch} does not split evenly over {ranks.world_size} "
                               f"processes; choose a batch size divisible by {ranks.world_size}")
    return global_batch // ranks.world_size


def prepare_model(model: nn.Module, device: torch.device, ranks: Ranks) -> nn.Module:
    """BatchNorm over the global batch on GPUs (SyncBatchNorm), so the recipe's batch size means the
    same with any number of processes. SyncBatchNorm has no CPU kernel, so on CPU each rank
    normalizes its own slice; models without BatchNorm are unaffected either way."""
    if ranks.active and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap(model: nn.Module, device: torch.device, ranks: Ranks) -> nn.Module:
    """DDP around `model` when several processes train; the model itself otherwise."""
    if not ranks.active:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks in place (a no-op in one process); returns the tensor."""
    if current().active:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_min(tensor: torch.Tensor) -> torch.Tensor:
    """Minimum over ranks in place (a no-op in one process); returns the tensor."""
    if current().active:
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def sync_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) everywhere: without SyncBatchNorm each rank
    updated them from its own slice, and validation and the saved checkpoint must see one model."""
    if current().active:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
