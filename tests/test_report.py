"""Report writer: leaderboard tables and CSV, plots, classification reports, rebuild from results.json."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest

from bench.errors import BrainbenchError
from bench.report import pareto_front, rebuild, write_report
from bench.report.leaderboard import write_leaderboard
from bench.report.tradeoff import write_tradeoff_plots

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def metric_row(entry: str, confusion: list[list[int]], latency_ms: float, params_m: float) -> dict:
    """An ok row whose metrics really follow from its confusion matrix, as the runner's would."""
    cm = np.asarray(confusion, dtype=float)
    tp, true_n, pred_n, n = np.diag(cm), cm.sum(1), cm.sum(0), cm.sum()
    tn = n - true_n - pred_n + tp
    precision, sensitivity = tp / pred_n, tp / true_n
    specificity, f1 = tn / (n - true_n), 2 * tp / (true_n + pred_n)
    acc = float(tp.sum() / n)
    arch, variant = entry.split(".")
    row = {"entry": entry, "arch": arch, "variant": variant, "status": "ok", "error": None,
           "recipe_hash": "9f2c1e", "input_size": 224, "in_channels": 3, "epochs_run": 3, "best_epoch": 2,
           "train_seconds": 412.5, "loaded_from_store": False, "val_acc": acc + 0.01,
           "test_n": int(n), "test_acc": acc, "test_acc_ci95": [acc - 0.012, acc + 0.011],
           "test_macro_f1": float(f1.mean()), "test_macro_f1_ci95": [f1.mean() - 0.013, f1.mean() + 0.012],
           "test_weighted_f1": float(f1 @ true_n / n), "test_macro_auc": 0.99, "test_ece": 0.031,
           "test_mean_confidence": acc + 0.02, "test_loss": 0.21, "test_confusion": confusion,
           "test_tumor_missed_rate": float((cm[[0, 1, 3], 2].sum()) / cm[[0, 1, 3]].sum()),
           "params": int(params_m * 1e6), "params_m": params_m, "gmacs": params_m / 5, "size_mb": params_m * 4,
           "latency_ms_b1_eager": latency_ms, "latency_ms_b1_eager_p90": latency_ms * 1.1,
           "throughput_ips_b64_eager": 64000 / (latency_ms * 20), "throughput_batch_eager": 64}
    for name, values in (("precision", precision), ("sensitivity", sensitivity), ("specificity", specificity)):
        row[f"test_macro_{name}"] = float(values.mean())
        row[f"test_weighted_{name}"] = float(values @ true_n / n)
    for i, c in enumerate(CLASSES):
        row.update({f"test_precision_{c}": precision[i], f"test_sensitivity_{c}": sensitivity[i],
                    f"test_sensitivity_{c}_ci95": [sensitivity[i] - 0.03, min(1.0, sensitivity[i] + 0.02)],
                    f"test_specificity_{c}": specificity[i], f"test_f1_{c}": f1[i], f"test_auc_{c}": 0.99})
    return json.loads(json.dumps(row, default=float))  # plain floats, as read back from results.json


def make_results() -> dict:
    # Rows deliberately out of rank order, as a resumed run might append them.
    small = metric_row("cnn1.scratch", [[250, 30, 10, 10], [25, 250, 15, 16], [5, 10, 380, 10],
                                        [5, 10, 5, 280]], latency_ms=1.8, params_m=0.4)
    big = metric_row("resnet50.imagenet", [[290, 8, 1, 1], [6, 292, 5, 3], [0, 2, 402, 1],
                                           [1, 2, 0, 297]], latency_ms=14.2, params_m=23.5)
    mid = metric_row("efficientnet_b0.imagenet", [[280, 12, 4, 4], [10, 284, 6, 6], [2, 4, 396, 3],
                                                  [2, 4, 1, 293]], latency_ms=22.0, params_m=4.0)
    mid["test_auc_meningioma"] = math.nan  # undefined metrics arrive as JSON NaN
    mid["loaded_from_store"] = True
    failed = {"entry": "vit_b16.imagenet", "arch": "vit_b16", "variant": "imagenet", "status": "failed",
              "error": "RuntimeError: CUDA out of memory\nTried to allocate 2.00 GiB", "recipe_hash": "77aa01"}
    return {
        "suite": {"name": "quick", "description": "Small suite for a laptop.", "file": "suites/quick.toml",
                  "file_sha256": "c0ffee" * 10 + "abcd",
                  "entries": ["cnn1.scratch", "efficientnet_b0.imagenet", "resnet50.imagenet", "vit_b16.imagenet"]},
        "machine_tag": "cpu-fp32",
        "environment": {"torch": "2.14.1", "cuda": None, "python": "3.11.7", "device": "cpu",
                        "device_name": "AMD EPYC 7763", "cpu": "AMD EPYC 7763", "git_revision": "abc123def",
                        "date": "2026-11-22T10:00:00+00:00", "torch_threads": 16},
        "dataset": {"path": "/data/brain-tumor-mri", "fingerprint": "213fd2a0431e4346", "layout": "kaggle",
                    "n_train_images": 5708, "n_test_images": 1311, "n_unreadable_skipped": 0},
        "rows": [failed, small, mid, big],
    }


def write_history(out_dir, entry: str) -> None:
    folder = out_dir / "entries" / entry
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,data_seconds",
             "1,1.10,0.55,0.90,0.66,0.001,140.0,20.0",
             "2,0.60,0.78,0.52,0.83,0.0007,136.0,19.0",
             "3,0.41,0.86,nan,0.82,0.0002,136.5,19.2"]
    (folder / "history.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One full report shared by the read-only tests: plotting is the slow part."""
    out = tmp_path_factory.mktemp("report")
    write_history(out, "resnet50.imagenet")
    write_history(out, "cnn1.scratch")
    results = make_results()
    return out, results, write_report(results, out)


def section(markdown: str, title: str) -> str:
    """The text of one '## title' section, up to the next heading of the same level."""
    return markdown.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_write_report_writes_every_file(report):
    out, _, written = report
    expected = ["leaderboard.md", "leaderboard.csv", "accuracy_vs_latency.png"]
    for entry in ("cnn1.scratch", "resnet50.imagenet", "efficientnet_b0.imagenet"):
        expected += [f"entries/{entry}/confusion.png", f"entries/{entry}/report.txt"]
    expected += ["entries/cnn1.scratch/curves.png", "entries/resnet50.imagenet/curves.png"]
    for name in expected:
        assert (out / name).is_file(), name
        assert out / name in written
    assert not (out / "entries/efficientnet_b0.imagenet/curves.png").exists()  # no history, no curves
    assert not (out / "entries/vit_b16.imagenet").exists()  # a failed entry has no figures


def test_leaderboard_ranks_by_test_accuracy_with_failed_last(report):
    markdown = (report[0] / "leaderboard.md").read_text()
    ranking = section(markdown, "Ranking (official test split)")
    order = ["resnet50.imagenet", "efficientnet_b0.imagenet", "cnn1.scratch", "vit_b16.imagenet"]
    positions = [ranking.index(f"| {entry}") for entry in order]
    assert positions == sorted(positions)
    failed_line = next(line for line in ranking.splitlines() if "vit_b16.imagenet" in line)
    assert "not run: RuntimeError: CUDA out of memory" in failed_line
    assert "Tried to allocate 2.00 GiB" in section(markdown, "Entries that did not run")


def test_leaderboard_shows_intervals_provenance_and_na(report):
    out, results, _ = report
    markdown = (out / "leaderboard.md").read_text()
    best = next(r for r in results["rows"] if r["entry"] == "resnet50.imagenet")
    low, high = best["test_acc_ci95"]
    assert f"{100 * best['test_acc']:.1f} % [{100 * low:.1f}, {100 * high:.1f}]" in markdown
    assert markdown.startswith("# quick on cpu-fp32")
    for fact in ("213fd2a0431e4346", "abc123def", "2.14.1", "/data/brain-tumor-mri", "5708", "1311",
                 "suites/quick.toml", results["suite"]["file_sha256"], "torch_threads"):
        assert fact in section(markdown, "Where these numbers come from"), fact
    meningioma_mid = next(line for line in section(markdown, "Per class (test split)").splitlines()
                          if "efficientnet_b0.imagenet" in line and "meningioma" in line)
    assert meningioma_mid.rstrip(" |").endswith("n/a")  # the NaN AUC
    assert "(from store)" in markdown
    assert "entries/cnn1.scratch/confusion.png" in markdown and "accuracy_vs_latency.png" in markdown


def test_old_results_are_the_kaggle_four_classes_under_the_official_protocol(report):
    # make_results() has neither class_names, labels nor protocols: a results file of before they existed.
    markdown = (report[0] / "leaderboard.md").read_text()
    header = next(line for line in section(markdown, "Ranking (official test split)").splitlines()
                  if line.startswith("| rank"))
    for column in [f"sens. {c} (%)" for c in CLASSES] + ["tumor missed (%)", "official acc [95 % CI]"]:
        assert column in header, column
    assert "(glioma, meningioma, pituitary) called notumor" in " ".join(markdown.split())
    assert "Protocols side by side" not in markdown and "cv-summary" not in markdown


def test_leaderboard_csv_has_one_line_per_row(report):
    out, results, _ = report
    with open(out / "leaderboard.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    assert [line["entry"] for line in lines] == ["resnet50.imagenet", "efficientnet_b0.imagenet",
                                                 "cnn1.scratch", "vit_b16.imagenet"]
    assert [line["rank"] for line in lines] == ["1", "2", "3", ""]
    low, high = (float(v) for v in lines[0]["test_acc_ci95"].split(";"))
    assert [low, high] == results["rows"][3]["test_acc_ci95"]
    assert json.loads(lines[0]["test_confusion"]) == results["rows"][3]["test_confusion"]
    assert lines[1]["test_auc_meningioma"] == "nan"
    assert lines[3]["status"] == "failed" and lines[3]["test_acc"] == ""
    assert list(lines[0])[:3] == ["rank", "entry", "arch"]


def test_pngs_are_valid(report):
    out = report[0]
    for name in ("accuracy_vs_latency.png", "entries/cnn1.scratch/confusion.png",
                 "entries/cnn1.scratch/curves.png"):
        data = (out / name).read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC), name


def test_classification_report_support_and_nan(report):
    text = (report[0] / "entries/efficientnet_b0.imagenet/report.txt").read_text()
    glioma = next(line for line in text.splitlines() if line.strip().startswith("glioma"))
    assert glioma.split()[6] == "300"  # support: the confusion row sum
    meningioma = next(line for line in text.splitlines() if line.strip().startswith("meningioma"))
    assert meningioma.split()[5] == "n/a"
    assert "accuracy" in text and "%" in text and "1311 images" in text


def test_pareto_front_hand_case():
    points = [(10.0, 90.0), (5.0, 85.0), (20.0, 89.0), (5.0, 80.0), (1.0, 70.0),
              (30.0, 95.0), (float("nan"), 99.0), (10.0, 90.0)]
    # (20, 89) loses to (10, 90); (5, 80) to (5, 85); NaN takes no part; duplicates both stay.
    assert pareto_front(points) == [4, 1, 0, 7, 5]
    assert pareto_front([]) == []


def test_later_latency_modes_appear_with_their_notes(tmp_path):
    results = make_results()
    for row in results["rows"][1:]:
        row["latency_ms_b1_torchscript"] = row["latency_ms_b1_eager"] * 0.8
        row["latency_ms_b1_torchscript_p90"] = row["latency_ms_b1_eager"] * 0.9
        row["throughput_ips_b64_torchscript"] = 900.0
        row["latency_ms_b1_tensorrt"] = None
        row["throughput_ips_b64_tensorrt"] = None
        row["latency_note_tensorrt"] = "n/a: no CUDA device"
    write_leaderboard(results, tmp_path)  # the pieces this test is about: faster than every figure
    write_tradeoff_plots(results, tmp_path)
    text = (tmp_path / "leaderboard.md").read_text()
    assert text.index("### eager") < text.index("### torchscript") < text.index("### tensorrt")
    tensorrt = text[text.index("### tensorrt"):].split("##")[1]
    assert tensorrt.count("n/a: no CUDA device") == 3
    torchscript = text[text.index("### torchscript"):].split("###")[1]
    assert "1.25x" in torchscript  # 0.8 of eager's latency
    assert (tmp_path / "accuracy_vs_latency_torchscript.png").read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / "accuracy_vs_latency_tensorrt.png").exists()  # nothing to plot
    assert not (tmp_path / "accuracy_vs_latency_eager.png").exists()  # eager keeps the plain name


def test_rebuild_reproduces_leaderboard(report, tmp_path):
    out, results, _ = report
    folder = tmp_path / "cpu-fp32"
    shutil.copytree(out, folder)  # the histories too, so the links match
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    (folder / "leaderboard.md").unlink()
    written = rebuild(folder)
    assert (folder / "leaderboard.md").read_text() == (out / "leaderboard.md").read_text()
    assert folder / "leaderboard.md" in written


def test_rebuild_names_a_missing_or_malformed_file(tmp_path):
    with pytest.raises(BrainbenchError, match="results.json"):
        rebuild(tmp_path)
    (tmp_path / "results.json").write_text('{"rows": [')
    with pytest.raises(BrainbenchError, match=str(tmp_path / "results.json")):
        rebuild(tmp_path)
    (tmp_path / "results.json").write_text('{"rows": [{"status": "ok"}]}')
    with pytest.raises(BrainbenchError, match="row 0 has no 'entry'"):
        rebuild(tmp_path)


def test_modes_come_from_the_keys_efficiency_really_writes():
    # The exact keys bench.evaluate.timing.mode_latency produces for one mode.
    import torch

    from bench.evaluate.timing import mode_latency
    from bench.report.modes import latency_modes

    row = mode_latency("eager", lambda batch: (lambda: torch.zeros(batch)), "cpu",
                       batch1_warmup=0, batch1_iters=2, throughput_warmup=0, throughput_iters=1)
    assert latency_modes([row]) == ["eager"]


def test_provenance_names_the_revision_the_rows_came_from():
    from bench.report.provenance import provenance_markdown

    rows = [{"entry": "a", "git_revision": "abc", "date": "2026-01-02T00:00:00"},
            {"entry": "b", "git_revision": "abc", "date": "2026-01-01T00:00:00"}]
    text = provenance_markdown({"environment": {"git_revision": "def"}, "rows": rows})
    assert "rows computed at revision | abc" in " ".join(text.split())
    assert "2026-01-01T00:00:00 to 2026-01-02T00:00:00" in text


def test_probe_table_appears_only_for_rows_with_probe_results():
    from bench.report.tables import probe_table

    rows = [{"entry": "resnet18.mocov2", "status": "ok", "probe_acc_mocov2": 0.81, "probe_acc_random": 0.55},
            {"entry": "resnet18.scratch", "status": "ok"}]
    headers, body = probe_table(rows)
    assert headers == ["entry", "MoCo v2 backbone (%)", "random backbone (%)"]
    assert body == [["resnet18.mocov2", "81.0", "55.0"]]
    assert probe_table(rows[1:])[1] == []


def test_probe_table_says_why_the_imagenet_probe_is_missing():
    from bench.report.tables import probe_table

    rows = [{"entry": "resnet18.mocov2", "status": "ok", "probe_acc_mocov2": 0.81, "probe_acc_random": 0.55,
             "probe_note_imagenet": "n/a: ImageNet weights for resnet18.imagenet are not on this machine"}]
    headers, body = probe_table(rows)
    assert headers == ["entry", "MoCo v2 backbone (%)", "ImageNet backbone (%)", "random backbone (%)"]
    assert body[0][2].startswith("n/a: ImageNet weights")


def test_a_mode_disagreeing_with_eager_is_flagged():
    from bench.report.tables import latency_tables

    row = {"entry": "a", "status": "ok", "test_acc": 0.9, "latency_ms_b1_eager": 2.0, "latency_ms_b1_compile": 1.0,
           "agreement_compile": 0.98, "max_abs_diff_compile": 0.5, "compile_s_compile": 12.3}
    tables = {mode: body for mode, _, body in latency_tables([row])}
    compile_row = tables["compile"][0]
    assert compile_row[4] == "12.3" and compile_row[5] == "2.00x"
    assert "FLAGGED" in compile_row[6] and "98.0 %" in compile_row[6]
    assert tables["eager"][0][6] == "reference"


def test_an_external_sets_count_of_images_outside_the_task_is_not_taken_for_another_set():
    from bench.report.tables import external_names
    row = {"ext_brain-tumor-44c_task": "four-class", "ext_brain-tumor-44c_n_not_in_task": 1863,
           "ext_brain-yes-no_task": "tumor vs notumor", "ext_brain-yes-no_n_not_in_task": 0}
    assert external_names([row]) == ["brain-tumor-44c", "brain-yes-no"]
