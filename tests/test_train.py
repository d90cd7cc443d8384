import csv
import time

import pytest
import torch

import zoo
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.train.settings import TrainSettings
from bench.train.store import HISTORY, WEIGHTS, CheckpointStore
from bench.train.train_or_load import train_or_load

SMOKE = dict(input_size=48, epochs=2, batch_size=32)


@pytest.fixture
def setup(embedded_dataset, tmp_path):
    entry = zoo.get("cnn0.scratch")
    recipe = entry.recipe.with_overrides(**SMOKE)
    data = load_dataset(embedded_dataset, Preprocessing(48, entry.in_channels), tmp_path / "cache")
    return entry, recipe, data, CheckpointStore(tmp_path / "store")


@pytest.mark.slow
def test_training_smoke_on_embedded_dataset(setup):
    entry, recipe, data, store = setup
    started = time.perf_counter()
    trained = train_or_load(entry, recipe, data, store, torch.device("cpu"), progress=False)
    assert time.perf_counter() - started < 60
    m = trained.manifest
    assert not trained.loaded
    assert m["epochs_run"] == 2 and 1 <= m["best_epoch"] <= 2
    assert 0.0 <= m["best_val"]["acc"] <= 1.0
    assert m["dataset_fingerprint"] == data.fingerprint == m["dataset"]["fingerprint"]
    assert m["identity"]["recipe_hash"] == recipe.hash() and m["recipe"]["epochs"] == 2
    assert m["val_split"]["n_val"] == 48 and m["val_split"]["n_train"] == 272  # 15% of 320, stratified
    assert m["environment"]["torch"] == torch.__version__
    with open(trained.checkpoint_dir / HISTORY) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(rows[0])
    best = rows[m["best_epoch"] - 1]
    assert float(best["val_acc"]) == pytest.approx(m["best_val"]["acc"])


@pytest.mark.slow
def test_second_identical_call_loads_instead_of_training(setup):
    entry, recipe, data, store = setup
    first = train_or_load(entry, recipe, data, store, torch.device("cpu"), progress=False)
    started = time.perf_counter()
    second = train_or_load(entry, recipe, data, store, torch.device("cpu"), progress=False)
    assert second.loaded and time.perf_counter() - started < 5
    assert second.manifest == first.manifest
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())


@pytest.mark.slow
def test_other_recipe_trains_its_own_checkpoint(setup):
    entry, recipe, data, store = setup
    first = train_or_load(entry, recipe.with_overrides(epochs=1), data, store, torch.device("cpu"), progress=False)
    second = train_or_load(entry, recipe.with_overrides(epochs=1, seed=1), data, store, torch.device("cpu"),
                           progress=False)
    assert not second.loaded and second.checkpoint_dir != first.checkpoint_dir


@pytest.mark.slow
def test_corrupted_checkpoint_is_reported_and_retrained(setup, caplog):
    entry, recipe, data, store = setup
    recipe = recipe.with_overrides(epochs=1)
    first = train_or_load(entry, recipe, data, store, torch.device("cpu"), progress=False)
    weights = first.checkpoint_dir / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-100])
    again = train_or_load(entry, recipe, data, store, torch.device("cpu"), progress=False)
    assert not again.loaded
    assert "corrupted" in caplog.text and "training again" in caplog.text
    assert train_or_load(entry, recipe, data, store, torch.device("cpu"), progress=False).loaded


@pytest.mark.slow
def test_training_learns_a_separable_problem(make_dataset, tmp_path):
    # Synthetic scans whose brightness encodes the class: a working loop must get well above chance.
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    root = make_dataset({f"Training/{c}": 24 for c in classes} | {f"Testing/{c}": 4 for c in classes})
    entry = zoo.get("cnn1.scratch")
    recipe = entry.recipe.with_overrides(input_size=32, epochs=8, batch_size=16, lr=3e-3, augment="none")
    data = load_dataset(root, Preprocessing(32, entry.in_channels), tmp_path / "cache")
    trained = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "store"), torch.device("cpu"),
                            progress=False)
    assert trained.manifest["best_val"]["acc"] >= 0.75


def test_knn_pixels_is_fitted_not_trained_and_reloads(embedded_dataset, tmp_path):
    entry = zoo.get("knn.pixels")
    data = load_dataset(embedded_dataset, Preprocessing(entry.input_size, entry.in_channels), tmp_path / "cache")
    store = CheckpointStore(tmp_path / "store")
    fitted = train_or_load(entry, entry.recipe, data, store, torch.device("cpu"), progress=False)
    assert not fitted.loaded and fitted.manifest["epochs_run"] == 0
    assert 0.0 <= fitted.manifest["best_val"]["acc"] <= 1.0
    assert fitted.model.train_vectors.shape[0] == fitted.manifest["val_split"]["n_train"] == 272
    # Every fitted image is its own nearest neighbour, so it gets its own label.
    from bench.data.batches import Normalizer
    from bench.data.dataset import train_val_split
    from bench.evaluate.predict import predict_logits

    fit_split, _ = train_val_split(data.decoded.train, entry.recipe.val_fraction, entry.recipe.seed)
    logits = predict_logits(fitted.model, fit_split.images, Normalizer(entry.mean, entry.std, torch.device("cpu")))
    assert torch.equal(logits.argmax(1), fit_split.labels)
    again = train_or_load(entry, entry.recipe, data, store, torch.device("cpu"), progress=False)
    assert again.loaded and torch.equal(again.model.train_vectors, fitted.model.train_vectors)


@pytest.mark.slow
def test_compiled_training_step_matches_eager(embedded_dataset, tmp_path):
    # torch.compile changes kernels, not maths: one epoch ends at (nearly) the same weights.
    entry = zoo.get("cnn0.scratch")
    recipe = entry.recipe.with_overrides(input_size=32, epochs=1, batch_size=32, dropout=0.0)
    data = load_dataset(embedded_dataset, Preprocessing(32, entry.in_channels), tmp_path / "cache")
    eager = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "eager"), torch.device("cpu"),
                          progress=False)
    compiled = train_or_load(entry, recipe, data, CheckpointStore(tmp_path / "compiled"), torch.device("cpu"),
                             progress=False, settings=TrainSettings(compile_step=True))
    assert compiled.checkpoint_dir.name == eager.checkpoint_dir.name  # not part of the key
    for name, weight in eager.model.state_dict().items():
        torch.testing.assert_close(compiled.model.state_dict()[name], weight, rtol=1e-3, atol=1e-4, msg=name)
