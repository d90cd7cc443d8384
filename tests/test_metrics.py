"""Metrics against scikit-learn and against hand-computed cases; bootstrap behaviour and cost."""

from __future__ import annotations

import json
import math
import time
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

from bench.evaluate.bootstrap import percentile_interval, resample_indices, resampled_confusions
from bench.evaluate.metrics import classification_metrics

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
K = len(CLASSES)


def random_predictions(n: int, seed: int, skill: float = 1.5):
    """Labels and softmax probs of a mediocre classifier: logits nudged toward the true class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, size=n)
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), labels] += skill
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probs


def probs_for(preds, confidence: float = 0.7) -> np.ndarray:
    """Softmax-like rows whose argmax is `preds`, top probability `confidence`, rest shared."""
    preds = np.asarray(preds)
    probs = np.full((len(preds), K), (1 - confidence) / (K - 1))
    probs[np.arange(len(preds)), preds] = confidence
    return probs


# ---------------------------------------------------------------- against scikit-learn


def test_point_metrics_match_sklearn():
    labels, probs = random_predictions(600, seed=1)
    preds = probs.argmax(axis=1)
    m = classification_metrics(labels, probs, CLASSES, loss=0.5)

    assert m["n"] == 600 and m["loss"] == 0.5
    assert m["acc"] == pytest.approx(accuracy_score(labels, preds))
    assert m["confusion"] == confusion_matrix(labels, preds, labels=range(K)).tolist()

    p, r, f, _ = precision_recall_fscore_support(labels, preds, labels=range(K), zero_division=0)
    for i, name in enumerate(CLASSES):
        assert m[f"precision_{name}"] == pytest.approx(p[i])
        assert m[f"sensitivity_{name}"] == pytest.approx(r[i])
        assert m[f"f1_{name}"] == pytest.approx(f[i])
        assert m[f"auc_{name}"] == pytest.approx(roc_auc_score(labels == i, probs[:, i]))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(labels, preds, average=avg, zero_division=0)
        assert m[f"{avg}_precision"] == pytest.approx(p)
        assert m[f"{avg}_sensitivity"] == pytest.approx(r)
        assert m[f"{avg}_f1"] == pytest.approx(f)
    assert m["macro_auc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))


def test_auc_handles_tied_scores_like_sklearn():
    # Coarse probabilities make many ties; the rank formula must count a tie as one half.
    labels, probs = random_predictions(300, seed=2)
    probs = np.round(probs, 1)
    probs /= probs.sum(axis=1, keepdims=True)
    m = classification_metrics(labels, probs, CLASSES)
    for i, name in enumerate(CLASSES):
        assert m[f"auc_{name}"] == pytest.approx(roc_auc_score(labels == i, probs[:, i]))


# ---------------------------------------------------------------- hand-computed cases


def test_specificity_by_hand():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    preds = [0, 0, 1, 1, 2, 2, 2, 0, 3, 1]
    # Confusion (rows true, cols pred):   column sums (predicted): [3, 3, 3, 1]
    #   0: [2, 1, 0, 0]
    #   1: [0, 1, 1, 0]
    #   2: [1, 0, 2, 0]
    #   3: [0, 1, 0, 1]
    # class 0: FP = 3-2 = 1 (a true 2);            negatives = 10-3 = 7, TN = 6 -> 6/7
    # class 1: FP = 3-1 = 2 (a true 0, a true 3);  negatives = 10-2 = 8, TN = 6 -> 6/8
    # class 2: FP = 3-2 = 1 (a true 1);            negatives = 10-3 = 7, TN = 6 -> 6/7
    # class 3: FP = 1-1 = 0;                       negatives = 10-2 = 8, TN = 8 -> 8/8
    expected = [6 / 7, 6 / 8, 6 / 7, 1.0]
    m = classification_metrics(labels, probs_for(preds), CLASSES)
    got = [m[f"specificity_{c}"] for c in CLASSES]
    assert got == pytest.approx(expected)
    assert m["macro_specificity"] == pytest.approx(np.mean(expected))
    support = np.array([3, 2, 3, 2]) / 10  # weighted by true-class counts
    assert m["weighted_specificity"] == pytest.approx(np.dot(expected, support))


def test_class_never_predicted_is_zero_not_a_crash():
    labels, probs = random_predictions(400, seed=3)
    probs[:, 3] = 0.0  # pituitary is never the argmax, but is present in labels
    probs /= probs.sum(axis=1, keepdims=True)
    preds = probs.argmax(axis=1)
    assert 3 not in preds and 3 in labels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero or undefined-metric warnings
        m = classification_metrics(labels, probs, CLASSES)
    assert m["precision_pituitary"] == 0.0
    assert m["sensitivity_pituitary"] == 0.0
    assert m["f1_pituitary"] == 0.0
    assert m["specificity_pituitary"] == 1.0
    _, _, f, _ = precision_recall_fscore_support(labels, preds, average="macro", labels=range(K), zero_division=0)
    assert m["macro_f1"] == pytest.approx(f)


def test_ece_single_bin():
    # Every prediction has confidence 0.8 and 6 of 10 are right: |0.6 - 0.8| = 0.2.
    labels = [0] * 6 + [1] * 4
    m = classification_metrics(labels, probs_for([0] * 10, confidence=0.8), CLASSES)
    assert m["ece"] == pytest.approx(0.2)
    assert m["mean_confidence"] == pytest.approx(0.8)


def test_ece_weights_bins_by_count():
    # 6 images at confidence 0.9, all right (gap 0.1); 4 at confidence 0.5, all wrong (gap 0.5).
    # ECE = 0.6 * 0.1 + 0.4 * 0.5 = 0.26; the bins must not be averaged unweighted (0.3).
    labels = [0] * 6 + [1] * 4
    probs = np.vstack([probs_for([0] * 6, confidence=0.9), probs_for([2] * 4, confidence=0.5)])
    m = classification_metrics(labels, probs, CLASSES)
    assert m["ece"] == pytest.approx(0.26)
    assert m["mean_confidence"] == pytest.approx(0.6 * 0.9 + 0.4 * 0.5)


def test_ece_bins_include_their_upper_edge():
    # Bins are (lo, hi]: 0.8 is the upper edge of bin (0.733, 0.8], shared with 0.79.
    # 5 right at 0.8 and 5 wrong at 0.79 form one bin: |0.5 - 0.795| = 0.295.
    # Were 0.8 put in the next bin, ECE would be 0.5 * 0.2 + 0.5 * 0.79 = 0.495.
    labels = [0] * 5 + [1] * 5
    probs = np.vstack([probs_for([0] * 5, confidence=0.8), probs_for([0] * 5, confidence=0.79)])
    m = classification_metrics(labels, probs, CLASSES)
    assert m["ece"] == pytest.approx(0.295)


def test_tumor_missed_rate_by_hand():
    labels = [0, 0, 1, 1, 3, 2, 2]
    preds = [2, 0, 2, 1, 3, 2, 0]
    # Tumor images are the first five (true != notumor=2); two of them are predicted 2: 2/5.
    # The last image (notumor called glioma) is a false alarm, not a missed tumor.
    m = classification_metrics(labels, probs_for(preds), CLASSES)
    assert m["tumor_missed_rate"] == pytest.approx(0.4)


def test_tumor_missed_rate_finds_notumor_by_name():
    names = ["notumor", "glioma", "meningioma", "pituitary"]  # notumor is index 0 here
    labels = [1, 2, 3, 0]
    preds = [0, 2, 3, 0]  # one of three tumors missed
    m = classification_metrics(labels, probs_for(preds), names)
    assert m["tumor_missed_rate"] == pytest.approx(1 / 3)


def test_tumor_missed_rate_nan_without_notumor_class():
    names = ["a", "b", "c", "d"]
    m = classification_metrics([0, 1, 2, 3], probs_for([0, 1, 2, 3]), names)
    assert math.isnan(m["tumor_missed_rate"])


def test_tumor_missed_rate_uses_the_label_sets_own_no_tumor_class():
    names = ["glioma", "healthy", "pituitary"]  # a declared set whose no-tumour class is "healthy"
    labels = [0, 0, 2, 2, 1]
    preds = [1, 0, 1, 2, 1]  # two of four tumours called healthy
    probs = np.full((5, 3), 0.15)
    probs[np.arange(5), preds] = 0.7
    assert classification_metrics(labels, probs, names, no_tumor="healthy")["tumor_missed_rate"] == pytest.approx(0.5)
    # Without naming it the rate is not computed: "healthy" is not the Kaggle set's "notumor".
    assert math.isnan(classification_metrics(labels, probs, names)["tumor_missed_rate"])


def test_tumor_missed_rate_nan_for_a_set_without_no_tumor_class():
    # figshare: three tumour types; even a class named "notumor" is not the no-tumour class when
    # the label set says it has none.
    labels = [1, 2, 3, 0]
    m = classification_metrics(labels, probs_for([2, 2, 2, 2]), CLASSES, no_tumor=None)
    assert math.isnan(m["tumor_missed_rate"])


def test_class_absent_from_labels_gives_nan_auc():
    labels, probs = random_predictions(300, seed=4)
    labels[labels == 3] = 0  # no pituitary image at all
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(labels, probs, CLASSES)
    assert math.isnan(m["auc_pituitary"])
    others = [roc_auc_score(labels == i, probs[:, i]) for i in range(3)]
    assert m["macro_auc"] == pytest.approx(np.mean(others))
    assert all(math.isnan(x) for x in m["sensitivity_pituitary_ci95"])


# ---------------------------------------------------------------- output shape and validation


def test_row_is_flat_and_json_ready():
    labels, probs = random_predictions(100, seed=5)
    m = classification_metrics(labels, probs, CLASSES)
    for key, value in m.items():
        assert type(value) in (int, float, list), key
        if key.endswith("_ci95"):
            assert len(value) == 2 and all(type(v) is float for v in value), key
    assert all(type(v) is int for row in m["confusion"] for v in row)
    assert "loss" not in m
    expected = {"acc", "acc_ci95", "macro_f1", "macro_f1_ci95", "weighted_f1", "macro_auc", "ece",
                "mean_confidence", "tumor_missed_rate", "n", "confusion"}
    expected |= {f"{a}_{r}" for a in ("macro", "weighted") for r in ("precision", "sensitivity", "specificity")}
    for c in CLASSES:
        expected |= {f"precision_{c}", f"sensitivity_{c}", f"sensitivity_{c}_ci95", f"specificity_{c}",
                     f"f1_{c}", f"auc_{c}"}
    assert set(m) == expected
    json.dumps(m)


@pytest.mark.parametrize(
    "labels, probs, message",
    [
        ([0, 1, 2], probs_for([0, 1]), "differ in length"),
        ([0, 1], np.array([0.5, 0.5]), "2-D"),
        ([0, 4], probs_for([0, 1]), "label 4 out of range"),
        ([0, -1], probs_for([0, 1]), "label -1 out of range"),
        ([0, 1], np.full((2, 3), 1 / 3), "3 columns"),
        ([0, 1], probs_for([0, 1]) * 5, "softmax"),
        ([0.5, 1], probs_for([0, 1]), "integer"),
    ],
)
def test_bad_inputs_raise_value_error(labels, probs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(labels, probs, CLASSES)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_confusions_match_a_plain_loop():
    labels, probs = random_predictions(97, seed=6)
    preds = probs.argmax(axis=1)
    idx = resample_indices(len(labels), resamples=40, seed=7)
    stacked = resampled_confusions(labels, preds, K, idx)
    for r in range(40):
        expected = confusion_matrix(labels[idx[r]], preds[idx[r]], labels=range(K))
        np.testing.assert_array_equal(stacked[r], expected)


def test_percentile_interval_ignores_nan_resamples():
    samples = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, np.nan], [3.0, np.nan]])
    got = percentile_interval(samples, level=0.5)  # 25th and 75th percentile of [1, 2, 3]
    np.testing.assert_allclose(got[0], [1.5, 2.5])
    assert np.isnan(got[1]).all()


def test_bootstrap_interval_contains_point_and_is_reproducible():
    labels, probs = random_predictions(500, seed=8)
    a = classification_metrics(labels, probs, CLASSES, seed=11)
    b = classification_metrics(labels, probs, CLASSES, seed=11)
    c = classification_metrics(labels, probs, CLASSES, seed=12)
    for key in ["acc", "macro_f1"] + [f"sensitivity_{n}" for n in CLASSES]:
        low, high = a[f"{key}_ci95"]
        assert low <= a[key] <= high, key
        assert low < high, key
        assert a[f"{key}_ci95"] == b[f"{key}_ci95"], key
    assert a["acc_ci95"] != c["acc_ci95"]


def test_bootstrap_interval_narrows_with_more_images():
    small = classification_metrics(*random_predictions(200, seed=9), CLASSES)
    large = classification_metrics(*random_predictions(5000, seed=9), CLASSES)
    width = lambda m, k: m[k][1] - m[k][0]  # noqa: E731
    # The standard error shrinks as 1/sqrt(N): 5 times narrower expected, demand 2 times.
    for key in ("acc_ci95", "macro_f1_ci95", "sensitivity_glioma_ci95"):
        assert width(large, key) < width(small, key) / 2, key


def test_metrics_with_bootstrap_cost_well_under_a_second():
    labels, probs = random_predictions(1311, seed=10)
    classification_metrics(labels, probs, CLASSES)  # warm caches and imports
    start = time.perf_counter()
    classification_metrics(labels, probs, CLASSES, bootstrap_resamples=1000)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"metrics with 1000 bootstrap resamples took {elapsed:.3f} s"


def test_too_few_resamples_is_refused():
    with pytest.raises(ValueError, match="bootstrap_resamples"):
        classification_metrics(*random_predictions(50, seed=0), CLASSES, bootstrap_resamples=100)
