import json

import pytest
import torch

import zoo
from bench.errors import CheckpointError
from bench.train.store import MANIFEST, WEIGHTS, CheckpointKey, CheckpointStore


@pytest.fixture
def model():
    torch.manual_seed(0)
    return zoo.get("cnn0.scratch").build(input_size=32)


@pytest.fixture
def saved(tmp_path, model):
    store = CheckpointStore(tmp_path / "store")
    key = CheckpointKey("cnn0.scratch", "abc123", "f00d")
    store.save(key, model.state_dict(), {"epochs_run": 2, "best_val": {"acc": 0.5, "loss": 1.0}})
    return store, key


def test_round_trip_restores_identical_weights(saved, model):
    store, key = saved
    state, manifest = store.load(key)
    fresh = zoo.get("cnn0.scratch").build(input_size=32)
    fresh.load_state_dict(state)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    assert manifest["entry"] == "cnn0.scratch" and manifest["epochs_run"] == 2
    assert len(manifest["weights_sha256"]) == 64
    assert store.exists(key)


def test_folder_holds_safetensors_and_json_only(saved):
    store, key = saved
    assert sorted(p.name for p in store.folder(key).iterdir()) == [MANIFEST, WEIGHTS]
    assert store.folder(key).name == "abc123-f00d"


def test_corrupted_weights_are_refused(saved):
    store, key = saved
    weights = store.folder(key) / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        store.load(key)


def test_truncated_manifest_is_refused(saved):
    store, key = saved
    manifest = store.folder(key) / MANIFEST
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(CheckpointError, match="unreadable"):
        store.load(key)


@pytest.mark.parametrize("field, value", [("entry", "cnn1.scratch"), ("model_hash", "zzz"),
                                          ("dataset_fingerprint", "beef")])
def test_manifest_that_disagrees_with_its_key_is_refused(saved, field, value):
    store, key = saved
    path = store.folder(key) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest[field] = value
    path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=field):
        store.load(key)


def test_unfinished_checkpoint_does_not_count(saved):
    store, key = saved
    store.begin(key)  # a retraining run started: the old manifest is gone
    assert not store.exists(key)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        store.load(key)


def test_others_lists_other_recipes_of_the_entry(saved, model):
    store, key = saved
    other = CheckpointKey("cnn0.scratch", "def456", "f00d")
    store.save(other, model.state_dict(), {})
    assert store.others(key) == ["def456-f00d"]
