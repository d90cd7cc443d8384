"""External test sets: layouts, the yes/no mapping, partial class sets, declared sets mapped onto a
model's classes, metrics over present classes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bench.crossdata.external_set import NO_NO_TUMOR_CLASS
from bench.crossdata.folders import discover_external
from bench.crossdata.yes_no import write_yes_no_copy
from bench.data.labels import LabelSet
from bench.errors import DatasetError
from bench.evaluate.subset_metrics import present_class_metrics

GLIOMA, MENINGIOMA, NOTUMOR, PITUITARY = range(4)
# The label sets of the models scored here, built directly: the Kaggle four classes, and
# figshare's three tumour types, which have no no-tumour class.
FOUR = LabelSet(("glioma", "meningioma", "notumor", "pituitary"), "notumor",
                (("gliomatumor", "glioma"), ("pituitarytumor", "pituitary")))
THREE = LabelSet(("glioma", "meningioma", "pituitary"))


def test_yes_no_copy_of_a_test_split_is_a_binary_set(embedded_dataset, tmp_path):
    counts = write_yes_no_copy(embedded_dataset / "Testing", tmp_path / "yes-no")
    assert counts == {"yes": 60, "no": 20}
    external = discover_external(tmp_path / "yes-no", FOUR)
    assert external.binary and external.task == "tumor vs notumor"
    assert external.class_counts() == {"notumor": 20, "tumor": 60}
    assert external.classes == ("tumor", "notumor")


def test_yes_no_copy_needs_a_no_tumor_class(embedded_dataset, tmp_path):
    with pytest.raises(DatasetError, match="needs a no-tumour class"):
        write_yes_no_copy(embedded_dataset / "Testing", tmp_path / "yes-no", THREE)


def test_binary_mapping_of_labels_and_four_class_predictions(tmp_path):
    for folder, seed in (("yes", 1), ("no", 2), ("glioma", 3), ("notumor", 4)):
        (tmp_path / "ext" / folder).mkdir(parents=True)
        _noise_png(tmp_path / "ext" / folder / "a.png", seed)
    external = discover_external(tmp_path / "ext", FOUR)
    labels = {s.rel.split("/")[0]: external.classes[s.label] for s in external.samples}
    # A glioma folder counts as tumor; a folder of the model's no-tumour class as notumor.
    assert labels == {"yes": "tumor", "no": "notumor", "glioma": "tumor", "notumor": "notumor"}
    # Any tumor class predicted is "tumor"; only notumor is "notumor".
    assert external.task_predictions([GLIOMA, MENINGIOMA, PITUITARY, NOTUMOR]) == [0, 0, 0, 1]


def test_binary_set_against_a_model_whose_no_tumor_class_has_another_name(tmp_path):
    model = LabelSet(("glioma", "healthy"), "healthy")
    for folder, seed in (("yes", 1), ("no", 2), ("healthy", 3)):
        (tmp_path / "ext" / folder).mkdir(parents=True)
        _noise_png(tmp_path / "ext" / folder / "a.png", seed)
    external = discover_external(tmp_path / "ext", model)
    assert [external.classes[s.label] for s in external.samples] == ["notumor", "notumor", "tumor"]  # sorted folders
    assert external.task_predictions([0, 1]) == [0, 1]  # glioma -> tumor, healthy -> notumor


def test_nested_layouts_and_spellings_are_found(embedded_dataset, tmp_path):
    root = tmp_path / "release-2" / "Testing"
    shutil.copytree(embedded_dataset / "Testing" / "glioma", root / "Glioma_Tumor")
    shutil.copytree(embedded_dataset / "Testing" / "notumor", root / "no_tumor")
    external = discover_external(tmp_path / "release-2", FOUR)
    assert not external.binary  # named classes only: scored four-class, on the classes present
    assert external.task == "four-class" and external.classes == FOUR.names
    assert external.class_counts() == {"glioma": 20, "notumor": 20}
    assert external.name == "release-2"
    assert all(s.rel.startswith("Testing/") for s in external.samples)


def test_a_no_tumor_word_folder_means_the_models_no_tumor_class(tmp_path):
    for folder, seed in (("glioma", 1), ("normal", 2)):
        (tmp_path / "ext" / folder).mkdir(parents=True)
        _noise_png(tmp_path / "ext" / folder / "a.png", seed)
    external = discover_external(tmp_path / "ext", FOUR)
    assert not external.binary  # no tumor (yes) folder: scored in the model's classes
    assert sorted(external.classes[s.label] for s in external.samples) == ["glioma", "notumor"]


def test_folders_of_classes_the_model_lacks_are_left_out_and_counted(embedded_dataset, tmp_path):
    root = tmp_path / "kaggle-test"
    shutil.copytree(embedded_dataset / "Testing", root)
    external = discover_external(root, THREE)  # the four Kaggle folders, a model of three tumour types
    assert not external.binary and external.classes == THREE.names
    assert len(external.samples) == 60 and {THREE.names[s.label] for s in external.samples} == set(THREE.names)
    record = external.record()
    assert (record["n_not_in_task"], record["classes_not_in_task"]) == (20, ["notumor"])
    assert record["images_per_folder_class"]["notumor"] == 20 and record["task"] == "three-class"


def test_unusable_external_folders_are_named(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        discover_external(tmp_path / "missing", FOUR)
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        discover_external(tmp_path / "empty", FOUR)
    (tmp_path / "odd" / "scans").mkdir(parents=True)
    (tmp_path / "odd" / "scans" / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="scans.*expected one of glioma, meningioma, pituitary, yes/no"):
        discover_external(tmp_path / "odd", THREE)


def test_macro_metrics_average_over_present_classes_only():
    labels = np.array([GLIOMA, GLIOMA, NOTUMOR, NOTUMOR, NOTUMOR, NOTUMOR])
    preds = np.array([GLIOMA, PITUITARY, NOTUMOR, NOTUMOR, NOTUMOR, MENINGIOMA])
    scores = present_class_metrics(labels, preds, FOUR.names)
    assert scores["classes"] == ["glioma", "notumor"]
    assert scores["acc"] == pytest.approx(4 / 6)
    assert scores["balanced_acc"] == pytest.approx((1 / 2 + 3 / 4) / 2)  # not divided by four classes
    assert scores["support_meningioma"] == 0 and "sensitivity_meningioma" not in scores
    low, high = scores["balanced_acc_ci95"]
    assert 0.0 <= low <= scores["balanced_acc"] <= high <= 1.0
    assert present_class_metrics([], [], FOUR.names)["n"] == 0


def test_yes_no_copy_of_the_shared_test_split(shared_dataset, tmp_path):
    """The external set of the committed quick leaderboard, built the same way (skips without ../shared)."""
    counts = write_yes_no_copy(shared_dataset / "Testing", tmp_path / "brain-yes-no")
    external = discover_external(tmp_path / "brain-yes-no", FOUR)
    assert counts == {"yes": 906, "no": 405}
    assert external.binary and len(external.samples) == 1311


def _noise_png(path, seed: int) -> None:
    from PIL import Image
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (32, 32), dtype=np.uint8)).save(path)


def test_external_folder_walk_follows_no_folder_link_and_reads_regular_files_once(tmp_path, caplog):
    import os

    from bench.data.entries import FOLDER_LINK

    root = tmp_path / "ext"
    for folder, n in (("yes", 3), ("no", 2)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            _noise_png(root / folder / f"{i}.png", seed=10 * len(folder) + i)
    os.symlink("..", root / "yes" / "up")  # inside a class folder: would relabel every "no" image
    (root / "scans").mkdir()
    os.symlink("..", root / "scans" / "again")  # outside class folders: recursed forever before
    os.mkfifo(root / "no" / "x.jpg")
    os.symlink("../yes/0.png", root / "no" / "link.png")
    external = discover_external(root, FOUR)
    assert external.class_counts() == {"notumor": 2, "tumor": 3}
    assert {e["path"]: e["reason"] for e in external.skipped_entries} == {
        "no/link.png": "the same file as yes/0.png (counted once)", "no/x.jpg": "not a regular file (a FIFO)",
        "scans/again": FOLDER_LINK, "yes/up": FOLDER_LINK}
    assert external.record()["n_unusable_entries_skipped"] == 4
    assert "skipping scans/again" in caplog.text


def test_external_images_the_audit_could_not_read_are_never_counted_as_new(kaggle_dataset, tmp_path):
    import torch

    from bench.audit.load import load_split
    from bench.crossdata.evaluate import ExternalSets, external_columns
    from bench.data.cache import Preprocessing
    from bench.data.discover import discover
    from zoo.registry import get

    index = discover(kaggle_dataset)
    train = load_split("train", index.train, [])
    root = tmp_path / "ext"
    (root / "yes").mkdir(parents=True)
    (root / "no").mkdir()
    shutil.copy(kaggle_dataset / "Training/glioma/img_000.png", root / "yes/repeat.png")
    _noise_png(root / "no/new.png", seed=1)
    (root / "no/late.png").write_bytes(b"not an image yet")  # unreadable while the set is audited
    sets = ExternalSets([root], train, threshold=0.99, model_labels=index.labels)
    _noise_png(root / "no/late.png", seed=2)  # readable by the time it is scored
    record = sets.record()[0]
    assert (record["n_audited"], record["n_repeating_training_image"], record["n_new_to_training"],
            record["n_not_audited"]) == (2, 1, 1, 1)
    assert [s["path"] for s in record["unreadable_skipped"]] == ["no/late.png"]
    entry = get("cnn0.scratch")
    model = entry.build(input_size=32, pretrained=False).eval()
    columns = external_columns(model, entry, Preprocessing(32, entry.in_channels), sets, torch.device("cpu"))
    assert columns["ext_ext_n"] == 3  # every readable image is scored on the whole set
    assert columns["ext_ext_new_n"] == 1  # but only audited, non-repeating ones count as new
    assert (columns["ext_ext_n_not_audited"], columns["ext_ext_n_unreadable"]) == (1, 0)


def test_yes_no_copy_links_regular_files_only(tmp_path):
    import os

    split = tmp_path / "Testing"
    (split / "glioma").mkdir(parents=True)
    _noise_png(split / "glioma" / "a.png", seed=3)
    _noise_png(tmp_path / "outside.png", seed=4)
    os.symlink("../../outside.png", split / "glioma" / "link.png")  # relative: a hard link to it would dangle
    os.symlink("a.png", split / "glioma" / "same.png")  # the same file as a.png: copied once
    os.mkfifo(split / "glioma" / "x.jpg")
    assert write_yes_no_copy(split, tmp_path / "out") == {"yes": 2, "no": 0}
    copied = sorted((tmp_path / "out" / "yes").iterdir())
    assert [p.name for p in copied] == ["glioma_a.png", "glioma_link.png"]
    assert all(p.is_file() and not p.is_symlink() for p in copied)


# --- external sets that declare their own label set ------------------------------------------

TINY_44C = '''
name = "tiny-44c"
[labels]
classes = ["Astro", "Glioblastoma", "Foo", "normal"]
no_tumor = "normal"
coarse = { glioma = ["Astro", "Glioblastoma"], notumor = ["normal"] }
[images]
from = "folders"
[[protocol]]
name = "holdout"
kind = "holdout"
'''

TWO_TYPES = '''
name = "two-types"
[labels]
classes = ["Pituitary", "glioma"]
[images]
from = "folders"
[[protocol]]
name = "holdout"
kind = "holdout"
'''


def _declared_set(root, declaration: str, counts: dict[str, int]):
    """A flat folder of class folders with `counts` noise images each, and its declaration."""
    for seed, (folder, n) in enumerate(counts.items()):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            _noise_png(root / folder / f"{i}.png", seed=100 * seed + i)
    (root / "brainbench-dataset.toml").write_text(declaration)
    return root


def _score(kaggle_dataset, roots, model_labels):
    """The external columns of an untrained cnn0 with one output per class of `model_labels`."""
    import torch

    from bench.audit.load import load_split
    from bench.crossdata.evaluate import ExternalSets, external_columns
    from bench.data.cache import Preprocessing
    from bench.data.discover import discover
    from zoo.registry import get

    sets = ExternalSets(roots, load_split("train", discover(kaggle_dataset).train, []), 0.99, model_labels)
    entry = get("cnn0.scratch")
    model = entry.build(input_size=32, num_classes=len(model_labels), pretrained=False).eval()
    return sets, external_columns(model, entry, Preprocessing(32, entry.in_channels), sets, torch.device("cpu"))


def test_a_declared_set_is_scored_through_its_coarse_classes(kaggle_dataset, tmp_path):
    root = _declared_set(tmp_path / "tiny44c", TINY_44C, {"Astro": 2, "Glioblastoma": 1, "Foo": 3, "normal": 2})
    external = discover_external(root, FOUR)
    assert external.classes == FOUR.names and not external.binary
    by_file = {s.rel: FOUR.names[s.label] for s in external.samples}
    assert by_file == {"Astro/0.png": "glioma", "Astro/1.png": "glioma", "Glioblastoma/0.png": "glioma",
                       "normal/0.png": "notumor", "normal/1.png": "notumor"}  # Foo has no counterpart
    record = external.record()
    assert (record["n_images"], record["n_not_in_task"], record["classes_not_in_task"]) == (5, 3, ["Foo"])
    assert record["images_per_folder_class"] == {"Astro": 2, "Foo": 3, "Glioblastoma": 1, "normal": 2}
    assert "coarse" in record["labels_from"] and "brainbench-dataset.toml" in record["labels_from"]

    _, columns = _score(kaggle_dataset, [root], FOUR)
    assert columns["ext_tiny44c_n"] == 5 and columns["ext_tiny44c_n_not_in_task"] == 3
    assert columns["ext_tiny44c_classes"] == ["glioma", "notumor"]
    assert (columns["ext_tiny44c_support_glioma"], columns["ext_tiny44c_support_notumor"]) == (3, 2)


def test_a_declared_set_of_the_models_classes_is_scored_by_name(tmp_path):
    root = _declared_set(tmp_path / "two", TWO_TYPES, {"Pituitary": 2, "glioma": 1})
    external = discover_external(root, FOUR)
    assert sorted(FOUR.names[s.label] for s in external.samples) == ["glioma", "pituitary", "pituitary"]
    assert external.record()["n_not_in_task"] == 0 and "declared classes" in external.labels_from


def test_a_declared_set_that_fits_the_model_no_way_is_an_error(tmp_path):
    root = _declared_set(tmp_path / "tiny44c", TINY_44C, {"Astro": 1, "Glioblastoma": 1, "Foo": 1, "normal": 1})
    # THREE has no notumor for the coarse class of "normal", and no class named like the set's.
    with pytest.raises(DatasetError) as error:
        discover_external(root, THREE)
    message = str(error.value)
    assert str(root) in message and "'Astro', 'Glioblastoma', 'Foo', 'normal'" in message
    assert "'glioma', 'meningioma', 'pituitary'" in message and "\n" not in message


def test_a_subset_of_the_models_classes_is_scored_on_the_classes_present(embedded_dataset, kaggle_dataset,
                                                                         tmp_path):
    root = tmp_path / "two-classes"
    for name in ("glioma", "pituitary"):
        shutil.copytree(embedded_dataset / "Testing" / name, root / name)
    external = discover_external(root, FOUR)
    assert external.task == "four-class" and external.record()["n_not_in_task"] == 0
    _, columns = _score(kaggle_dataset, [root], FOUR)
    assert columns["ext_two-classes_n"] == 40 and columns["ext_two-classes_classes"] == ["glioma", "pituitary"]
    assert columns["ext_two-classes_support_meningioma"] == 0


def test_a_yes_no_set_cannot_score_a_model_without_a_no_tumor_class(kaggle_dataset, tmp_path):
    root = tmp_path / "yes-no"
    for folder, seed in (("yes", 1), ("no", 2)):
        (root / folder).mkdir(parents=True)
        _noise_png(root / folder / "a.png", seed)
    external = discover_external(root, THREE)
    assert external.binary and external.unscorable == NO_NO_TUMOR_CLASS
    assert external.record()["scored"] == "n/a: the model has no no-tumour class"
    sets, columns = _score(kaggle_dataset, [root], THREE)
    assert columns == {"ext_yes-no_task": "tumor vs notumor", "ext_yes-no_n_not_in_task": 0,
                       "ext_yes-no_note": "n/a: the model has no no-tumour class"}
    assert sets.record()[0]["scored"] == NO_NO_TUMOR_CLASS
