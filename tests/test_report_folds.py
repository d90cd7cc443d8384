"""Cross-validation in the report: fold summaries, pooled out-of-fold metrics, protocols side by
side, published results, many classes and datasets without a no-tumour class.

Every test writes a real results.json-shaped dict and real test_predictions.csv files into
tmp_path, with row metrics computed by the runner's own metric function from those files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from bench.errors import BrainbenchError
from bench.evaluate.metrics import classification_metrics
from bench.report.folds import rank_summaries, summarize_folds
from bench.report.leaderboard import write_leaderboard
from bench.report.load import check_results
from bench.report.tradeoff import write_tradeoff_plots

FIGSHARE = ("glioma", "meningioma", "pituitary")
PROTOCOLS = [
    {"name": "patient-wise", "kind": "kfold", "test_fraction": 0.2, "folds": 3, "fold_column": None,
     "groups": "pid", "seed": 0, "description": "Cheng's patients, never on both sides"},
    {"name": "record-wise", "kind": "kfold", "test_fraction": 0.2, "folds": 3, "fold_column": None,
     "groups": "none", "seed": 0, "description": "every slice alone, as most papers split it"},
]
PUBLISHED = [{"source": "Cheng et al. 2015, PLoS ONE", "method": "BoW + SVM", "protocol": "patient-wise",
              "accuracy": 91.28, "note": "5-fold, their folds"},
             {"source": "Swati et al. 2019", "method": "VGG19 fine-tuned", "protocol": "record-wise",
              "accuracy": 94.82, "note": "slices of one patient on both sides"}]
FOLD_SIZES = (18, 21, 24)  # unequal, so the pooled accuracy is not the mean of the fold accuracies
# Share of correct predictions per (entry, protocol, fold): resnet18 beats cnn1 under both protocols.
SKILL = {("resnet18.imagenet", "patient-wise"): (0.90, 0.80, 0.85),
         ("resnet18.imagenet", "record-wise"): (0.95, 0.92, 0.97),
         ("cnn1.scratch", "patient-wise"): (0.70, 0.60, 0.75),
         ("cnn1.scratch", "record-wise"): (0.85, 0.80, 0.78)}


def write_predictions(out_dir, entry: str, classes: tuple[str, ...], labels: np.ndarray, correct: np.ndarray,
                      first_image: int) -> np.ndarray:
    """entries/<entry>/test_predictions.csv as the runner writes it; returns the probabilities."""
    k = len(classes)
    predicted = np.where(correct, labels, (labels + 1) % k)
    probs = np.full((len(labels), k), 0.3 / (k - 1))
    probs[np.arange(len(labels)), predicted] = 0.7
    folder = out_dir / "entries" / entry
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "test_predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "predicted", *(f"p_{c}" for c in classes)])
        for i, (y, p) in enumerate(zip(labels, probs)):
            writer.writerow([f"img{first_image + i:04d}.png", classes[y], classes[int(p.argmax())],
                             *(f"{x:.6f}" for x in p)])
    return probs


def metric_columns(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> dict:
    metrics = classification_metrics(labels, probs, classes, no_tumor=None)
    return json.loads(json.dumps({f"test_{key}": value for key, value in metrics.items()}))  # as read back


def fold_row(out_dir, zoo_entry: str, protocol: str, fold: int, rng) -> dict:
    entry = f"{zoo_entry}@{protocol},fold={fold}"
    n = FOLD_SIZES[fold - 1]
    labels = np.arange(n) % 3  # every class in every fold
    correct = rng.random(n) < SKILL[(zoo_entry, protocol)][fold - 1]
    probs = write_predictions(out_dir, entry, FIGSHARE, labels, correct, sum(FOLD_SIZES[:fold - 1]))
    return {"entry": entry, "zoo_entry": zoo_entry, "setting": None, "seed": 0, "protocol": protocol,
            "protocol_kind": "kfold", "fold": fold, "n_folds": 3, "status": "ok", "error": None,
            "cv_group": f"{zoo_entry}@{protocol}",
            "params_m": 11.2 if zoo_entry.startswith("resnet") else 0.4, "gmacs": 1.8, "size_mb": 44.7,
            "latency_ms_b1_eager": 3.0 + fold / 10, "throughput_ips_b64_eager": 900.0, "train_seconds": 100.0,
            **metric_columns(labels, probs, FIGSHARE)}


def cv_results(out_dir) -> dict:
    rng = np.random.default_rng(7)
    rows = [fold_row(out_dir, zoo_entry, p["name"], fold, rng)
            for p in PROTOCOLS for zoo_entry in ("cnn1.scratch", "resnet18.imagenet") for fold in (1, 2, 3)]
    return {"suite": {"name": "figshare-cv"}, "machine_tag": "cpu-fp32", "environment": {}, "dataset": {},
            "class_names": list(FIGSHARE),
            "labels": {"names": list(FIGSHARE), "no_tumor": None, "coarse": {}},
            "protocols": PROTOCOLS, "published": PUBLISHED, "rows": rows}


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def table_lines(text: str) -> list[list[str]]:
    """The cells of every body line of the first markdown table in text."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[start + 2:end]]


def csv_predictions(out_dir, entries: list[str]) -> tuple[list[str], list[str]]:
    labels, predicted = [], []
    for entry in entries:
        with open(out_dir / "entries" / entry / "test_predictions.csv", newline="") as handle:
            for line in csv.DictReader(handle):
                labels.append(line["label"])
                predicted.append(line["predicted"])
    return labels, predicted


@pytest.fixture
def cv(tmp_path):
    results = cv_results(tmp_path)
    check_results(results, "generated results")
    return tmp_path, results


def summaries_of(out_dir, results: dict, protocol: str) -> dict[str, dict]:
    rows = [r for r in results["rows"] if r["protocol"] == protocol]
    return {s["zoo_entry"]: s for s in summarize_folds(rows, out_dir, FIGSHARE, PROTOCOLS[0])}


def test_pooled_accuracy_is_the_accuracy_of_the_concatenated_predictions(cv):
    out, results = cv
    summary = summaries_of(out, results, "patient-wise")["resnet18.imagenet"]
    labels, predicted = csv_predictions(out, summary["fold_entries"])
    assert summary["pooled_n"] == sum(FOLD_SIZES) == len(labels)
    assert summary["pooled_acc"] == pytest.approx(np.mean(np.array(labels) == np.array(predicted)))
    assert sum(map(sum, summary["pooled_confusion"])) == sum(FOLD_SIZES)
    low, high = summary["pooled_acc_ci95"]
    assert low < summary["pooled_acc"] < high
    assert set(f"pooled_sensitivity_{c}" for c in FIGSHARE) <= set(summary)


def test_fold_mean_and_std_are_numpys(cv):
    out, results = cv
    summary = summaries_of(out, results, "record-wise")["cnn1.scratch"]
    accs = [r["test_acc"] for r in results["rows"] if r["protocol"] == "record-wise"
            and r["zoo_entry"] == "cnn1.scratch"]
    assert summary["fold_accs"] == accs
    assert summary["cv_acc_mean"] == pytest.approx(np.mean(accs))
    assert summary["cv_acc_std"] == pytest.approx(np.std(accs, ddof=1))
    f1s = [r["test_macro_f1"] for r in results["rows"] if r["entry"] in summary["fold_entries"]]
    assert summary["cv_macro_f1_std"] == pytest.approx(np.std(f1s, ddof=1))
    assert summary["complete"] and summary["folds_done"] == summary["n_folds"] == 3
    assert summary["entry"] == "cnn1.scratch@record-wise"


def test_the_summary_is_named_by_the_runners_cv_group_or_by_the_fold_entries(cv):
    out, results = cv
    for row in results["rows"]:
        if row["protocol"] == "record-wise":
            del row["cv_group"]  # rows written before the runner named their group
        else:
            row["cv_group"] = f"{row['zoo_entry']}@pw"
    check_results(results, "generated results")  # cv_group is text, not a metric
    assert set(summaries_of(out, results, "patient-wise")) == {"cnn1.scratch", "resnet18.imagenet"}
    assert summaries_of(out, results, "patient-wise")["cnn1.scratch"]["entry"] == "cnn1.scratch@pw"
    assert summaries_of(out, results, "record-wise")["cnn1.scratch"]["entry"] == "cnn1.scratch@record-wise"


def test_ranking_is_by_mean_fold_accuracy(cv):
    out, results = cv
    write_leaderboard(results, out)
    markdown = (out / "leaderboard.md").read_text()
    ranking = section(markdown, "Ranking (`patient-wise`: 3-fold cross-validation, keeps `pid` groups whole)")
    lines = table_lines(ranking)
    assert [line[:2] for line in lines] == [["1", "resnet18.imagenet@patient-wise"], ["2", "cnn1.scratch@patient-wise"]]
    means = summaries_of(out, results, "patient-wise")
    best = means["resnet18.imagenet"]
    assert lines[0][2] == f"{100 * best['cv_acc_mean']:.1f} ± {100 * best['cv_acc_std']:.1f}"
    low, high = best["pooled_acc_ci95"]
    assert lines[0][4] == f"{100 * best['pooled_acc']:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"
    assert lines[0][3] == "3"
    how = section(markdown, "Ranking").split("### How to read this", 1)[1]
    assert "mean accuracy over the folds" in how and "pooled" in how.lower() and "bootstrap" in how


def test_a_missing_fold_marks_the_summary_incomplete_and_ranks_it_last(cv):
    out, results = cv
    results["rows"] = [r for r in results["rows"] if r["entry"] != "resnet18.imagenet@patient-wise,fold=3"]
    failed = next(r for r in results["rows"] if r["entry"] == "resnet18.imagenet@patient-wise,fold=2")
    for key in [k for k in failed if k.startswith("test_")]:
        del failed[key]
    failed.update(status="failed", error="RuntimeError: CUDA out of memory")
    summary = summaries_of(out, results, "patient-wise")["resnet18.imagenet"]
    assert not summary["complete"] and summary["folds_done"] == 1
    assert summary["folds_note"] == "fold 2 failed; fold 3 absent"
    assert summary["cv_acc_mean"] == summary["fold_accs"][0] and np.isnan(summary["cv_acc_std"])
    ranked = rank_summaries(list(summaries_of(out, results, "patient-wise").values()))
    assert [s["zoo_entry"] for s in ranked] == ["cnn1.scratch", "resnet18.imagenet"]  # better mean, yet last
    write_leaderboard(results, out)
    lines = table_lines(section((out / "leaderboard.md").read_text(), "Ranking"))
    assert lines[1][0] == "–" and lines[1][3].startswith("1 of 3 (incomplete: fold 2 failed; fold 3 absent)")
    with open(out / "leaderboard.csv", newline="") as handle:
        by_entry = {line["entry"]: line for line in csv.DictReader(handle)}
    assert by_entry["resnet18.imagenet@patient-wise"]["complete"] == "false"
    assert by_entry["resnet18.imagenet@patient-wise"]["rank"] == ""
    assert by_entry["resnet18.imagenet@patient-wise,fold=2"]["status"] == "failed"  # still listed
    assert "**resnet18.imagenet@patient-wise,fold=2** (failed)" in (out / "leaderboard.md").read_text()


def test_protocols_side_by_side_shows_the_difference_in_points(cv):
    out, results = cv
    write_leaderboard(results, out)
    side = section((out / "leaderboard.md").read_text(), "Protocols side by side")
    patient, record = summaries_of(out, results, "patient-wise"), summaries_of(out, results, "record-wise")
    lines = {line[0]: line for line in table_lines(side)}
    for zoo_entry in ("resnet18.imagenet", "cnn1.scratch"):
        expected = 100 * (record[zoo_entry]["cv_acc_mean"] - patient[zoo_entry]["cv_acc_mean"])
        assert lines[zoo_entry][-1] == f"{expected:+.1f}"
        assert lines[zoo_entry][3].startswith(f"{100 * patient[zoo_entry]['cv_acc_mean']:.1f} ± ")
        assert "(pooled " in lines[zoo_entry][4]
    assert "record-wise − patient-wise (points)" in side
    # The explanation comes from the protocol records.
    assert "Cheng's patients, never on both sides" in side and "keeps `pid` groups whole" in side
    assert "record-wise: images of one patient can fall on both sides" in side


def test_published_results_are_printed_as_given(cv):
    out, results = cv
    write_leaderboard(results, out)
    published = (out / "leaderboard.md").read_text().split("### Published results on this dataset", 1)[1]
    lines = table_lines(published)
    assert lines == [["Cheng et al. 2015, PLoS ONE", "BoW + SVM", "patient-wise", "91.28", "5-fold, their folds"],
                     ["Swati et al. 2019", "VGG19 fine-tuned", "record-wise", "94.82",
                      "slices of one patient on both sides"]]
    assert "not re-measured" in published


def test_a_holdout_protocol_beside_a_kfold_one(cv):
    out, results = cv
    holdout = {"name": "record-holdout", "kind": "holdout", "test_fraction": 0.2, "folds": None,
               "fold_column": None, "groups": "none", "seed": 0, "description": "one random fifth"}
    results["protocols"] = [PROTOCOLS[0], holdout]
    results["rows"] = [r for r in results["rows"] if r["protocol"] == "patient-wise"]
    rng = np.random.default_rng(11)
    for zoo_entry, skill in (("cnn1.scratch", 0.9), ("resnet18.imagenet", 0.95)):
        labels = np.arange(30) % 3
        entry = f"{zoo_entry}@record-holdout"
        probs = write_predictions(out, entry, FIGSHARE, labels, rng.random(30) < skill, 0)
        results["rows"].append({"entry": entry, "zoo_entry": zoo_entry, "setting": None, "seed": 0,
                                "protocol": "record-holdout", "protocol_kind": "holdout", "fold": None,
                                "n_folds": None, "status": "ok", **metric_columns(labels, probs, FIGSHARE)})
    check_results(results, "generated results")
    write_leaderboard(results, out)
    side = section((out / "leaderboard.md").read_text(), "Protocols side by side")
    lines = {line[0]: line for line in table_lines(side)}
    patient = summaries_of(out, results, "patient-wise")
    for row in results["rows"][-2:]:
        low, high = row["test_acc_ci95"]
        line = lines[row["zoo_entry"]]
        assert line[4] == f"{100 * row['test_acc']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
        assert line[5] == f"{100 * (row['test_acc'] - patient[row['zoo_entry']]['cv_acc_mean']):+.1f}"
    assert "holdout split (20 % test)" in side and "one random fifth" in side


def test_no_tumour_class_means_no_tumour_missed_column(cv):
    out, results = cv
    write_leaderboard(results, out)
    markdown = (out / "leaderboard.md").read_text()
    header = next(line for line in section(markdown, "Ranking").splitlines() if line.startswith("| rank"))
    assert "tumor missed" not in header and "pooled sens. meningioma (%)" in header
    assert "no no-tumour class" in " ".join(markdown.split())


def test_csv_has_summaries_then_their_folds(cv):
    out, results = cv
    write_leaderboard(results, out)
    with open(out / "leaderboard.csv", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 12 + 4  # every fold row, and one summary per model and protocol
    assert [(line["entry"], line["row_kind"], line["rank"]) for line in lines[:4]] == [
        ("resnet18.imagenet@patient-wise", "cv-summary", "1"),
        ("resnet18.imagenet@patient-wise,fold=1", "fold", ""),
        ("resnet18.imagenet@patient-wise,fold=2", "fold", ""),
        ("resnet18.imagenet@patient-wise,fold=3", "fold", "")]
    assert lines[1]["fold"] == "1" and lines[1]["n_folds"] == "3" and lines[1]["protocol_kind"] == "kfold"
    summary = summaries_of(out, results, "patient-wise")["resnet18.imagenet"]
    assert float(lines[0]["cv_acc_mean"]) == summary["cv_acc_mean"]
    assert float(lines[0]["pooled_acc"]) == summary["pooled_acc"]
    assert json.loads(lines[0]["pooled_confusion"]) == summary["pooled_confusion"]
    assert lines[0]["protocol"] == "patient-wise" and lines[0]["n_folds"] == "3"


def test_tradeoff_plot_uses_the_summaries(cv):
    out, results = cv
    written = write_tradeoff_plots(results, out)
    assert [p.name for p in written] == ["accuracy_vs_latency.png"]
    assert written[0].read_bytes().startswith(b"\x89PNG")


def test_folds_that_overlap_are_not_pooled(cv):
    out, results = cv
    # Fold 2 tests the images of fold 1 again: the folds no longer partition the images.
    first = out / "entries" / "cnn1.scratch@patient-wise,fold=1" / "test_predictions.csv"
    second = out / "entries" / "cnn1.scratch@patient-wise,fold=2" / "test_predictions.csv"
    second.write_text(first.read_text())
    summary = summaries_of(out, results, "patient-wise")["cnn1.scratch"]
    assert "pooled_acc" not in summary and "do not partition" in summary["pooled_note"]


@pytest.mark.parametrize("key, value", [("fold", "2"), ("fold", 2.0), ("n_folds", 0), ("fold", None)])
def test_fold_numbers_must_be_whole_numbers(cv, key, value):
    _, results = cv
    results["rows"][0][key] = value
    with pytest.raises(BrainbenchError, match=f"{results['rows'][0]['entry']}"):
        check_results(results, "generated results")


def test_a_string_in_a_pooled_column_is_refused(cv):
    _, results = cv
    results["rows"][0]["pooled_acc"] = "0.9"
    with pytest.raises(BrainbenchError, match="pooled_acc"):
        check_results(results, "generated results")


CLASSES_44 = tuple(f"{kind}_{weighting}" for kind in ("astrocytoma", "carcinoma", "ependymoma", "glioblastoma",
                                                      "meningioma") for weighting in ("t1", "t1c", "t2"))


def test_fifteen_classes_get_one_line_per_class(tmp_path):
    rng = np.random.default_rng(3)
    labels = np.arange(150) % 15
    correct = rng.random(150) < 0.8
    probs = write_predictions(tmp_path, "resnet18.imagenet@holdout", CLASSES_44, labels, correct, 0)
    row = {"entry": "resnet18.imagenet@holdout", "zoo_entry": "resnet18.imagenet", "setting": None, "seed": 0,
           "protocol": "holdout", "protocol_kind": "holdout", "fold": None, "n_folds": None, "status": "ok",
           **metric_columns(labels, probs, CLASSES_44)}
    results = {"suite": {"name": "44c"}, "class_names": list(CLASSES_44),
               "labels": {"names": list(CLASSES_44), "no_tumor": None, "coarse": {}},
               "protocols": [{"name": "holdout", "kind": "holdout", "test_fraction": 0.2, "folds": None,
                              "fold_column": None, "groups": "duplicates", "seed": 0, "description": ""}],
               "rows": [row]}
    check_results(results, "generated results")
    write_leaderboard(results, tmp_path)
    markdown = (tmp_path / "leaderboard.md").read_text()
    per_class = section(markdown, "Per class (test split)")
    lines = table_lines(per_class)
    assert [line[0] for line in lines] == list(CLASSES_44)
    assert all(line[1] == "10" for line in lines)  # support: ten test images per class
    glioblastoma = lines[CLASSES_44.index("glioblastoma_t2")]
    assert glioblastoma[2] == (f"{100 * row['test_sensitivity_glioblastoma_t2']:.1f} / "
                               f"{100 * row['test_specificity_glioblastoma_t2']:.1f} / "
                               f"{row['test_f1_glioblastoma_t2']:.3f}")
    header = next(line for line in section(markdown, "Ranking").splitlines() if line.startswith("| rank"))
    assert "macro sens. (%)" in header and "sens. glioma" not in header and "tumor missed" not in header
    assert "test acc [95 % CI]" in header
