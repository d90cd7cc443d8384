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
