"""End to end: a small suite on the embedded dataset, its files, resume, and a failing entry."""

import dataclasses
import json

import pytest
import torch

from bench.cli import main
from bench.runner.run_suite import RunOptions, run_suite
from bench.suites import load_suite
from bench.train.store import CheckpointStore

SUITE = """
description = "test suite: one entry that trains, one that cannot build"
entries = ["cnn0.scratch", "cnn3.scratch"]
[recipe]
input_size = 32
epochs = 1
[entry."cnn3.scratch"]
input_size = 16   # five 2x2 max-pools do not fit in 16 px: building the model fails
"""


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    return load_suite(str(path))


@pytest.fixture
def options(tmp_path, embedded_dataset):
    return RunOptions(data_dir=embedded_dataset, out_root=tmp_path / "results",
                      store=CheckpointStore(tmp_path / "store"), device=torch.device("cpu"),
                      cache_dir=tmp_path / "cache", official_only=True)  # --split official: the published protocol


@pytest.mark.slow
def test_suite_runs_writes_rows_and_resumes(suite, options, capsys):
    # The default: the Kaggle declaration's [ranking], the patient split ranking, the official beside it.
    options = dataclasses.replace(options, official_only=False)
    out = run_suite(suite, options)
    assert out == options.out_root / "tiny" / "cpu-fp32-mini"  # the embedded dataset never overwrites real results
    results = json.loads((out / "results.json").read_text())
    rows = {row["entry"]: row for row in results["rows"]}
    for report_file in ("leaderboard.md", "leaderboard.csv", "accuracy_vs_latency.png",
                        "entries/cnn0.scratch/confusion.png", "entries/cnn0.scratch/curves.png",
                        "entries/cnn0.scratch/report.txt"):
        assert (out / report_file).is_file(), report_file
    leaderboard = (out / "leaderboard.md").read_text()
    assert "cnn0.scratch" in leaderboard and "not run" in leaderboard and "bcffbb9c58bbffe2" in leaderboard
    assert set(rows) == {"cnn0.scratch", "cnn3.scratch", "cnn0.scratch@patient", "cnn3.scratch@patient"}
    assert [p["name"] for p in results["protocols"]] == ["patient", "official"]
    assert rows["cnn0.scratch@patient"]["protocol"] == "patient" and rows["cnn0.scratch@patient"]["status"] == "ok"
    header = leaderboard.split("## Where these numbers come from")[0]
    assert "**Ranked by the `patient`: holdout split (20 % test)" in header and "Why: The official Testing/" in header
    assert "every class at least 15 %, the protocol's floor" in header and "Beside it, the official split:" in header

    ok = rows["cnn0.scratch"]
    assert ok["status"] == "ok" and ok["error"] is None
    assert ok["test_n"] == 80 and 0.0 <= ok["test_acc"] <= 1.0
    low, high = ok["test_acc_ci95"]
    assert low <= ok["test_acc"] <= high
    assert ok["params"] == sum(p.numel() for p in __import__("zoo").get("cnn0.scratch").build(input_size=32).parameters())
    assert ok["latency_ms_b1_eager"] > 0 and ok["size_mb"] > 0 and ok["gmacs"] > 0
    assert ok["dataset_fingerprint"] == results["dataset"]["fingerprint"] == "bcffbb9c58bbffe2"
    assert results["environment"]["torch"] == torch.__version__
    assert results["suite"]["file_sha256"] == suite.file_sha256
    entry_dir = out / "entries" / "cnn0.scratch"
    assert (entry_dir / "history.csv").is_file()
    predictions = (entry_dir / "test_predictions.csv").read_text().splitlines()
    assert len(predictions) == 81 and predictions[0].startswith("path,label,predicted")

    failed = rows["cnn3.scratch"]
    assert failed["status"] == "failed"
    assert "too small" in failed["error"]
    assert (out / "entries" / "cnn3.scratch" / "error.txt").is_file()

    # A second run trains nothing: the finished row is reused, the checkpoint untouched.
    checkpoint = next((options.store.root / "cnn0.scratch").iterdir()) / "model.safetensors"
    stamp = checkpoint.stat().st_mtime_ns
    capsys.readouterr()
    run_suite(suite, options)
    assert "cnn0.scratch: finished row found, skipping" in capsys.readouterr().out
    assert checkpoint.stat().st_mtime_ns == stamp
    again = json.loads((out / "results.json").read_text())
    assert [r for r in again["rows"] if r["entry"] == "cnn0.scratch"][0]["date"] == ok["date"]


@pytest.mark.slow
def test_models_filter_runs_a_subset_and_keeps_other_rows(suite, options):
    run_suite(suite, options.__class__(**{**options.__dict__, "models": "cnn0*"}))
    out = options.out_root / "tiny" / "cpu-fp32-mini"
    assert [r["entry"] for r in json.loads((out / "results.json").read_text())["rows"]] == ["cnn0.scratch"]


def test_models_filter_that_matches_nothing_is_an_error(suite, options, capsys):
    with pytest.raises(Exception, match="matches none of suite 'tiny'"):
        run_suite(suite, options.__class__(**{**options.__dict__, "models": "vgg*"}))


def test_run_with_a_broken_dataset_stops_before_training(tmp_path, capsys):
    (tmp_path / "Training" / "glioma").mkdir(parents=True)
    assert main(["run", "--suite", "quick", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no Testing folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_rows_of_another_dataset_never_mix_into_results(suite, options, make_dataset):
    out = run_suite(suite, options.__class__(**{**options.__dict__, "models": "cnn0*"}))
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    other = make_dataset({f"Training/{c}": 6 for c in classes} | {f"Testing/{c}": 2 for c in classes})
    other_out = out.parent / "cpu-fp32"
    other_out.mkdir()
    (other_out / "rows").mkdir()
    # a row of the mini dataset sits in the folder of another dataset's run
    (other_out / "rows" / "cnn0.scratch.json").write_text((out / "rows" / "cnn0.scratch.json").read_text())
    run_suite(suite, options.__class__(**{**options.__dict__, "models": "cnn3*", "data_dir": other}))
    rows = json.loads((other_out / "results.json").read_text())["rows"]
    assert [r["entry"] for r in rows] == ["cnn3.scratch"]


@pytest.mark.slow
def test_a_training_study_shows_its_setting_column(tmp_path, options):
    path = tmp_path / "study.toml"
    path.write_text('entries = ["cnn0.scratch"]\n[recipe]\ninput_size = 32\nepochs = 1\n'
                    '[[setting]]\nname = "lr=1e-2"\nlr = 1e-2\n[[setting]]\nname = "lr=1e-4"\nlr = 1e-4\n')
    out = run_suite(load_suite(str(path)), options)
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["entry"], r["zoo_entry"], r["setting"]) for r in rows] == [
        ("cnn0.scratch@lr=1e-2", "cnn0.scratch", "lr=1e-2"), ("cnn0.scratch@lr=1e-4", "cnn0.scratch", "lr=1e-4")]
    assert rows[0]["recipe"]["lr"] == 1e-2 and rows[1]["recipe"]["lr"] == 1e-4
    header = next(line for line in (out / "leaderboard.md").read_text().splitlines() if line.startswith("| rank"))
    assert "| setting " in header
    assert (out / "entries" / "cnn0.scratch@lr=1e-4" / "confusion.png").is_file()


@pytest.mark.slow
def test_deployment_modes_get_their_own_latency_tables(tmp_path, options):
    path = tmp_path / "deploy.toml"
    path.write_text('entries = ["cnn0.scratch"]\nmodes = ["torchscript", "onnxruntime", "tensorrt"]\n'
                    '[recipe]\ninput_size = 32\nepochs = 1\n')
    out = run_suite(load_suite(str(path)), options)
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["latency_ms_b1_torchscript"] > 0 and row["agreement_torchscript"] == 1.0
    assert row["latency_ms_b1_onnxruntime"] > 0 and row["provider_onnxruntime"] == "CPUExecutionProvider"
    if not torch.cuda.is_available():
        assert row["latency_note_tensorrt"] == "n/a: no CUDA device"
        assert row["latency_note_eager_fp16"] == "n/a: no CUDA device"
    text = (out / "leaderboard.md").read_text()
    for mode in ("### eager", "### torchscript", "### onnxruntime", "### tensorrt", "### e2e"):
        assert mode in text
    # Measuring more modes later reloads the checkpoint instead of reusing the row or retraining.
    path.write_text(path.read_text().replace('"tensorrt"]', '"tensorrt", "compile"]'))
    checkpoint = next((options.store.root / "cnn0.scratch").iterdir()) / "model.safetensors"
    stamp = checkpoint.stat().st_mtime_ns
    out = run_suite(load_suite(str(path)), options)
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert "latency_ms_b1_compile" in row and checkpoint.stat().st_mtime_ns == stamp
