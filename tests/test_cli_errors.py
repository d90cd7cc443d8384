"""What a careless or hostile user types: every case ends in one `brainbench: error:` line and
exit 2 (argparse's own usage errors also exit 2), never a traceback, and writes nothing.

The data, training and store cases (FIFOs, symlink loops, kill -9, flipped bytes, concurrent
trainings, divergence) live with their mechanisms: test_data_robustness, test_ddp_lifetime,
test_store_failures, test_divergence, test_suites, test_recipe_validation.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from declaration_text import metadata_declaration, protocol_table
from PIL import Image

from bench.cli import main
from bench.data.declaration import DECLARATION_FILE

TINY = ["--epochs", "1", "--input-size", "32"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("brainbench")]
    assert lines, err
    return lines[-1]


@pytest.fixture
def regular_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def cases(tmp_path, regular_file):
    """(argv, the fragment its one error line must hold)."""
    store = ["--store", str(tmp_path / "store")]
    return [
        (["train", "cnn0.scratch", "--device", "tpu", *store], "--device 'tpu': not a device"),
        (["train", "cnn0.scratch", "--device", "", *store], "--device '': not a device"),
        (["predict", "cnn0.scratch", "x.jpg", "--device", "tpu"], "--device 'tpu': not a device"),
        (["train", "cnn0.scratch", "--store", str(regular_file / "store")], "is a file, not a folder"),
        (["train", "cnn0.scratch", "--cache", str(regular_file / "c"), *store], "--cache"),
        (["run", "--suite", "quick", "--out", str(regular_file / "out"), *store], "--out"),
        (["audit", "--out", str(regular_file / "out")], "--out"),
        (["bench-train", "cnn0.scratch", "--out", str(tmp_path), "--steps", "1"], "is a folder; give a file name"),
        (["train", "cnn0.scratch", "--epochs", "0", *store], "epochs"),
        (["train", "cnn0.scratch", "--epochs", "-1", *store], "epochs"),
        (["train", "cnn0.scratch", "--batch-size", "0", *store], "batch_size"),
        (["train", "cnn0.scratch", "--input-size", "7", *store], "input_size must be between 16 and 1024"),
        (["train", "cnn0.scratch", "--input-size", "5000", *store], "input_size must be between 16 and 1024"),
        (["train", "cnn0.scratch", "--seed", "-1", *store], "seed must not be negative"),
        (["train", "cnn0.scratch", "--lr", "inf", *store], "lr must be a finite number"),
        (["train", "cnn0.scratch", "--lr", "abc", *store], "invalid float value: 'abc'"),
        (["train", "cnn0.scratch", "--nproc", "0", *store], "must be at least 1"),
        (["train", "resnet18.imagenet", *store, *TINY], "ImageNet weights"),
        (["predict", "cnn0.scratch", "x.jpg", *store], "no trained checkpoint of cnn0.scratch"),
        (["predict", "nosuch.scratch", "x.jpg", *store], "no zoo entry named 'nosuch.scratch'"),
        (["report", str(tmp_path / "empty")], "no results file"),
        (["run", "--suite", "no-such-suite", *store], "no suite named 'no-such-suite'"),
        (["run", "--suite", "quick", "--models", "nothing*", *store], "matches none of suite"),
    ]


def exit_status(argv: list[str]) -> int:
    """main()'s status; argparse's own errors (a non-number for a number) exit 2 through SystemExit."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_every_bad_input_is_one_line_with_exit_2(tmp_path, regular_file, capsys, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path / "no-weights"))
    (tmp_path / "empty").mkdir()
    for argv, fragment in cases(tmp_path, regular_file):
        assert exit_status(argv) == 2, argv
        line = _error_line(capsys)
        assert fragment in line, (argv, line)
    assert not (tmp_path / "store").exists()  # no case trained or stored anything


def test_a_value_of_the_wrong_type_in_results_names_its_row_and_column(tmp_path, capsys):
    # Used to end in a TypeError traceback from a number format, naming neither.
    (tmp_path / "results.json").write_text(json.dumps({"rows": [{"entry": "a", "status": "ok", "test_acc": "high"}]}))
    assert main(["report", str(tmp_path)]) == 2
    assert "row 'a' column 'test_acc' must be a number" in _error_line(capsys)


def test_a_corrupt_results_file_is_named(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{")
    assert main(["report", str(tmp_path)]) == 2
    assert "cannot read results file" in _error_line(capsys)
    (tmp_path / "results.json").write_text(json.dumps({"rows": [{"no": "entry"}]}))
    assert main(["report", str(tmp_path)]) == 2
    assert "row 0 has no 'entry' name" in _error_line(capsys)


def test_predict_on_a_folder_a_missing_file_and_a_non_image(tmp_path, embedded_dataset, capsys):
    store = ["--store", str(tmp_path / "store"), "--cache", str(tmp_path / "cache")]
    assert main(["train", "cnn0.scratch", "--data", str(embedded_dataset), *store, *TINY]) == 0
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    capsys.readouterr()
    status = main(["predict", "cnn0.scratch", str(tmp_path), str(tmp_path / "missing.png"), str(text),
                   "--store", str(tmp_path / "store")])
    out = capsys.readouterr()
    assert status == 1 and "Traceback" not in out.err  # each row says why; the exit says some failed
    assert "not a file" in out.out and "no such file" in out.out and "unreadable" in out.out


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device exists here")
def test_cuda_asked_on_a_machine_without_it(tmp_path, capsys):
    assert main(["train", "cnn0.scratch", "--device", "cuda", "--store", str(tmp_path / "s")]) == 2
    assert "no CUDA device is available here" in _error_line(capsys)


# --- dataset declarations, metadata tables and protocols --------------------------------------------

TABLE_DECLARATION = metadata_declaration(
    "tiny-table", ["glioma", "meningioma"], fold_column="cv_fold",
    protocols=[protocol_table("patient-wise", fold_column="cv_fold"),
               protocol_table("record-wise", folds=2, groups="none")])

TINY_SUITE = 'entries = ["knn.pixels"]\nmeasure = ["metrics"]\n[recipe]\ninput_size = 32\n'


def table_dataset(root: Path, edit=None, declaration: str = TABLE_DECLARATION) -> Path:
    """images/<i>.png, masks/<i>.png, metadata.csv (3 patients per class, 2 slices each, patient k in
    fold k of cv_fold) and its brainbench-dataset.toml; `edit(rows)` changes the table first."""
    rows = []
    for i in range(12):
        name, patient = ("glioma", "meningioma")[i // 6], i % 6 // 2
        for folder, value in (("images", 40 + 15 * i), ("masks", 255)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16), value, np.uint8)).save(root / folder / f"{i}.png")
        rows.append({"image": f"images/{i}.png", "mask": f"masks/{i}.png", "class": name,
                     "pid": f"{name}-{patient}", "cv_fold": str(patient + 1)})
    if edit is not None:
        edit(rows)
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / DECLARATION_FILE).write_text(declaration)
    return root.resolve()


def set_cell(line: int, column: str, value: str):
    """An edit of the table: the cell of `column` in row `line` (the header is row 1)."""
    def edit(rows):
        rows[line - 2][column] = value
    return edit


def dataset_cases(tmp_path, make_dataset):
    """(commands, the fragments their one error line must hold): each dataset is read through both
    `brainbench run` (before any training) and `brainbench datasets`; an option, through the
    commands that take it."""
    both = ("run", "datasets")
    good = table_dataset(tmp_path / "good")
    cases = []

    def case(name, fragments, commands=both, edit=None, declaration=TABLE_DECLARATION, options=(), data=None):
        root = data or table_dataset(tmp_path / name, edit, declaration)
        cases.append((name, root, commands, list(options), [f.format(root=root) for f in fragments]))

    case("unknown-key", ["{root}/brainbench-dataset.toml: unknown key 'colour' at the top level"],
         declaration='colour = "red"\n' + TABLE_DECLARATION)
    case("wrong-type", ["{root}/brainbench-dataset.toml: [labels] classes must be a list of non-empty strings",
                        "got 'glioma'"],
         declaration=TABLE_DECLARATION.replace('classes = ["glioma", "meningioma"]', 'classes = "glioma"'))
    unmapped = make_dataset({"glioma": 2, "astrocytoma": 2}, size=16, name="unmapped").resolve()
    case("unmapped-folder", ["{root}/astrocytoma: unknown class folder 'astrocytoma'",
                             "expected one of glioma, meningioma, notumor, pituitary"], data=unmapped)
    case("fold-missing", ["{root}/metadata.csv row 3: image 'images/1.png' has no fold: column 'cv_fold' is empty"],
         edit=set_cell(3, "cv_fold", ""))
    case("fold-not-integer", ["{root}/metadata.csv row 3: fold 'two' in column 'cv_fold' is not an integer"],
         edit=set_cell(3, "cv_fold", "two"))
    case("fold-decimal", ["{root}/metadata.csv row 3: fold '1.5' in column 'cv_fold' is not an integer"],
         edit=set_cell(3, "cv_fold", "1.5"))

    def move_patient(rows):  # meningioma-1 (rows 10 and 11) from fold 2 into fold 1
        for row in rows:
            if row["pid"] == "meningioma-1":
                row["cv_fold"] = "1"

    case("fold-lacks-class", ["{root}/metadata.csv: fold 2 of cv_fold has no 'meningioma' image"],
         edit=move_patient)
    case("group-spans-folds", ["{root}/metadata.csv: group 'glioma-1' spans folds 2 and 3 of cv_fold"],
         edit=set_cell(5, "cv_fold", "3"))  # glioma-1's second slice
    root = table_dataset(tmp_path / "mask-missing")
    (root / "masks" / "5.png").unlink()
    case("mask-missing", ["{root}/metadata.csv row 7: mask file 'masks/5.png' for image 'images/5.png' is missing"],
         data=root)
    case("no-such-protocol", ["protocol 'nonsense' is not one the dataset tiny-table offers: patient-wise, "
                              "record-wise, holdout, kfold"],
         commands=("run", "train"), options=["--protocol", "nonsense"], data=good)
    case("repeated-protocol", ["'record-wise' twice"], commands=("run",),
         options=["--protocol", "record-wise,record-wise"], data=good)
    case("no-such-declaration", ["no shipped dataset declaration named 'no-such-name'; shipped: ", "brain-tumor-mri",
                                 "figshare-cheng"], options=["--declaration", "no-such-name"], data=good)
    case("folds-without-kfold", ["--folds and --groups shape the built-in protocols", "not 'patient-wise'"],
         commands=("run", "train"), options=["--folds", "1"], data=good)
    case("one-fold", ["folds must be between 2 and 50, got 1"],
         commands=("run", "train"), options=["--protocol", "kfold", "--folds", "1"], data=good)
    case("more-folds-than-patients", ["protocol kfold7 asks for 7 folds, but there are only 6 groups"],
         commands=("run", "train"), options=["--protocol", "kfold", "--folds", "7"], data=good)
    case("unknown-groups", ["protocol 'holdout' groups by 'patient'", "group column 'pid'"],
         commands=("run", "train"), options=["--protocol", "holdout", "--groups", "patient"], data=good)
    return cases


def command_argv(command: str, root: Path, tmp_path: Path) -> list[str]:
    places = ["--store", str(tmp_path / "store"), "--cache", str(tmp_path / "cache")]
    if command == "datasets":
        return ["datasets", "--data", str(root), "--cache", str(tmp_path / "cache")]
    if command == "train":
        return ["train", "knn.pixels", "--data", str(root), *places, "--device", "cpu", "--input-size", "32"]
    return ["run", "--suite", str(tmp_path / "tiny.toml"), "--data", str(root), "--out", str(tmp_path / "out"),
            *places, "--device", "cpu"]


def test_every_bad_dataset_declaration_table_or_protocol_is_one_line_with_exit_2(tmp_path, make_dataset, capsys):
    (tmp_path / "tiny.toml").write_text(TINY_SUITE)
    for name, root, commands, options, fragments in dataset_cases(tmp_path, make_dataset):
        for command in commands:
            argv = command_argv(command, root, tmp_path) + options
            assert exit_status(argv) == 2, (name, argv)
            err = capsys.readouterr().err
            lines = [line for line in err.splitlines() if line.startswith("brainbench: error:")]
            assert "Traceback" not in err and len(lines) == 1, (name, command, err)
            for fragment in fragments:
                assert fragment in lines[0], (name, command, lines[0])
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()  # nothing ran, nothing stored
