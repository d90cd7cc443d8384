"""The torchrun agent of `brainbench train --nproc N`, tied to the launcher's life.

    python -m bench.train.ddp_agent TORCHRUN_ARGS

It is torchrun (torch.distributed.run) itself, run in this process after a few steps:

- the kernel sends it SIGTERM when its launcher dies, even by kill -9 (bench.train.lifeline), and
  torchrun's agent answers SIGTERM by stopping its workers and waiting for them;
- it ignores SIGINT: Ctrl-C at the terminal reaches the launcher too, which then sends the agent one
  SIGTERM (a second signal would cut short torchrun's wait for its workers);
- it leaves quietly where torchrun would print a traceback: with status 128 + signal when stopped,
  and with one line naming the failed ranks when a worker failed (the worker has said why);
- its workers learn its pid, to die with it in turn.
"""

from __future__ import annotations

import os
import signal
import sys

from bench.train import lifeline


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if lifeline.LAUNCHER_PID in os.environ:
        lifeline.die_with_parent(int(os.environ[lifeline.LAUNCHER_PID]))
    os.environ[lifeline.AGENT_PID] = str(os.getpid())  # torchrun hands its environment to the workers
    # Imported after the tie: importing torch takes seconds, and the launcher may die meanwhile.
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(argv)
    except SignalException as stopped:  # the workers are stopped by now (torchrun's own shutdown)
        return 128 + int(stopped.sigval)
    except ChildFailedError as failed:
        statuses = ", ".join(f"rank {rank}: status {failure.exitcode}"
                             for rank, failure in sorted(failed.failures.items()))
        print(f"brainbench: torchrun worker(s) failed ({statuses})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
