"""Train one entry in N torchrun processes (DDP); the checkpoint lands in the store under its usual key.

The parent hands the workers a job file: the entry, recipe, store and the loaded dataset itself
(written with torch.save, memory-mapped by every worker), so the workers train on exactly the
data and split the parent sees, with no second decoding or discovery. The file is written by
this process into a private temporary folder, so unpickling it is safe.

Lifetime: the workers end with this process, however it ends (bench.train.lifeline: the agent
gets SIGTERM from the kernel when we die, the workers watch our pid). The job folder is removed
on every exit path that runs code (an error, Ctrl-C, SIGTERM); a kill -9 leaves it behind, so its
name carries our pid and the next launch removes the folders of launchers that are gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

import bench
from bench.data.dataset import LoadedDataset
from bench.errors import DistributedError
from bench.pretrain.get_or_pretrain import get_or_pretrain
from bench.train import lifeline
from bench.train.distributed import Ranks, local_batch_size
from bench.train.store import CheckpointKey, CheckpointStore
from zoo.entry import ZooEntry
from zoo.recipe import Recipe

AGENT_MODULE = "bench.train.ddp_agent"
WORKER_MODULE = "bench.train.ddp_worker"
JOB_PREFIX = "brainbench-ddp-"  # + launcher pid + "-" + random: the job folder in the temporary folder
SHUTDOWN_TIMEOUT_S = 10  # torchrun's wait for its workers after a signal before it kills them
AGENT_SIGNALS = "SIGTERM,SIGHUP,SIGQUIT"  # what torchrun's agent handles; SIGINT it ignores (bench.train.ddp_agent)


def check_nproc(nproc: int, device: torch.device, batch_size: int) -> None:
    """Fail here, before any process starts, on what would fail in every worker."""
    if nproc < 1:
        raise DistributedError(f"--nproc must be at least 1, got {nproc}")
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise DistributedError(f"--nproc {nproc} needs {nproc} GPUs (ranks use cuda:0 to cuda:{nproc - 1}; "
                               f"CUDA_VISIBLE_DEVICES picks them), but {torch.cuda.device_count()} are visible")
    local_batch_size(batch_size, Ranks(0, nproc))


def torchrun_command(nproc: int, job: Path) -> list[str]:
    return [sys.executable, "-m", AGENT_MODULE, "--standalone", f"--nproc_per_node={nproc}",
            f"--shutdown_timeout={SHUTDOWN_TIMEOUT_S}", f"--signals_to_handle={AGENT_SIGNALS}",
            "-m", WORKER_MODULE, str(job)]


def _worker_environment(nproc: int) -> dict[str, str]:
    """The workers import this very checkout, and on the CPU share its cores instead of each taking one."""
    env = dict(os.environ)
    root = str(Path(bench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env[lifeline.LAUNCHER_PID] = str(os.getpid())  # the agent and the workers end when we do
    return env


def remove_stale_job_folders(temp: Path) -> list[Path]:
    """Job folders (each holding a whole decoded dataset) whose launcher is gone: killed -9, it could not
    remove its own. Only our user's folders, and only when the pid in the name is no running process."""
    removed = []
    for folder in temp.glob(f"{JOB_PREFIX}*"):
        pid = folder.name[len(JOB_PREFIX):].split("-", 1)[0]
        try:
            ours = folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if ours and pid.isdigit() and not lifeline.is_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _new_job_folder() -> Path:
    temp = Path(tempfile.gettempdir())
    remove_stale_job_folders(temp)
    try:
        return Path(tempfile.mkdtemp(prefix=f"{JOB_PREFIX}{os.getpid()}-", dir=temp))
    except OSError as error:
        raise DistributedError(f"cannot create the torchrun job folder in {temp}: {error.strerror}") from None


def _write_job(job: Path, content: dict) -> None:
    try:
        torch.save(content, job)
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        raise DistributedError(f"cannot write the torchrun job file {job}: {str(error).splitlines()[0]}") from None


def _prepare_store(store: CheckpointStore, key: CheckpointKey, fresh: bool) -> None:
    """Refuse now, before any worker starts, if another process trains this key; with `fresh`, the old
    checkpoint and resume state go (the workers never see `fresh`). Rank 0 takes the lock again."""
    store.lock(key)
    try:
        if fresh:
            store.begin(key)
            store.clear_resume(key)
    finally:
        store.unlock(key)


@contextlib.contextmanager
def _sigterm_raises_exit() -> Iterator[None]:
    """SIGTERM becomes SystemExit here, so that the finally blocks stop the workers and remove the job."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_exit(signum: int, frame) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(agent: subprocess.Popen) -> None:
    """Stop the agent and with it the workers: one SIGTERM, which torchrun passes on to its workers
    and waits for; SIGKILL if the agent outlives that wait."""
    if agent.poll() is not None:
        return
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(SHUTDOWN_TIMEOUT_S + 5)
    except subprocess.TimeoutExpired:
        agent.kill()  # its workers still get SIGTERM from the kernel (lifeline) when it dies
        agent.wait()


def _run_agent(command: list[str], env: dict[str, str]) -> int:
    """The agent's exit status; on any interruption of ours (Ctrl-C, SIGTERM) the agent is stopped first."""
    agent = subprocess.Popen(command, env=env)
    try:
        with _sigterm_raises_exit():
            return agent.wait()
    except BaseException:
        _stop(agent)
        raise


def _reported_error(folder: Path) -> str | None:
    """The one-line error a worker wrote (the lowest rank's), if any (see bench.train.ddp_worker)."""
    for path in sorted(folder.glob("error-rank*.txt"), key=lambda p: int(p.stem.removeprefix("error-rank"))):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return path.read_text().strip() or None
    return None


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
    _prepare_store(store, key, fresh)
    folder = _new_job_folder()
    try:
        job = folder / "job.pt"
        _write_job(job, {"entry": entry, "recipe": recipe, "data": data, "store": str(store.root),
                         "device_type": device.type, "compile_step": compile_step, "progress": progress,
                         "errors": str(folder)})
        status = _run_agent(torchrun_command(nproc, job), _worker_environment(nproc))
        reported = _reported_error(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if status != 0:
        raise DistributedError(reported or (
            f"torchrun training of {entry.name} in {nproc} processes failed with exit status {status} (the "
            f"workers' output above says why); the next run resumes from the last epoch finished in "
            f"{store.folder(key)}, if any"))
