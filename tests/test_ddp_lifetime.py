"""`brainbench train --nproc 2` interrupted: its torchrun workers end with it, and its job folder goes.

Real processes throughout: the CLI as a subprocess, the real torchrun agent and gloo workers,
real SIGINT and SIGKILL; the process tree is read from /proc.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.train.launch import JOB_PREFIX, remove_stale_job_folders
from bench.train.store import MANIFEST

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 90  # three Python processes import torch on a shared 2-core machine
GONE_WITHIN_S = 15


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # gone meanwhile
        return ""


def _parent(pid: int) -> int | None:
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def processes_mentioning(marker: str) -> dict[int, str]:
    """Running processes whose command line names `marker` (this test's own temporary folder); a
    zombie's command line is empty, so it does not count."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and marker in (line := _cmdline(int(entry.name))):
            found[int(entry.name)] = line
    return found


class Training:
    """`brainbench train cnn0.scratch --nproc 2` in a subprocess with a temporary folder of its own."""

    def __init__(self, tmp_path: Path):
        self.temp = tmp_path / "tmp"
        self.temp.mkdir()
        self.store = tmp_path / "store"
        self.log = open(tmp_path / "launcher.log", "wb")  # noqa: SIM115 - closed by kill_everything()
        env = {**os.environ, "TMPDIR": str(self.temp), "OMP_NUM_THREADS": "1"}
        self.launcher = subprocess.Popen(
            [sys.executable, "-m", "bench.cli", "train", "cnn0.scratch", "--nproc", "2", "--epochs", "200",
             "--input-size", "32", "--device", "cpu", "--store", str(self.store), "--cache", str(tmp_path / "cache")],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group, as at a terminal, so that Ctrl-C can be sent to it

    def processes(self) -> dict[int, str]:
        return processes_mentioning(str(self.temp))

    def workers(self) -> list[int]:
        # The agent's command line names the worker module too, as its argument.
        return [pid for pid, line in self.processes().items()
                if "bench.train.ddp_worker" in line and "ddp_agent" not in line and "torch.distributed.run" not in line]

    def wait_until_training(self) -> list[int]:
        """The workers' pids once both run and the first epoch is done (its history.csv is written)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            workers = self.workers()
            if len(workers) == 2 and list(self.store.glob("*/*/history.csv")):
                return workers
            assert self.launcher.poll() is None, self.output()
            time.sleep(0.2)
        pytest.fail(f"the workers did not start training within {START_TIMEOUT_S} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def job_folders(self) -> list[Path]:
        return sorted(self.temp.glob(f"{JOB_PREFIX}*"))

    def kill_everything(self) -> None:
        """Clean-up by pid, whatever the test left: the launcher and every process of this training."""
        for pid in [self.launcher.pid, *self.processes()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.launcher.wait()
        self.log.close()


def wait_until_gone(pids, training: Training) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _cmdline(pid)]
        if not alive and not training.processes():
            return
        time.sleep(0.2)
    left = {pid: (_parent(pid), line) for pid, line in training.processes().items()}
    pytest.fail(f"still running {GONE_WITHIN_S} s after the launcher ended (pid: (parent, command)): {left}")


def assert_launcher_tree(training: Training, workers: list[int]) -> None:
    # brainbench -> torchrun agent -> workers: the thing that must be cut at its top.
    agents = {_parent(pid) for pid in workers}
    assert len(agents) == 1 and _parent(agents.pop()) == training.launcher.pid


@pytest.mark.slow
@pytest.mark.parametrize("sig, to_group, status", [(signal.SIGINT, False, 130), (signal.SIGINT, True, 130),
                                                   (signal.SIGTERM, False, 128 + signal.SIGTERM)],
                         ids=["sigint-to-launcher", "ctrl-c-to-process-group", "sigterm-to-launcher"])
def test_a_signal_stops_the_workers_and_removes_the_job_folder(tmp_path, sig, to_group, status):
    # Ctrl-C at a terminal reaches the launcher and the agent (torchrun puts each worker in a session
    # of its own); `kill -INT` or `kill` reaches the launcher alone.
    training = Training(tmp_path)
    try:
        workers = training.wait_until_training()
        assert_launcher_tree(training, workers)
        assert len(training.job_folders()) == 1
        if to_group:
            os.killpg(training.launcher.pid, sig)
        else:
            training.launcher.send_signal(sig)
        assert training.launcher.wait(GONE_WITHIN_S + 20) == status, training.output()
        wait_until_gone(workers, training)
        assert training.job_folders() == []
        assert not list(training.store.glob(f"*/*/{MANIFEST}"))  # it never finished, so nothing counts as trained
    finally:
        training.kill_everything()


@pytest.mark.slow
def test_kill_9_of_the_launcher_stops_the_workers_and_the_next_start_removes_the_job_folder(tmp_path):
    training = Training(tmp_path)
    try:
        workers = training.wait_until_training()
        assert_launcher_tree(training, workers)
        os.kill(training.launcher.pid, signal.SIGKILL)
        training.launcher.wait()
        wait_until_gone(workers, training)
        assert not list(training.store.glob(f"*/*/{MANIFEST}"))
        # kill -9 runs no code of ours: the job folder (the whole decoded dataset) stays until the next start.
        (left,) = training.job_folders()
        assert left.name.startswith(f"{JOB_PREFIX}{training.launcher.pid}-")
        assert remove_stale_job_folders(training.temp) == [left] and not left.exists()
    finally:
        training.kill_everything()


def test_only_job_folders_of_gone_launchers_are_removed(tmp_path):
    ended = subprocess.run(["true"], check=True)  # a pid that has just ended
    gone = subprocess.Popen(["true"])
    gone.wait()
    mine = tmp_path / f"{JOB_PREFIX}{os.getpid()}-abc"
    stale = tmp_path / f"{JOB_PREFIX}{gone.pid}-def"
    unrelated = tmp_path / f"{JOB_PREFIX}notapid"
    for folder in (mine, stale, unrelated):
        folder.mkdir()
        (folder / "job.pt").write_bytes(b"dataset")
    assert ended.returncode == 0
    assert remove_stale_job_folders(tmp_path) == [stale]
    assert mine.exists() and unrelated.exists() and not stale.exists()
