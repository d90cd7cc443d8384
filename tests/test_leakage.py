"""The leak-free split: duplicate groups, clean test images, group-preserving validation, bands."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.data.discover import discover
from bench.data.fingerprint import dataset_fingerprint
from bench.data.splits import stratified_group_split
from bench.errors import BrainbenchError
from bench.leakage.bands import BAND_KEYS, band_columns
from bench.leakage.groups import duplicate_groups
from bench.leakage.index import build_leakage_index


@pytest.fixture
def leakage(audit_dataset, tmp_path):
    index = discover(audit_dataset)
    return build_leakage_index(index, dataset_fingerprint(index), 0.99, tmp_path / "cache")


def test_only_test_images_without_a_training_copy_are_clean(leakage):
    # The fixture's test split: five kinds of copy, one copy under the wrong label, four new images.
    assert sorted(leakage.clean_test) == [f"Testing/{c}/different.png"
                                          for c in ("glioma", "meningioma", "notumor", "pituitary")]
    record = leakage.record()
    assert record["n_test"] == 10 and record["n_clean_test"] == 4 and record["n_test_duplicated"] == 6
    assert record["clean_test_per_class"] == {"glioma": 1, "meningioma": 1, "notumor": 1, "pituitary": 1}
    assert sum(record["band_counts"].values()) == 10


def test_every_clean_image_is_far_from_every_training_image(leakage):
    for rel in leakage.clean_test:
        assert leakage.test_similarity[rel] < leakage.threshold
    for rel, similarity in leakage.test_similarity.items():
        if similarity >= leakage.threshold:
            assert rel not in leakage.clean_test


def test_copies_inside_training_share_a_group(leakage):
    groups = leakage.train_group
    assert groups["Training/pituitary/tr_0.png"] == groups["Training/pituitary/tr_0_copy.jpg"]
    assert len(set(groups.values())) == len(groups) - 1  # that pair is the only within-training copy


def test_a_chain_of_near_copies_is_one_group():
    # Eleven steps of a morph from one picture to another: each step is a near copy of the next
    # (similarity about 0.98-0.99), the two ends are unrelated (about 0.1). Still one group, as
    # neighbouring slices of one patient are; an unrelated picture stays apart.
    rng = np.random.default_rng(0)
    start, end, other = (np.kron(rng.uniform(0, 255, (8, 8)), np.ones((8, 8))) for _ in range(3))
    chain = [((1 - t) * start + t * end).astype(np.uint8) for t in np.linspace(0, 1, 11)]
    pixels = np.stack(chain + [other.astype(np.uint8)])
    groups = duplicate_groups(pixels, [str(i) for i in range(12)], threshold=0.98)
    assert len(set(groups[:11].tolist())) == 1
    assert groups[11] != groups[0]


def test_same_bytes_are_one_group_even_for_a_blank_picture():
    blank = np.zeros((2, 64, 64), np.uint8)
    assert len(set(duplicate_groups(blank, ["same", "same"], 0.99).tolist())) == 1
    assert len(set(duplicate_groups(blank, ["one", "other"], 0.99).tolist())) == 2


def test_group_split_keeps_groups_whole_and_every_class_on_both_sides():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 60, 400)
    labels = groups % 4  # a group has one label, as duplicates of one picture do
    kept, held = stratified_group_split(labels.tolist(), groups.tolist(), 0.2, seed=3)
    assert sorted(kept + held) == list(range(400))
    assert not set(groups[kept].tolist()) & set(groups[held].tolist())
    for label in range(4):
        assert (labels[kept] == label).any() and (labels[held] == label).any()
    assert 0.1 < len(held) / 400 < 0.35
    assert (kept, held) == stratified_group_split(labels.tolist(), groups.tolist(), 0.2, seed=3)


def test_band_columns_by_hand():
    correct = np.array([1, 1, 0, 1, 0, 0], bool)
    similarity = np.array([1.0, 0.995, 0.99, 0.96, 0.92, 0.5])
    columns = band_columns(correct, similarity)
    assert [columns[f"leak_n_{k}"] for k in BAND_KEYS] == [3, 1, 1, 1]
    assert columns["leak_acc_ge0.99"] == pytest.approx(2 / 3)
    assert columns["leak_acc_0.95-0.99"] == 1.0 and columns["leak_acc_lt0.90"] == 0.0
    assert math.isnan(band_columns(correct[:1], similarity[:1])["leak_acc_lt0.90"])


def test_threshold_out_of_range_is_refused(audit_dataset, tmp_path):
    index = discover(audit_dataset)
    with pytest.raises(BrainbenchError, match="threshold"):
        build_leakage_index(index, "fp", 1.5, tmp_path)


def test_leakage_index_names_classes_by_the_datasets_label_set(audit_dataset, relabel_audit_dataset, tmp_path):
    import shutil

    default = discover(audit_dataset)
    fingerprint = dataset_fingerprint(default)
    build_leakage_index(default, fingerprint, 0.99, tmp_path / "kaggle")  # cached under the four Kaggle names
    relabel_audit_dataset()
    renamed = discover(audit_dataset)
    assert dataset_fingerprint(renamed) != fingerprint  # relabelled: its caches are apart
    # Even were it cached under the same name, an index of another label set is not reused.
    (tmp_path / "cache").mkdir()
    for cached in (tmp_path / "kaggle").glob("leakage-*.json"):
        shutil.copy(cached, tmp_path / "cache" / cached.name)
    leakage = build_leakage_index(renamed, fingerprint, 0.99, tmp_path / "cache")
    assert leakage.class_names == ("pituitary", "meningioma", "healthy", "glioma")
    assert leakage.test_label["Testing/notumor/contrast.png"] == "healthy"
    assert leakage.test_label["Testing/glioma/exact.png"] == "glioma"
    per_class = leakage.record()["clean_test_per_class"]
    assert list(per_class) == ["pituitary", "meningioma", "healthy", "glioma"] and set(per_class.values()) == {1}


def test_leakage_columns_refuse_predictions_over_another_label_set(leakage):
    from bench.leakage.columns import leakage_columns

    rels = sorted(leakage.test_similarity)
    probs = np.full((len(rels), 4), 0.25)
    labels = np.zeros(len(rels), np.int64)
    columns = leakage_columns(labels, probs, rels, leakage, ("glioma", "meningioma", "notumor", "pituitary"))
    assert columns["clean_n"] == 4 and "clean_support_notumor" in columns
    with pytest.raises(ValueError, match="leakage index of"):
        leakage_columns(labels, probs, rels, leakage, ("a", "b", "c", "d"))
