"""brainbench audit: copies of training images in the test split are found and named by kind."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from bench.audit import run_audit
from bench.cli import main
from bench.data.discover import discover
from bench.errors import DatasetError


def _scan(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """An asymmetric, textured 'slice': a blob off centre plus smooth noise, so flips differ from it."""
    yy, xx = np.mgrid[:size, :size] / size
    head = ((yy - 0.5) ** 2 / 0.16 + (xx - 0.5) ** 2 / 0.12) <= 1
    blob = np.exp(-((yy - rng.uniform(0.25, 0.45)) ** 2 + (xx - rng.uniform(0.2, 0.4)) ** 2) / 0.01)
    texture = np.kron(rng.uniform(0, 1, (12, 12)), np.ones((size // 12, size // 12)))
    image = head * (60 + 80 * texture + 110 * blob)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def audit_dataset(tmp_path):
    """Training: 4 distinct images per class. Testing: one copy of each kind, plus distinct images."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    for split in ("Training", "Testing"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
    train = {}
    for c in classes:
        for i in range(4):
            train[c, i] = _scan(rng)
            Image.fromarray(train[c, i]).save(root / "Training" / c / f"tr_{i}.png")
    test = root / "Testing"
    shutil.copy(root / "Training/glioma/tr_0.png", test / "glioma/exact.png")
    Image.fromarray(train["glioma", 1][:, ::-1]).save(test / "glioma/hflip.png")
    Image.fromarray(train["meningioma", 0][::-1, :]).save(test / "meningioma/vflip.png")
    Image.fromarray(train["meningioma", 1]).resize((150, 150), Image.Resampling.BICUBIC).save(
        test / "meningioma/resized.jpg", quality=70)
    contrast = np.clip(train["notumor", 0].astype(np.float32) * 0.6 + 30, 0, 255).astype(np.uint8)
    Image.fromarray(contrast).save(test / "notumor/contrast.png")
    # A copy filed under the wrong class: a label conflict.
    Image.fromarray(train["notumor", 1]).save(test / "pituitary/mislabelled.png")
    for c in classes:
        Image.fromarray(_scan(rng)).save(test / c / "different.png")
    # A within-split duplicate in training (re-encoded JPEG).
    Image.fromarray(train["pituitary", 0]).save(root / "Training/pituitary/tr_0_copy.jpg", quality=90)
    return root


@pytest.fixture
def result(audit_dataset):
    return run_audit(discover(audit_dataset))


def _by_file(result):
    return {m.a_rel.split("/", 1)[1]: m for m in result.test_vs_train}


def test_each_kind_of_copy_is_found(result):
    found = _by_file(result)
    assert found["glioma/exact.png"].kind == "exact"
    assert found["glioma/exact.png"].b_rel == "Training/glioma/tr_0.png"
    assert found["glioma/hflip.png"].kind == "flipped"
    assert found["glioma/hflip.png"].orientation == "h-flip"
    assert found["glioma/hflip.png"].b_rel == "Training/glioma/tr_1.png"
    assert found["meningioma/vflip.png"].kind == "flipped"
    assert found["meningioma/vflip.png"].orientation == "v-flip"
    assert found["meningioma/resized.jpg"].kind == "near"
    assert found["meningioma/resized.jpg"].b_rel == "Training/meningioma/tr_1.png"
    assert found["notumor/contrast.png"].kind in ("near", "identical-pixels")
    assert found["notumor/contrast.png"].similarity > 0.999


def test_different_images_do_not_match(result):
    found = _by_file(result)
    for c in ("glioma", "meningioma", "notumor", "pituitary"):
        match = found[f"{c}/different.png"]
        assert match.kind == "none", match
        assert match.similarity < 0.99


def test_within_split_duplicate_and_label_conflict(result):
    train_pairs = {frozenset((m.a_rel, m.b_rel)) for m in result.within["train"]}
    assert frozenset(("Training/pituitary/tr_0.png", "Training/pituitary/tr_0_copy.jpg")) in train_pairs
    assert len(result.within["train"]) == 1
    conflicts = [(where, m.a_rel, m.b_rel) for where, m in result.conflicts()]
    assert conflicts == [("test-train", "Testing/pituitary/mislabelled.png", "Training/notumor/tr_1.png")]


def test_cli_writes_report_csv_and_sheet(audit_dataset, tmp_path, capsys):
    out = tmp_path / "audit"
    assert main(["audit", "--data", str(audit_dataset), "--out", str(out)]) == 0
    for name in ("report.md", "duplicates.csv", "within_split.csv", "pairs_at_threshold.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(out / "duplicates.csv")))
    assert len(rows) == 10
    assert {r["kind"] for r in rows} >= {"exact", "flipped", "near", "none"}
    report = (out / "report.md").read_text()
    assert "Label conflicts (1)" in report and ">= 0.99" in report
    assert "6 of 10 test images" in capsys.readouterr().out


def test_threshold_out_of_range_is_an_error(audit_dataset, capsys):
    assert main(["audit", "--data", str(audit_dataset), "--threshold", "1.5"]) == 2
    assert "threshold" in capsys.readouterr().err


def test_dataset_errors_surface(tmp_path, capsys):
    (tmp_path / "Training" / "glioma").mkdir(parents=True)
    assert main(["audit", "--data", str(tmp_path)]) == 2
    assert "Testing" in capsys.readouterr().err
    with pytest.raises(DatasetError):
        run_audit(discover(tmp_path / "missing"))


def test_conflict_hidden_behind_a_nearer_same_label_copy_is_found(audit_dataset):
    # glioma/tr_0 now also sits, re-encoded, in Training/notumor. The test copy's nearest image
    # is still the byte-identical glioma file, but the notumor copy is a conflict all the same.
    image = Image.open(audit_dataset / "Training/glioma/tr_0.png")
    image.save(audit_dataset / "Training/notumor/tr_0_glioma.jpg", quality=90)
    result = run_audit(discover(audit_dataset))
    assert _by_file(result)["glioma/exact.png"].kind == "exact"
    conflicts = {(where, m.a_rel, m.b_rel) for where, m in result.conflicts()}
    assert ("test-train", "Testing/glioma/exact.png", "Training/notumor/tr_0_glioma.jpg") in conflicts
    assert any(where == "train-train" and {m.a_rel, m.b_rel} ==
               {"Training/glioma/tr_0.png", "Training/notumor/tr_0_glioma.jpg"} for where, m in result.conflicts())
    assert len([c for c in conflicts if c[0] == "train-train"]) == 1
