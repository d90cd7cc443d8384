"""The command line as a user meets it: tables, summaries and clear one-line errors."""

import pytest

from bench.cli import main


def test_list_shows_the_entries(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("cnn0.scratch", "cnn3.scratch", "resnet18.scratch", "mobilenetv2.scratch"):
        assert name in out
    assert "params (M)" in out


def test_list_with_a_pattern_that_matches_nothing(capsys):
    assert main(["list", "nothing*"]) == 1
    assert "no zoo entry matches" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "cnn9.scratch"], "no zoo entry named 'cnn9.scratch'"),
    (["train", "cnn0"], "arch.variant"),
    (["train", "cnn0.scratch", "--data", "/no/such/folder"], "/no/such/folder"),
    (["train", "cnn0.scratch", "--epochs", "0"], "epochs must be positive"),
    (["train", "cnn0.scratch", "--device", "cuda:7"], None),
])
def test_bad_input_ends_in_a_clear_message(argv, message, capsys):
    import torch

    if argv[-1] == "cuda:7":
        if torch.cuda.is_available():
            pytest.skip("a CUDA device exists here")
        message = "no CUDA device"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("brainbench: error: ") and message in err
    assert "Traceback" not in err


def test_unknown_class_folder_from_the_cli(make_dataset, capsys):
    root = make_dataset({"Training/glioma": 1, "Training/tumour_x": 1, "Testing/glioma": 1})
    assert main(["train", "cnn0.scratch", "--data", str(root)]) == 2
    assert "unknown class folder 'tumour_x'" in capsys.readouterr().err


@pytest.mark.slow
def test_train_then_load_from_the_cli(embedded_dataset, capsys):
    argv = ["train", "cnn0.scratch", "--data", str(embedded_dataset), "--epochs", "1", "--input-size", "32"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "trained 1 epochs" in first and "s/epoch" in first and "checkpoint:" in first
    assert main(argv) == 0
    assert "loaded stored checkpoint" in capsys.readouterr().out
