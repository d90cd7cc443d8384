"""The store under real failures: a file-size limit mid-write, a file where a folder must be, a
directory where a file must be, damaged manifest fields, and two processes training one key."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import zoo
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.errors import CheckpointBusyError, CheckpointError
from bench.train.store import (
    HISTORY,
    LOCK,
    MANIFEST,
    RESUME,
    TRAINED_FIELDS,
    WEIGHTS,
    CheckpointKey,
    CheckpointStore,
)
from bench.train.train_or_load import checkpoint_key, train_or_load

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
KEY = CheckpointKey("cnn0.scratch", "abc123", "f00d")
LIMIT = 200_000  # bytes: RLIMIT_FSIZE of the writing process; every big write below passes it

# Run in a subprocess: RLIMIT_FSIZE makes the kernel refuse (EFBIG) any write past LIMIT bytes, the
# real failure a full disk gives (ENOSPC) at a size we choose. SIGXFSZ would kill the process
# instead, so it is ignored there.
WRITER = textwrap.dedent(f"""
    import json, resource, signal, sys
    import torch
    from bench.train.store import CheckpointKey, CheckpointStore
    store, key = CheckpointStore(sys.argv[1]), CheckpointKey(*{list(vars(KEY).values())!r})
    store.save_resume(key, {{"epoch": 1, "model": {{"w": torch.zeros(10)}}}})  # the previous state, kept
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))
    big = torch.zeros({LIMIT // 2})  # 400 kB of float32
    cases = {{
        "resume": lambda: store.save_resume(key, {{"epoch": 2, "model": {{"w": big}}}}),
        "weights": lambda: store.save(key, {{"w": big}}, {{}}),
        "manifest": lambda: store.save(key, {{"w": torch.zeros(10)}}, {{"note": "x" * {LIMIT}}}),
        "history": lambda: store.write_history(key, [{{"epoch": i, "note": "x" * 1000}} for i in range(300)]),
    }}
    results = {{}}
    for name, write in cases.items():
        try:
            write()
            results[name] = ["no error", ""]
        except Exception as error:
            results[name] = [type(error).__name__, str(error)]
    print(json.dumps(results))
""")


@pytest.fixture(scope="module")
def failed_writes(tmp_path_factory):
    root = tmp_path_factory.mktemp("limited") / "store"
    done = subprocess.run([sys.executable, "-c", WRITER, str(root)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return CheckpointStore(root), json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("case, file", [("resume", RESUME), ("weights", WEIGHTS), ("manifest", MANIFEST),
                                        ("history", HISTORY)])
def test_a_failed_write_is_one_line_naming_the_file_and_the_os_error(failed_writes, case, file):
    store, results = failed_writes
    kind, message = results[case]
    assert kind == "CheckpointError", message
    assert message == f"cannot write {store.folder(KEY) / file}: File too large (EFBIG)"


def test_a_failed_write_leaves_no_temporary_file_and_the_previous_resume_state(failed_writes):
    store, _ = failed_writes
    assert [p.name for p in store.folder(KEY).iterdir() if p.name.startswith(".")] == []
    assert store.load_resume(KEY)["epoch"] == 1
    assert not store.exists(KEY)  # the manifest never made it, so nothing counts as finished


def test_a_file_where_the_store_folder_must_be(tmp_path):
    root = tmp_path / "store"
    root.write_text("not a folder")
    store = CheckpointStore(root)
    for write in (lambda: store.begin(KEY), lambda: store.save(KEY, {"w": torch.zeros(2)}, {})):
        with pytest.raises(CheckpointError, match=f"cannot create checkpoint folder {store.folder(KEY)}: "
                                                  r"Not a directory \(ENOTDIR\)"):
            write()


@pytest.fixture
def saved(tmp_path):
    store = CheckpointStore(tmp_path / "store")
    store.save(KEY, zoo.get("cnn0.scratch").build(input_size=32).state_dict(), {"epochs_run": 1})
    return store


@pytest.mark.parametrize("file", [MANIFEST, WEIGHTS])
def test_a_directory_in_place_of_a_checkpoint_file_is_reported(saved, file):
    path = saved.folder(KEY) / file
    path.unlink()
    (path / "inner").mkdir(parents=True)
    assert saved.exists(KEY)  # it is reported and retrained, not silently skipped
    with pytest.raises(CheckpointError, match=f"{path} is a directory, not a file"):
        saved.load(KEY)
    saved.begin(KEY)
    manifest = saved.save(KEY, {"w": torch.zeros(2)}, {})  # writing over it works
    assert path.is_file() and saved.load(KEY)[1] == manifest


@pytest.mark.parametrize("field, value, message", [
    ("weights_sha256", None, "has no field 'weights_sha256'"),
    ("format", "1", "field 'format' is '1', expected int"),
    ("format", True, "field 'format' is True, expected int"),
    ("entry", 5, "field 'entry' is 5, expected str"),
    ("format", 1, "has format 1, this brainbench reads format 2"),
])
def test_a_manifest_field_missing_or_of_the_wrong_type_is_named(saved, field, value, message):
    path = saved.folder(KEY) / MANIFEST
    manifest = json.loads(path.read_text())
    if value is None:
        del manifest[field]
    else:
        manifest[field] = value
    path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=f"manifest {path}.*{message}"):
        saved.load(KEY)


def test_fields_a_caller_reads_can_be_required(saved):
    with pytest.raises(CheckpointError, match="has no field 'best_epoch'"):
        saved.load(KEY, require=TRAINED_FIELDS)


@pytest.mark.slow
@pytest.mark.parametrize("file", [MANIFEST, WEIGHTS])
def test_train_or_load_retrains_over_a_directory_in_place_of_a_file(embedded_dataset, tmp_path, caplog, file):
    entry = zoo.get("cnn0.scratch")
    recipe = entry.recipe.with_overrides(input_size=32, epochs=1, batch_size=32)
    data = load_dataset(embedded_dataset, Preprocessing(32, entry.in_channels), tmp_path / "cache")
    store = CheckpointStore(tmp_path / "store")
    first = train_or_load(entry, recipe, data, store, CPU, progress=False)
    (first.checkpoint_dir / file).unlink()
    (first.checkpoint_dir / file).mkdir()
    with caplog.at_level(logging.WARNING, logger="brainbench"):
        again = train_or_load(entry, recipe, data, store, CPU, progress=False)
    assert not again.loaded and "is a directory, not a file; training again" in caplog.text
    assert train_or_load(entry, recipe, data, store, CPU, progress=False).loaded


# --- two trainings of one key --------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys
    from bench.train.store import CheckpointKey, CheckpointStore
    store = CheckpointStore(sys.argv[1])
    key = CheckpointKey(*sys.argv[2:5])
    store.begin(key)  # what a training does first
    store.save_resume(key, {"epoch": 1, "model": {}})
    print("training", flush=True)
    sys.stdin.read()  # until the test closes our stdin, or kills us
""")


def start_holder(root: Path, key: CheckpointKey) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), key.entry, key.model_hash, key.fingerprint],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "training"
    return holder


def stop(holder: subprocess.Popen) -> None:
    if holder.poll() is None:
        os.kill(holder.pid, signal.SIGKILL)
    holder.wait()


def test_a_second_training_of_one_key_is_refused_while_the_first_runs(tmp_path):
    store = CheckpointStore(tmp_path / "store")
    holder = start_holder(store.root, KEY)
    try:
        resume_before = (store.folder(KEY) / RESUME).read_bytes()
        with pytest.raises(CheckpointBusyError, match=rf"cnn0.scratch is being trained into .* by another process "
                                                      rf"\(pid {holder.pid} holds the lock .*{LOCK}\)"):
            store.begin(KEY)
        assert (store.folder(KEY) / RESUME).read_bytes() == resume_before  # nothing of the first one touched
        os.kill(holder.pid, signal.SIGKILL)  # a killed training leaves no stale lock: the kernel drops it
        holder.wait()
        store.begin(KEY)
        store.save(KEY, {"w": torch.zeros(2)}, {})
        assert sorted(p.name for p in store.folder(KEY).iterdir()) == [MANIFEST, WEIGHTS]  # lock released
    finally:
        stop(holder)


def test_train_or_load_refuses_a_key_another_process_trains(embedded_dataset, tmp_path):
    entry = zoo.get("cnn0.scratch")
    recipe = entry.recipe.with_overrides(input_size=32, epochs=1, batch_size=32)
    data = load_dataset(embedded_dataset, Preprocessing(32, entry.in_channels), tmp_path / "cache")
    store = CheckpointStore(tmp_path / "store")
    holder = start_holder(store.root, checkpoint_key(entry, recipe, data))
    try:
        with pytest.raises(CheckpointBusyError, match=f"pid {holder.pid} holds the lock"):
            train_or_load(entry, recipe, data, store, CPU, progress=False)
    finally:
        stop(holder)


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    # A training that failed in this process (its lock still held) may be retried by the same process.
    store = CheckpointStore(tmp_path / "store")
    store.begin(KEY)
    CheckpointStore(tmp_path / "store").begin(KEY)
    with store.training(KEY):
        pass
    assert not (store.folder(KEY) / LOCK).exists()
