"""One torchrun process of a multi-process training: `python -m torch.distributed.run ... -m bench.train.ddp_worker JOB`.

JOB is the file bench.train.launch wrote. Every rank runs the ordinary train_or_load inside the
process group; the loop shards the batches, and rank 0 alone writes the store.
"""

from __future__ import annotations

import logging
import sys

import torch

from bench.train import distributed
from bench.train.settings import TrainSettings
from bench.train.store import CheckpointStore
from bench.train.train_or_load import train_or_load


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: torchrun ... -m bench.train.ddp_worker JOB_FILE (written by bench.train.launch)",
              file=sys.stderr)
        return 2
    # Our own file, written moments ago by the launching process (see bench.train.launch).
    job = torch.load(argv[0], map_location="cpu", weights_only=False, mmap=True)
    device = distributed.init_from_env(job["device_type"])
    ranks = distributed.current()
    logging.basicConfig(level=logging.INFO if ranks.is_main else logging.WARNING,
                        format=f"brainbench[rank {ranks.rank}]: %(levelname)s: %(message)s")
    try:
        train_or_load(job["entry"], job["recipe"], job["data"], CheckpointStore(job["store"]), device,
                      progress=job["progress"] and ranks.is_main,
                      settings=TrainSettings(compile_step=job["compile_step"]))
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
