import os
import shutil

import torch

import bench.data.cache as cache_module
from bench.data.cache import Preprocessing, load_or_build
from bench.data.dataset import load_dataset
from bench.data.discover import discover
from bench.data.fingerprint import dataset_fingerprint


def test_fingerprint_is_stable_across_locations_and_listing_order(kaggle_dataset, tmp_path):
    first = dataset_fingerprint(discover(kaggle_dataset))
    # The same files copied elsewhere, in reverse order, with different timestamps.
    copy = tmp_path / "elsewhere" / "copy"
    files = sorted(p for p in kaggle_dataset.rglob("*") if p.is_file())
    for path in reversed(files):
        target = copy / path.relative_to(kaggle_dataset)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        os.utime(target, (0, 0))
    assert dataset_fingerprint(discover(copy)) == first
    assert len(first) == 16 and int(first, 16) >= 0


def test_fingerprint_changes_with_content_name_or_split(kaggle_dataset):
    before = dataset_fingerprint(discover(kaggle_dataset))
    image = kaggle_dataset / "Training" / "glioma" / "img_000.png"
    original = image.read_bytes()
    image.write_bytes(original + b"\0")
    assert dataset_fingerprint(discover(kaggle_dataset)) != before
    image.write_bytes(original)
    assert dataset_fingerprint(discover(kaggle_dataset)) == before
    image.rename(image.with_name("renamed.png"))
    assert dataset_fingerprint(discover(kaggle_dataset)) != before


def test_embedded_dataset_fingerprint_is_pinned(embedded_dataset):
    # The mini dataset is data in git: its fingerprint only changes when someone rebuilds it.
    index = discover(embedded_dataset)
    assert (len(index.train), len(index.test)) == (320, 80)
    assert dataset_fingerprint(index) == "bcffbb9c58bbffe2"


def test_cache_decodes_once_and_is_reused(kaggle_dataset, tmp_path, monkeypatch):
    calls = []
    real_decode = cache_module.decode_image
    monkeypatch.setattr(cache_module, "decode_image", lambda *a, **k: calls.append(a) or real_decode(*a, **k))
    prep = Preprocessing(size=24, channels=1)
    first = load_dataset(kaggle_dataset, prep, tmp_path / "cache")
    assert len(calls) == 36
    second = load_dataset(kaggle_dataset, prep, tmp_path / "cache")
    assert len(calls) == 36, "a second load must not decode again"
    assert torch.equal(first.decoded.train.images, second.decoded.train.images)
    assert first.decoded.train.paths == second.decoded.train.paths
    assert first.decoded.train.images.dtype == torch.uint8
    assert first.decoded.train.images.shape == (24, 1, 24, 24)
    assert not any(kaggle_dataset.rglob("*.npy")), "the cache lives outside the dataset folder"


def test_cache_key_separates_resolution_channels_and_preprocessing(kaggle_dataset, tmp_path):
    fingerprint = dataset_fingerprint(discover(kaggle_dataset))
    keys = {Preprocessing(24, 1).key(fingerprint), Preprocessing(32, 1).key(fingerprint),
            Preprocessing(24, 3).key(fingerprint), Preprocessing(24, 1, crop_to_content=True).key(fingerprint)}
    assert len(keys) == 4
    rgb = load_dataset(kaggle_dataset, Preprocessing(24, 3), tmp_path / "cache")
    assert rgb.decoded.test.images.shape == (12, 3, 24, 24)
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_a_damaged_cache_is_rebuilt(kaggle_dataset, tmp_path, caplog):
    index = discover(kaggle_dataset)
    fingerprint = dataset_fingerprint(index)
    prep = Preprocessing(size=24, channels=1)
    built = load_or_build(index, fingerprint, prep, tmp_path / "cache")
    (built.cache_dir / "train_images.npy").write_bytes(b"not numpy")
    rebuilt = load_or_build(index, fingerprint, prep, tmp_path / "cache")
    assert rebuilt.train.images.shape == (24, 1, 24, 24)
    assert "decoding again" in caplog.text
