"""External test sets: layouts, the yes/no mapping, partial class sets, metrics over present classes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bench.crossdata.folders import discover_external, task_classes, task_labels, task_predictions
from bench.crossdata.yes_no import write_yes_no_copy
from bench.data.labels import CLASS_NAMES, EXTERNAL_CLASS_NAMES
from bench.errors import DatasetError
from bench.evaluate.subset_metrics import present_class_metrics

GLIOMA, MENINGIOMA, NOTUMOR, PITUITARY = range(4)


def test_yes_no_copy_of_a_test_split_is_a_binary_set(embedded_dataset, tmp_path):
    counts = write_yes_no_copy(embedded_dataset / "Testing", tmp_path / "yes-no")
    assert counts == {"yes": 60, "no": 20}
    external = discover_external(tmp_path / "yes-no")
    assert external.binary and external.task == "tumor vs notumor"
    assert external.class_counts() == {"notumor": 20, "tumor": 60}
    assert task_classes(True) == ("tumor", "notumor")


def test_binary_mapping_of_labels_and_four_class_predictions():
    folder_labels = [EXTERNAL_CLASS_NAMES.index(n) for n in ("tumor", "notumor", "glioma", "notumor")]
    assert task_labels(folder_labels, binary=True) == [0, 1, 0, 1]  # a glioma folder counts as tumor
    # Any tumor class predicted is "tumor"; only notumor is "notumor".
    assert task_predictions([GLIOMA, MENINGIOMA, PITUITARY, NOTUMOR], binary=True) == [0, 0, 0, 1]
    assert task_predictions([GLIOMA, NOTUMOR], binary=False) == [GLIOMA, NOTUMOR]


def test_nested_layouts_and_spellings_are_found(embedded_dataset, tmp_path):
    root = tmp_path / "release-2" / "Testing"
    shutil.copytree(embedded_dataset / "Testing" / "glioma", root / "Glioma_Tumor")
    shutil.copytree(embedded_dataset / "Testing" / "notumor", root / "no_tumor")
    external = discover_external(tmp_path / "release-2")
    assert not external.binary  # named classes only: scored four-class, on the classes present
    assert external.class_counts() == {"glioma": 20, "notumor": 20}
    assert external.name == "release-2"
    assert all(s.rel.startswith("Testing/") for s in external.samples)


def test_unusable_external_folders_are_named(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        discover_external(tmp_path / "missing")
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        discover_external(tmp_path / "empty")
    (tmp_path / "odd" / "scans").mkdir(parents=True)
    (tmp_path / "odd" / "scans" / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="scans"):
        discover_external(tmp_path / "odd")


def test_macro_metrics_average_over_present_classes_only():
    labels = np.array([GLIOMA, GLIOMA, NOTUMOR, NOTUMOR, NOTUMOR, NOTUMOR])
    preds = np.array([GLIOMA, PITUITARY, NOTUMOR, NOTUMOR, NOTUMOR, MENINGIOMA])
    scores = present_class_metrics(labels, preds, CLASS_NAMES)
    assert scores["classes"] == ["glioma", "notumor"]
    assert scores["acc"] == pytest.approx(4 / 6)
    assert scores["balanced_acc"] == pytest.approx((1 / 2 + 3 / 4) / 2)  # not divided by four classes
    assert scores["support_meningioma"] == 0 and "sensitivity_meningioma" not in scores
    low, high = scores["balanced_acc_ci95"]
    assert 0.0 <= low <= scores["balanced_acc"] <= high <= 1.0
    assert present_class_metrics([], [], CLASS_NAMES)["n"] == 0


def test_yes_no_copy_of_the_shared_test_split(shared_dataset, tmp_path):
    """The external set of the committed quick leaderboard, built the same way (skips without ../shared)."""
    counts = write_yes_no_copy(shared_dataset / "Testing", tmp_path / "brain-yes-no")
    external = discover_external(tmp_path / "brain-yes-no")
    assert counts == {"yes": 906, "no": 405}
    assert external.binary and len(external.samples) == 1311


def _noise_png(path, seed: int) -> None:
    from PIL import Image
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (32, 32), dtype=np.uint8)).save(path)


def test_external_folder_walk_follows_no_folder_link_and_reads_regular_files_once(tmp_path, caplog):
    import os

    from bench.data.entries import FOLDER_LINK

    root = tmp_path / "ext"
    for folder, n in (("yes", 3), ("no", 2)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            _noise_png(root / folder / f"{i}.png", seed=10 * len(folder) + i)
    os.symlink("..", root / "yes" / "up")  # inside a class folder: would relabel every "no" image
    (root / "scans").mkdir()
    os.symlink("..", root / "scans" / "again")  # outside class folders: recursed forever before
    os.mkfifo(root / "no" / "x.jpg")
    os.symlink("../yes/0.png", root / "no" / "link.png")
    external = discover_external(root)
    assert external.class_counts() == {"notumor": 2, "tumor": 3}
    assert {e["path"]: e["reason"] for e in external.skipped_entries} == {
        "no/link.png": "the same file as yes/0.png (counted once)", "no/x.jpg": "not a regular file (a FIFO)",
        "scans/again": FOLDER_LINK, "yes/up": FOLDER_LINK}
    assert external.record()["n_unusable_entries_skipped"] == 4
    assert "skipping scans/again" in caplog.text


def test_external_images_the_audit_could_not_read_are_never_counted_as_new(kaggle_dataset, tmp_path):
    import torch

    from bench.audit.load import load_split
    from bench.crossdata.evaluate import ExternalSets, external_columns
    from bench.data.cache import Preprocessing
    from bench.data.discover import discover
    from zoo.registry import get

    train = load_split("train", discover(kaggle_dataset).train, [])
    root = tmp_path / "ext"
    (root / "yes").mkdir(parents=True)
    (root / "no").mkdir()
    shutil.copy(kaggle_dataset / "Training/glioma/img_000.png", root / "yes/repeat.png")
    _noise_png(root / "no/new.png", seed=1)
    (root / "no/late.png").write_bytes(b"not an image yet")  # unreadable while the set is audited
    sets = ExternalSets([root], train, threshold=0.99)
    _noise_png(root / "no/late.png", seed=2)  # readable by the time it is scored
    record = sets.record()[0]
    assert (record["n_audited"], record["n_repeating_training_image"], record["n_new_to_training"],
            record["n_not_audited"]) == (2, 1, 1, 1)
    assert [s["path"] for s in record["unreadable_skipped"]] == ["no/late.png"]
    entry = get("cnn0.scratch")
    model = entry.build(input_size=32, pretrained=False).eval()
    columns = external_columns(model, entry, Preprocessing(32, entry.in_channels), sets, torch.device("cpu"))
    assert columns["ext_ext_n"] == 3  # every readable image is scored on the whole set
    assert columns["ext_ext_new_n"] == 1  # but only audited, non-repeating ones count as new
    assert (columns["ext_ext_n_not_audited"], columns["ext_ext_n_unreadable"]) == (1, 0)


def test_yes_no_copy_links_regular_files_only(tmp_path):
    import os

    split = tmp_path / "Testing"
    (split / "glioma").mkdir(parents=True)
    _noise_png(split / "glioma" / "a.png", seed=3)
    _noise_png(tmp_path / "outside.png", seed=4)
    os.symlink("../../outside.png", split / "glioma" / "link.png")  # relative: a hard link to it would dangle
    os.symlink("a.png", split / "glioma" / "same.png")  # the same file as a.png: copied once
    os.mkfifo(split / "glioma" / "x.jpg")
    assert write_yes_no_copy(split, tmp_path / "out") == {"yes": 2, "no": 0}
    copied = sorted((tmp_path / "out" / "yes").iterdir())
    assert [p.name for p in copied] == ["glioma_a.png", "glioma_link.png"]
    assert all(p.is_file() and not p.is_symlink() for p in copied)
