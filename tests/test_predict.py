"""`brainbench predict` and bench/inference.py on real, tiny checkpoints trained here."""

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import zoo
from bench.cli import main
from bench.data.batches import Normalizer, to_model_input
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.data.declaration import default_labels
from bench.data.decode import decode_image
from bench.errors import CheckpointError
from bench.evaluate.predict import predict_logits
from bench.identity import InputContract
from bench.inference import latest_checkpoint, load_checkpoint, predict_images
from bench.paths import EMBEDDED_DATASET
from bench.train.store import MANIFEST, WEIGHTS, CheckpointKey, CheckpointStore
from bench.train.train_or_load import train_or_load

CLASS_NAMES = default_labels().names  # the embedded dataset's classes, which the fixture's models predict
GLIOMA = EMBEDDED_DATASET / "Testing" / "glioma"
IMAGES = sorted(GLIOMA.iterdir())[:2]
# cnn1 is trained with crop_to_content so that the tests see a checkpoint whose preprocessing
# differs from its entry's defaults; two epochs at a high rate make its output depend on the
# input enough that a preprocessing mistake changes the probabilities far beyond the tolerance.
RECIPES = {
    "cnn0.scratch": dict(input_size=32, epochs=1, augment="none"),
    "cnn1.scratch": dict(input_size=32, epochs=2, lr=3e-3, augment="none", crop_to_content=True),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two trained entries in one store: {name: (TrainedModel, LoadedDataset)}, and the store's path."""
    root = tmp_path_factory.mktemp("predict")
    store = CheckpointStore(root / "store")
    out = {}
    for name, overrides in RECIPES.items():
        entry = zoo.get(name)
        recipe = entry.recipe.with_overrides(**overrides)
        prep = Preprocessing(recipe.input_size, entry.in_channels, recipe.crop_to_content)
        data = load_dataset(EMBEDDED_DATASET, prep, root / "cache")
        out[name] = train_or_load(entry, recipe, data, store, torch.device("cpu"), progress=False), data
    return out, store.root


def _rows(out: str) -> dict[str, list[str]]:
    """Table rows keyed by their first cell (image file name or entry name)."""
    rows = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 6 and cells[1] in CLASS_NAMES:
            rows[cells[0]] = cells[1:]
    return rows


def test_predict_prints_each_image_with_probabilities_summing_to_100(trained, capsys):
    _, store = trained
    assert main(["predict", "cnn0.scratch", *map(str, IMAGES), "--store", str(store), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "glioma %" in out and "pituitary %" in out
    rows = _rows(out)
    for image in IMAGES:
        predicted, *percent = rows[image.name]
        assert sum(map(float, percent)) == pytest.approx(100.0, abs=0.3), out  # four values rounded to 0.1
        percent = dict(zip(CLASS_NAMES, map(float, percent)))
        assert percent[predicted] == max(percent.values())  # ==, not argmax: rounding can make ties


def test_the_command_names_the_checkpoint_it_used(trained, capsys):
    models, store = trained
    manifest = models["cnn0.scratch"][0].manifest
    assert main(["predict", "cnn0.scratch", str(IMAGES[0]), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert str(models["cnn0.scratch"][0].checkpoint_dir) in out
    assert manifest["dataset_fingerprint"] in out and manifest["environment"]["date"] in out
    assert f"best val acc {manifest['best_val']['acc']:.4f}" in out


@pytest.mark.parametrize("name", RECIPES)
def test_probabilities_are_those_of_the_training_pipeline(trained, name):
    models, store = trained
    model, data = models[name]
    loaded = load_checkpoint(latest_checkpoint(store, name))
    got = torch.tensor([[p.probabilities[c] for c in CLASS_NAMES] for p in predict_images(loaded, IMAGES)])

    # 1. The same images as the training cache decoded them, through the evaluation path.
    rel = [str(Path(*image.parts[-3:])) for image in IMAGES]
    cached = data.decoded.test.images[[data.decoded.test.paths.index(r) for r in rel]]
    entry = zoo.get(name)
    normalize = Normalizer(entry.mean, entry.std, torch.device("cpu"))
    expected = torch.softmax(predict_logits(model.model.cpu(), cached, normalize), dim=1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)

    # 2. By hand: decode with the recipe's settings, normalize, run the model.
    size, crop = RECIPES[name]["input_size"], RECIPES[name].get("crop_to_content", False)
    by_hand = torch.stack([torch.from_numpy(decode_image(i, size, entry.in_channels, crop)) for i in IMAGES])
    with torch.inference_mode():
        logits = model.model.cpu().eval()(to_model_input(by_hand, normalize))
    torch.testing.assert_close(got, torch.softmax(logits, dim=1), rtol=1e-5, atol=1e-6)


def test_crop_setting_of_the_checkpoint_is_applied(trained):
    # Guards the test above against being vacuous: without the crop the answer differs by
    # far more than that test's tolerance (atol 1e-6), although the barely trained model is
    # close to uniform.
    _, store = trained
    loaded = load_checkpoint(latest_checkpoint(store, "cnn1.scratch"))
    cropped = predict_images(loaded, IMAGES)
    uncropped = predict_images(dataclasses.replace(
        loaded, contract=dataclasses.replace(loaded.contract, crop_to_content=False)), IMAGES)
    differences = [abs(a.probabilities[c] - b.probabilities[c])
                   for a, b in zip(cropped, uncropped) for c in CLASS_NAMES]
    assert max(differences) > 1e-4


def test_models_compares_entries_side_by_side(trained, capsys):
    _, store = trained
    argv = ["predict", "cnn0.scratch", *map(str, IMAGES), "--models", "cnn1.scratch", "--store", str(store)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    blocks = out.split("\n\n")[1:]  # the checkpoint lines, then one table per image
    assert [block.splitlines()[0] for block in blocks] == [image.name for image in IMAGES]
    for block in blocks:
        assert set(_rows(block)) == {"cnn0.scratch", "cnn1.scratch"}


def test_a_pattern_skips_untrained_entries_with_a_note(trained, capsys):
    _, store = trained
    assert main(["predict", "cnn0.scratch", str(IMAGES[0]), "--models", "cnn*", "--store", str(store)]) == 0
    captured = capsys.readouterr()
    assert set(_rows(captured.out)) == {"cnn0.scratch", "cnn1.scratch"}
    assert "skipping cnn2.scratch, cnn3.scratch: no trained checkpoint" in captured.err


def test_no_checkpoint_says_how_to_train_one(isolated_brainbench_dirs, capsys):
    assert main(["predict", "cnn2.scratch", str(IMAGES[0])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brainbench: error: ") and "brainbench train cnn2.scratch" in err
    assert str(isolated_brainbench_dirs / "store") in err


def test_a_named_entry_without_checkpoint_in_models_is_an_error(trained, capsys):
    _, store = trained
    assert main(["predict", "cnn0.scratch", str(IMAGES[0]), "--models", "cnn3.scratch", "--store", str(store)]) == 2
    assert "brainbench train cnn3.scratch" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["predict", "cnn9.scratch", "x.jpg"], "no zoo entry named 'cnn9.scratch'"),
    (["predict", "cnn0.scratch", "x.jpg", "--models", "zz*"], "no zoo entry matches 'zz*'"),
    (["predict", "cnn0.scratch", "x.jpg", "--checkpoint", "/tmp"], "is not a checkpoint folder"),
])
def test_bad_arguments_end_in_a_clear_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("brainbench: error: ") and message in err and "Traceback" not in err


def test_unreadable_images_are_rows_and_the_others_still_predicted(trained, tmp_path, capsys):
    _, store = trained
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not a jpeg at all")
    missing = tmp_path / "missing.jpg"
    argv = ["predict", "cnn0.scratch", str(missing), str(IMAGES[0]), str(garbage), "--store", str(store)]
    assert main(argv) == 1  # some images could not be read
    captured = capsys.readouterr()
    assert IMAGES[0].name in _rows(captured.out)
    assert re.search(r"missing\.jpg\s+unreadable: no such file", captured.out)
    assert re.search(r"garbage\.jpg\s+unreadable: cannot decode image", captured.out)
    assert "2 of 3 image(s) could not be read" in captured.err


def test_corrupted_weights_are_an_error_naming_the_file(trained, tmp_path, capsys):
    models, _ = trained
    original = models["cnn0.scratch"][0].checkpoint_dir
    copy = tmp_path / "store" / "cnn0.scratch" / original.name
    shutil.copytree(original, copy)
    weights = copy / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-100])
    assert main(["predict", "cnn0.scratch", str(IMAGES[0]), "--store", str(tmp_path / "store")]) == 2
    captured = capsys.readouterr()
    assert str(weights) in captured.err and "corrupted" in captured.err
    assert captured.out == ""  # no prediction from a checkpoint that failed verification


def test_checkpoint_option_picks_a_folder_and_checks_its_entry(trained, capsys):
    models, _ = trained
    folder = str(models["cnn1.scratch"][0].checkpoint_dir)
    assert main(["predict", "cnn1.scratch", str(IMAGES[0]), "--checkpoint", folder, "--store", "/nowhere"]) == 0
    assert folder in capsys.readouterr().out
    assert main(["predict", "cnn0.scratch", str(IMAGES[0]), "--checkpoint", folder]) == 2
    assert "is a checkpoint of cnn1.scratch, not of cnn0.scratch" in capsys.readouterr().err


def _fake_checkpoint(store: Path, name: str, date: str | None) -> Path:
    folder = store / "cnn0.scratch" / name
    folder.mkdir(parents=True)
    if date is not None:
        (folder / MANIFEST).write_text(json.dumps({"environment": {"date": date}}))
    return folder


def test_latest_checkpoint_is_the_most_recently_trained_finished_one(tmp_path, caplog):
    store = tmp_path / "store"
    _fake_checkpoint(store, "aaa-1", "2024-05-01T10:00:00+00:00")
    newest = _fake_checkpoint(store, "bbb-1", "2024-05-03T09:00:00+00:00")
    _fake_checkpoint(store, "ccc-1", "2024-05-02T23:00:00+00:00")
    _fake_checkpoint(store, "ddd-1", None)  # unfinished: no manifest yet
    broken = _fake_checkpoint(store, "eee-1", "2024-05-01T10:00:00+00:00")
    (broken / MANIFEST).write_text("{ not json")
    assert latest_checkpoint(store, "cnn0.scratch") == newest
    assert f"skipping checkpoint {broken}" in caplog.text


# --- a checkpoint of another label set ---------------------------------------------------------

THREE = ("glioma", "meningioma", "pituitary")  # figshare's classes: no notumor


def _three_class_checkpoint(store_root: Path) -> tuple[Path, torch.nn.Module]:
    """A cnn2 checkpoint whose manifest says it was trained on three classes, with real weights of
    a three-output cnn2 (as training on such a dataset stores it)."""
    entry = zoo.get("cnn2.scratch")
    torch.manual_seed(0)
    model = entry.build(input_size=32, num_classes=len(THREE), pretrained=False).eval()
    contract = InputContract(32, entry.in_channels, tuple(entry.mean), tuple(entry.std), THREE)
    key = CheckpointKey(entry.name, "0123456789ab", "threeclasses")
    store = CheckpointStore(store_root)
    store.save(key, model.state_dict(), {"input_contract": contract.record(), "recipe": {"dropout": None},
                                         "best_val": {"acc": 0.5},
                                         "environment": {"date": "2024-05-01T10:00:00+00:00"}})
    return store.folder(key), model


def test_a_checkpoint_answers_in_the_classes_it_was_trained_on(tmp_path, capsys):
    folder, model = _three_class_checkpoint(tmp_path / "store")
    loaded = load_checkpoint(folder)
    predictions = predict_images(loaded, IMAGES)
    assert all(set(p.probabilities) == set(THREE) for p in predictions)
    entry = zoo.get("cnn2.scratch")
    pixels = torch.stack([torch.from_numpy(decode_image(i, 32, entry.in_channels)) for i in IMAGES])
    normalize = Normalizer(entry.mean, entry.std, torch.device("cpu"))
    with torch.inference_mode():
        expected = torch.softmax(model(to_model_input(pixels, normalize)), dim=1)
    got = torch.tensor([[p.probabilities[c] for c in THREE] for p in predictions])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)

    assert main(["predict", "cnn2.scratch", str(IMAGES[0]), "--store", str(tmp_path / "store")]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if "predicted" in line)
    assert re.split(r"\s{2,}", header.strip()) == ["image", "predicted", "glioma %", "meningioma %", "pituitary %"]


def test_a_checkpoint_of_other_classes_than_expected_is_refused(trained, tmp_path, capsys):
    folder, _ = _three_class_checkpoint(tmp_path / "three")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(folder, expected_classes=CLASS_NAMES)
    assert str(error.value) == (f"checkpoint {folder} of cnn2.scratch predicts the classes "
                                f"{list(THREE)}, not the expected {list(CLASS_NAMES)}")
    assert load_checkpoint(folder, expected_classes=THREE).contract.classes == THREE
    # Compared side by side, entries share one column per class: a three-class one cannot join.
    _, store = trained
    both = tmp_path / "both"
    shutil.copytree(store, both)
    _three_class_checkpoint(both)
    argv = ["predict", "cnn0.scratch", str(IMAGES[0]), "--models", "cnn2.scratch", "--store", str(both)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "predicts the classes ['glioma', 'meningioma', 'pituitary'], not the expected" in captured.err
    assert captured.out == ""
