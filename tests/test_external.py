"""External checkpoints: a user's ONNX or TorchScript classifier benchmarked like a zoo entry."""

import json

import pytest
import torch
from torch import nn

import zoo
from bench.data.batches import Normalizer
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.evaluate.predict import predict_logits
from bench.external import ExternalModelError, load_spec
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
def test_external_model_scores_like_the_original(fmt, base_model, tmp_path, embedded_dataset):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model_file = export(base_model, tmp_path, fmt)
    spec_file = write_spec(tmp_path, model_file)
    suite_file = tmp_path / "ext.toml"
    suite_file.write_text('entries = []\nexternal = ["mynet.toml"]\n')
    options = RunOptions(data_dir=embedded_dataset, out_root=tmp_path / "results",
                         store=CheckpointStore(tmp_path / "store"), device=torch.device("cpu"),
                         cache_dir=tmp_path / "cache")
    out = run_suite(load_suite(str(suite_file)), options)
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["entry"] == "mynet.external" and row["status"] == "ok", row.get("error")

    # The same model, evaluated natively in brainbench's class order.
    data = load_dataset(embedded_dataset, Preprocessing(32, 3), tmp_path / "cache")
    logits = predict_logits(base_model, data.decoded.test.images, Normalizer(MEAN, STD, torch.device("cpu")))
    expected = (logits.argmax(1) == data.decoded.test.labels).float().mean().item()
    assert row["test_acc"] == pytest.approx(expected)
    assert row["size_mb"] == pytest.approx(model_file.stat().st_size / 1e6)
    assert spec_file.is_file()


def test_class_order_is_mapped(base_model, tmp_path):
    from bench.external import load_model

    spec = load_spec(write_spec(tmp_path, export(base_model, tmp_path, "torchscript")))
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(load_model(spec)(x), base_model(x), atol=1e-5)


@pytest.mark.parametrize("changes, message", [
    ({"colour": '"red"'}, "unknown key(s) ['colour']"),
    ({"channels": None}, "missing key(s) ['channels']"),
    ({"path": '"nothere.onnx"'}, "does not exist"),
    ({"path": '"mynet.h5"'}, "must end in one of"),
    ({"classes": '["glioma", "glioma", "notumor", "pituitary"]'}, "each of"),
    ({"classes": '["glioma", "astro", "notumor", "pituitary"]'}, "unknown class folder 'astro'"),
    ({"name": '"my.net"'}, "plain word"),
])
def test_bad_specs_name_the_problem(changes, message, base_model, tmp_path):
    model_file = export(base_model, tmp_path, "torchscript")
    (tmp_path / "mynet.h5").write_bytes(b"")
    with pytest.raises(ExternalModelError) as error:
        load_spec(write_spec(tmp_path, model_file, **changes))
    assert message in str(error.value)


def test_unloadable_file_is_named(tmp_path):
    from bench.external import load_model

    (tmp_path / "broken.pt").write_bytes(b"not torchscript")
    spec = load_spec(write_spec(tmp_path, tmp_path / "broken.pt"))
    with pytest.raises(ExternalModelError, match="broken.pt"):
        load_model(spec)
