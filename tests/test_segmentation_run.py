"""The segmentation track end to end, through `brainbench run`, `report` and `predict`: a small
figshare-like dataset written here (slices with a bright tumour disc, its mask, patient ids, a
fold column), two U-Nets on its patient-wise folds, and every bad input named in one line.

The suite runs once per module (2 entries x 2 folds, 2 epochs at 32 px); the tests read what it wrote."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from declaration_text import metadata_declaration, protocol_table
from PIL import Image

from bench.cli import main
from bench.data.declaration import DECLARATION_FILE
from bench.segmentation.data import MASK_VALUES

CLASSES = ("glioma", "meningioma", "pituitary")
PATIENTS_PER_CLASS = 4
SLICES_PER_PATIENT = 3
SIZE = 48  # written size; the suite trains at 32 px (the U-Nets need a multiple of 16)

DECLARATION = metadata_declaration(
    "tiny-masks", CLASSES,
    description="12 patients of three classes, 3 slices each, a disc of tumour per slice and its mask",
    protocols=[protocol_table("patient-wise", fold_column="fold",
                              description="the fold column: each patient in one fold")])

SUITE = '''
description = "two U-Nets, two patient-wise folds, 2 epochs at 32 px"
task = "segmentation"
entries = ["classic_unet.scratch", "attention_unet.scratch"]
modes = ["torchscript", "onnxruntime"]
[recipe]
input_size = 32
epochs = 2
batch_size = 8
lr = 3e-3
'''


def write_masked_dataset(root: Path, *, mask_size: int = SIZE, mask_value: int = 255) -> Path:
    """images/<class>/<n>.png with a bright disc on noise, masks/<n>.png the disc, metadata.csv."""
    rng = np.random.default_rng(0)
    rows = []
    n = 0
    for label, name in enumerate(CLASSES):
        for patient in range(PATIENTS_PER_CLASS):
            for _ in range(SLICES_PER_PATIENT):
                n += 1
                y, x = np.mgrid[:SIZE, :SIZE]
                cy, cx, radius = rng.integers(14, SIZE - 14), rng.integers(14, SIZE - 14), 6 + 2 * label
                disc = (y - cy) ** 2 + (x - cx) ** 2 <= radius ** 2
                image = np.clip(rng.normal(60, 20, (SIZE, SIZE)) + 150 * disc, 0, 255).astype(np.uint8)
                (root / "images" / name).mkdir(parents=True, exist_ok=True)
                (root / "masks").mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(root / "images" / name / f"{n}.png")
                mask = Image.fromarray((disc * mask_value).astype(np.uint8))
                if mask_size != SIZE:
                    mask = mask.resize((mask_size, mask_size), Image.Resampling.NEAREST)
                mask.save(root / "masks" / f"{n}.png")
                rows.append({"image": f"images/{name}/{n}.png", "mask": f"masks/{n}.png", "class": name,
                             "pid": f"P{label}{patient}", "fold": patient % 2 + 1})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / DECLARATION_FILE).write_text(DECLARATION)
    return root


@dataclass
class SegRun:
    base: Path
    data: Path
    out: Path
    results: dict
    leaderboard: str
    code: int


def run_args(base: Path, data: Path, suite: Path, *extra: str) -> list[str]:
    return ["run", "--suite", str(suite), "--data", str(data), "--out", str(base / "results"),
            "--store", str(base / "store"), "--cache", str(base / "cache"), "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def seg(tmp_path_factory) -> SegRun:
    base = tmp_path_factory.mktemp("segmentation")
    data = write_masked_dataset(base / "data")
    (base / "seg.toml").write_text(SUITE)
    code = main(run_args(base, data, base / "seg.toml"))
    [out] = (base / "results" / "seg").iterdir()
    return SegRun(base, data, out, json.loads((out / "results.json").read_text()),
                  (out / "leaderboard.md").read_text(), code)


@pytest.mark.slow
def test_every_unet_runs_on_every_patient_wise_fold(seg):
    assert seg.code == 0
    rows = {row["entry"]: row for row in seg.results["rows"]}
    expected = {f"{entry}@patient-wise,fold={k}" for entry in ("classic_unet.scratch", "attention_unet.scratch")
                for k in (1, 2)}
    assert set(rows) == expected and all(row["status"] == "ok" for row in rows.values())
    row = rows["classic_unet.scratch@patient-wise,fold=1"]
    assert row["task"] == "segmentation" and row["test_n"] == 18  # half the patients
    for key in ("test_dice", "test_iou", "test_pixel_acc", "test_precision", "test_recall", "test_fpr", "test_fnr",
                "test_pooled_dice", "test_dice_glioma"):
        assert 0.0 <= row[key] <= 1.0, key
    low, high = row["test_dice_ci95"]
    assert low <= row["test_dice"] <= high
    assert row["params"] == 1_374_577 and row["gmacs"] > 0 and row["size_mb"] > 0
    with open(seg.out / "entries" / row["entry"] / "test_counts.csv") as handle:
        counts = list(csv.DictReader(handle))
    assert len(counts) == 18 and {c["class"] for c in counts} == set(CLASSES)
    # The folds keep patients whole: every test slice's patient is absent from the training side.
    split = list(csv.DictReader(open(seg.out / "splits" / "patient-wise.csv")))
    parts = {}
    for line in split:
        parts.setdefault(line["group"], set()).add(line["part"])
    assert all(len(p) == 1 for p in parts.values())


@pytest.mark.slow
def test_deployment_modes_agree_with_eager_as_mask_iou(seg):
    row = next(r for r in seg.results["rows"] if r["entry"] == "attention_unet.scratch@patient-wise,fold=1")
    assert row["agreement_torchscript"] == pytest.approx(1.0, abs=1e-6)
    if row.get("latency_note_onnxruntime") is None:
        assert row["agreement_onnxruntime"] > 0.99 and row["latency_ms_b1_onnxruntime"] > 0
    modes = seg.leaderboard.split("## Deployment modes")[1].split("##")[0]
    assert "mask IoU vs eager" in modes and " torchscript " in modes and " eager " in modes


@pytest.mark.slow
def test_leaderboard_pools_the_folds_and_shows_the_pictures(seg):
    text = seg.leaderboard
    assert text.startswith("# seg on cpu-fp32")
    assert "**Segmentation, ranked by mean Dice on the `patient-wise`: cross-validation over the folds of column" in text
    ranking = text.split("## Ranking")[1].split("###")[0]
    assert "| classic_unet.scratch@patient-wise " in ranking and "fold=" not in ranking  # folds pooled
    for entry in ("classic_unet.scratch", "attention_unet.scratch"):
        assert (seg.out / "entries" / f"{entry}@patient-wise,fold=1" / "slices.png").is_file()
    attention = seg.out / "entries" / "attention_unet.scratch@patient-wise,fold=1" / "attention.png"
    assert attention.is_file() and "attention_unet.scratch@patient-wise,fold=1/attention.png" in text
    assert not (seg.out / "entries" / "classic_unet.scratch@patient-wise,fold=1" / "attention.png").exists()


@pytest.mark.slow
def test_a_second_run_trains_nothing(seg, capsys):
    capsys.readouterr()
    assert main(run_args(seg.base, seg.data, seg.base / "seg.toml")) == 0
    said = capsys.readouterr().out
    assert said.count("finished row found, skipping") == 4 and "epoch 1/2" not in said


# --- bad input: one line each ---------------------------------------------------------------------

def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("brainbench: error:")]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_a_mask_of_another_size_is_named(tmp_path, capsys):
    data = write_masked_dataset(tmp_path / "data", mask_size=SIZE // 2)
    (tmp_path / "seg.toml").write_text(SUITE)
    assert main(run_args(tmp_path, data, tmp_path / "seg.toml")) == 2
    line = one_error_line(capsys)
    assert "masks/1.png is 24x24 pixels, its image" in line and "48x48" in line
    assert not (tmp_path / "store").exists()  # refused before any training


def test_a_mask_with_grey_levels_is_named(tmp_path, capsys):
    data = write_masked_dataset(tmp_path / "data", mask_value=128)
    (tmp_path / "seg.toml").write_text(SUITE)
    assert main(run_args(tmp_path, data, tmp_path / "seg.toml")) == 2
    line = one_error_line(capsys)
    assert "masks/1.png holds the values 0, 128; a mask holds only 0 and 255 (or 0 and 1)" in line
    assert {0, 1} in MASK_VALUES  # 0/1 masks are fine


def test_a_missing_mask_is_named(tmp_path, capsys):
    data = write_masked_dataset(tmp_path / "data")
    (data / "masks" / "5.png").unlink()
    (tmp_path / "seg.toml").write_text(SUITE)
    assert main(run_args(tmp_path, data, tmp_path / "seg.toml")) == 2
    assert "masks/5.png" in one_error_line(capsys)


def test_a_dataset_without_masks_is_named(tmp_path, embedded_dataset, capsys):
    (tmp_path / "seg.toml").write_text(SUITE)
    assert main(run_args(tmp_path, embedded_dataset, tmp_path / "seg.toml")) == 2
    assert "declares no mask column" in one_error_line(capsys)


def test_a_segmentation_entry_in_a_classification_suite_is_named(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('entries = ["resnet18.scratch", "classic_unet.scratch"]\n')
    assert main(["run", "--suite", str(tmp_path / "c.toml"), "--out", str(tmp_path / "r")]) == 2
    assert ("entry 'classic_unet.scratch' is a segmentation entry, but this is a classification suite"
            in one_error_line(capsys))


def test_a_classifier_in_a_segmentation_suite_is_named(tmp_path, capsys):
    (tmp_path / "s.toml").write_text('task = "segmentation"\nentries = ["resnet18.scratch"]\n')
    assert main(["run", "--suite", str(tmp_path / "s.toml"), "--out", str(tmp_path / "r")]) == 2
    assert "entry 'resnet18.scratch' is a classification entry, but this is a segmentation suite" in one_error_line(capsys)


def test_patterns_match_only_entries_of_the_suites_task(tmp_path):
    from bench.suites import load_suite

    (tmp_path / "all.toml").write_text('entries = ["*"]\n')
    (tmp_path / "seg.toml").write_text('task = "segmentation"\nentries = ["*"]\n')
    assert not any("unet" in name for name in load_suite(str(tmp_path / "all.toml")).entries)
    assert load_suite(str(tmp_path / "seg.toml")).entries == (
        "attention_unet.scratch", "classic_unet.scratch", "improved_unet.scratch")


@pytest.mark.slow
def test_report_rebuilds_the_segmentation_leaderboard(seg, capsys):
    written = (seg.out / "leaderboard.md").read_text()  # by the latest run, from the results.json it left
    (seg.out / "leaderboard.md").unlink()
    assert main(["report", str(seg.out)]) == 0
    assert (seg.out / "leaderboard.md").read_text() == written


@pytest.mark.slow
def test_predict_writes_a_mask_and_an_overlay_of_the_images_size(seg, tmp_path, capsys):
    image = seg.data / "images" / "glioma" / "1.png"
    unreadable = tmp_path / "broken.png"
    unreadable.write_bytes(b"not a png")
    code = main(["predict", "classic_unet.scratch", str(image), str(unreadable), "--store", str(seg.base / "store"),
                 "--out", str(tmp_path / "pred"), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 1  # one image could not be read; the other was still written
    mask = np.asarray(Image.open(tmp_path / "pred" / "1_mask.png"))
    overlay = Image.open(tmp_path / "pred" / "1_overlay.png")
    assert mask.shape == (SIZE, SIZE) and set(np.unique(mask).tolist()) <= {0, 255}
    assert overlay.size == (SIZE, SIZE) and overlay.mode == "RGB"
    assert "tumour pixels %" in out and "unreadable" in out and "best val Dice" in out


def test_train_refuses_a_segmentation_entry_in_one_line(tmp_path, capsys):
    assert main(["train", "classic_unet.scratch", "--store", str(tmp_path / "store")]) == 2
    assert "brainbench train trains classifiers; classic_unet.scratch is a segmentation entry" in one_error_line(capsys)
