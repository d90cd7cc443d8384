"""A diverged training (nan or inf loss) stops with one line, and no non-finite weights are ever stored or served."""

import json
import logging

import pytest
import torch
from safetensors.torch import save_file

import zoo
from bench.cli import main as cli_main
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.data.fingerprint import file_sha256
from bench.errors import CheckpointError, TrainingDivergedError
from bench.train.interruption import Interrupted, interrupt_after
from bench.train.store import MANIFEST, RESUME, WEIGHTS, CheckpointKey, CheckpointStore
from bench.train.train_or_load import checkpoint_key, train_or_load

CPU = torch.device("cpu")





DIVERGED = (r"cnn0.scratch: training loss became nan at epoch {epoch}, batch \d+ \(lr {lr}\); "
            r"no checkpoint written; try a lower --lr")


@pytest.fixture
def setup(embedded_dataset, tmp_path):
    entry = zoo.get("cnn0.scratch")
    recipe = entry.recipe.with_overrides(input_size=32, epochs=2, batch_size=32)
    data = load_dataset(embedded_dataset, Preprocessing(32, entry.in_channels), tmp_path / "cache")
    return entry, recipe, data, CheckpointStore(tmp_path / "store")


def test_a_diverging_training_stops_and_stores_nothing(setup):
    entry, recipe, data, store = setup
    recipe = recipe.with_overrides(lr=1e6)
    with pytest.raises(TrainingDivergedError, match=DIVERGED.format(epoch=1, lr=r"1e\+06")):
        train_or_load(entry, recipe, data, store, CPU, progress=False)
    folder = store.folder(checkpoint_key(entry, recipe, data))
    assert not (folder / MANIFEST).exists() and not (folder / WEIGHTS).exists() and not (folder / RESUME).exists()


def test_the_cli_reports_divergence_in_one_line(embedded_dataset, tmp_path, capsys):
    status = cli_main(["train", "cnn0.scratch", "--lr", "1e6", "--epochs", "2", "--input-size", "32",
                       "--device", "cpu", "--data", str(embedded_dataset), "--store", str(tmp_path / "store"),
                       "--cache", str(tmp_path / "cache")])
    stderr = capsys.readouterr().err
    assert status == 2 and "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("brainbench: error:")]
    assert len(errors) == 1 and "training loss became nan at epoch 1" in errors[0]
    assert not list((tmp_path / "store").glob(f"*/*/{MANIFEST}"))


@pytest.mark.slow
def test_the_resume_state_is_not_advanced_past_a_diverged_epoch(setup):
    # Epoch 1 trains and is saved; its resume state then holds a weight so large that epoch 2's
    # loss is nan: training stops, and resume.pt still holds epoch 1, as it was.
    entry, recipe, data, store = setup
    interrupt_after(store, 1)
    with pytest.raises(Interrupted):
        train_or_load(entry, recipe, data, store, CPU, progress=False)
    key = checkpoint_key(entry, recipe, data)
    state = store.load_resume(key)
    name = next(n for n, t in state["model"].items() if t.is_floating_point())
    state["model"][name] = torch.full_like(state["model"][name], 3e38)
    store.save_resume(key, state)
    before = (store.folder(key) / RESUME).read_bytes()

    with pytest.raises(TrainingDivergedError, match=r"loss became (nan|inf) at epoch 2"):
        train_or_load(entry, recipe, data, CheckpointStore(store.root), CPU, progress=False)
    assert (store.folder(key) / RESUME).read_bytes() == before
    assert not store.exists(key)


def test_the_store_refuses_to_save_non_finite_weights(tmp_path):
    store = CheckpointStore(tmp_path / "store")
    key = CheckpointKey("cnn0.scratch", "abc123", "f00d")
    weights = {"conv.weight": torch.ones(3), "fc.weight": torch.tensor([1.0, float("nan")])}
    with pytest.raises(CheckpointError, match="weight fc.weight holds nan"):
        store.save(key, weights, {})
    with pytest.raises(CheckpointError, match=f"refusing to write .*{RESUME}: weight fc.weight holds nan"):
        store.save_resume(key, {"epoch": 1, "model": weights})
    assert not store.exists(key) and not (store.folder(key) / WEIGHTS).exists()
    assert not (store.folder(key) / RESUME).exists()


def plant_non_finite_checkpoint(store: CheckpointStore, key: CheckpointKey, state: dict,
                                manifest: dict | None = None) -> str:
    """A checkpoint written as an older brainbench would have: weights with an inf, a matching sha256."""
    store.save(key, state, dict(manifest or {}))
    name = next(n for n, t in state.items() if t.is_floating_point())
    bad = {n: t.clone().contiguous() for n, t in state.items()}
    bad[name].view(-1)[0] = float("inf")
    weights = store.folder(key) / WEIGHTS
    save_file(bad, weights, metadata={"entry": key.entry})
    manifest_path = store.folder(key) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["weights_sha256"] = file_sha256(weights)
    manifest_path.write_text(json.dumps(manifest))
    return name


def test_the_store_refuses_to_load_non_finite_weights(tmp_path):
    store = CheckpointStore(tmp_path / "store")
    key = CheckpointKey("cnn0.scratch", "abc123", "f00d")
    name = plant_non_finite_checkpoint(store, key, zoo.get("cnn0.scratch").build(input_size=32).state_dict())
    with pytest.raises(CheckpointError, match=f"weights .*{WEIGHTS} are unusable: tensor {name} holds inf"):
        store.load(key)


@pytest.mark.slow
def test_a_non_finite_checkpoint_is_retrained_with_a_warning(setup, caplog):
    entry, recipe, data, store = setup
    recipe = recipe.with_overrides(epochs=1)
    first = train_or_load(entry, recipe, data, store, CPU, progress=False)
    plant_non_finite_checkpoint(store, checkpoint_key(entry, recipe, data), first.model.state_dict(), first.manifest)
    with caplog.at_level(logging.WARNING, logger="brainbench"):
        again = train_or_load(entry, recipe, data, store, CPU, progress=False)
    assert not again.loaded and "unusable" in caplog.text and "training again" in caplog.text
    assert all(torch.isfinite(t).all() for t in again.model.state_dict().values())
    assert train_or_load(entry, recipe, data, store, CPU, progress=False).loaded
