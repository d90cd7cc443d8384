"""One identity decides "same result" for checkpoints, rows and backbones (bench/identity.py)."""

import dataclasses
import json

import pytest
import torch

import zoo
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.identity import backbone_identity, same_result, training_identity
from bench.inference import latest_checkpoint, load_checkpoint, predict_images
from bench.leakage.index import build_leakage_index
from bench.runner.run_suite import RunOptions, run_suite
from bench.suites import load_suite
from bench.train.store import MANIFEST, CheckpointStore
from bench.train.train_or_load import checkpoint_key, train_or_load

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from bench.paths import EMBEDDED_DATASET
    return load_dataset(EMBEDDED_DATASET, Preprocessing(32, 3), tmp_path_factory.mktemp("cache"))


def test_the_entrys_input_contract_is_part_of_the_checkpoint_key(data):
    # A recipe that leaves input_size unset used to key only on entry name + recipe + data, so an
    # entry whose own size, channels or mean/std changed silently reused the old checkpoint.
    entry = zoo.get("cnn0.scratch")
    key = checkpoint_key(entry, entry.recipe, data)
    for changed in (dataclasses.replace(entry, input_size=64), dataclasses.replace(entry, mean=(0.4,)),
                    dataclasses.replace(entry, std=(0.3,)), dataclasses.replace(entry, in_channels=1)):
        assert checkpoint_key(changed, entry.recipe, data) != key
    assert checkpoint_key(dataclasses.replace(entry), entry.recipe, data) == key  # and nothing else moves it


def test_a_row_is_the_same_result_only_for_the_same_identity_and_measurements(data):
    entry = zoo.get("cnn0.scratch")
    identity = training_identity(entry, entry.recipe, data, "metrics|eager")
    row = {"status": "ok", "result_key": identity.hash()}
    assert same_result(row, identity)
    assert not same_result(row, training_identity(entry, entry.recipe, data, "metrics|eager,torchscript"))
    assert not same_result(row, training_identity(dataclasses.replace(entry, mean=(0.1,)), entry.recipe, data,
                                                  "metrics|eager"))
    assert not same_result({**row, "status": "failed"}, identity)
    assert not same_result(None, identity)


def test_the_clean_split_keys_checkpoints_and_backbones_apart(data, tmp_path):
    entry = zoo.get("resnet18.mocov2")
    official = dataclasses.replace(data)
    clean = dataclasses.replace(data, clean_split=build_leakage_index(data.index, data.fingerprint, 0.99, tmp_path))
    assert checkpoint_key(entry, entry.recipe, official) != checkpoint_key(entry, entry.recipe, clean)
    # The backbone sees the training part of the split; the clean split's differs, so must its key.
    assert backbone_identity(entry, entry.recipe, official).checkpoint_key() != \
        backbone_identity(entry, entry.recipe, clean).checkpoint_key()


@pytest.mark.slow
def test_predict_normalizes_with_the_checkpoints_mean_and_std(data, tmp_path, monkeypatch):
    entry = zoo.get("cnn0.scratch")
    recipe = entry.recipe.with_overrides(epochs=1, input_size=32)
    store = CheckpointStore(tmp_path / "store")
    train_or_load(entry, recipe, data, store, CPU, progress=False)
    images = [str(p) for p in sorted((data.index.root / "Testing" / "glioma").iterdir())[:4]]
    before = predict_images(load_checkpoint(latest_checkpoint(store.root, entry.name)), images)
    # The zoo's normalization changes after training: the checkpoint still answers as trained.
    changed = dataclasses.replace(entry, mean=(0.1,), std=(0.9,))
    monkeypatch.setattr(zoo, "get", lambda name: changed if name == entry.name else zoo.registry.get(name))
    loaded = load_checkpoint(latest_checkpoint(store.root, entry.name))
    assert loaded.contract.mean == (0.5,) and loaded.contract.std == (0.25,)
    after = predict_images(loaded, images)
    assert [p.probabilities for p in after] == [p.probabilities for p in before]


@pytest.mark.slow
def test_a_row_whose_checkpoint_is_gone_is_computed_again(tmp_path, embedded_dataset, capsys):
    # An interrupted `run --fresh` removes the manifest before retraining; the old row must then
    # not be served as "finished".
    suite_file = tmp_path / "one.toml"
    suite_file.write_text('entries = ["cnn0.scratch"]\nmeasure = ["metrics"]\n[recipe]\ninput_size = 32\nepochs = 1\n')
    options = RunOptions(data_dir=embedded_dataset, out_root=tmp_path / "results",
                         store=CheckpointStore(tmp_path / "store"), device=CPU, cache_dir=tmp_path / "cache",
                         official_only=True)
    out = run_suite(load_suite(str(suite_file)), options)
    [manifest] = (tmp_path / "store" / "cnn0.scratch").glob(f"*/{MANIFEST}")
    manifest.unlink()
    capsys.readouterr()
    run_suite(load_suite(str(suite_file)), options)
    said = capsys.readouterr().out + capsys.readouterr().err
    assert "checkpoint is gone or damaged" in said and "finished row found, skipping" not in said
    row = json.loads((out / "rows" / "cnn0.scratch.json").read_text())
    assert row["status"] == "ok" and row["loaded_from_store"] is False and manifest.is_file()


def test_the_resize_filter_is_part_of_the_contract_and_of_the_decoded_view(data):
    from bench.data.decode import RESAMPLING
    from zoo.entry import RESIZE_FILTERS

    assert set(RESAMPLING) == set(RESIZE_FILTERS)  # every filter an entry may name can be decoded
    entry = zoo.get("cnn0.scratch")
    assert checkpoint_key(dataclasses.replace(entry, resize="nearest"), entry.recipe, data) != \
        checkpoint_key(entry, entry.recipe, data)
    # Caches decoded before the filter was a choice keep their key; another filter gets its own.
    assert Preprocessing(32, 3).key("f") == Preprocessing(32, 3, resize="bilinear").key("f") != \
        Preprocessing(32, 3, resize="nearest").key("f")


def test_the_label_set_and_the_protocol_fold_are_part_of_the_checkpoint_key(data):
    from bench.data.dataset import SplitView
    from bench.data.labels import LabelSet
    from bench.data.protocols import Fold, ProtocolSpec
    from bench.runner.run_suite import DataIdentity

    entry = zoo.get("cnn0.scratch")
    official = DataIdentity(data.fingerprint, data.labels, None, None)
    key = training_identity(entry, entry.recipe, official).checkpoint_key()
    # Checkpoints trained before protocols existed are the official protocol's: their key stays.
    assert key == checkpoint_key(entry, entry.recipe, data)
    spec = ProtocolSpec("official", "official")
    same = DataIdentity(data.fingerprint, data.labels, None, SplitView(spec, Fold("official", "official", None, None,
                                                                                  (0,), (1,))))
    assert training_identity(entry, entry.recipe, same).checkpoint_key() == key
    # Another order of the same classes is another model: its output columns mean other classes.
    reordered = LabelSet(tuple(reversed(data.labels.names)), data.labels.no_tumor)
    other_labels = DataIdentity(data.fingerprint, reordered, None, None)
    assert training_identity(entry, entry.recipe, other_labels).checkpoint_key() != key
    kfold = ProtocolSpec("record-wise", "kfold", folds=5, groups="none")
    folds = [DataIdentity(data.fingerprint, data.labels, None,
                          SplitView(kfold, Fold("record-wise", "kfold", n, 5, (0,), (1,)))) for n in (1, 2)]
    fold_keys = {training_identity(entry, entry.recipe, f).checkpoint_key() for f in folds}
    assert len(fold_keys) == 2 and key not in fold_keys
    assert all(k.fingerprint.startswith(data.fingerprint) for k in fold_keys)  # the folder still names its dataset


def test_a_backbone_is_pretrained_on_its_folds_training_part_and_keyed_by_it(data, tmp_path):
    # MoCo (and anything fitted before fine-tuning) must see only the training part of the protocol
    # in force: under k-fold each fold's backbone is another one, and never sees that fold's test side.
    from bench.data.dataset import fold_view
    from bench.data.protocols import ProtocolSpec
    from bench.runner.protocol_views import protocol_views

    entry = zoo.get("resnet18.mocov2")
    spec = ProtocolSpec("kfold3", "kfold", folds=3, groups="none")
    views = protocol_views(data.index, spec, data.fingerprint, tmp_path, 0.99)
    loaded = [dataclasses.replace(data, decoded=fold_view(data.decoded, data.index, v), split=v) for v in views]
    keys = {backbone_identity(entry, entry.recipe, d).checkpoint_key() for d in loaded}
    assert len(keys) == 3 and backbone_identity(entry, entry.recipe, data).checkpoint_key() not in keys
    for d in loaded:
        seen, held = d.train_val_split(entry.recipe.val_fraction, entry.recipe.seed)  # what pretraining reads
        assert not set(seen.paths) & set(d.decoded.test.paths) and not set(seen.paths) & set(held.paths)
