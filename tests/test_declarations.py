"""Dataset declarations: parsing (every bad key and value named), label rules, metadata tables,
recognition, and the shipped declarations on the real datasets when they are beside the checkout."""

import csv
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from declaration_text import metadata_declaration
from PIL import Image

from bench.data.declaration import (
    DECLARATION_FILE,
    declaration_for,
    default_labels,
    find_declaration,
    load_declaration,
    shipped_declaration,
)
from bench.data.discover import discover
from bench.errors import DatasetError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

FOLDERS = '''
name = "tiny"
description = "two classes"
[labels]
classes = ["Foo", "normal"]
no_tumor = "normal"
aliases = { _NORMAL = "normal" }
[images]
from = "folders"
folder_pattern = '^(?P<type>.+?) (?P<sequence>T1C\\+|T1|T2)$'
label = "{type}"
[[protocol]]
name = "holdout"
kind = "holdout"
'''

METADATA = metadata_declaration("table", ["glioma", "meningioma"])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def png(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


def metadata_dataset(root: Path, rows: list[dict] | None = None, header: list[str] | None = None) -> Path:
    """images/<i>.png, masks/<i>.png and metadata.csv: two patients per class, two slices each."""
    if rows is None:
        rows = []
        for i in range(8):
            png(root / "images" / f"{i}.png", i)
            png(root / "masks" / f"{i}.png", 255)
            rows.append({"image": f"images/{i}.png", "mask": f"masks/{i}.png", "class": ("glioma", "meningioma")[i % 2],
                         "pid": f"P{i // 2}", "fold": str(1 + i // 4)})
    header = header or ["image", "mask", "class", "pid", "fold"]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return root


# --- the file's keys and types ---------------------------------------------------------------------


@pytest.mark.parametrize("old, new, named", [
    ('name = "tiny"', 'name = "tiny"\ncolour = "red"', "colour"),
    ('no_tumor = "normal"', 'no_tumor = "normal"\nclasses_extra = 1', "classes_extra"),
    ('label = "{type}"', 'label = "{type}"\nsplit_column = "x"', "split_column"),
    ('kind = "holdout"', 'kind = "holdout"\nfraction = 0.3', "fraction"),
])
def test_an_unknown_key_anywhere_is_named_with_the_file(tmp_path, old, new, named):
    path = write(tmp_path / "d.toml", FOLDERS.replace(old, new))
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))}.*unknown key '{named}'"):
        load_declaration(path)


@pytest.mark.parametrize("text, value", [
    (FOLDERS.replace('classes = ["Foo", "normal"]', 'classes = "Foo"'), "'Foo'"),
    (FOLDERS.replace('classes = ["Foo", "normal"]', 'classes = ["Foo", 2]'), r"\['Foo', 2\]"),
    (METADATA.replace('fold_column = "fold"\nmask', 'fold_column = 3\nmask'), "3"),
    (FOLDERS.replace('from = "folders"', 'from = "csv"'), "'csv'"),
    (FOLDERS.replace('name = "tiny"', 'name = "tiny data"'), "'tiny data'"),
])
def test_a_wrong_type_or_value_is_named_with_the_file(tmp_path, text, value):
    path = write(tmp_path / "d.toml", text)
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))}.*got {value}$"):
        load_declaration(path)


def test_keys_of_the_other_image_source_are_refused(tmp_path):
    path = write(tmp_path / "d.toml", FOLDERS.replace('label = "{type}"', 'label = "{type}"\ntable = "m.csv"'))
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))}.*table does not apply to from = \"folders\""):
        load_declaration(path)


def test_a_label_template_naming_no_group_of_the_pattern_is_refused(tmp_path):
    path = write(tmp_path / "d.toml", FOLDERS.replace('label = "{type}"', 'label = "{kind}"'))
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))}.*uses {{kind}}.*groups: sequence, type"):
        load_declaration(path)


def test_published_results_must_name_a_declared_protocol(tmp_path):
    text = FOLDERS + '[[published]]\nsource = "X 2020"\nmethod = "CNN"\nprotocol = "kfold"\naccuracy = 90.5\n'
    path = write(tmp_path / "d.toml", text)
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))}.*protocol 'kfold', which is not declared \(declared: holdout\)"):
        load_declaration(path)
    fixed = load_declaration(write(tmp_path / "ok.toml", text.replace('"kfold"', '"holdout"')))
    assert fixed.published[0].accuracy == 90.5 and fixed.published[0].note == ""


@pytest.mark.parametrize("ranking, message", [
    ('protocols = ["kfold"]', "[ranking] names protocol 'kfold', which is not declared (declared: holdout)"),
    ('protocols = ["holdout", "holdout"]', "[ranking] names protocol 'holdout' twice"),
    ('protocols = []', "[ranking] protocols must name at least one declared protocol"),
    ('protocols = ["holdout"]\nby = "x"', "unknown key 'by'"),
])
def test_a_ranking_must_name_declared_protocols_once(tmp_path, ranking, message):
    path = write(tmp_path / "d.toml", FOLDERS + f"[ranking]\n{ranking}\n")
    with pytest.raises(DatasetError, match=re.escape(str(path))) as raised:
        load_declaration(path)
    assert message in str(raised.value)


def test_the_kaggle_declaration_ranks_by_the_patient_split_with_the_official_beside_it():
    kaggle = shipped_declaration("brain-tumor-mri")
    assert kaggle.ranking == ("patient", "official") and "shares patients" in kaggle.ranking_why
    assert kaggle.protocol("patient").min_test_share == 0.15


def test_a_protocol_can_only_read_the_declared_fold_column(tmp_path):
    path = write(tmp_path / "d.toml", METADATA.replace('fold_column = "fold"\n\n', 'fold_column = "other"\n\n')
                 .replace('kind = "kfold"\nfold_column = "fold"', 'kind = "kfold"\nfold_column = "other"'))
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))}: \[\[protocol\]\] #1.*'other'.*fold_column is 'fold'"):
        load_declaration(path)


def test_protocol_lookup_names_the_offered_protocols():
    figshare = shipped_declaration("figshare-cheng")
    assert figshare.default_protocol().name == "patient-wise"
    assert figshare.protocol("record-wise").groups == "none"
    with pytest.raises(DatasetError, match="no protocol named 'leaky'.*patient-wise, record-wise, patient-wise-drawn"):
        figshare.protocol("leaky")


def test_the_key_follows_the_label_rule_not_the_description(tmp_path):
    base = load_declaration(write(tmp_path / "a.toml", FOLDERS))
    described = load_declaration(write(tmp_path / "b.toml", FOLDERS.replace('"two classes"', '"other words"')))
    relabelled = load_declaration(write(tmp_path / "c.toml", FOLDERS.replace('label = "{type}"',
                                                                             'label = "{type} {sequence}"')))
    assert base.key() == described.key() != relabelled.key()
    assert len(base.key()) == 12 and base.record()["labels"]["names"] == ["Foo", "normal"]
    assert base.record()["file"] == str(tmp_path / "a.toml")
    assert shipped_declaration("figshare-cheng").record()["file"] == "bench/datasets/figshare-cheng.toml"


def test_unknown_shipped_names_list_the_shipped_declarations():
    with pytest.raises(DatasetError, match="no shipped dataset declaration named 'kaggle'.*brain-tumor-mri"):
        find_declaration("kaggle")
    assert default_labels().names == ("glioma", "meningioma", "notumor", "pituitary")
    assert default_labels().normalize("Pituitary_Tumor") == "pituitary"


# --- class folders -----------------------------------------------------------------------------------


def test_a_44c_like_tree_maps_several_folders_onto_one_class(make_dataset):
    root = make_dataset({"Foo T1": 2, "Foo T2": 3, "_NORMAL T1": 2, "Foo T1C+": 1})
    write(root / DECLARATION_FILE, FOLDERS)
    index = discover(root)
    assert index.declaration.name == "tiny" and index.layout == "flat"
    assert Counter(index.labels.names[s.label] for s in index.train) == {"Foo": 6, "normal": 2}
    assert index.test == () and not index.has_official_split
    assert index.non_image_files == ()  # its own brainbench-dataset.toml is no stray file


def test_a_folder_the_label_rule_does_not_cover_is_named(make_dataset):
    root = make_dataset({"Foo T1": 2, "_NORMAL T1": 2, "Bar T2": 2})
    write(root / DECLARATION_FILE, FOLDERS)
    with pytest.raises(DatasetError, match=r"Bar T2: unknown label 'Bar': expected one of Foo, normal"):
        discover(root)


def test_a_folder_outside_the_pattern_is_named(make_dataset):
    root = make_dataset({"Foo T1": 2, "_NORMAL T1": 2, "README files": 1})
    write(root / DECLARATION_FILE, FOLDERS)
    with pytest.raises(DatasetError, match=r"README files: class folder 'README files' does not match"):
        discover(root)


def test_unmapped_skip_leaves_the_folder_out_with_a_warning(make_dataset, caplog):
    root = make_dataset({"Foo T1": 2, "_NORMAL T1": 2, "Bar T2": 2, "README files": 1})
    write(root / DECLARATION_FILE, FOLDERS.replace('label = "{type}"', 'label = "{type}"\nunmapped = "skip"'))
    index = discover(root)
    assert len(index.train) == 4
    assert sorted(e["path"] for e in index.skipped_entries) == ["Bar T2", "README files"]
    assert "Bar T2" in caplog.text


def test_skip_folders_are_not_classes(make_dataset):
    root = make_dataset({"Foo T1": 2, "_NORMAL T1": 2, "README files": 1})
    write(root / DECLARATION_FILE, FOLDERS.replace('label = "{type}"', 'label = "{type}"\nskip_folders = ["README files"]'))
    index = discover(root)
    assert len(index.train) == 4 and index.skipped_entries == ()
    assert not any(s.rel.startswith("README") for s in index.train)


def test_a_44c_like_tree_is_recognised_as_the_shipped_44c_declaration(make_dataset):
    types = shipped_declaration("brain-tumor-44c").labels.names[:-1]
    folders = {f"{t} {seq}": 1 for t in types for seq in ("T1", "T2")} | {"_NORMAL T1": 1, "_NORMAL T2": 1}
    root = make_dataset(folders)
    index = discover(root)
    assert index.declaration.name == "brain-tumor-44c" and len(index.train) == 30
    assert len({s.label for s in index.train}) == 15
    by_sequence = discover(root, "brain-tumor-44c-44classes")
    assert len({s.label for s in by_sequence.train}) == 30


def test_too_few_pattern_folders_are_not_recognised_as_44c(make_dataset):
    root = make_dataset({f"Astrocitoma T{n}": 1 for n in (1, 2)} | {"_NORMAL T1": 1})
    assert declaration_for(root).name == "brain-tumor-mri"


# --- metadata tables ---------------------------------------------------------------------------------


def test_a_metadata_table_gives_groups_folds_and_masks(tmp_path):
    root = metadata_dataset(tmp_path / "data")
    write(root / DECLARATION_FILE, METADATA)
    index = discover(root)
    assert index.layout == "metadata" and len(index.train) == 8 and index.test == ()
    assert [s.group for s in index.train[:3]] == ["P0", "P0", "P1"]
    assert Counter(s.fold for s in index.train) == {1: 4, 2: 4}
    assert all(s.mask is not None and s.mask.is_file() for s in index.train)
    assert index.record()["n_groups"] == 4


@pytest.mark.parametrize("column, value, message", [
    ("fold", "", r"row 3: image 'images/1.png' has no fold: column 'fold' is empty"),
    ("fold", "two", r"row 3: fold 'two' in column 'fold' is not an integer"),
    ("pid", " ", r"row 3: image 'images/1.png' has no group"),
    ("class", "astrocytoma", r"row 3: unknown class 'astrocytoma'"),
    ("image", "images/missing.png", r"row 3: image 'images/missing.png' is missing"),
    ("image", "../outside.png", r"row 3: image '../outside.png' is outside the dataset folder"),
    ("image", "images", r"row 3: image 'images' is not a regular file \(a folder\)"),
    ("image", "images/0.png", r"row 3: image 'images/0.png' is the same file as 'images/0.png' of row 2"),
])
def test_each_bad_metadata_value_names_the_table_the_row_and_the_value(tmp_path, column, value, message):
    root = metadata_dataset(tmp_path / "data")
    write(root / DECLARATION_FILE, METADATA)
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[1][column] = value
    metadata_dataset(root, rows)
    with pytest.raises(DatasetError, match=rf"{re.escape(str(root / 'metadata.csv'))} {message}"):
        discover(root)


def test_a_missing_mask_is_named_with_its_image(tmp_path):
    root = metadata_dataset(tmp_path / "data")
    write(root / DECLARATION_FILE, METADATA)
    (root / "masks" / "5.png").unlink()
    with pytest.raises(DatasetError, match=r"metadata.csv row 7: mask file 'masks/5.png' for image 'images/5.png' "
                                           r"is missing"):
        discover(root)


def test_a_declared_column_missing_from_the_header_is_named(tmp_path):
    root = metadata_dataset(tmp_path / "data")
    write(root / DECLARATION_FILE, METADATA)
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    metadata_dataset(root, rows, header=["image", "mask", "class", "fold"])
    with pytest.raises(DatasetError, match=r"metadata.csv: column 'pid' \(images.group_column of .*\) is not in the "
                                           r"header \(columns: image, mask, class, fold\)"):
        discover(root)


def test_a_missing_table_is_named(tmp_path):
    root = tmp_path / "data"
    write(root / DECLARATION_FILE, METADATA)
    with pytest.raises(DatasetError, match=rf"{re.escape(str(root / 'metadata.csv'))}: the metadata table .* is missing"):
        discover(root)


# --- which declaration a folder gets -------------------------------------------------------------


def test_a_table_with_the_recognised_columns_is_read_as_figshare(tmp_path):
    root = metadata_dataset(tmp_path / "data", header=["image", "mask", "class", "pid", "fold"])
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["pid_family"], row["cheng_fold"] = row["pid"], row["fold"]
    metadata_dataset(root, rows, header=["image", "mask", "class", "pid", "pid_family", "cheng_fold"])
    index = discover(root)
    assert index.declaration.name == "figshare-cheng"
    assert index.labels.names == ("glioma", "meningioma", "pituitary") and index.empty_classes == ("pituitary",)
    assert {s.fold for s in index.train} == {1, 2}


def test_the_folders_own_declaration_is_used_and_an_override_wins(tmp_path, kaggle_dataset):
    write(kaggle_dataset / DECLARATION_FILE, FOLDERS)
    assert declaration_for(kaggle_dataset).name == "tiny"
    assert declaration_for(kaggle_dataset, "brain-tumor-mri").name == "brain-tumor-mri"
    other = write(tmp_path / "elsewhere.toml", FOLDERS.replace('name = "tiny"', 'name = "elsewhere"'))
    assert declaration_for(kaggle_dataset, str(other)).name == "elsewhere"
    assert discover(kaggle_dataset, "brain-tumor-mri").layout == "kaggle"


def test_a_folder_without_declaration_or_recognised_shape_gets_the_default(kaggle_dataset):
    index = discover(kaggle_dataset)
    assert index.declaration.name == "brain-tumor-mri" and index.labels == default_labels()


# --- the real datasets, when they are beside the checkout -----------------------------------------


def shared(name: str) -> Path:
    if not (SHARED / name).is_dir():
        pytest.skip(f"{SHARED / name} is not here")
    return SHARED / name


def test_real_figshare_cheng():
    index = discover(shared("figshare-cheng"))
    assert index.declaration.name == "figshare-cheng" and len(index.samples) == 3064
    assert Counter(index.labels.names[s.label] for s in index.samples) == {"glioma": 1426, "meningioma": 708,
                                                                          "pituitary": 930}
    assert len({s.group for s in index.samples}) == 233  # patient ids: Cheng's folds keep each one whole
    assert Counter(s.fold for s in index.samples) == {1: 570, 2: 655, 3: 562, 4: 613, 5: 664}
    assert all(s.mask is not None for s in index.samples)


def test_real_brain_tumor_44c():
    index = discover(shared("brain-tumor-44c"))
    assert index.declaration.name == "brain-tumor-44c" and len(index.samples) == 4478
    assert len({s.label for s in index.samples}) == 15 and index.skipped_entries == ()
    assert len({s.label for s in discover(index.root, "brain-tumor-44c-44classes").samples}) == 44


def test_real_brain_tumor_mri():
    index = discover(shared("brain-tumor-mri"))
    assert index.declaration.name == "brain-tumor-mri" and index.layout == "kaggle"
    assert (len(index.train), len(index.test)) == (5708, 1311)
