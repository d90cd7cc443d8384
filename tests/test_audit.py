"""brainbench audit: copies of training images in the test split are found and named by kind."""

from __future__ import annotations

import csv

import pytest
from PIL import Image

from bench.audit import run_audit
from bench.cli import main
from bench.data.discover import discover
from bench.errors import DatasetError


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


def test_matches_and_report_name_the_datasets_own_classes(audit_dataset, relabel_audit_dataset, tmp_path):
    # Another order and another name for notumor: labels must be read through the dataset's label set.
    relabel_audit_dataset()
    result = run_audit(discover(audit_dataset))
    found = _by_file(result)
    assert (found["glioma/exact.png"].a_label, found["glioma/exact.png"].b_label) == ("glioma", "glioma")
    assert found["notumor/contrast.png"].a_label == "healthy"
    conflict = result.conflicts()[0][1]
    assert (conflict.a_label, conflict.b_label) == ("pituitary", "healthy")
    from bench.audit.report import write_report

    write_report(result, tmp_path / "report.md", "fp")
    table = (tmp_path / "report.md").read_text().split("per class and kind")[1].split("## ")[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:]
    assert rows == ["pituitary", "meningioma", "healthy", "glioma", "all"]
