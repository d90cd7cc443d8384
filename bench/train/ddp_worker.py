"""One torchrun process of a multi-process training: `python -m torch.distributed.run ... -m bench.train.ddp_worker JOB`.

JOB is the file bench.train.launch wrote. Every rank runs the ordinary train_or_load inside the
process group; the loop shards the batches, and rank 0 alone writes the store. A worker ends
with its agent and with the launcher (bench.train.lifeline); an error meant for the user is
printed as one line and left in the job folder, where the launcher reads it to raise it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import torch

from bench.errors import BrainbenchError
from bench.io import write_text_atomically
from bench.train import distributed, lifeline
from bench.train.settings import TrainSettings
from bench.train.store import CheckpointStore
from bench.train.train_or_load import train_or_load

EXIT_GRACE_S = 3.0  # after SIGTERM: time for finally blocks before a hard exit


def _report(error: BrainbenchError, job: dict) -> None:
    """One line on stderr, and the message in the job folder for the launcher."""
    print(f"brainbench: error: {error}", file=sys.stderr)
    if job.get("errors"):
        with contextlib.suppress(OSError):
            write_text_atomically(Path(job["errors"]) / f"error-rank{os.environ.get('RANK', '0')}.txt", f"{error}\n")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: torchrun ... -m bench.train.ddp_worker JOB_FILE (written by bench.train.launch)",
              file=sys.stderr)
        return 2
    lifeline.exit_on_signals(EXIT_GRACE_S)  # first: a signal from now on exits through the finally blocks
    lifeline.tie_worker_to_launcher()
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
    except BrainbenchError as error:
        _report(error, job)
        return 2
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
