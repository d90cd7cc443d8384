"""What a careless or hostile user types: every case ends in one `brainbench: error:` line and
exit 2 (argparse's own usage errors also exit 2), never a traceback, and writes nothing.

The data, training and store cases (FIFOs, symlink loops, kill -9, flipped bytes, concurrent
trainings, divergence) live with their mechanisms: test_data_robustness, test_ddp_lifetime,
test_store_failures, test_divergence, test_suites, test_recipe_validation.
"""

from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main

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
