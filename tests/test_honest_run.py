"""End to end: a suite run reports the clean split, the leakage curve, an external yes/no set,
seeds and McNemar, and `--split clean` keeps duplicate groups whole."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from bench.cli import main
from bench.crossdata.yes_no import write_yes_no_copy
from bench.runner.run_suite import RunOptions, run_suite
from bench.suites import load_suite
from bench.train.store import CheckpointStore

# knn.pixels "trains" in one pass, so the run is fast; two seeds give two different validation
# splits and so two different models.
SUITE = """
description = "honest evaluation test suite"
entries = ["knn.pixels"]
measure = ["metrics"]
seeds = [0, 1]
[recipe]
input_size = 32
"""


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "honest.toml"
    path.write_text(SUITE)
    return load_suite(str(path))


@pytest.fixture
def yes_no(embedded_dataset, tmp_path):
    """The embedded Testing folder reorganized as yes/no: the same images, labelled tumor/notumor."""
    root = tmp_path / "mini-yes-no"
    write_yes_no_copy(embedded_dataset / "Testing", root)
    return root


def _options(tmp_path, embedded_dataset, **extra) -> RunOptions:
    return RunOptions(data_dir=embedded_dataset, out_root=tmp_path / "results",
                      store=CheckpointStore(tmp_path / "store"), device=torch.device("cpu"),
                      cache_dir=tmp_path / "cache", **({"official_only": True} | extra))


def _binary_accuracy_from_predictions(path) -> float:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return sum((r["label"] == "notumor") == (r["predicted"] == "notumor") for r in rows) / len(rows)


def test_official_run_reports_clean_split_leakage_external_seeds_and_mcnemar(suite, tmp_path, embedded_dataset,
                                                                            yes_no):
    out = run_suite(suite, _options(tmp_path, embedded_dataset, external=(yes_no,)))
    results = json.loads((out / "results.json").read_text())
    leakage = results["leakage"]
    assert leakage["n_clean_test"] + leakage["n_test_duplicated"] == leakage["n_test"] == 80
    assert results["split"] == "official" and results["rank_key"] == "test_acc"

    rows = {row["entry"]: row for row in results["rows"]}
    assert set(rows) == {"knn.pixels@seed=0", "knn.pixels@seed=1"}
    for run_id, row in rows.items():
        assert row["clean_n"] == leakage["n_clean_test"]
        assert sum(row[f"leak_n_{k}"] for k in ("ge0.99", "0.95-0.99", "0.90-0.95", "lt0.90")) == 80
        # The yes/no set holds the very test images, so its binary score must equal the one
        # derived from the official test predictions, and the audit must find the same overlap.
        expected = _binary_accuracy_from_predictions(out / "entries" / run_id / "test_predictions.csv")
        assert row["ext_mini-yes-no_acc"] == pytest.approx(expected)
        assert row["ext_mini-yes-no_n"] == 80
    external = results["external_datasets"][0]
    assert external["task"] == "tumor vs notumor"
    assert external["n_repeating_training_image"] == leakage["band_counts"]["ge0.99"]

    comparisons = results["comparisons"]
    assert comparisons["reference"] in rows and len(comparisons["rows"]) == 1
    leaderboard = (out / "leaderboard.md").read_text()
    for heading in ("## Official vs clean split", "## Leakage curve", "## External: mini-yes-no",
                    "## Across seeds", "memorization reference", "vs top (McNemar)"):
        assert heading in leaderboard, heading
    assert (out / "leakage_curve.png").stat().st_size > 0


def test_clean_split_keeps_duplicate_groups_out_of_validation(suite, tmp_path, embedded_dataset):
    options = _options(tmp_path, embedded_dataset, split="clean", clean_threshold=0.95)
    out = run_suite(suite, options)
    assert out.name == "cpu-fp32-mini-clean"
    results = json.loads((out / "results.json").read_text())
    assert results["split"] == "clean" and results["rank_key"] == "clean_acc"
    assert results["leakage"]["threshold"] == 0.95
    manifests = list((tmp_path / "store" / "knn.pixels").glob("*-clean0.95/manifest.json"))
    assert len(manifests) == 2  # one per seed, keyed apart from official-split checkpoints
    assert all(json.loads(m.read_text())["val_split"]["duplicate_groups_kept_whole"] for m in manifests)
    assert "Split: clean." in (out / "leaderboard.md").read_text()


def test_bad_split_options_are_named(tmp_path, capsys):
    assert main(["run", "--suite", "quick", "--clean-threshold", "2", "--out", str(tmp_path)]) == 2
    assert "--clean-threshold" in capsys.readouterr().err
    assert main(["run", "--suite", "quick", "--external", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err
