"""Split protocols end to end, through `brainbench run`: a metadata dataset (patient ids, a fold
column, masks) run by a suite under a patient-wise and a record-wise 3-fold protocol. Its rows,
results and leaderboard, pooled out-of-fold predictions, what each protocol keeps whole, resume
per fold, one checkpoint per fold, `brainbench datasets` and `brainbench train --fold`; then a
flat class-folder dataset under the default holdout, and --split clean refused for k-fold.

The suite runs once per module (12 rows of knn.pixels and cnn0.scratch, one epoch at 32 px);
the tests read what it wrote. Only the resume test runs it again, and it leaves the results as
they were."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from declaration_text import metadata_declaration, protocol_table
from PIL import Image

from bench.cli import main
from bench.data.declaration import DECLARATION_FILE
from bench.data.discover import discover
from bench.data.fingerprint import dataset_fingerprint
from bench.data.splits import stratified_split
from bench.errors import CheckpointError
from bench.leakage.index import DEFAULT_CLEAN_THRESHOLD
from bench.runner.protocol_views import default_protocols, protocol_views
from bench.train.store import MANIFEST
from bench.train.train_or_load import check_classes

CLASSES = ("glioma", "meningioma", "pituitary")
PATIENTS_PER_CLASS = 8
SIZE = 24
ENTRIES = ("knn.pixels", "cnn0.scratch")
PROTOCOLS = ("patient-wise", "record-wise")
N_FOLDS = 3
ROW_IDS = [f"{entry}@{protocol},fold={k}" for protocol in PROTOCOLS for entry in ENTRIES for k in range(1, N_FOLDS + 1)]
PUBLISHED = {"source": "Doe J., Roe R., A tiny study of slices, 2024", "method": "pixel kNN",
             "protocol": "patient-wise", "accuracy": 71.5, "note": "as stated in the abstract"}

DECLARATION = metadata_declaration(
    "tiny-figshare", CLASSES,
    description="24 patients of three classes, 2 or 3 slices each, with a fold column and masks",
    protocols=[protocol_table("patient-wise", fold_column="fold",
                              description="the fold column: each patient in one fold"),
               protocol_table("record-wise", folds=3, groups="none", seed=0, description="slices drawn at random")],
    extra=f'''[[published]]
source = "{PUBLISHED["source"]}"
method = "{PUBLISHED["method"]}"
protocol = "{PUBLISHED["protocol"]}"
accuracy = {PUBLISHED["accuracy"]}
note = "{PUBLISHED["note"]}"
''')

SUITE = '''
description = "two entries under two k-fold protocols"
entries = ["knn.pixels", "cnn0.scratch"]
measure = ["metrics"]
protocols = ["patient-wise", "record-wise"]
[recipe]
input_size = 32
epochs = 1
'''


def n_slices(rank: int) -> int:
    return 2 + rank % 2


def fold_of(rank: int) -> int:
    return rank % N_FOLDS + 1


def write_cv_dataset(root: Path) -> Path:
    """images/<class>/<n>.png, masks/<n>.png, metadata.csv and the declaration. A patient's slices
    share one coarse random texture (a few grey levels of noise apart), so a slice's nearest
    neighbour is its patient's other slice: a record-wise split leaks, a patient-wise one cannot."""
    rng = np.random.default_rng(0)
    rows, n = [], 0
    for label, name in enumerate(CLASSES):
        (root / "images" / name).mkdir(parents=True, exist_ok=True)
        for rank in range(PATIENTS_PER_CLASS):
            anatomy = np.kron(rng.uniform(40, 200, (6, 6)), np.ones((SIZE // 6, SIZE // 6))) + 10 * label
            for _ in range(n_slices(rank)):
                image = np.clip(anatomy + rng.normal(0, 3, anatomy.shape), 0, 255).astype(np.uint8)
                Image.fromarray(image).save(root / "images" / name / f"{n}.png")
                mask = np.zeros((SIZE, SIZE), np.uint8)
                mask[8:16, 8:16] = 255
                (root / "masks").mkdir(exist_ok=True)
                Image.fromarray(mask).save(root / "masks" / f"{n}.png")
                rows.append({"image": f"images/{name}/{n}.png", "mask": f"masks/{n}.png", "class": name,
                             "pid": f"{name}-{rank}", "fold": fold_of(rank)})
                n += 1
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "mask", "class", "pid", "fold"])
        writer.writeheader()
        writer.writerows(rows)
    (root / DECLARATION_FILE).write_text(DECLARATION)
    return root


def expected_fold_sizes() -> list[int]:
    """Test images of each fold of the fold column, from the construction alone."""
    return [len(CLASSES) * sum(n_slices(r) for r in range(PATIENTS_PER_CLASS) if fold_of(r) == k)
            for k in range(1, N_FOLDS + 1)]


N_IMAGES = len(CLASSES) * sum(n_slices(r) for r in range(PATIENTS_PER_CLASS))


@dataclass(frozen=True)
class CvRun:
    base: Path
    data: Path
    suite: Path
    store: Path
    cache: Path
    out: Path  # results/<suite>/<machine tag>
    printed: str  # what the first run printed

    def run_argv(self, **changes) -> list[str]:
        places = {"out": self.base / "results", "store": self.store} | changes
        return ["run", "--suite", str(self.suite), "--data", str(self.data), "--out", str(places["out"]),
                "--store", str(places["store"]), "--cache", str(self.cache), "--device", "cpu"]

    def results(self) -> dict:
        return json.loads((self.out / "results.json").read_text())

    def row(self, run_id: str) -> dict:
        return json.loads((self.out / "rows" / f"{run_id}.json").read_text())


@pytest.fixture(scope="module")
def cv(tmp_path_factory) -> CvRun:
    base = tmp_path_factory.mktemp("protocol-runs")
    suite = base / "cv.toml"
    suite.write_text(SUITE)
    run = CvRun(base, write_cv_dataset(base / "data"), suite, base / "store", base / "cache", out=Path(), printed="")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # tqdm.write prints to the sys.stdout of the moment
        status = main(run.run_argv())
    assert status == 0, printed.getvalue()
    [out] = (base / "results" / "cv").iterdir()  # results/<suite>/<machine tag>
    return replace(run, out=out, printed=printed.getvalue())


def predicted_paths(out: Path, run_id: str) -> list[str]:
    with open(out / "entries" / run_id / "test_predictions.csv", newline="") as handle:
        return [line["path"] for line in csv.DictReader(handle)]


def folds_of(data: Path, protocol: str) -> tuple[list, list]:
    """(the protocol's folds on the discovered dataset, the samples they index)."""
    index = discover(data)
    views = protocol_views(index, index.declaration.protocol(protocol), dataset_fingerprint(index),
                           data.parent / "unused-cache", DEFAULT_CLEAN_THRESHOLD)
    return [view.fold for view in views], list(index.samples)


def store_files(store: Path) -> dict[str, int]:
    """Every file of the checkpoint store with its modification time."""
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}


def store_folders(store: Path) -> set[str]:
    return {f"{entry.name}/{folder.name}" for entry in store.iterdir() if entry.is_dir()
            for folder in entry.iterdir() if folder.is_dir()}


def section(markdown: str, title: str) -> str:
    """The text of the `## title...` section, up to the next section of its level or above."""
    start = markdown.index(title)
    level = title.split(" ", 1)[0]
    ends = [m.start() for m in re.finditer(r"^#{1,%d} " % len(level), markdown[start + len(title):], re.M)]
    return markdown[start:start + len(title) + (ends[0] if ends else len(markdown))]


def table_lines(text: str) -> list[list[str]]:
    """Body cells of the first markdown table in `text` (header and separator left out)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[start + 2:end]]


def fold_accs(cv: CvRun, entry: str, protocol: str) -> list[float]:
    return [cv.row(f"{entry}@{protocol},fold={k}")["test_acc"] for k in range(1, N_FOLDS + 1)]


# --- the run --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_entries_under_two_protocols_of_three_folds_make_twelve_rows(cv):
    results = cv.results()
    rows = {row["entry"]: row for row in results["rows"]}
    assert sorted(rows) == sorted(ROW_IDS)
    assert sorted(p.stem for p in (cv.out / "rows").glob("*.json")) == sorted(ROW_IDS)
    sizes = {"patient-wise": expected_fold_sizes(), "record-wise": [N_IMAGES // N_FOLDS] * N_FOLDS}
    for run_id, row in rows.items():
        entry, protocol, fold = re.fullmatch(r"(.+)@(.+),fold=(\d)", run_id).groups()
        assert row["status"] == "ok", row.get("error")
        assert (row["zoo_entry"], row["protocol"], row["protocol_kind"], row["fold"], row["n_folds"],
                row["cv_group"]) == (entry, protocol, "kfold", int(fold), N_FOLDS, f"{entry}@{protocol}")
        assert row["test_n"] == sizes[protocol][int(fold) - 1], run_id
        assert f"{run_id}: done in" in cv.printed
    assert results["class_names"] == list(CLASSES)
    assert [(p["name"], p["kind"], p["fold_column"], p["folds"], p["groups"]) for p in results["protocols"]] == [
        ("patient-wise", "kfold", "fold", None, "pid"), ("record-wise", "kfold", None, 3, "none")]  # groups resolved
    assert results["published"] == [PUBLISHED]
    # What each protocol shares between its sides, measured: no patient under patient-wise folds.
    patient, record = (p["group_overlap"] for p in results["protocols"])
    assert [f["also_in_training"] for f in patient] == [0, 0, 0] and sum(f["test_groups"] for f in patient) == 24
    assert sum(f["also_in_training"] for f in record) > 0
    assert "24 `pid` groups, 0 of them (0 %) also on the training side" in (cv.out / "leaderboard.md").read_text()
    published = section((cv.out / "leaderboard.md").read_text(), "### Published results on this dataset")
    assert table_lines(published) == [[PUBLISHED[k] if k != "accuracy" else "71.5"
                                       for k in ("source", "method", "protocol", "accuracy", "note")]]


@pytest.mark.slow
def test_every_image_is_tested_once_per_entry_and_protocol_on_its_folds_test_side(cv):
    for protocol in PROTOCOLS:
        folds, samples = folds_of(cv.data, protocol)
        assert len(folds) == N_FOLDS
        for entry in ENTRIES:
            tested = Counter()
            for fold in folds:
                paths = predicted_paths(cv.out, f"{entry}@{protocol},fold={fold.number}")
                assert sorted(paths) == sorted(samples[i].rel for i in fold.test), (entry, protocol, fold.number)
                tested.update(paths)
            assert tested == Counter({s.rel: 1 for s in samples}), (entry, protocol)


def test_patient_wise_folds_keep_patients_whole_and_record_wise_folds_do_not(tmp_path):
    data = write_cv_dataset(tmp_path / "data")

    def patients(samples, positions) -> set[str]:
        return {samples[i].group for i in positions}

    folds, samples = folds_of(data, "patient-wise")
    for fold in folds:
        assert not patients(samples, fold.train) & patients(samples, fold.test), fold.number
        assert {samples[i].fold for i in fold.test} == {fold.number}  # the fold column's own folds
    folds, samples = folds_of(data, "record-wise")
    assert any(patients(samples, fold.train) & patients(samples, fold.test) for fold in folds)


@pytest.mark.slow
def test_leaderboard_ranks_by_mean_over_folds_and_shows_both_protocols(cv):
    markdown = (cv.out / "leaderboard.md").read_text()
    ranking = section(markdown, "## Ranking (`patient-wise`: cross-validation over the folds of column `fold`")
    header = next(line for line in ranking.splitlines() if line.startswith("| rank"))
    assert "acc mean ± std over folds (%)" in header
    assert "tumor missed" not in markdown  # no no-tumour class declared
    lines = table_lines(ranking)
    assert sorted(line[1] for line in lines) == sorted(f"{e}@patient-wise" for e in ENTRIES)
    means = []
    for line in lines:
        accs = fold_accs(cv, line[1].split("@")[0], "patient-wise")
        assert line[2] == f"{100 * np.mean(accs):.1f} ± {100 * np.std(accs, ddof=1):.1f}", line
        means.append(np.mean(accs))
    assert means == sorted(means, reverse=True) and [line[0] for line in lines] == ["1", "2"]

    side = section(markdown, "## Protocols side by side")
    assert "`patient-wise`" in side and "`record-wise`" in side and "record-wise − patient-wise (points)" in side
    by_entry = {line[0]: line for line in table_lines(side)}
    assert set(by_entry) == set(ENTRIES)
    for entry in ENTRIES:
        difference = np.mean(fold_accs(cv, entry, "record-wise")) - np.mean(fold_accs(cv, entry, "patient-wise"))
        assert by_entry[entry][-1] == f"{100 * difference:+.1f}"
    # A slice's nearest neighbour is its patient's other slice: only the record-wise split lets knn see it.
    leak = np.mean(fold_accs(cv, "knn.pixels", "record-wise")) - np.mean(fold_accs(cv, "knn.pixels", "patient-wise"))
    assert leak > 0.3


@pytest.mark.slow
def test_a_second_run_computes_nothing_and_a_deleted_fold_row_alone_is_recomputed(cv, capsys):
    def skipped(printed: str) -> list[str]:
        return re.findall(r"^\[\d+/12\] (\S+): finished row found, skipping", printed, re.M)

    store_before = store_files(cv.store)
    rows_before = {p.name: p.stat().st_mtime_ns for p in (cv.out / "rows").iterdir()}
    capsys.readouterr()
    assert main(cv.run_argv()) == 0
    assert sorted(skipped(capsys.readouterr().out)) == sorted(ROW_IDS)
    assert store_files(cv.store) == store_before  # no folder, no file, nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in (cv.out / "rows").iterdir()} == rows_before

    victim = "cnn0.scratch@record-wise,fold=2"
    before = cv.row(victim)
    (cv.out / "rows" / f"{victim}.json").unlink()
    assert main(cv.run_argv()) == 0
    printed = capsys.readouterr().out
    assert sorted(skipped(printed)) == sorted(set(ROW_IDS) - {victim})
    assert re.search(rf"^\[\d+/12\] {re.escape(victim)}: done in", printed, re.M)
    again = cv.row(victim)
    assert again["loaded_from_store"] is True and again["checkpoint"] == before["checkpoint"]
    assert again["test_acc"] == before["test_acc"] and again["date"] >= before["date"]
    assert store_files(cv.store) == store_before
    assert {p.name: p.stat().st_mtime_ns for p in (cv.out / "rows").iterdir() if p.stem != victim} == \
        {name: stamp for name, stamp in rows_before.items() if name != f"{victim}.json"}


@pytest.mark.slow
def test_each_fold_is_its_own_checkpoint_refused_for_another_label_set(cv):
    folders = store_folders(cv.store)
    assert Counter(name.split("/")[0] for name in folders) == {entry: 6 for entry in ENTRIES}
    checkpoints = {run_id: Path(cv.row(run_id)["checkpoint"]) for run_id in ROW_IDS}
    assert {f"{p.parent.name}/{p.name}" for p in checkpoints.values()} == folders  # one folder per row
    for run_id, folder in checkpoints.items():
        manifest = json.loads((folder / MANIFEST).read_text())
        split = manifest["dataset"]["split"]
        assert (split["protocol"]["name"], split["fold"]) == (cv.row(run_id)["protocol"], cv.row(run_id)["fold"])
        assert folder.name.endswith(f"-f{split['fold']}")
        check_classes(manifest, CLASSES, folder)  # its own classes: accepted

    folder = checkpoints["cnn0.scratch@patient-wise,fold=1"]
    manifest = json.loads((folder / MANIFEST).read_text())
    four = ("glioma", "meningioma", "notumor", "pituitary")
    for other in (four, ("meningioma", "glioma", "pituitary")):  # other classes, or the same in another order
        with pytest.raises(CheckpointError) as refused:
            check_classes(manifest, other, folder)
        message = str(refused.value)
        assert "\n" not in message and str(folder) in message
        assert "glioma, meningioma, pituitary" in message and ", ".join(other) in message


# --- the other commands on the same dataset --------------------------------------------------------


def test_datasets_command_shows_the_declaration_classes_and_fold_sizes(tmp_path, capsys):
    data = write_cv_dataset(tmp_path / "data")
    assert main(["datasets", "--data", str(data), "--cache", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "read with declaration tiny-figshare" in printed and "layout metadata" in printed
    per_class = N_IMAGES // len(CLASSES)
    for name in CLASSES:
        assert re.search(rf"^{name}\s+{per_class}\s*$", printed, re.M), printed
    assert f"{len(CLASSES) * PATIENTS_PER_CLASS} groups (pid)" in printed
    patient = " / ".join(f"{N_IMAGES - n}+{n}" for n in expected_fold_sizes())
    record = " / ".join([f"{N_IMAGES - N_IMAGES // 3}+{N_IMAGES // 3}"] * 3)
    assert re.search(rf"^patient-wise\s+kfold\s+train\+test: {re.escape(patient)}", printed, re.M), printed
    assert re.search(rf"^record-wise\s+kfold\s+train\+test: {re.escape(record)}", printed, re.M), printed


@pytest.mark.slow
def test_train_one_fold_of_a_protocol_and_a_fold_it_lacks(cv, tmp_path, capsys):
    argv = ["train", "cnn0.scratch", "--data", str(cv.data), "--protocol", "record-wise", "--epochs", "1",
            "--input-size", "32", "--store", str(tmp_path / "store"), "--cache", str(cv.cache), "--device", "cpu"]
    assert main([*argv, "--fold", "2"]) == 0
    printed = capsys.readouterr().out
    assert "cnn0.scratch: trained 1 epochs" in printed
    folder = Path(re.search(r"^checkpoint: (.+)$", printed, re.M).group(1))
    split = json.loads((folder / MANIFEST).read_text())["dataset"]["split"]
    assert (split["protocol"]["name"], split["fold"], split["n_folds"], split["n_test"]) == \
        ("record-wise", 2, 3, N_IMAGES // 3)
    # The model the suite trained for that fold: the same key, so the same folder name.
    assert folder.name == Path(cv.row("cnn0.scratch@record-wise,fold=2")["checkpoint"]).name

    assert main([*argv, "--fold", "9"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("brainbench: error:")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert "--fold 9" in lines[0] and "record-wise has 3 fold(s)" in lines[0]


def test_a_flat_folder_runs_under_a_holdout_split(tmp_path, make_dataset):
    # A flat copy has no official split; its default is the patient split (next test), and these
    # generated pictures are too alike for near-duplicate groups, so this run names the plain holdout.
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    data = make_dataset({name: 5 for name in classes}, size=24)
    suite = tmp_path / "flat.toml"
    suite.write_text('entries = ["knn.pixels"]\nmeasure = ["metrics"]\n[recipe]\ninput_size = 32\n')
    assert main(["run", "--suite", str(suite), "--data", str(data), "--out", str(tmp_path / "results"),
                 "--store", str(tmp_path / "store"), "--cache", str(tmp_path / "cache"), "--device", "cpu",
                 "--protocol", "holdout"]) == 0
    [out] = (tmp_path / "results" / "flat").iterdir()
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["declaration"]["name"] == "brain-tumor-mri" and results["dataset"]["layout"] == "flat"
    [row] = results["rows"]
    assert (row["entry"], row["protocol"], row["protocol_kind"], row["fold"]) == \
        ("knn.pixels@holdout", "holdout", "holdout", None)
    index = discover(data)
    _, held = stratified_split([s.label for s in index.samples], 0.2, 0)
    assert sorted(predicted_paths(out, "knn.pixels@holdout")) == sorted(index.samples[i].rel for i in held)
    assert row["test_n"] == len(held) == len(classes)


def test_split_clean_with_a_kfold_protocol_is_one_line(tmp_path, capsys):
    data = write_cv_dataset(tmp_path / "data")
    (tmp_path / "cv.toml").write_text(SUITE)
    assert main(["run", "--suite", str(tmp_path / "cv.toml"), "--data", str(data), "--split", "clean",
                 "--out", str(tmp_path / "results"), "--store", str(tmp_path / "store"),
                 "--cache", str(tmp_path / "cache"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("brainbench: error:")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert "--split clean" in lines[0] and "patient-wise, record-wise" in lines[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "store").exists()


def test_a_non_official_split_is_written_as_a_file(cv):
    # The split is a file others can reuse (image -> part), not only a seed.
    import csv as csv_module
    with open(cv.out / "splits" / "patient-wise.csv", newline="", encoding="utf-8") as handle:
        parts = list(csv_module.DictReader(handle))
    assert len(parts) == 60 and {p["part"] for p in parts} == {"fold 1", "fold 2", "fold 3"}
    tested = {}
    for run_id in ("knn.pixels@patient-wise,fold=1", "knn.pixels@patient-wise,fold=2", "knn.pixels@patient-wise,fold=3"):
        with open(cv.out / "entries" / run_id / "test_predictions.csv", newline="", encoding="utf-8") as handle:
            tested |= {row["path"]: "fold " + run_id[-1] for row in csv_module.DictReader(handle)}
    assert {p["path"]: p["part"] for p in parts} == tested


# --- the default protocols and --split -------------------------------------------------------------

def test_the_default_protocols_follow_the_declarations_ranking(tmp_path, embedded_dataset, make_dataset):
    # The Kaggle declaration ranks by the patient split with the official beside it; a flat copy has
    # no official split, so only the patient one applies; a dataset without [ranking] runs its first.
    assert default_protocols(discover(embedded_dataset)) == ("patient", "official")
    flat = make_dataset({name: 3 for name in ("glioma", "meningioma", "notumor", "pituitary")}, name="flat")
    assert default_protocols(discover(flat)) == ("patient",)
    assert default_protocols(discover(write_cv_dataset(tmp_path / "cv"))) == ("patient-wise",)


def test_computed_groups_put_the_split_they_made_into_the_key(tmp_path, embedded_dataset):
    # Patient and duplicate groups are computed, not read from a fingerprinted column: the key names
    # which image went where, so a new patient map never reuses a model trained on today's test side.
    index = discover(embedded_dataset)
    fingerprint, cache = dataset_fingerprint(index), tmp_path / "cache"
    [patient] = protocol_views(index, index.declaration.protocol("patient"), fingerprint, cache,
                               DEFAULT_CLEAN_THRESHOLD)
    assert re.fullmatch(r"holdout-[0-9a-f]{10}-m[0-9a-f]{10}", patient.key())
    assert replace(patient, membership="0" * 10).key() != patient.key()
    [official] = protocol_views(index, index.declaration.protocol("official"), fingerprint, cache,
                                DEFAULT_CLEAN_THRESHOLD)
    assert official.key() == "" and official.membership == ""
    cv = discover(write_cv_dataset(tmp_path / "cv"))
    column = protocol_views(cv, cv.declaration.protocol("patient-wise"), dataset_fingerprint(cv), cache,
                            DEFAULT_CLEAN_THRESHOLD)
    assert all(view.membership == "" for view in column)  # the pid column is part of the fingerprint


def test_split_official_with_another_protocol_is_one_line(tmp_path, embedded_dataset, capsys):
    (tmp_path / "s.toml").write_text('entries = ["knn.pixels"]\n')
    assert main(["run", "--suite", str(tmp_path / "s.toml"), "--data", str(embedded_dataset), "--split", "official",
                 "--protocol", "patient", "--out", str(tmp_path / "results"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "brainbench: error: --split official runs the official protocol alone, but --protocol names 'patient'" in err
    assert not (tmp_path / "results").exists()
