"""An interrupted training resumes from its last epoch and ends bit-identical to an uninterrupted one."""

import logging

import pytest
import torch

import zoo
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.train.interruption import Interrupted, interrupt_after
from bench.train.store import HISTORY, RESUME, CheckpointStore
from bench.train.train_or_load import checkpoint_key, train_or_load

CPU = torch.device("cpu")





@pytest.fixture
def setup(embedded_dataset, tmp_path):
    # Dropout (global RNG), basic augmentation (seeded generator), Adam and a cosine schedule: every
    # piece of state that must survive the interruption is in play.
    entry = zoo.get("cnn0.scratch")
    recipe = entry.recipe.with_overrides(input_size=32, epochs=3, batch_size=32)
    data = load_dataset(embedded_dataset, Preprocessing(32, entry.in_channels), tmp_path / "cache")
    return entry, recipe, data


@pytest.mark.slow
def test_resumed_training_equals_uninterrupted(setup, tmp_path, caplog):
    entry, recipe, data = setup
    whole = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "whole"), CPU, progress=False)

    store = CheckpointStore(tmp_path / "resumed")
    interrupt_after(store, 2)
    with pytest.raises(Interrupted):
        train_or_load(entry, recipe, data, store, CPU, progress=False)
    key = checkpoint_key(entry, recipe, data)
    assert not store.exists(key) and store.load_resume(key)["epoch"] == 2

    with caplog.at_level(logging.INFO, logger="brainbench"):
        resumed = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "resumed"), CPU, progress=False)
    assert "resuming an interrupted training after epoch 2" in caplog.text
    assert not resumed.loaded and resumed.manifest["resumed_after_epoch"] == 2
    assert resumed.manifest["epochs_run"] == 3 and resumed.manifest["best_epoch"] == whole.manifest["best_epoch"]
    assert resumed.manifest["best_val"] == whole.manifest["best_val"]
    for name, weight in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], weight), name
    assert not (resumed.checkpoint_dir / RESUME).exists()  # finished: nothing left to resume
    columns = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
    assert ([line.split(",")[:len(columns)] for line in (resumed.checkpoint_dir / HISTORY).read_text().splitlines()]
            == [line.split(",")[:len(columns)] for line in (whole.checkpoint_dir / HISTORY).read_text().splitlines()])


@pytest.mark.slow
def test_fresh_discards_the_resume_state_and_a_broken_one_is_ignored(setup, tmp_path, caplog):
    entry, recipe, data = setup
    recipe = recipe.with_overrides(epochs=2)
    store = CheckpointStore(tmp_path / "store")
    interrupt_after(store, 1)
    with pytest.raises(Interrupted):
        train_or_load(entry, recipe, data, store, CPU, progress=False)
    key = checkpoint_key(entry, recipe, data)
    (store.folder(key) / RESUME).write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING, logger="brainbench"):
        again = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "store"), CPU, progress=False)
    assert "is unreadable" in caplog.text and "training from the first epoch" in caplog.text
    assert again.manifest["resumed_after_epoch"] is None and again.manifest["epochs_run"] == 2

    interrupt_after(store, 1)
    with pytest.raises(Interrupted):
        train_or_load(entry, recipe, data, store, CPU, progress=False, fresh=True)
    fresh = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "store"), CPU, progress=False, fresh=True)
    assert fresh.manifest["resumed_after_epoch"] is None
