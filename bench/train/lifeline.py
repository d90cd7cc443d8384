"""Tie the processes of a multi-process training to the brainbench process that launched them.

`brainbench train --nproc N` runs launcher -> torchrun agent -> N workers, and torchrun starts
every worker in a session of its own: neither Ctrl-C at the terminal nor the death of the
launcher reaches a worker by itself, and an orphaned worker would train every epoch and write
the store. Two ties, so that kill -9 of the launcher ends them too:

- the kernel's parent-death signal (prctl PR_SET_PDEATHSIG): the agent gets SIGTERM when the
  launcher dies, however it dies, and torchrun's agent passes SIGTERM on to its workers; each
  worker gets SIGTERM when the agent dies. It only ties a process to its direct parent, hence
- a daemon thread in every worker that waits on the launcher's pid (a pidfd, which a reused pid
  cannot fool) and sends the worker SIGTERM once the launcher is gone, even if the agent is stuck.

A worker turns SIGTERM, SIGINT and SIGHUP into SystemExit, so that finally blocks run (a
half-written resume.pt's temporary file is removed), and exits hard after a grace period if its
main thread is stuck in a collective whose peer has already gone.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

LAUNCHER_PID = "BRAINBENCH_LAUNCHER_PID"  # set by bench.train.launch for the agent and the workers
AGENT_PID = "BRAINBENCH_AGENT_PID"  # set by bench.train.ddp_agent for its workers
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
POLL_S = 0.5  # how often the fallback watcher (no pidfd) looks for the launcher


def die_with_parent(parent: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Get `sig` when the direct parent (pid `parent`) dies; at once if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died before the tie was made: we were handed to another parent
        os.kill(os.getpid(), sig)


def _wait_for_exit(pid: int) -> None:
    """Return once process `pid` has ended (at once if there is none)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (old kernel or not Linux): ask the kernel now and then
        while is_alive(pid):
            time.sleep(POLL_S)
        return
    try:
        select.select([fd], [], [])  # a pidfd turns readable when its process ends
    finally:
        os.close(fd)


def is_alive(pid: int) -> bool:
    """Whether a process `pid` exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def when_gone(pid: int, then: Callable[[], None]) -> threading.Thread:
    """Call `then` from a daemon thread once process `pid` has ended."""
    def watch() -> None:
        _wait_for_exit(pid)
        then()

    thread = threading.Thread(target=watch, name=f"watch-pid-{pid}", daemon=True)
    thread.start()
    return thread


def exit_on_signals(grace_s: float) -> None:
    """SIGTERM, SIGINT and SIGHUP raise SystemExit(128 + signal) in the main thread, once; if the
    process is still there `grace_s` later (its main thread stuck in C code), it exits hard.
    Call from the main thread."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)  # written by the C-level handler, even while the main thread is busy in C
    exiting = threading.Event()

    def raise_exit(signum: int, frame) -> None:
        if not exiting.is_set():  # a second signal must not interrupt the clean-up of the first
            exiting.set()
            raise SystemExit(128 + signum)

    def exit_hard_after_grace() -> None:
        while (signum := os.read(read_end, 1)[0]) not in EXIT_SIGNALS:
            pass  # another signal with a Python handler (SIGCHLD, say) also wakes this fd
        time.sleep(grace_s)
        os._exit(128 + signum)

    for sig in EXIT_SIGNALS:
        signal.signal(sig, raise_exit)
    threading.Thread(target=exit_hard_after_grace, name="exit-after-grace", daemon=True).start()


def terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def tie_worker_to_launcher() -> None:
    """In a torchrun worker started by brainbench: end with the agent and with the launcher."""
    if AGENT_PID in os.environ:
        die_with_parent(int(os.environ[AGENT_PID]))
    if LAUNCHER_PID in os.environ:
        when_gone(int(os.environ[LAUNCHER_PID]), terminate_self)
