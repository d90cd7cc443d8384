"""External checkpoints: a user's ONNX or TorchScript classifier benchmarked like a zoo entry."""

import json

import pytest
import torch
from torch import nn

import zoo
from bench.data.batches import Normalizer
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.data.declaration import default_labels
from bench.data.labels import LabelSet
from bench.evaluate.predict import predict_logits
from bench.imported import ImportedModelError, load_spec, output_order
from bench.runner.run_suite import RunOptions, run_suite
from bench.suites import load_suite
from bench.train.store import CheckpointStore

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
# The user's model emits classes in its own order, spelled its own way.
USER_ORDER = ["no_tumor", "pituitary_tumor", "glioma", "meningioma"]
PERMUTATION = [2, 3, 0, 1]  # user column j holds brainbench class PERMUTATION[j]


class UserModel(nn.Module):
    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base(x)[:, PERMUTATION]


@pytest.fixture
def base_model():
    torch.manual_seed(0)
    return zoo.get("cnn1.scratch").build(input_size=32).eval()


def export(model: nn.Module, folder, fmt: str):
    example = torch.zeros(1, 3, 32, 32)
    if fmt == "torchscript":
        path = folder / "mynet.pt"
        torch.jit.trace(UserModel(model).eval(), example).save(str(path))
    else:
        path = folder / "mynet.onnx"
        torch.onnx.export(UserModel(model).eval(), (example,), str(path), dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
    return path


def write_spec(folder, model_path, **changes):
    spec = {"name": '"mynet"', "path": f'"{model_path.name}"', "input_size": "32", "channels": "3",
            "mean": str(list(MEAN)), "std": str(list(STD)), "classes": json.dumps(USER_ORDER),
            "source": '"test export"'} | changes
    toml = folder / "mynet.toml"
    toml.write_text("".join(f"{k} = {v}\n" for k, v in spec.items() if v is not None))
    return toml


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_imported_model_scores_like_the_original(fmt, base_model, tmp_path, embedded_dataset):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model_file = export(base_model, tmp_path, fmt)
    spec_file = write_spec(tmp_path, model_file)
    suite_file = tmp_path / "ext.toml"
    suite_file.write_text('entries = []\nimported = ["mynet.toml"]\n')
    options = RunOptions(data_dir=embedded_dataset, out_root=tmp_path / "results",
                         store=CheckpointStore(tmp_path / "store"), device=torch.device("cpu"),
                         cache_dir=tmp_path / "cache", official_only=True)
    out = run_suite(load_suite(str(suite_file)), options)
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["entry"] == "mynet.imported" and row["status"] == "ok", row.get("error")

    # The same model, evaluated natively in brainbench's class order.
    data = load_dataset(embedded_dataset, Preprocessing(32, 3), tmp_path / "cache")
    logits = predict_logits(base_model, data.decoded.test.images, Normalizer(MEAN, STD, torch.device("cpu")))
    expected = (logits.argmax(1) == data.decoded.test.labels).float().mean().item()
    assert row["test_acc"] == pytest.approx(expected)
    assert row["size_mb"] == pytest.approx(model_file.stat().st_size / 1e6)
    assert spec_file.is_file()


def test_class_order_is_mapped(base_model, tmp_path):
    from bench.imported import load_model

    spec = load_spec(write_spec(tmp_path, export(base_model, tmp_path, "torchscript")))
    assert spec.classes == tuple(USER_ORDER)  # kept as the TOML spells them
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(load_model(spec, labels=default_labels())(x), base_model(x), atol=1e-5)


def test_output_order_maps_the_datasets_classes_to_the_models_columns():
    assert output_order(tuple(USER_ORDER), default_labels()) == (2, 3, 0, 1)  # glioma is the model's column 2
    three = LabelSet(("pituitary", "glioma", "meningioma"))
    assert output_order(("Glioma", "Meningioma", "Pituitary"), three) == (2, 0, 1)
    with pytest.raises(ImportedModelError) as error:
        output_order(("glioma", "meningioma", "pituitary"), default_labels(), "mynet.toml")
    assert str(error.value) == ("mynet.toml: the model's classes ['glioma', 'meningioma', 'pituitary'] are not the "
                                "dataset's classes ['glioma', 'meningioma', 'notumor', 'pituitary'] "
                                "(no model column for 'notumor')")
    with pytest.raises(ImportedModelError, match="no dataset class for 'astro'"):
        output_order(("glioma", "astro", "pituitary"), three)


class ThreeClassModel(nn.Module):
    """Three outputs in the user's order: the base model's pituitary, glioma and meningioma columns."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base(x)[:, [3, 0, 1]]


def test_a_three_class_model_runs_on_a_three_class_label_set_and_no_other(base_model, tmp_path):
    from bench.imported import imported_entry, load_model

    path = tmp_path / "mynet.pt"
    torch.jit.trace(ThreeClassModel(base_model).eval(), torch.zeros(1, 3, 32, 32)).save(str(path))
    spec_file = write_spec(tmp_path, path, classes='["pituitary_tumor", "glioma", "meningioma"]')
    spec = load_spec(spec_file)
    figshare = LabelSet(("glioma", "meningioma", "pituitary"), aliases=(("pituitarytumor", "pituitary"),))
    entry = imported_entry(spec)
    assert entry.num_classes == 3
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(entry.builder(labels=figshare)(x), base_model(x)[:, [0, 1, 3]], atol=1e-5)
    with pytest.raises(ImportedModelError) as error:
        load_model(spec, labels=default_labels())
    message = str(error.value)
    assert message.startswith(f"{spec_file}: the model's classes ['pituitary_tumor', 'glioma', 'meningioma']")
    assert "['glioma', 'meningioma', 'notumor', 'pituitary']" in message and "\n" not in message


@pytest.mark.parametrize("changes, message", [
    ({"colour": '"red"'}, "unknown key(s) ['colour']"),
    ({"channels": None}, "missing key(s) ['channels']"),
    ({"path": '"nothere.onnx"'}, "does not exist"),
    ({"path": '"mynet.h5"'}, "must end in one of"),
    ({"classes": '["glioma", "Glioma", "notumor", "pituitary"]'}, "names a class twice ('Glioma', 'glioma')"),
    ({"classes": '["no tumor", "no_tumor"]'}, "names a class twice"),
    ({"classes": '["glioma"]'}, "classes must be a list of two or more class names"),
    ({"classes": '["glioma", ""]'}, "classes must be a list of two or more class names"),
    ({"classes": '"glioma"'}, "classes must be a list of two or more class names"),
    ({"name": '"my.net"'}, "plain word"),
])
def test_bad_specs_name_the_problem(changes, message, base_model, tmp_path):
    model_file = export(base_model, tmp_path, "torchscript")
    (tmp_path / "mynet.h5").write_bytes(b"")
    with pytest.raises(ImportedModelError) as error:
        load_spec(write_spec(tmp_path, model_file, **changes))
    assert message in str(error.value)


def test_unloadable_file_is_named(tmp_path):
    from bench.imported import load_model

    (tmp_path / "broken.pt").write_bytes(b"not torchscript")
    spec = load_spec(write_spec(tmp_path, tmp_path / "broken.pt"))
    with pytest.raises(ImportedModelError, match="broken.pt"):
        load_model(spec, labels=default_labels())


@pytest.mark.parametrize("changes, message", [
    ({"layout": '"nhcw"'}, 'layout must be "nchw" or "nhwc", got "nhcw"'),
    ({"scale": '"abc"'}, 'scale must be a positive number (e.g. 0.00392156862745098 = 1/255), got "abc"'),
    ({"scale": "0"}, "scale must be a positive number"),
    ({"scale": "inf"}, "scale must be a positive number"),
    ({"resize": '"cubic"'}, 'resize must be one of "bilinear", "nearest", "bicubic", "lanczos", "area", got "cubic"'),
    ({"resize": "3"}, "resize must be one of"),
    ({"input_size": '"224"'}, 'input_size must be a whole number, got "224"'),
    ({"input_size": "true"}, "input_size must be a whole number, got true"),
    ({"input_size": "8"}, "input_size must be between 16 and 1024 px, got 8"),
    ({"channels": "2"}, "channels must be 1 or 3, got 2"),
    ({"channels": "3.0"}, "channels must be 1 or 3, got 3.0"),
    ({"mean": '["a", 0.5, 0.5]'}, "mean must be a list of 1 or 3 finite numbers"),
    ({"mean": "[0.5, 0.5]"}, "mean must be a list of 1 or 3 finite numbers, got [0.5, 0.5]"),
    ({"std": "[0.25, 0.0, 0.25]"}, "std values must be positive, got [0.25, 0.0, 0.25]"),
    ({"mean": None}, "missing key(s) ['mean']"),
    ({"source": "3"}, "source must be a string, got 3"),
    ({"path": "3"}, "path must be a string, got 3"),
])
def test_every_key_is_validated_with_a_one_line_message(changes, message, base_model, tmp_path):
    spec_file = write_spec(tmp_path, export(base_model, tmp_path, "torchscript"), **changes)
    with pytest.raises(ImportedModelError) as error:
        load_spec(spec_file)
    assert str(error.value).startswith(f"{spec_file}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_without_scale_the_pipeline_normalizes_exactly_as_before(base_model, tmp_path):
    from bench.imported import imported_entry

    entry = imported_entry(load_spec(write_spec(tmp_path, export(base_model, tmp_path, "torchscript"))))
    assert (entry.mean, entry.std) == (MEAN, STD)


@pytest.mark.parametrize("scale, mean, std", [(1 / 255, None, None), (0.00392156862745098, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3])])
def test_scale_then_mean_std_is_the_declared_arithmetic(scale, mean, std, base_model, tmp_path):
    from bench.imported import imported_entry

    changes = {"scale": repr(scale), "mean": str(mean) if mean else None, "std": str(std) if std else None}
    entry = imported_entry(load_spec(write_spec(tmp_path, export(base_model, tmp_path, "torchscript"), **changes)))
    pixels = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    expected = pixels.double() * scale
    if mean:
        expected = (expected - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    got = Normalizer(entry.mean, entry.std, torch.device("cpu"))(pixels.float() / 255.0)
    assert torch.allclose(got.double(), expected, atol=1e-5)


# --- a Keras-style model: NHWC input, 1/255 scaling, through `brainbench run --add-model` -----

class NhwcUserModel(nn.Module):
    """Takes (N, H, W, C) like a Keras export, emits classes in the user's order."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base(x.permute(0, 3, 1, 2))[:, PERMUTATION]


def export_fixed_size_onnx(module: nn.Module, path, example: torch.Tensor):
    """Only the batch is dynamic: fed another image size, ONNX Runtime refuses the input."""
    torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
    return path


def run_cli_with_added_model(tmp_path, embedded_dataset, spec_file):
    """The way a user benchmarks their model: a suite whose [recipe] says 64 px, plus --add-model."""
    from bench.cli import main

    suite = tmp_path / "cpu64.toml"
    suite.write_text('entries = ["cnn0.scratch"]\n[recipe]\ninput_size = 64\nepochs = 1\n')
    argv = ["run", "--suite", str(suite), "--add-model", str(spec_file), "--models", "mynet.imported",
            "--data", str(embedded_dataset), "--out", str(tmp_path / "results"), "--store", str(tmp_path / "store"),
            "--cache", str(tmp_path / "cache"), "--device", "cpu"]
    assert main(argv) == 0
    out = tmp_path / "results" / "cpu64" / "cpu-fp32-mini"
    row = json.loads((out / "results.json").read_text())["rows"][0]
    return row, out / "entries" / "mynet.imported" / "test_predictions.csv"


def read_probabilities(csv_file) -> torch.Tensor:
    import csv

    with open(csv_file) as f:
        rows = list(csv.DictReader(f))
    return torch.tensor([[float(r[f"p_{c}"]) for c in default_labels().names] for r in rows])


def test_suite_recipe_input_size_does_not_reach_an_imported_model(base_model, tmp_path, embedded_dataset):
    pytest.importorskip("onnxruntime")
    model_file = export_fixed_size_onnx(UserModel(base_model), tmp_path / "mynet.onnx", torch.zeros(1, 3, 32, 32))
    row, _ = run_cli_with_added_model(tmp_path, embedded_dataset, write_spec(tmp_path, model_file))
    assert row["status"] == "ok", row.get("error")
    assert row["input_size"] == 32


@pytest.mark.parametrize("resize", ["bilinear", "nearest"])
def test_nhwc_onnx_model_predicts_as_onnxruntime_does(base_model, tmp_path, embedded_dataset, resize):
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    model_file = export_fixed_size_onnx(NhwcUserModel(base_model), tmp_path / "mynet.onnx", torch.zeros(1, 32, 32, 3))
    spec_file = write_spec(tmp_path, model_file, mean=None, std=None, scale="0.00392156862745098",
                           layout='"nhwc"', resize=f'"{resize}"')
    row, predictions = run_cli_with_added_model(tmp_path, embedded_dataset, spec_file)
    assert row["status"] == "ok", row.get("error")

    # The same pixels, preprocessed by hand as the spec says: resized with its filter, x = pixel * scale, NHWC.
    test = load_dataset(embedded_dataset, Preprocessing(32, 3, resize=resize), tmp_path / "cache").decoded.test
    if resize == "nearest":  # guards the comparison: the filter really changes the pixels the model sees
        bilinear = load_dataset(embedded_dataset, Preprocessing(32, 3), tmp_path / "cache").decoded.test
        assert not torch.equal(bilinear.images, test.images)
    pixels = test.images.permute(0, 2, 3, 1).numpy().astype(np.float32) * np.float32(0.00392156862745098)
    logits = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"]).run(None, {"x": pixels})[0]
    user_order = torch.softmax(torch.from_numpy(logits), dim=1)
    expected = user_order[:, [PERMUTATION.index(i) for i in range(4)]]  # back into brainbench's order
    got = read_probabilities(predictions)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=2e-6)
    assert row["test_acc"] == pytest.approx((expected.argmax(1) == test.labels).float().mean().item())
