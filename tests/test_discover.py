"""Dataset discovery: layouts, class names, and every bad-input case before training starts."""

import pytest

from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset, train_val_split
from bench.data.declaration import default_labels
from bench.data.discover import discover
from bench.errors import DatasetError

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


@pytest.mark.parametrize("folder, label", [
    ("glioma_tumor", "glioma"), ("Meningioma_Tumor", "meningioma"), ("no_tumor", "notumor"),
    ("no tumor", "notumor"), ("NoTumor", "notumor"), ("pituitary_tumor", "pituitary"), ("PITUITARY", "pituitary"),
])
def test_class_folder_spellings_normalize(folder, label):
    assert default_labels().normalize(folder) == label


def test_kaggle_layout(kaggle_dataset):
    index = discover(kaggle_dataset)
    assert index.layout == "kaggle"
    assert (len(index.train), len(index.test)) == (24, 12)
    assert {s.label for s in index.test} == {0, 1, 2, 3}
    assert index.train[0].rel.startswith("Training/")


def test_legacy_spellings_load(make_dataset):
    names = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")
    root = make_dataset({f"Training/{n}": 2 for n in names} | {f"Testing/{n}": 1 for n in names})
    index = discover(root)
    assert sorted({index.labels.names[s.label] for s in index.train}) == list(CLASSES)


def test_unknown_class_folder_is_named(make_dataset):
    root = make_dataset({"Training/glioma": 2, "Training/astrocytoma": 2, "Testing/glioma": 1})
    with pytest.raises(DatasetError, match="astrocytoma"):
        discover(root)


def test_two_folders_for_one_class_is_an_error(make_dataset):
    root = make_dataset({"Training/no_tumor": 2, "Training/notumor": 2, "Testing/notumor": 1})
    with pytest.raises(DatasetError, match="both mean class 'notumor'"):
        discover(root)


def test_hidden_files_and_folders_are_ignored_and_non_images_counted(kaggle_dataset):
    (kaggle_dataset / "Training" / ".ipynb_checkpoints").mkdir()
    (kaggle_dataset / "Training" / "glioma" / ".ipynb_checkpoints").mkdir()
    (kaggle_dataset / "Training" / "glioma" / ".ipynb_checkpoints" / "x.png").write_bytes(b"junk")
    (kaggle_dataset / "Training" / "glioma" / ".DS_Store").write_bytes(b"junk")
    (kaggle_dataset / "Training" / "glioma" / "notes.txt").write_text("hello")
    (kaggle_dataset / "Testing" / "Thumbs.db").write_bytes(b"junk")
    index = discover(kaggle_dataset)
    assert len(index.train) == 24
    assert sorted(index.non_image_files) == ["Testing/Thumbs.db", "Training/glioma/notes.txt"]
    assert index.record()["n_non_image_files_skipped"] == 2


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DatasetError, match="does-not-exist"):
        discover(tmp_path / "does-not-exist")


def test_empty_dataset_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="contains no images"):
        discover(tmp_path)


def test_empty_class_folders_are_an_empty_dataset(tmp_path):
    for split in ("Training", "Testing"):
        (tmp_path / split / "glioma").mkdir(parents=True)
    with pytest.raises(DatasetError, match="contains no images"):
        discover(tmp_path)


def test_missing_test_split_is_an_error(make_dataset):
    root = make_dataset({f"Training/{c}": 2 for c in CLASSES})
    with pytest.raises(DatasetError, match="no Testing folder"):
        discover(root)


def test_empty_test_split_is_an_error(make_dataset):
    root = make_dataset({f"Training/{c}": 2 for c in CLASSES})
    (root / "Testing").mkdir()
    with pytest.raises(DatasetError, match="test split .* contains no images"):
        discover(root)


def test_class_absent_from_one_split_is_named(make_dataset):
    root = make_dataset({f"Training/{c}": 2 for c in CLASSES} | {f"Testing/{c}": 1 for c in CLASSES[:3]})
    with pytest.raises(DatasetError, match="'pituitary' has images in the training split .* none in the test"):
        discover(root)


def test_flat_layout_has_no_official_split(make_dataset):
    # The test side of a flat dataset is drawn by its declaration's holdout protocol, not here.
    root = make_dataset({c: 10 for c in CLASSES})
    index = discover(root)
    assert index.layout == "flat" and not index.has_official_split
    assert len(index.train) == 40 and index.test == () and index.samples == index.train
    assert index.declaration.default_protocol().name == "official"
    assert index.declaration.protocol("holdout").test_fraction == 0.2
    record = index.record()
    assert "test_split" not in record and record["labels"] == list(CLASSES)
    assert record["declaration"]["name"] == "brain-tumor-mri"


def test_a_flat_class_with_few_images_is_not_a_split_error(make_dataset):
    # "has images in the training split but none in the test split" needs an official split.
    root = make_dataset({"glioma": 1, "meningioma": 5})
    assert len(discover(root).train) == 6


def test_a_flat_dataset_needs_two_classes(make_dataset):
    root = make_dataset({"glioma": 3})
    with pytest.raises(DatasetError, match="only class 'glioma' has images"):
        discover(root)


def test_kaggle_index_pools_train_then_test(kaggle_dataset):
    index = discover(kaggle_dataset)
    assert index.has_official_split and index.samples == index.train + index.test
    assert all(s.group is None and s.fold is None and s.mask is None for s in index.samples)


def test_corrupt_images_are_skipped_with_a_warning_and_counted(kaggle_dataset, caplog, tmp_path):
    bad = kaggle_dataset / "Training" / "glioma" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    empty = kaggle_dataset / "Testing" / "notumor" / "empty.png"
    empty.write_bytes(b"")
    data = load_dataset(kaggle_dataset, Preprocessing(size=16, channels=1), tmp_path / "cache")
    assert len(data.decoded.train) == 24 and len(data.decoded.test) == 12
    assert sorted(s["path"] for s in data.decoded.skipped) == ["Testing/notumor/empty.png", "Training/glioma/broken.jpg"]
    assert data.record()["n_unreadable_skipped"] == 2
    assert "broken.jpg" in caplog.text and "empty.png" in caplog.text


def test_a_class_with_only_unreadable_images_stops_before_training(make_dataset, tmp_path):
    root = make_dataset({f"Training/{c}": 2 for c in CLASSES} | {f"Testing/{c}": 1 for c in CLASSES})
    for image in (root / "Testing" / "meningioma").iterdir():
        image.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="every image of class 'meningioma' in the test split"):
        load_dataset(root, Preprocessing(size=16, channels=1), tmp_path / "cache")


def test_mixed_formats_and_modes_load(make_dataset, tmp_path):
    import numpy as np
    from PIL import Image

    root = make_dataset({f"Training/{c}": 1 for c in CLASSES} | {f"Testing/{c}": 1 for c in CLASSES}, suffix=".jpg")
    folder = root / "Training" / "glioma"
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (20, 24), dtype=np.uint8)
    Image.fromarray(gray).convert("RGB").save(folder / "rgb.jpg")
    Image.fromarray(gray).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(gray).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(gray.astype(np.uint16) * 16).save(folder / "sixteen.png")
    for channels in (1, 3):
        data = load_dataset(root, Preprocessing(size=16, channels=channels), tmp_path / "cache")
        assert data.decoded.train.images.shape == (8, channels, 16, 16)
        assert data.decoded.skipped == []


def test_validation_split_is_stratified_seeded_and_from_training_only(kaggle_dataset, tmp_path):
    data = load_dataset(kaggle_dataset, Preprocessing(size=16, channels=1), tmp_path / "cache")
    train, val = train_val_split(data.decoded.train, 0.34, seed=3)
    assert sorted(val.labels.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert not set(val.paths) & set(train.paths)
    assert all(p.startswith("Training/") for p in val.paths + train.paths)
    assert train_val_split(data.decoded.train, 0.34, seed=3)[1].paths == val.paths
    assert train_val_split(data.decoded.train, 0.34, seed=4)[1].paths != val.paths
