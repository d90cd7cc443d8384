"""Protocols into folds: official, holdout and kfold (from a fold column or drawn) on plain arrays."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench.data.protocols import (
    DUPLICATE_GROUPS,
    Fold,
    ProtocolSpec,
    make_folds,
    parse_protocol,
    resolve_groups,
    validation_split,
)
from bench.data.splits import stratified_split
from bench.errors import DatasetError

CLASSES = ("glioma", "meningioma", "pituitary")
CHENG_METADATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "figshare-cheng" / "metadata.csv"


def make_pool(seed: int = 7) -> tuple[list[int], list[str], list[int]]:
    """60 images of 15 patients (5 per class, 2 to 6 slices each), shuffled so that a patient's
    slices are not next to each other. Each patient sits in one fold of a Cheng-like fold column
    (fold = its rank within its class + 1), so every fold holds one patient of every class."""
    labels, patients, folds = [], [], []
    for label in range(len(CLASSES)):
        for rank, n_slices in enumerate((2, 3, 4, 5, 6)):
            labels += [label] * n_slices
            patients += [f"P{label}{rank}"] * n_slices
            folds += [rank + 1] * n_slices
    order = np.random.default_rng(seed).permutation(len(labels))
    return [labels[i] for i in order], [patients[i] for i in order], [folds[i] for i in order]


LABELS, PATIENTS, FOLD_VALUES = make_pool()


def spec(**table) -> ProtocolSpec:
    return parse_protocol(table, "test.toml [protocols]")


def assert_partition(fold: Fold, n: int) -> None:
    assert set(fold.train).isdisjoint(fold.test)
    assert sorted(fold.train + fold.test) == list(range(n))
    assert list(fold.train) == sorted(fold.train) and list(fold.test) == sorted(fold.test)


def shared_groups(fold: Fold, groups) -> set:
    return {groups[i] for i in fold.train} & {groups[i] for i in fold.test}


def assert_kfold(folds: list[Fold], labels, groups=None) -> None:
    """Every image tested exactly once; every fold a partition with every class on both sides."""
    n = len(labels)
    tested = Counter(i for fold in folds for i in fold.test)
    assert sorted(tested) == list(range(n)) and set(tested.values()) == {1}
    for number, fold in enumerate(folds, start=1):
        assert (fold.number, fold.n_folds) == (number, len(folds))
        assert_partition(fold, n)
        assert {labels[i] for i in fold.test} == set(labels)
        assert {labels[i] for i in fold.train} == set(labels)
        if groups is not None:
            assert not shared_groups(fold, groups)


# --- official -------------------------------------------------------------------------------------

def test_official_uses_the_datasets_own_test_images():
    official_test = [i % 4 == 0 for i in range(len(LABELS))]
    [fold] = make_folds(spec(kind="official"), LABELS, CLASSES, official_test=official_test)
    assert fold.test == tuple(i for i in range(len(LABELS)) if i % 4 == 0)
    assert_partition(fold, len(LABELS))
    assert (fold.protocol, fold.kind, fold.number, fold.n_folds) == ("official", "official", None, None)


@pytest.mark.parametrize("official_test", [None, [False] * len(LABELS)])
def test_official_without_a_test_split_errors(official_test):
    with pytest.raises(DatasetError, match="flat.toml: the dataset has no official test split; use a holdout"):
        make_folds(spec(kind="official"), LABELS, CLASSES, official_test=official_test, where="flat.toml")


# --- holdout --------------------------------------------------------------------------------------

def test_flat_folder_default_holdout_is_the_old_split():
    [fold] = make_folds(spec(kind="holdout"), LABELS, CLASSES)
    kept, held = stratified_split(LABELS, 0.2, 0)
    assert (list(fold.train), list(fold.test)) == (kept, held)


def test_holdout_without_groups_keeps_class_proportions_and_is_seeded():
    [fold] = make_folds(spec(kind="holdout", test_fraction=0.25, seed=3), LABELS, CLASSES)
    assert_partition(fold, len(LABELS))
    assert Counter(LABELS[i] for i in fold.test) == {0: 5, 1: 5, 2: 5}  # exactly a quarter of 20 each
    assert make_folds(spec(kind="holdout", test_fraction=0.25, seed=3), LABELS, CLASSES) == [fold]
    [other] = make_folds(spec(kind="holdout", test_fraction=0.25, seed=4), LABELS, CLASSES)
    assert other.test != fold.test


def test_holdout_with_groups_keeps_patients_whole():
    protocol = spec(kind="holdout", seed=1)
    [fold] = make_folds(protocol, LABELS, CLASSES, groups=PATIENTS)
    assert_partition(fold, len(LABELS))
    assert not shared_groups(fold, PATIENTS)
    # Whole patients of 2..6 slices cannot hit 20% exactly: each class holds out at least one
    # patient and stops once it reaches its 4 images, so between 2 and 9 of its 20.
    per_class = Counter(LABELS[i] for i in fold.test)
    assert set(per_class) == {0, 1, 2} and all(2 <= n <= 9 for n in per_class.values())
    assert make_folds(protocol, LABELS, CLASSES, groups=PATIENTS) == [fold]
    draws = {make_folds(spec(kind="holdout", seed=s), LABELS, CLASSES, groups=PATIENTS)[0].test for s in range(5)}
    assert len(draws) > 1


def test_holdout_with_a_single_group_class_errors():
    groups = [f"P{label}" if label == 2 else name for label, name in zip(LABELS, PATIENTS)]
    with pytest.raises(DatasetError, match=r"d.toml: class 'pituitary' has 1 groups, .* its test side"):
        make_folds(spec(kind="holdout"), LABELS, CLASSES, groups=groups, where="d.toml")


def test_a_test_side_under_the_class_floor_is_refused_naming_the_class():
    # 16 glioma, 2 meningioma, 2 pituitary images: a stratified 20 % test side holds 3 glioma and
    # one of each other class, 20 % each; a floor of 25 % refuses it, one of 15 % lets it run.
    labels = [0] * 16 + [1] * 2 + [2] * 2
    [fold] = make_folds(spec(kind="holdout", min_test_share=0.15), labels, CLASSES)
    assert Counter(labels[i] for i in fold.test) == {0: 3, 1: 1, 2: 1}
    with pytest.raises(DatasetError, match=r"^d.toml: class 'meningioma' is 20.0 % of the test side of the holdout "
                                           r"holdout \(seed 0\), under the protocol's floor min_test_share = 0.25"):
        make_folds(spec(kind="holdout", min_test_share=0.25), labels, CLASSES, where="d.toml")


def test_the_class_floor_checks_every_fold_and_does_not_change_the_key():
    floored = spec(kind="kfold", name="cheng", fold_column="cheng_fold", min_test_share=0.34)
    assert floored.key() == cheng_like().key()  # a check on the split, not part of what decides it
    with pytest.raises(DatasetError, match=r"is \d+\.\d % of the test side of fold \d of cheng_fold"):
        make_folds(floored, LABELS, CLASSES, groups=PATIENTS, fold_values=FOLD_VALUES)


# --- kfold from a fold column ---------------------------------------------------------------------

def cheng_like(**extra) -> ProtocolSpec:
    return spec(kind="kfold", name="cheng", fold_column="cheng_fold", **extra)


def test_fold_column_gives_its_folds_with_patients_inside_folds():
    folds = make_folds(cheng_like(), LABELS, CLASSES, groups=PATIENTS, fold_values=FOLD_VALUES)
    assert len(folds) == 5
    assert_kfold(folds, LABELS, PATIENTS)
    for fold in folds:
        assert {FOLD_VALUES[i] for i in fold.test} == {fold.number}
        assert fold.protocol == "cheng" and fold.kind == "kfold"


def test_fold_column_numbers_folds_by_sorted_values():
    zero_based = [value - 1 for value in FOLD_VALUES]
    folds = make_folds(cheng_like(), LABELS, CLASSES, fold_values=zero_based)
    assert [fold.number for fold in folds] == [1, 2, 3, 4, 5]
    assert {zero_based[i] for i in folds[0].test} == {0}


def test_fold_column_missing_or_of_the_wrong_length_errors():
    with pytest.raises(DatasetError, match="cheng.toml: .*'cheng_fold'"):
        make_folds(cheng_like(), LABELS, CLASSES, where="cheng.toml")
    with pytest.raises(DatasetError, match="cheng.toml: column 'cheng_fold' has 59 values for 60 images"):
        make_folds(cheng_like(), LABELS, CLASSES, fold_values=FOLD_VALUES[:-1], where="cheng.toml")


def test_fold_column_with_one_value_errors():
    with pytest.raises(DatasetError, match="cheng.toml: column 'cheng_fold' holds 1 fold value"):
        make_folds(cheng_like(), LABELS, CLASSES, fold_values=[1] * len(LABELS), where="cheng.toml")


def test_group_spanning_two_folds_errors():
    values = list(FOLD_VALUES)
    slices = [i for i, name in enumerate(PATIENTS) if name == "P13"]  # a 5-slice patient of fold 4
    values[slices[-1]] = 2
    with pytest.raises(DatasetError, match="cheng.toml: group 'P13' spans folds 4 and 2 of cheng_fold"):
        make_folds(cheng_like(), LABELS, CLASSES, groups=PATIENTS, fold_values=values, where="cheng.toml")
    # Without groups, the same column is accepted: nothing says those slices belong together.
    assert len(make_folds(cheng_like(), LABELS, CLASSES, fold_values=values)) == 5


def test_fold_without_a_class_errors():
    # Move fold 3's meningioma patient into fold 4: fold 3 then tests no meningioma.
    values = [4 if (value, label) == (3, 1) else value for value, label in zip(FOLD_VALUES, LABELS)]
    with pytest.raises(DatasetError, match="^cheng.toml: fold 3 of cheng_fold has no 'meningioma' image$"):
        make_folds(cheng_like(), LABELS, CLASSES, groups=PATIENTS, fold_values=values, where="cheng.toml")


def test_class_entirely_in_one_fold_errors():
    # Every glioma in fold 1: fold 1 tests them all, so its training side has none.
    values = [1 if label == 0 else value for value, label in zip(FOLD_VALUES, LABELS)]
    with pytest.raises(DatasetError, match="^cheng.toml: every 'glioma' image is in fold 1 of cheng_fold, so its "
                                           "training side has none$"):
        make_folds(cheng_like(), LABELS, CLASSES, fold_values=values, where="cheng.toml")


# --- kfold drawn ----------------------------------------------------------------------------------

@pytest.mark.parametrize("groups", [None, PATIENTS])
def test_drawn_kfold_tests_every_image_once_and_is_seeded(groups):
    folds = make_folds(spec(kind="kfold", folds=5, seed=2), LABELS, CLASSES, groups=groups)
    assert len(folds) == 5
    assert_kfold(folds, LABELS, groups)
    assert make_folds(spec(kind="kfold", folds=5, seed=2), LABELS, CLASSES, groups=groups) == folds
    other = make_folds(spec(kind="kfold", folds=5, seed=3), LABELS, CLASSES, groups=groups)
    assert [f.test for f in other] != [f.test for f in folds]


def test_drawn_kfold_without_groups_shares_patients():
    # The record-wise protocol puts slices of one patient on both sides: the leak it measures.
    folds = make_folds(spec(kind="kfold", folds=5, groups="none"), LABELS, CLASSES)
    assert any(shared_groups(fold, PATIENTS) for fold in folds)


def test_drawn_kfold_with_fewer_groups_than_folds_errors():
    with pytest.raises(DatasetError, match="^d.toml: class 'glioma' has 5 groups, fewer than the 6 folds of kfold$"):
        make_folds(spec(kind="kfold", folds=6), LABELS, CLASSES, groups=PATIENTS, where="d.toml")
    # Counted in images without groups: 20 per class allow 6 folds.
    assert len(make_folds(spec(kind="kfold", folds=6), LABELS, CLASSES)) == 6


def test_drawn_kfold_with_more_folds_than_groups_errors():
    with pytest.raises(DatasetError, match="d.toml: protocol kfold asks for 20 folds, but there are only 15 groups"):
        make_folds(spec(kind="kfold", folds=20), LABELS, CLASSES, groups=PATIENTS, where="d.toml")


def test_integer_and_string_groups_split_alike():
    codes = {name: i for i, name in enumerate(sorted(set(PATIENTS)))}
    as_integers = [codes[name] for name in PATIENTS]
    for protocol in (spec(kind="kfold", folds=3, seed=5), spec(kind="holdout", seed=5)):
        assert (make_folds(protocol, LABELS, CLASSES, groups=PATIENTS)
                == make_folds(protocol, LABELS, CLASSES, groups=as_integers))


# --- validation split, groups to use --------------------------------------------------------------

def test_validation_split_keeps_groups_whole():
    kept, held = validation_split(LABELS, PATIENTS, 0.2, 0)
    assert sorted(kept + held) == list(range(len(LABELS)))
    assert not {PATIENTS[i] for i in kept} & {PATIENTS[i] for i in held}
    assert validation_split(LABELS, None, 0.2, 0) == stratified_split(LABELS, 0.2, 0)


def test_resolve_groups():
    assert resolve_groups(spec(kind="holdout"), "pid_family") == "pid_family"
    assert resolve_groups(spec(kind="holdout"), None) is None
    assert resolve_groups(spec(kind="holdout", groups="none"), "pid_family") is None
    assert resolve_groups(spec(kind="holdout", groups="pid"), "pid_family") == "pid"
    assert resolve_groups(spec(kind="kfold", folds=5, groups="duplicates"), "pid") == DUPLICATE_GROUPS


# --- parsing and keys -----------------------------------------------------------------------------

@pytest.mark.parametrize("table, message", [
    ({"kind": "holdout", "seeds": 1}, "unknown key 'seeds'"),
    ({"kind": "holdout", "test_fraction": "0.2"}, "test_fraction must be a number, got '0.2'"),
    ({"kind": "kfold", "folds": 5.0}, "folds must be an integer, got 5.0"),
    ({"kind": "kfold", "folds": 5, "fold_column": "cheng_fold"}, "needs either folds = K or fold_column"),
    ({"kind": "kfold"}, "needs either folds = K or fold_column"),
    ({"kind": "kfold", "folds": 1}, "folds must be between 2 and 50, got 1"),
    ({"kind": "kfold", "folds": 51}, "folds must be between 2 and 50, got 51"),
    ({"kind": "shuffle"}, "kind must be one of official, holdout, kfold, got 'shuffle'"),
    ({"kind": "holdout", "min_test_share": 1.5}, "min_test_share must be between 0 and 1, got 1.5"),
    ({"kind": "official", "min_test_share": 0.15}, "min_test_share checks a drawn test side"),
])
def test_parse_protocol_errors_name_where_and_value(table, message):
    with pytest.raises(DatasetError, match="^suite.toml \\[protocols.x\\]: ") as raised:
        parse_protocol(table, "suite.toml [protocols.x]")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_spec_key_ignores_name_and_description_but_not_seed():
    base = spec(kind="kfold", folds=5)
    assert spec(kind="kfold", folds=5, name="five", description="said otherwise").key() == base.key()
    assert spec(kind="kfold", folds=5, seed=1).key() != base.key()


def test_fold_keys():
    assert Fold("official", "official", None, None, (0,), (1,)).key("abc") == ""
    assert Fold("h", "holdout", None, None, (0,), (1,)).key("abc") == "holdout-abc"
    assert Fold("k", "kfold", 3, 5, (0,), (1,)).key("abc") == "kfold-abc-f3"


# --- Cheng's figshare dataset, when it is here ----------------------------------------------------

@pytest.fixture(scope="module")
def cheng():
    if not CHENG_METADATA.is_file():
        pytest.skip(f"no Cheng metadata at {CHENG_METADATA}")
    with CHENG_METADATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    names = sorted({row["class"] for row in rows})
    return {"labels": [names.index(row["class"]) for row in rows], "names": names,
            "families": [row["pid_family"] for row in rows], "patients": [row["pid"] for row in rows],
            "folds": [int(row["cheng_fold"]) for row in rows]}


def test_cheng_published_folds(cheng):
    folds = make_folds(cheng_like(), cheng["labels"], cheng["names"], groups=cheng["patients"],
                       fold_values=cheng["folds"], where="figshare-cheng/metadata.csv")
    assert [len(fold.test) for fold in folds] == [570, 655, 562, 613, 664]
    assert_kfold(folds, cheng["labels"], cheng["patients"])


def test_cheng_folds_split_some_families(cheng):
    # Cheng's folds are patient-wise by pid: repeat scans of one person (one pid_family, ids that
    # differ by a trailing letter) can sit in two folds, so grouping them by family is refused.
    with pytest.raises(DatasetError, match="metadata.csv: group 'MR048294' spans folds 1 and 2 of cheng_fold"):
        make_folds(cheng_like(), cheng["labels"], cheng["names"], groups=cheng["families"],
                   fold_values=cheng["folds"], where="figshare-cheng/metadata.csv")


def test_cheng_record_wise_folds_share_patients(cheng):
    folds = make_folds(spec(kind="kfold", folds=5, groups="none"), cheng["labels"], cheng["names"])
    assert_kfold(folds, cheng["labels"])
    leaked = shared_groups(folds[0], cheng["patients"])
    print(f"record-wise fold 1: {len(leaked)} patients on both sides")
    assert len(leaked) > 0
