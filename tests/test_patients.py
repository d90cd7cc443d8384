"""brainbench patients: images are matched to the reference slices of known patients, whatever was
done to them (resized, mirrored, re-encoded, contrast-changed); the rest are grouped."""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from bench.commands import patients as command
from bench.data.discover import discover
from bench.errors import DatasetError, OptionError
from bench.patients import analyse_patients, read_reference, shipped_patients
from bench.patients.groups import group_unmatched
from bench.patients.recover import similarity_gap
from bench.patients.shipped import read_patient_map

SIDE = 96
SHARED_KAGGLE = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "brain-tumor-mri"

# Reference slices: index -> (pid, pid family, class). Patient MR1B is a repeat scan of MR1's person.
SLICES = {1: ("MR1", "MR1", "glioma"), 2: ("MR1", "MR1", "glioma"), 3: ("MR1", "MR1", "glioma"),
          4: ("MR1B", "MR1", "glioma"), 5: ("MR1B", "MR1", "glioma"), 6: ("200", "200", "meningioma"),
          7: ("200", "200", "meningioma"), 8: ("300", "300", "pituitary"), 9: ("300", "300", "pituitary"),
          10: ("400", "400", "pituitary")}


def _texture(rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [-1, 1]: survives resizing and JPEG, differs from any other draw."""
    field = ndimage.gaussian_filter(rng.standard_normal((SIDE, SIDE)), 4)
    return field / np.abs(field).max()


def _picture(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(128 + 90 * values, 0, 255).astype(np.uint8))


def _slices(seed: int = 0) -> dict[int, Image.Image]:
    """Slices of one patient share a base texture (neighbours), each with its own detail."""
    rng = np.random.default_rng(seed)
    bases = {pid: _texture(rng) for pid in sorted({pid for pid, _, _ in SLICES.values()})}
    return {i: _picture(0.6 * bases[pid] + 0.4 * _texture(rng)) for i, (pid, _, _) in SLICES.items()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset in the Kaggle layout, figshare-like reference with metadata.csv)."""
    root = tmp_path_factory.mktemp("patients")
    reference, data = root / "reference", root / "data"
    slices = _slices()
    rows = []
    for i, (pid, family, name) in SLICES.items():
        (reference / "images" / name).mkdir(parents=True, exist_ok=True)
        (reference / "masks").mkdir(exist_ok=True)
        slices[i].save(reference / "images" / name / f"{i}.png")
        Image.new("1", (SIDE, SIDE)).save(reference / "masks" / f"{i}.png")
        rows.append([i, f"images/{name}/{i}.png", f"masks/{i}.png", name, pid, family, 1])
    with open(reference / "metadata.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["figshare_index", "image", "mask", "class", "pid", "pid_family",
                                       "cheng_fold"], *rows])

    rng = np.random.default_rng(1)
    unrelated = {name: _picture(_texture(rng)) for name in ("u1", "u2", "u3")}
    contrast = Image.fromarray((np.asarray(slices[8], np.float64) * 0.6 + 50).astype(np.uint8))
    brighter = Image.fromarray(np.clip(np.asarray(unrelated["u1"], np.int16) + 12, 0, 255).astype(np.uint8))
    files = {
        "Training/glioma/resized.png": slices[1].resize((72, 72), Image.BILINEAR),
        "Training/meningioma/jpeg.jpg": slices[6],
        "Training/pituitary/contrast.png": contrast,
        "Training/pituitary/mislabelled.bmp": slices[7],  # a meningioma slice filed as pituitary
        "Training/notumor/u1.png": unrelated["u1"],
        "Training/notumor/u2.png": unrelated["u2"],
        "Testing/glioma/vflip.png": slices[2].transpose(Image.FLIP_TOP_BOTTOM),
        "Testing/glioma/hflip.png": slices[4].transpose(Image.FLIP_LEFT_RIGHT),
        "Testing/glioma/same_slice.jpg": slices[1],
        "Testing/meningioma/u3.png": unrelated["u3"],
        "Testing/pituitary/resized9.png": slices[9].resize((120, 120), Image.BICUBIC),
        "Testing/notumor/u1b.jpg": brighter,  # a near-copy of a training image, without a patient
    }
    for rel, picture in files.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        picture.save(data / rel, quality=90) if rel.endswith(".jpg") else picture.save(data / rel)
    shutil.copyfile(reference / "images" / "glioma" / "3.png", data / "Training" / "glioma" / "exact.png")
    return data, reference


def _run(data: Path, reference: Path, out: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["patients", "--data", str(data), "--reference", str(reference), "--out", str(out),
                              *extra])
    return args.run(args)


@pytest.fixture(scope="module")
def written(folders, tmp_path_factory) -> tuple[Path, dict[str, dict], Path]:
    """The command's output folder, patients.csv by file name, and the cache folder (first run:
    nothing cached; a module-wide cache, as the per-test one changes between tests)."""
    out, cache = tmp_path_factory.mktemp("out") / "patients", tmp_path_factory.mktemp("cache")
    assert _run(*folders, out, "--cache", str(cache)) == 0
    rows = {Path(r["file"]).name: r for r in csv.DictReader(open(out / "patients.csv"))}
    return out, rows, cache


def test_every_copy_finds_its_slice_and_patient(written):
    _, rows, _ = written
    expected = {  # file: (reference index, pid, pid family, kind, orientation)
        "resized.png": ("1", "MR1", "MR1", "near", "identity"),
        "exact.png": ("3", "MR1", "MR1", "exact", "identity"),
        "jpeg.jpg": ("6", "200", "200", "near", "identity"),
        "contrast.png": ("8", "300", "300", "near", "identity"),
        "mislabelled.bmp": ("7", "200", "200", "identical-pixels", "identity"),
        "vflip.png": ("2", "MR1", "MR1", "flipped", "v-flip"),
        "hflip.png": ("4", "MR1B", "MR1", "flipped", "h-flip"),
        "same_slice.jpg": ("1", "MR1", "MR1", "near", "identity"),
        "resized9.png": ("9", "300", "300", "near", "identity"),
    }
    for name, (index, pid, family, kind, orientation) in expected.items():
        row = rows[name]
        assert (row["reference_index"], row["pid"], row["pid_family"], row["kind"], row["orientation"]) == \
            (index, pid, family, kind, orientation), row
        assert row["group"] == f"patient:{family}"
        assert float(row["similarity"]) > 0.98


def test_unrelated_images_get_no_patient_and_near_copies_share_a_group(written):
    _, rows, _ = written
    for name in ("u1.png", "u2.png", "u3.png", "u1b.jpg"):
        assert rows[name]["kind"] == "none" and rows[name]["pid"] == "" and rows[name]["reference_index"] == ""
        assert float(rows[name]["similarity"]) < 0.9
    assert rows["u1.png"]["group"] == rows["u1b.jpg"]["group"] == "dup:1"  # the largest group
    assert len({rows[n]["group"] for n in ("u1.png", "u2.png", "u3.png")}) == 3


def test_report_counts_test_patients_disagreements_and_thresholds(written):
    out, _, _ = written
    report = (out / "report.md").read_text()
    assert "**9 of 13 images (69.2 %) are a reference slice" in report
    # vflip, hflip, same_slice and resized9 have a patient; hflip's pid (MR1B) is in Training
    # only by family; same_slice is the very slice of a training image.
    assert "**3 of 6 official test images share a patient (pid) with the training split (4 by pid family); " \
           "the very slice of a training image: 1 of them" in report
    assert "5 of 6 test images share a group with a training image (the others: meningioma 1)" in report
    assert "## Label disagreements (1)" in report
    listed = [line for line in report.splitlines() if "mislabelled.bmp" in line]
    assert len(listed) == 1 and "| pituitary " in listed[0] and "| meningioma " in listed[0]
    assert "**Threshold 0.90**: the largest group never more than doubled" in report
    for name in ("similarity_histogram.png", "patients.csv", "patient-map.csv"):
        assert (out / name).stat().st_size > 0, name


def test_threshold_is_the_middle_of_the_widest_gap():
    gap = similarity_gap(np.array([0.1, 0.5, 0.91, 0.93, 0.995, 0.999, 1.0]))
    assert (gap.low, gap.high, gap.n_below, gap.n_above) == (0.93, 0.995, 4, 3)
    assert gap.threshold == pytest.approx(0.9625)
    # Nothing between the floor and the matches: the gap starts at the floor.
    assert similarity_gap(np.array([0.2, 0.4, 0.998])).low == 0.9


def _chained_groups(per_group: int = 3, n_groups: int = 3) -> tuple[np.ndarray, list[str]]:
    """Pictures whose correlations are set exactly: 0.995 within a group, 0.955 across groups
    (orthonormal zero-mean patterns: common part, one per group, one per picture)."""
    rng = np.random.default_rng(0)
    n = n_groups * per_group
    patterns = rng.standard_normal((32 * 32, 1 + n_groups + n))
    basis, _ = np.linalg.qr(patterns - patterns.mean(axis=0))
    pictures = []
    for k in range(n):
        v = np.sqrt(0.955) * basis[:, 0] + np.sqrt(0.04) * basis[:, 1 + k // per_group] \
            + np.sqrt(0.005) * basis[:, 1 + n_groups + k]
        small = np.clip(np.round(128 + 1000 * v), 0, 255).reshape(32, 32)
        pictures.append(np.kron(small, np.ones((2, 2))).astype(np.uint8))  # pools back to `small` exactly
    return np.stack(pictures), [f"sha{k}" for k in range(n)]


def test_grouping_stops_before_groups_of_different_people_merge():
    pixels, sha = _chained_groups()
    grouping = group_unmatched(pixels, sha, ["notumor"] * len(pixels), largest_patient=4)
    largest = {step.threshold: step.largest for step in grouping.sweep}
    assert largest[0.96] == 3 and largest[0.95] == 9
    assert grouping.threshold == 0.96 and "at 0.95 the largest group grew from 3 to 9" in grouping.reason
    assert sorted(np.bincount(grouping.group)[1:]) == [3, 3, 3]
    # A group no larger than a real patient is not a collapse, however fast it grew.
    assert group_unmatched(pixels, sha, ["notumor"] * len(pixels), largest_patient=20).threshold == 0.90


def test_second_run_reads_the_cache(folders, written):
    data, reference = folders
    cache = written[2]
    stored = list(cache.glob("patients-*.json"))
    assert len(stored) == 1
    for pictures in cache.glob("audit-pictures-*.npz"):
        pictures.unlink()  # a cached run must not need them
    analysis = analyse_patients(discover(data), read_reference(reference), cache)
    assert analysis.from_cache and sum(r.matched for r in analysis.rows) == 9
    assert not list(cache.glob("audit-pictures-*.npz"))


def test_the_patient_map_gives_the_same_patients_by_content(folders, written, tmp_path):
    data, _ = folders
    out, rows, _ = written
    moved = tmp_path / "copy"
    shutil.copytree(data, moved)  # another place, same bytes
    found = shipped_patients(discover(moved), out / "patient-map.csv")
    expected = {r["file"]: (r["pid"], r["pid_family"]) for r in rows.values() if r["kind"] != "none"}
    assert found == expected and len(found) == 9


def test_the_shipped_kaggle_map_is_package_data():
    patients = read_patient_map()
    assert len(patients) > 4000 and all(len(key) == 16 for key in patients)
    if not SHARED_KAGGLE.is_dir():
        pytest.skip(f"Kaggle dataset not found at {SHARED_KAGGLE}")
    glioma = SHARED_KAGGLE / "Testing" / "glioma"
    index = discover(SHARED_KAGGLE)
    subset = type(index)(index.root, index.layout, (), tuple(s for s in index.test if s.path.parent == glioma),
                         index.labels, index.declaration)
    assert len(shipped_patients(subset)) == len(subset.samples) == 300  # every Kaggle glioma is a figshare slice


def test_a_reference_that_is_missing_or_has_no_patient_ids_is_one_line(folders, tmp_path):
    data, _ = folders
    for bad, words in ((tmp_path / "missing", "does not exist"), (data, "has no patient ids")):
        with pytest.raises(DatasetError) as error:
            _run(data, bad, tmp_path / "out")
        message = str(error.value)
        assert words in message and str(bad.resolve()) in message and "\n" not in message
    with pytest.raises(OptionError, match="--threshold 1.5"):
        _run(data, data, tmp_path / "out", "--threshold", "1.5")


def test_the_patient_protocol_keeps_every_patient_and_duplicate_group_on_one_side(tmp_path):
    # The embedded mini dataset is a subset of the Kaggle set: the shipped map knows its tumour images.
    from bench.data.discover import discover as discover_dataset
    from bench.data.fingerprint import dataset_fingerprint
    from bench.paths import EMBEDDED_DATASET
    from bench.runner.protocol_views import protocol_views

    index = discover_dataset(EMBEDDED_DATASET)
    (view,) = protocol_views(index, index.declaration.protocol("patient"), dataset_fingerprint(index), tmp_path, 0.99)
    group = [view.groups[s.rel] for s in index.samples]
    assert sum(g.startswith("patient:") for g in group) > 100  # recovered patients, not only duplicates
    train, test = {group[p] for p in view.fold.train}, {group[p] for p in view.fold.test}
    assert not train & test and len(view.fold.test) > 0.15 * len(index.samples)
    for label in range(len(index.labels)):
        assert sum(index.samples[p].label == label for p in view.fold.test) >= 0.15 * len(view.fold.test)
