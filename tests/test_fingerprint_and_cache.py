import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from declaration_text import metadata_declaration, protocol_table

import bench.data.cache as cache_module
from bench.data.cache import Preprocessing, load_or_build
from bench.data.dataset import load_dataset
from bench.data.discover import discover
from bench.data.fingerprint import dataset_fingerprint, file_sha256
from bench.leakage.index import build_leakage_index
from bench.leakage.pictures import audit_pictures


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


def test_a_relabelled_dataset_gets_another_fingerprint(make_dataset, tmp_path):
    # The same files read as 2 classes (by type) or 4 (by type and sequence) are different datasets.
    root = make_dataset({"Foo T1": 2, "Foo T2": 2, "_NORMAL T1": 2, "_NORMAL T2": 2})
    declaration = tmp_path / "by-type.toml"
    declaration.write_text(textwrap.dedent('''\
        name = "by-type"
        [labels]
        classes = ["Foo", "normal"]
        [images]
        from = "folders"
        folder_pattern = '^(?P<type>.+) (?P<sequence>T1|T2)$'
        label = "{type}"
        [[protocol]]
        kind = "holdout"
        '''))
    by_type = discover(root, str(declaration))
    by_sequence_file = tmp_path / "by-sequence.toml"
    by_sequence_file.write_text(declaration.read_text().replace('"Foo", "normal"', '"Foo T1", "Foo T2", "_NORMAL T1", '
                                                                '"_NORMAL T2"').replace('"{type}"', '"{type} {sequence}"'))
    by_sequence = discover(root, str(by_sequence_file))
    assert [s.rel for s in by_type.train] == [s.rel for s in by_sequence.train]
    assert dataset_fingerprint(by_type) != dataset_fingerprint(by_sequence)
    # The class order decides the label indices a decoded cache stores, so it is part of the fingerprint.
    reordered = tmp_path / "reordered.toml"
    reordered.write_text(declaration.read_text().replace('"Foo", "normal"', '"normal", "Foo"'))
    assert dataset_fingerprint(discover(root, str(reordered))) != dataset_fingerprint(by_type)


def test_a_metadata_fingerprint_covers_groups_and_folds(tmp_path):
    from PIL import Image

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    rows = ["image,class,pid,fold"]
    for i in range(4):
        Image.fromarray(np.full((8, 8), i * 40, np.uint8)).save(root / "images" / f"{i}.png")
        rows.append(f"images/{i}.png,{('glioma', 'meningioma')[i % 2]},P{i // 2},{1 + i // 2}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    (root / "brainbench-dataset.toml").write_text(
        metadata_declaration("table", ["glioma", "meningioma"], mask_column=None,
                             protocols=[protocol_table("", fold_column="fold")]))
    first = dataset_fingerprint(discover(root))
    (root / "metadata.csv").write_text("\n".join(rows).replace("P1,2", "P9,2") + "\n")
    regrouped = dataset_fingerprint(discover(root))
    (root / "metadata.csv").write_text("\n".join(rows).replace("P1,2", "P1,3") + "\n")
    refolded = dataset_fingerprint(discover(root))
    assert len({first, regrouped, refolded}) == 3


def test_a_flat_default_dataset_is_fingerprinted_as_one_split(make_dataset):
    root = make_dataset({"glioma": 2, "meningioma": 2})
    lines = [f"all\t{s.rel}\t{file_sha256(s.path)}\n" for s in sorted(discover(root).train, key=lambda s: s.rel)]
    expected = hashlib.sha256("".join(lines).encode()).hexdigest()[:16]
    assert dataset_fingerprint(discover(root)) == expected


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


# --- damaged caches, failed writes, warnings from the cache ---------------------------------

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("damage", ["truncated-npy", "empty-npy", "bad-json", "wrong-arrays", "missing-meta"])
def test_any_damaged_decoded_cache_is_rebuilt_with_a_warning(kaggle_dataset, tmp_path, caplog, damage):
    index = discover(kaggle_dataset)
    fingerprint = dataset_fingerprint(index)
    prep = Preprocessing(size=24, channels=1)
    folder = load_or_build(index, fingerprint, prep, tmp_path / "cache").cache_dir
    if damage == "truncated-npy":
        data = (folder / "train_images.npy").read_bytes()
        (folder / "train_images.npy").write_bytes(data[: len(data) // 2])
    elif damage == "empty-npy":
        (folder / "test_labels.npy").write_bytes(b"")
    elif damage == "bad-json":
        (folder / "meta.json").write_text('{"train_paths": [')
    elif damage == "wrong-arrays":
        np.save(folder / "train_labels.npy", np.zeros(3, np.int64))
    else:
        (folder / "meta.json").unlink()
    rebuilt = load_or_build(index, fingerprint, prep, tmp_path / "cache")
    assert rebuilt.train.images.shape == (24, 1, 24, 24) and rebuilt.train.labels.shape == (24,)
    assert f"decoded cache {folder} is damaged" in caplog.text
    assert load_or_build(index, fingerprint, prep, tmp_path / "cache").train.labels.shape == (24,)


@pytest.mark.parametrize("damage", ["truncated", "not-a-zip", "wrong-arrays"])
def test_a_damaged_audit_picture_cache_is_rebuilt_with_a_warning(kaggle_dataset, tmp_path, caplog, damage):
    index = discover(kaggle_dataset)
    fingerprint = dataset_fingerprint(index)
    _, test = audit_pictures(index, fingerprint, tmp_path / "cache")
    (path,) = (tmp_path / "cache").glob("audit-pictures-*.npz")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "not-a-zip":
        path.write_bytes(b"PK\x03\x04 but nothing else")
    else:
        with np.load(path) as data:
            arrays = dict(data)
        arrays["test_pixels"] = arrays["test_pixels"][:, :8, :8]
        np.savez(path, **arrays)
    _, again_test = audit_pictures(index, fingerprint, tmp_path / "cache")
    assert again_test.rels == test.rels and np.array_equal(again_test.pixels, test.pixels)
    assert f"audit picture cache {path} is damaged" in caplog.text
    assert audit_pictures(index, fingerprint, tmp_path / "cache")[1].pixels.shape == test.pixels.shape


WRONG_TYPES = (b'{"format": 3, "threshold": 0.99, "test_similarity": [], "test_label": {}, "clean_test": [], '
               b'"train_group": {}, "class_names": ["glioma", "meningioma", "notumor", "pituitary"]}')


@pytest.mark.parametrize("content", [b"\xff\xfe not text", b"[1, 2]", WRONG_TYPES])
def test_a_damaged_leakage_index_cache_is_recomputed_with_a_warning(audit_dataset, tmp_path, caplog, content):
    index = discover(audit_dataset)
    fingerprint = dataset_fingerprint(index)
    first = build_leakage_index(index, fingerprint, 0.99, tmp_path / "cache")
    path = tmp_path / "cache" / f"leakage-{fingerprint}-t0.99.json"
    path.write_bytes(content)
    assert build_leakage_index(index, fingerprint, 0.99, tmp_path / "cache") == first
    assert f"leakage index cache {path} is damaged" in caplog.text


def test_a_failed_cache_write_removes_its_staging_folder(kaggle_dataset, tmp_path):
    """A real failed write, as on a full disk: files may not grow past 4 KiB in the child process."""
    cache = tmp_path / "cache"
    script = textwrap.dedent("""
        import resource, sys
        from pathlib import Path
        from bench.data.cache import Preprocessing, load_or_build
        from bench.data.discover import discover
        from bench.data.fingerprint import dataset_fingerprint, file_sha256
        from bench.errors import CacheError
        index = discover(sys.argv[1])
        fingerprint = dataset_fingerprint(index)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))  # Python ignores SIGXFSZ
        try:
            load_or_build(index, fingerprint, Preprocessing(24, 1), Path(sys.argv[2]))
        except CacheError as error:
            print(error)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(kaggle_dataset), str(cache)], capture_output=True,
                          text=True, timeout=120, check=False, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    # numpy reports the short write as "13824 requested and 3968 written".
    assert done.stdout.startswith(f"cannot write the decoded-image cache in {cache}: ")
    assert done.stdout.rstrip().endswith("(free some space, or choose another folder with --cache)")
    assert len(done.stdout.splitlines()) == 1
    assert list(cache.iterdir()) == []


def test_stale_staging_folders_are_removed_and_fresh_ones_kept(kaggle_dataset, tmp_path, caplog):
    cache = tmp_path / "cache"
    stale, fresh = cache / "0123abcd.tmp-killed", cache / "0123abcd.tmp-writing"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "train_images.npy").write_bytes(b"partial")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))
    load_dataset(kaggle_dataset, Preprocessing(size=24, channels=1), cache)
    assert not stale.exists() and fresh.exists()
    assert f"removing {stale}, left by a cache build that was interrupted 120 minutes ago" in caplog.text


def test_a_rerun_from_the_cache_warns_again_about_skipped_images(kaggle_dataset, tmp_path, caplog):
    for i in range(4):
        (kaggle_dataset / "Training" / "glioma" / f"bad{i}.jpg").write_bytes(b"")
    prep = Preprocessing(size=24, channels=1)
    load_dataset(kaggle_dataset, prep, tmp_path / "cache")
    caplog.clear()
    again = load_dataset(kaggle_dataset, prep, tmp_path / "cache")
    assert len(again.decoded.skipped) == 4
    expected = (f"4 unreadable image(s) were skipped when the decoded cache {again.decoded.cache_dir} was built: "
                "Training/glioma/bad0.jpg, Training/glioma/bad1.jpg, Training/glioma/bad2.jpg and 1 more "
                "(all listed in the run record)")
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [expected]
    json.dumps(again.record())
