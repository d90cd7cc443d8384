import json
import math

import pytest
import torch

import zoo
from bench.cli import main
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.errors import OptionError
from bench.throughput import (
    ThroughputSettings,
    markdown_table,
    measure_train_throughput,
)
from bench.throughput.imagefolder import TrainingFolder, training_folder

SIZE = 32


@pytest.fixture
def tiny(embedded_dataset, tmp_path):
    entry = zoo.get("cnn0.scratch")
    data = load_dataset(embedded_dataset, Preprocessing(SIZE, entry.in_channels), tmp_path / "cache")
    return entry, data


def test_three_figures_and_their_ratios(tiny):
    entry, data = tiny
    settings = ThroughputSettings(batch_size=16, input_size=SIZE, steps=3, rounds=3, warmup=1, workers=0,
                                  progress=False)
    recipe = entry.recipe.with_overrides(batch_size=16, input_size=SIZE)
    result = measure_train_throughput(entry, recipe, data, settings, torch.device("cpu"))
    ips = {name: m.images_per_s for name, m in result.measurements.items()}
    assert set(ips) == {"model_only", "cached", "imagefolder"}
    for name, m in result.measurements.items():
        assert math.isfinite(m.images_per_s) and m.images_per_s > 0, name
        assert m.steps == 3 and len(m.rounds_images_per_s) == 3
        assert m.images_per_s == sorted(m.rounds_images_per_s)[1]  # the median round
        assert all(math.isfinite(ips) and ips > 0 for ips in m.rounds_images_per_s)
    assert result.ratios["cached_over_model_only"] == pytest.approx(ips["cached"] / ips["model_only"])
    assert result.ratios["cached_over_imagefolder"] == pytest.approx(ips["cached"] / ips["imagefolder"])
    metrics = result.metrics()
    assert metrics["train_throughput_ips_cached"] == ips["cached"]
    assert metrics["ratio_cached_over_imagefolder"] == result.ratios["cached_over_imagefolder"]
    table = markdown_table(result)
    assert "(b)/(a) = " in table and "(b)/(c) = " in table and table.count("\n| (") == 3


def test_imagefolder_sees_the_cached_training_images_with_their_labels(tiny):
    _, data = tiny
    root, files = training_folder(data)
    folder = TrainingFolder(root, files)
    assert len(folder) == len(data.decoded.train)
    assert torch.bincount(torch.tensor(folder.targets), minlength=4).tolist() == \
        torch.bincount(data.decoded.train.labels, minlength=4).tolist()


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench" / "train.json"
    code = main(["bench-train", "cnn0.scratch", "--input-size", str(SIZE), "--batch-size", "16", "--steps", "2",
                 "--rounds", "2", "--warmup", "1", "--workers", "1", "--device", "cpu", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| pipeline | images/s | ms/step | vs (a) | images/s per round |" in printed
    assert "(b)/(a) = " in printed and "(b)/(c) = " in printed and "1 worker" in printed
    record = json.loads(out.read_text())
    assert record["name"] == "bench-train" and record["environ"]["torch"] == torch.__version__
    assert record["config"]["entry"] == "cnn0.scratch" and record["config"]["input_size"] == SIZE
    assert record["config"]["rounds"] == 2
    metrics = record["metrics"]
    assert metrics["ratio_cached_over_model_only"] == pytest.approx(
        metrics["train_throughput_ips_cached"] / metrics["train_throughput_ips_model_only"])


@pytest.mark.parametrize("option, value", [("--steps", "0"), ("--rounds", "0"), ("--warmup", "-1"), ("--workers", "-2"),
                                           ("--batch-size", "0")])
def test_bad_value_is_a_clear_error(option, value, capsys):
    assert main(["bench-train", "cnn0.scratch", option, value]) == 2
    error = capsys.readouterr().err
    assert error.startswith("brainbench: error: ") and f"{option} must be" in error and value in error


def test_batch_larger_than_the_training_split_is_a_clear_error(tiny):
    entry, data = tiny
    settings = ThroughputSettings(batch_size=10_000, input_size=SIZE, steps=1, progress=False)
    with pytest.raises(OptionError, match="--batch-size 10000 is larger than the 320 training images"):
        measure_train_throughput(entry, entry.recipe, data, settings, torch.device("cpu"))
