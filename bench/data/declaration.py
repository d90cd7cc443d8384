"""A dataset declaration: what a dataset folder holds, written as data instead of code.

A declaration (TOML) names the dataset's label set, how each image gets its label (from its class
folder, or from a metadata table), the split protocols it offers, and published results on it.
brainbench ships declarations in bench/datasets/; a dataset may carry its own as
``brainbench-dataset.toml`` at its root; `--declaration` names either kind.

Which declaration a folder gets (`declaration_for`): an explicit one, else the folder's own file,
else the first shipped declaration whose ``[recognise]`` rule matches the folder, else the shipped
default, brain-tumor-mri (Training/ and Testing/ folders of glioma, meningioma, notumor, pituitary).

Every key and value is checked when the file is read: an unknown key or a wrong type is a
DatasetError naming the file and the value, before anything is decoded or trained.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import string
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from bench.data.labels import LabelSet, fold_spelling
from bench.data.protocols import DERIVED_GROUPS, NO_GROUPS, ProtocolSpec, parse_protocol
from bench.errors import DatasetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DECLARATION_FILE = "brainbench-dataset.toml"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "datasets"
DEFAULT_DECLARATION = "brain-tumor-mri"
TASKS = ("classification", "segmentation")
IMAGE_SOURCES = ("folders", "metadata")
UNMAPPED_CHOICES = ("error", "skip")

TOP_KEYS = {"name", "description", "task", "labels", "images", "recognise", "protocol", "ranking", "published"}
RANKING_KEYS = {"protocols", "why"}
LABEL_KEYS = {"classes", "no_tumor", "aliases", "coarse"}
METADATA_KEYS = {"table", "path_column", "label_column", "group_column", "mask_column", "fold_column"}
FOLDER_KEYS = {"folder_pattern", "label", "skip_folders", "unmapped"}
IMAGE_KEYS = {"from"} | METADATA_KEYS | FOLDER_KEYS
RECOGNISE_KEYS = {"files", "columns", "folders_match", "min_folders"}
PUBLISHED_KEYS = {"source", "method", "protocol", "accuracy", "dice", "note"}
# What a published figure measures: a classifier's accuracy, or a segmenter's mean Dice (percent).
PUBLISHED_METRICS = {"accuracy": "classification", "dice": "segmentation"}
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Published:
    """A result published on this dataset, printed beside ours: a classifier's `accuracy` or a
    segmenter's mean `dice`, in percent (the other is None)."""

    source: str
    method: str
    protocol: str
    accuracy: float | None
    note: str = ""
    dice: float | None = None

    @property
    def task(self) -> str:
        return "segmentation" if self.dice is not None else "classification"


@dataclass(frozen=True)
class Recognise:
    """How a shipped declaration recognises a dataset folder that carries no declaration."""

    files: tuple[str, ...] = ()  # exist at the root
    columns: tuple[str, ...] = ()  # in the header of images.table
    folders_match: bool = False  # every top-level folder matches images.folder_pattern
    min_folders: int = 1  # with folders_match: at least this many folders


@dataclass(frozen=True, kw_only=True)
class Declaration:
    name: str
    description: str
    file: Path | None
    task: str
    labels: LabelSet
    images_from: str  # "folders" | "metadata"
    # images from = "metadata": a CSV table, relative to the dataset root, and its columns.
    table: str | None = None
    path_column: str | None = None
    label_column: str | None = None
    # images from = "folders": how a class folder's name becomes a class.
    folder_pattern: str | None = None
    label_template: str | None = None  # over folder_pattern's named groups; None: the folder name
    skip_folders: tuple[str, ...] = ()
    unmapped: str = "error"
    group_column: str | None = None
    fold_column: str | None = None
    mask_column: str | None = None
    protocols: tuple[ProtocolSpec, ...]
    # [ranking]: the protocols a run applies when neither the suite nor --protocol names any, the
    # first ranking and the others beside it; empty: the first declared protocol that applies.
    ranking: tuple[str, ...] = ()
    ranking_why: str = ""  # why the first of them ranks: the leaderboard's first lines say it
    published: tuple[Published, ...] = ()
    recognise: Recognise | None = None

    @property
    def where(self) -> str:
        """How messages name this declaration: its file, else its name."""
        return str(self.file) if self.file is not None else f"declaration {self.name!r}"

    def protocol(self, name: str) -> ProtocolSpec:
        for spec in self.protocols:
            if spec.name == name:
                return spec
        offered = ", ".join(spec.name for spec in self.protocols)
        raise DatasetError(f"{self.where}: no protocol named {name!r}; {self.name} offers {offered}")

    def default_protocol(self) -> ProtocolSpec:
        return self.protocols[0]

    def key(self) -> str:
        """12 hex digits naming what decides each file's label: the label set and the mapping rules.
        The description, protocols and published results do not change a label."""
        decisive = {
            "labels": self.labels.record(), "aliases": sorted(self.labels.aliases),
            "images_from": self.images_from, "table": self.table, "path_column": self.path_column,
            "label_column": self.label_column, "group_column": self.group_column,
            "fold_column": self.fold_column, "mask_column": self.mask_column,
            "folder_pattern": self.folder_pattern, "label_template": self.label_template,
            "skip_folders": sorted(self.skip_folders), "unmapped": self.unmapped,
        }
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:12]

    def record(self) -> dict:
        """What a run record says about the declaration its data was read with."""
        return {
            "name": self.name, "file": self.file_record(), "task": self.task,
            "key": self.key(), "labels": self.labels.record(), "images_from": self.images_from,
            "protocols": [spec.record() for spec in self.protocols],
            "ranking": list(self.ranking), "ranking_why": self.ranking_why,
            "group_column": self.group_column, "fold_column": self.fold_column, "mask_column": self.mask_column,
        }

    def file_record(self) -> str | None:
        """The file as records name it: a shipped one by its place in the package, so that records
        made on two machines agree; any other by its path."""
        if self.file is None:
            return None
        if self.file.resolve().parent == SHIPPED_DIR:
            return f"bench/datasets/{self.file.name}"
        return str(self.file)

    # --- folder names to classes -------------------------------------------------------------

    def skips_folder(self, folder_name: str) -> bool:
        """Folders the declaration says are not classes (images.skip_folders)."""
        return folder_name in self.skip_folders

    def folder_class(self, folder_name: str) -> str | None:
        """The class a class folder's name means; None when it means none and unmapped = "skip";
        else a DatasetError naming the folder and the classes."""
        label = folder_name
        if self.folder_pattern is not None:
            match = re.fullmatch(self.folder_pattern, folder_name)
            if match is None:
                if self.unmapped == "skip":
                    return None
                raise DatasetError(f"class folder {folder_name!r} does not match images.folder_pattern "
                                   f"{self.folder_pattern!r} of {self.where}")
            if self.label_template is not None:
                groups = {k: v or "" for k, v in match.groupdict().items()}
                label = self.label_template.format(**groups)
        found = self.labels.lookup(label)
        if found is not None:
            return found
        if self.unmapped == "skip":
            return None
        # Raises, naming the label (and, through the caller, the folder) and the classes.
        return self.labels.normalize(label, what="class folder" if label == folder_name else "label")

    # --- recognition ---------------------------------------------------------------------------

    def recognises(self, root: Path) -> bool:
        """Whether `root` looks like this declaration's dataset (never raises: a folder that cannot
        be read is simply not recognised)."""
        rule = self.recognise
        if rule is None:
            return False
        if not all((root / name).is_file() for name in rule.files):
            return False
        if rule.columns and not set(rule.columns) <= set(_header(root / self.table)):
            return False
        if rule.folders_match:
            folders = [name for name in _top_folders(root) if not self.skips_folder(name)]
            if len(folders) < rule.min_folders:
                return False
            return all(re.fullmatch(self.folder_pattern, name) for name in folders)
        return True


def _header(table: Path) -> list[str]:
    try:
        with open(table, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _top_folders(root: Path) -> list[str]:
    """Names of the real folders at the root (links to folders are never followed)."""
    try:
        with os.scandir(root) as entries:
            return [e.name for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
                    and e.name != "__MACOSX"]
    except OSError:
        return []


# --- finding declarations ------------------------------------------------------------------------


def load_declaration(path: Path | str) -> Declaration:
    """A declaration file, every key and value checked."""
    path = Path(path).expanduser()
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such declaration file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a folder, not a declaration file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot be read as a declaration ({error})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DatasetError(f"{path}: not valid TOML: {error}") from None
    return _Parser(path).declaration(data)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Declaration]:
    """The declarations brainbench ships, by name (the file's stem, checked)."""
    found = {}
    for path in sorted(SHIPPED_DIR.glob("*.toml")):
        declaration = load_declaration(path)
        if declaration.name != path.stem:
            raise DatasetError(f"{path}: name {declaration.name!r} must be the file's name {path.stem!r}")
        found[declaration.name] = declaration
    return found


def shipped_names() -> tuple[str, ...]:
    return tuple(_shipped())


def shipped_declaration(name: str) -> Declaration:
    try:
        return _shipped()[name]
    except KeyError:
        raise DatasetError(f"no shipped dataset declaration named {name!r}; shipped: "
                           f"{', '.join(shipped_names())} (or give a path to a .toml file)") from None


def find_declaration(name_or_path: str) -> Declaration:
    """A path to a .toml file, or the name of a shipped declaration."""
    looks_like_path = name_or_path.endswith(".toml") or "/" in name_or_path or os.sep in name_or_path
    if looks_like_path or Path(name_or_path).is_file():
        return load_declaration(Path(name_or_path))
    return shipped_declaration(name_or_path)


def declaration_for(root: Path, override: str | None = None) -> Declaration:
    """The declaration a dataset folder is read with: `override` (a name or path), else the
    folder's own brainbench-dataset.toml, else the first shipped declaration recognising it, else
    the shipped default."""
    if override is not None:
        return find_declaration(override)
    root = Path(root)
    own = root / DECLARATION_FILE
    if own.is_file():
        return load_declaration(own)
    for declaration in _shipped().values():
        if declaration.recognises(root):
            return declaration
    return shipped_declaration(DEFAULT_DECLARATION)


def default_labels() -> LabelSet:
    """The label set of the shipped default declaration (the four Kaggle classes)."""
    return shipped_declaration(DEFAULT_DECLARATION).labels


# --- parsing ---------------------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Parser:
    """Reads one declaration's TOML tables; every message starts with the file's path."""

    def __init__(self, path: Path):
        self.where = str(path)
        self.path = path

    def fail(self, message: str) -> DatasetError:
        return DatasetError(f"{self.where}: {message}")

    def keys(self, table: object, known: set[str], section: str) -> dict:
        if not isinstance(table, dict):
            raise self.fail(f"{section} must be a table, got {_show(table)}")
        unknown = sorted(set(table) - known)
        if unknown:
            place = "at the top level" if section == "the file" else f"in {section}"
            raise self.fail(f"unknown key {unknown[0]!r} {place} (known: {', '.join(sorted(known))})")
        return table

    def string(self, table: dict, key: str, section: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                where = "" if section == "the file" else f"{section} "
                raise self.fail(f"{where}needs {key} = \"...\"")
            return None
        if not isinstance(value, str) or not value.strip():
            place = key if section == "the file" else f"{section} {key}"
            raise self.fail(f"{place} must be a non-empty string, got {_show(value)}")
        return value

    def strings(self, table: dict, key: str, section: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(f"{section} {key} must be a list of non-empty strings, got {_show(value)}")
        return tuple(value)

    def relative_path(self, table: dict, key: str, section: str, *, required: bool = False) -> str | None:
        value = self.string(table, key, section, required=required)
        if value is not None and (PurePosixPath(value).is_absolute() or ".." in PurePosixPath(value).parts):
            raise self.fail(f"{section} {key} must be a path inside the dataset folder, got {value!r}")
        return value

    # --- the sections ----------------------------------------------------------------------------

    def declaration(self, data: dict) -> Declaration:
        self.keys(data, TOP_KEYS, "the file")
        name = self.string(data, "name", "the file", required=True)
        if not NAME_PATTERN.fullmatch(name):
            raise self.fail(f"name must be letters, digits, '.', '_' or '-', got {name!r}")
        task = self.string(data, "task", "the file") or "classification"
        if task not in TASKS:
            raise self.fail(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if "labels" not in data:
            raise self.fail("needs a [labels] table with classes = [...]")
        images = self.images(data.get("images", {"from": "folders"}))
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail(f"description must be a string, got {_show(description)}")
        fields = dict(name=name, description=description, file=self.path,
                      task=task, labels=self.labels(data["labels"]), **images)
        fields["recognise"] = self.recognise(data["recognise"], fields) if "recognise" in data else None
        fields["protocols"] = self.protocols(data.get("protocol"), fields)
        fields["published"] = self.published(data.get("published", []), fields["protocols"])
        if "ranking" in data:
            fields["ranking"], fields["ranking_why"] = self.ranking(data["ranking"], fields["protocols"])
        return Declaration(**fields)

    def ranking(self, table: object, protocols: tuple[ProtocolSpec, ...]) -> tuple[tuple[str, ...], str]:
        table = self.keys(table, RANKING_KEYS, "[ranking]")
        names = self.strings(table, "protocols", "[ranking]")
        declared = [spec.name for spec in protocols]
        if not names:
            raise self.fail("[ranking] protocols must name at least one declared protocol")
        for name in names:
            if name not in declared:
                raise self.fail(f"[ranking] names protocol {name!r}, which is not declared "
                                f"(declared: {', '.join(declared)})")
            if names.count(name) > 1:
                raise self.fail(f"[ranking] names protocol {name!r} twice")
        return names, self.string(table, "why", "[ranking]") or ""

    def labels(self, table: object) -> LabelSet:
        table = self.keys(table, LABEL_KEYS, "[labels]")
        if "classes" not in table:
            raise self.fail("[labels] needs classes = [...]")
        classes = self.strings(table, "classes", "[labels]")
        no_tumor = self.string(table, "no_tumor", "[labels]")
        aliases = self.aliases(table.get("aliases", {}), classes)
        coarse = self.coarse(table.get("coarse", {}), classes)
        try:
            return LabelSet(classes, no_tumor, aliases, coarse)
        except DatasetError as error:
            raise self.fail(f"[labels]: {error}") from None

    def aliases(self, table: object, classes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise self.fail(f"[labels] aliases must be a table of spelling = \"class\", got {_show(table)}")
        meaning = {fold_spelling(c): c for c in classes}
        for spelling, target in table.items():
            if target not in classes:
                raise self.fail(f"[labels] alias {spelling!r} names {target!r}, which is not one of the classes")
            folded = fold_spelling(spelling)
            if not folded:
                raise self.fail(f"[labels] alias {spelling!r} is empty once spaces and separators are removed")
            if meaning.setdefault(folded, target) != target:
                raise self.fail(f"[labels] alias {spelling!r} -> {target!r} is also a spelling of "
                                f"{meaning[folded]!r}")
        return tuple(sorted((fold_spelling(s), t) for s, t in table.items() if fold_spelling(s) != fold_spelling(t)))

    def coarse(self, table: object, classes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        if not isinstance(table, dict):
            raise self.fail(f"[labels] coarse must be a table of coarse class = [its classes], got {_show(table)}")
        pairs: dict[str, str] = {}
        for coarse_class, fine in table.items():
            fine = self.strings(table, coarse_class, "[labels] coarse")
            for name in fine:
                if name not in classes:
                    raise self.fail(f"[labels] coarse {coarse_class} lists {name!r}, which is not one of the classes")
                if pairs.setdefault(name, coarse_class) != coarse_class:
                    raise self.fail(f"[labels] coarse maps {name!r} onto both {pairs[name]!r} and {coarse_class!r}")
        return tuple(pairs.items())

    def images(self, table: object) -> dict:
        table = self.keys(table, IMAGE_KEYS, "[images]")
        source = self.string(table, "from", "[images]", required=True)
        if source not in IMAGE_SOURCES:
            raise self.fail(f"[images] from must be one of {', '.join(IMAGE_SOURCES)}, got {source!r}")
        other = FOLDER_KEYS if source == "metadata" else METADATA_KEYS
        misplaced = sorted(set(table) & other)
        if misplaced:
            raise self.fail(f"[images] {misplaced[0]} does not apply to from = \"{source}\"")
        if source == "metadata":
            return self.metadata_images(table)
        return self.folder_images(table)

    def metadata_images(self, table: dict) -> dict:
        fields = {"images_from": "metadata",
                  "table": self.relative_path(table, "table", "[images]", required=True)}
        for key in ("path_column", "label_column"):
            fields[key] = self.string(table, key, "[images]", required=True)
        for key in ("group_column", "fold_column"):
            fields[key] = self.string(table, key, "[images]")
        fields["mask_column"] = self.string(table, "mask_column", "[images]")
        return fields

    def folder_images(self, table: dict) -> dict:
        pattern = self.string(table, "folder_pattern", "[images]")
        template = self.string(table, "label", "[images]")
        if pattern is not None:
            try:
                groups = set(re.compile(pattern).groupindex)
            except re.error as error:
                raise self.fail(f"[images] folder_pattern {pattern!r} is not a valid regular expression ({error})") \
                    from None
        if template is not None:
            if pattern is None:
                raise self.fail(f"[images] label {template!r} needs a folder_pattern whose named groups it fills")
            self.check_template(template, groups)
        unmapped = self.string(table, "unmapped", "[images]") or "error"
        if unmapped not in UNMAPPED_CHOICES:
            raise self.fail(f"[images] unmapped must be one of {', '.join(UNMAPPED_CHOICES)}, got {unmapped!r}")
        return {"images_from": "folders", "folder_pattern": pattern, "label_template": template,
                "skip_folders": self.strings(table, "skip_folders", "[images]"), "unmapped": unmapped}

    def check_template(self, template: str, groups: set[str]) -> None:
        try:
            fields = [field for _, field, spec, conversion in string.Formatter().parse(template)
                      if field is not None or spec or conversion]
        except ValueError as error:
            raise self.fail(f"[images] label {template!r} is not a valid template ({error})") from None
        for field in fields:
            if field not in groups:
                known = ", ".join(sorted(groups)) or "none"
                raise self.fail(f"[images] label {template!r} uses {{{field}}}, which is not a named group of "
                                f"folder_pattern (its groups: {known})")

    def recognise(self, table: object, fields: dict) -> Recognise:
        table = self.keys(table, RECOGNISE_KEYS, "[recognise]")
        files = self.strings(table, "files", "[recognise]")
        for name in files:
            self.relative_path({"files": name}, "files", "[recognise]")
        columns = self.strings(table, "columns", "[recognise]")
        if columns and fields["images_from"] != "metadata":
            raise self.fail("[recognise] columns needs images from = \"metadata\" (the columns of its table)")
        folders_match = table.get("folders_match", False)
        if not isinstance(folders_match, bool):
            raise self.fail(f"[recognise] folders_match must be true or false, got {_show(folders_match)}")
        if folders_match and fields.get("folder_pattern") is None:
            raise self.fail("[recognise] folders_match needs [images] folder_pattern")
        min_folders = table.get("min_folders", 1)
        if isinstance(min_folders, bool) or not isinstance(min_folders, int) or min_folders < 1:
            raise self.fail(f"[recognise] min_folders must be an integer of 1 or more, got {_show(min_folders)}")
        if "min_folders" in table and not folders_match:
            raise self.fail("[recognise] min_folders applies only with folders_match = true")
        if not (files or columns or folders_match):
            raise self.fail("[recognise] recognises nothing: give files, columns or folders_match")
        return Recognise(files, columns, folders_match, min_folders)

    def protocols(self, tables: object, fields: dict) -> tuple[ProtocolSpec, ...]:
        if tables is None:
            raise self.fail("declares no split protocol: add a [[protocol]] table (the first is the default)")
        if not isinstance(tables, list) or not tables:
            raise self.fail(f"protocol must be an array of tables ([[protocol]]), got {_show(tables)}")
        specs: list[ProtocolSpec] = []
        for number, table in enumerate(tables, start=1):
            where = f"{self.where}: [[protocol]] #{number}"
            spec = parse_protocol(table, where)
            self.check_protocol(spec, where, fields)
            if any(spec.name == earlier.name for earlier in specs):
                raise DatasetError(f"{where}: a protocol named {spec.name!r} is declared twice")
            specs.append(spec)
        return tuple(specs)

    @staticmethod
    def check_protocol(spec: ProtocolSpec, where: str, fields: dict) -> None:
        """A protocol can only use what discovery gives each sample: the declared fold and group columns."""
        if spec.kind == "official" and fields["images_from"] == "metadata":
            raise DatasetError(f"{where}: {spec.name!r} is an official protocol, but images from a metadata "
                               "table have no Training/ and Testing/ folders")
        if spec.fold_column is not None and spec.fold_column != fields.get("fold_column"):
            raise DatasetError(f"{where}: {spec.name!r} reads folds from column {spec.fold_column!r}, but "
                               f"[images] fold_column is {fields.get('fold_column')!r}")
        if spec.groups not in (None, NO_GROUPS, *DERIVED_GROUPS) and spec.groups != fields.get("group_column"):
            raise DatasetError(f"{where}: {spec.name!r} keeps groups of column {spec.groups!r} whole, but "
                               f"[images] group_column is {fields.get('group_column')!r} (or use \"none\" or "
                               f"\"duplicates\")")

    def published(self, tables: object, protocols: tuple[ProtocolSpec, ...]) -> tuple[Published, ...]:
        if not isinstance(tables, list):
            raise self.fail(f"published must be an array of tables ([[published]]), got {_show(tables)}")
        names = [spec.name for spec in protocols]
        results = []
        for number, table in enumerate(tables, start=1):
            section = f"[[published]] #{number}"
            table = self.keys(table, PUBLISHED_KEYS, section)
            protocol = self.string(table, "protocol", section, required=True)
            if protocol not in names:
                raise self.fail(f"{section} names protocol {protocol!r}, which is not declared "
                                f"(declared: {', '.join(names)})")
            given = [metric for metric in PUBLISHED_METRICS if metric in table]
            if len(given) != 1:
                raise self.fail(f"{section} needs exactly one of accuracy (a classifier's) or dice (a segmenter's), "
                                f"got {', '.join(given) or 'neither'}")
            value = table[given[0]]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
                raise self.fail(f"{section} {given[0]} must be a percentage from 0 to 100, got {_show(value)}")
            note = table.get("note", "")
            if not isinstance(note, str):
                raise self.fail(f"{section} note must be a string, got {_show(note)}")
            results.append(Published(self.string(table, "source", section, required=True),
                                     self.string(table, "method", section, required=True), protocol,
                                     float(value) if given[0] == "accuracy" else None, note,
                                     float(value) if given[0] == "dice" else None))
        return tuple(results)
