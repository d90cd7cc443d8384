"""Suites are data: TOML files parsed once into typed dataclasses. Unknown keys are errors.

    description = "three small CNNs at 64 px for a 2-core CPU"
    entries = ["cnn1.scratch", "resnet18.*"]     # names or shell patterns
    measure = ["metrics", "efficiency"]           # what is measured

    [recipe]                                      # overrides for every entry
    input_size = 64

    [entry."resnet18.scratch"]                    # overrides for one entry, after [recipe]
    epochs = 4

    [[setting]]                                   # optional: run every entry once per setting,
    name = "lr=1e-2"                              # a training study; the leaderboard shows the
    lr = 1e-2                                     # setting's name as its "setting" column

    seeds = [0, 1, 2]                             # optional: train every row once per seed; the
                                                  # leaderboard adds mean and std across seeds

    protocols = ["patient-wise", "record-wise"]   # optional: split protocols the dataset declares (or
                                                  # official / holdout), each run in turn; the first
                                                  # ranks. Default: the dataset's [ranking] protocols.

    task = "segmentation"                         # optional: "classification" (default) or
                                                  # "segmentation"; every entry must be of that task,
                                                  # and patterns match only entries of it
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import zoo
from bench.deploy.modes import MODE_GROUPS
from bench.errors import BrainbenchError
from bench.imported import imported_entry, is_imported, load_spec
from bench.paths import shipped_suites_dir
from zoo.entry import TASKS
from zoo.recipe import Recipe, RecipeError, recipe_overrides

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MEASUREMENTS = ("metrics", "efficiency")
TOP_LEVEL_KEYS = {"description", "entries", "measure", "modes", "recipe", "entry", "setting", "imported",
                  "seeds", "protocols", "task"}
SETTING_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")  # it becomes part of file names

log = logging.getLogger("brainbench")


class SuiteError(BrainbenchError):
    pass


@dataclass(frozen=True)
class Setting:
    """One setting of a training study: a name and the recipe fields it changes."""

    name: str
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteRun:
    """One row of a suite: an entry, optionally under a study setting."""

    entry: zoo.ZooEntry
    recipe: Recipe
    setting: str = ""
    seed: int | None = None  # set when the suite repeats every row over several seeds
    protocol: str = ""  # set for a protocol other than the dataset's official split
    fold: int | None = None  # set for a fold of a k-fold protocol

    @property
    def run_id(self) -> str:
        """The row's name in reports and file names: `resnet18.scratch`, `resnet18.scratch@lr=1e-2`,
        `resnet18.scratch@seed=1`, `resnet18.scratch@lr=1e-2,seed=1` or, for a fold of a protocol,
        `resnet18.scratch@patient-wise,fold=2`."""
        parts = (([self.setting] if self.setting else []) + ([f"seed={self.seed}"] if self.seed is not None else [])
                 + ([self.protocol] if self.protocol else []) + ([f"fold={self.fold}"] if self.fold is not None else []))
        return f"{self.entry.name}@{','.join(parts)}" if parts else self.entry.name


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    file_sha256: str
    description: str
    entries: tuple[str, ...]
    measure: tuple[str, ...] = MEASUREMENTS
    modes: tuple[str, ...] = ("eager",)
    recipe_overrides: dict = field(default_factory=dict)
    entry_overrides: dict = field(default_factory=dict)  # entry name -> overrides
    settings: tuple[Setting, ...] = ()
    imported: tuple[zoo.ZooEntry, ...] = ()  # models trained elsewhere, from imported-model TOML files
    seeds: tuple[int, ...] = ()  # empty: each row once, with its recipe's seed
    protocols: tuple[str, ...] = ()  # empty: the dataset's default protocol (or the command line's)
    task: str = "classification"  # zoo.entry.TASKS: which runner, metrics and report the suite gets

    def all_entries(self) -> list[zoo.ZooEntry]:
        return [zoo.get(name) for name in self.entries] + list(self.imported)

    def with_imported(self, toml_files: list[str]) -> Suite:
        """This suite plus imported models given on the command line (--add-model)."""
        added = tuple(imported_entry(load_spec(f)) for f in toml_files)
        suite = dataclasses.replace(self, imported=self.imported + added)
        _check_unique_imported_names(suite)
        _note_overrides_not_applied(suite, added)
        return suite

    def recipe_for(self, entry: zoo.ZooEntry, setting: Setting | None = None, seed: int | None = None) -> Recipe:
        """The entry's default recipe, then [recipe], then [entry."name"], then the setting's fields,
        then the seed. An imported model was trained elsewhere: no override applies to it, so
        that it is fed the input it declares (its own size, not the suite's input_size)."""
        if is_imported(entry):
            return entry.recipe
        overrides = {**self.recipe_overrides, **self.entry_overrides.get(entry.name, {}),
                     **(setting.overrides if setting else {}), **({"seed": seed} if seed is not None else {})}
        return entry.recipe.with_overrides(**overrides)

    def runs(self, entry: zoo.ZooEntry) -> list[SuiteRun]:
        """The rows this suite makes of one entry: one per setting (or one) times one per seed (or one).
        An imported model makes one row: settings and seeds change training, which it never has."""
        if is_imported(entry):
            return [SuiteRun(entry, self.recipe_for(entry))]
        settings = self.settings or (None,)
        seeds = self.seeds or (None,)
        return [SuiteRun(entry, self.recipe_for(entry, v, seed), v.name if v else "", seed)
                for v in settings for seed in seeds]

    def run_ids(self) -> list[str]:
        return [run.run_id for entry in self.all_entries() for run in self.runs(entry)]

    def measurement_key(self) -> str:
        """What a row of this suite measures; a row measured differently is measured again."""
        return ",".join(sorted(self.measure)) + "|" + ",".join(self.modes)

    def record(self) -> dict:
        return {"name": self.name, "description": self.description, "file": str(self.path),
                "file_sha256": self.file_sha256, "entries": [e.name for e in self.all_entries()],
                "modes": list(self.modes), "seeds": list(self.seeds), "protocols": list(self.protocols),
                "settings": {v.name: v.overrides for v in self.settings}}


def known_suites() -> list[str]:
    """Names of the suites shipped with brainbench."""
    return sorted(p.stem for p in shipped_suites_dir().glob("*.toml"))


def find_suite_file(name_or_path: str) -> Path:
    """A path to a .toml file, or a name looked up in ./suites/ and then in the shipped suites."""
    given = Path(name_or_path)
    if given.suffix == ".toml":
        if not given.is_file():
            raise SuiteError(f"suite file {given} does not exist")
        return given
    for folder in (Path.cwd() / "suites", shipped_suites_dir()):
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    raise SuiteError(f"no suite named {name_or_path!r}; known suites: {', '.join(known_suites())}")


def load_suite(name_or_path: str) -> Suite:
    path = find_suite_file(name_or_path)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SuiteError(f"suite file {path} is not valid TOML: {error}") from None
    try:
        return _parse(data, path, hashlib.sha256(raw).hexdigest())
    except RecipeError as error:  # zoo's checks name the place; the user's error is the suite's
        raise SuiteError(str(error)) from None


def _parse(data: dict, path: Path, sha256: str) -> Suite:
    """Every key and value is checked here, before any training: types, ranges, names."""
    _reject_unknown(set(data), TOP_LEVEL_KEYS, f"{path}")
    imported_files = _string_list(data, "imported", path)
    task = data.get("task", "classification")
    if task not in TASKS:
        raise SuiteError(f"{path}: task must be one of {', '.join(TASKS)}, got {task!r}")
    if task != "classification" and imported_files:
        raise SuiteError(f"{path}: imported models are classifiers; a {task} suite cannot list them")
    entries = _expand_entries(_string_list(data, "entries", path, required=True), path, task)
    if not entries and not imported_files:
        raise SuiteError(f"{path}: 'entries' is empty and no imported models are listed; "
                         f"registered entries: {', '.join(zoo.names())}")
    measure = tuple(_string_list(data, "measure", path) or MEASUREMENTS)
    _reject_unknown(set(measure), set(MEASUREMENTS), f"{path}: measure")
    modes = tuple(dict.fromkeys(["eager", *_string_list(data, "modes", path)]))
    _reject_unknown(set(modes), set(MODE_GROUPS), f"{path}: modes")
    recipe = recipe_overrides(_table(data, "recipe", path), f"{path}: [recipe]")
    per_entry = _entry_overrides(_table(data, "entry", path), entries, path)
    settings = _settings(data, path)
    seeds = _seeds(data, path, recipe, per_entry, settings)
    protocols = tuple(_string_list(data, "protocols", path))
    if len(set(protocols)) != len(protocols):
        raise SuiteError(f"{path}: 'protocols' must not repeat a protocol, got {list(protocols)}")
    suite = Suite(name=path.stem, path=path, file_sha256=sha256, description=_description(data, path),
                  entries=entries, measure=measure, modes=modes, recipe_overrides=recipe,
                  entry_overrides=per_entry, settings=settings, seeds=seeds, protocols=protocols, task=task,
                  imported=tuple(imported_entry(load_spec(path.parent / f)) for f in imported_files))
    for name in entries:  # combinations of values are checked now too, not mid-run
        try:
            suite.runs(zoo.get(name))
        except ValueError as error:
            raise SuiteError(f"{path}: recipe for {name}: {error}") from None
    _check_unique_imported_names(suite)
    _note_overrides_not_applied(suite, suite.imported)
    return suite


def _description(data: dict, path: Path) -> str:
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SuiteError(f"{path}: 'description' must be a string, got {description!r}")
    return description


def _entry_overrides(tables: dict, entries: tuple[str, ...], path: Path) -> dict:
    checked = {}
    for name, overrides in tables.items():
        where = f"{path}: [entry.{json.dumps(name)}]"
        if name not in entries:
            raise SuiteError(f"{where} names an entry that is not in this suite's entries: {', '.join(entries)}")
        if not isinstance(overrides, dict):
            raise SuiteError(f"{where} must be a table of recipe fields")
        checked[name] = recipe_overrides(overrides, where)
    return checked


def _settings(data: dict, path: Path) -> tuple[Setting, ...]:
    tables = data.get("setting", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SuiteError(f"{path}: settings are written as [[setting]] tables")
    settings = []
    for table in tables:
        name = table.get("name")
        if not isinstance(name, str) or not SETTING_NAME.match(name):
            raise SuiteError(f"{path}: every [[setting]] needs a name of letters, digits and ._=+- (got {name!r})")
        overrides = {k: v for k, v in table.items() if k != "name"}
        settings.append(Setting(name, recipe_overrides(overrides, f"{path}: [[setting]] {name!r}")))
    names = [v.name for v in settings]
    if len(set(names)) != len(names):
        raise SuiteError(f"{path}: setting names must be unique, got {names}")
    return tuple(settings)


def _seeds(data: dict, path: Path, recipe: dict, per_entry: dict, settings: tuple[Setting, ...]) -> tuple[int, ...]:
    seeds = data.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in seeds):
        raise SuiteError(f"{path}: 'seeds' must be a list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"{path}: 'seeds' must not repeat a seed, got {seeds}")
    # The seeds list would silently win over any seed written elsewhere.
    places = ([("[recipe]", recipe)] + [(f"[entry.{json.dumps(n)}]", o) for n, o in per_entry.items()]
              + [(f"[[setting]] {v.name!r}", v.overrides) for v in settings])
    for place, overrides in places:
        if seeds and "seed" in overrides:
            raise SuiteError(f"{path}: give either a 'seeds' list or {place} seed, not both")
    return tuple(seeds)


def _check_unique_imported_names(suite: Suite) -> None:
    names = [e.name for e in suite.imported]
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        raise SuiteError(f"{suite.path}: imported model {name} is listed twice (each name is one row)")


def _note_overrides_not_applied(suite: Suite, imported: tuple[zoo.ZooEntry, ...]) -> None:
    """Once per imported model, when the suite would have changed a zoo entry's recipe."""
    changes = ([f"[recipe] {', '.join(suite.recipe_overrides)}"] if suite.recipe_overrides else []) \
        + (["[[setting]] tables"] if suite.settings else []) + (["seeds"] if suite.seeds else [])
    if not changes:
        return
    for entry in imported:
        log.info("%s: suite %s's %s not applied to it: an imported model keeps its declared input "
                 "(%d px) and runs once", entry.name, suite.name, "; ".join(changes), entry.input_size)


def _reject_unknown(keys: set, allowed: set, where: str) -> None:
    unknown = sorted(keys - allowed)
    if unknown:
        raise SuiteError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"allowed: {', '.join(sorted(allowed))}")


def _string_list(data: dict, key: str, path: Path, required: bool = False) -> list[str]:
    value = data.get(key)
    if value is None:
        if required:
            raise SuiteError(f"{path}: missing required key {key!r}")
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SuiteError(f"{path}: {key!r} must be a list of strings, got {value!r}")
    return value


def _table(data: dict, key: str, path: Path) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SuiteError(f"{path}: [{key}] must be a table")
    return value


def _expand_entries(patterns: list[str], path: Path, task: str) -> tuple[str, ...]:
    """Names and patterns to entry names. A pattern matches only entries of the suite's task (`*`
    in a classification suite is every classifier); a name of the other task is an error."""
    names: list[str] = []
    for pattern in patterns:
        matched = zoo.names(pattern)
        if not matched:
            raise SuiteError(f"{path}: entry {pattern!r} matches no zoo entry; "
                             f"registered entries: {', '.join(zoo.names())}")
        of_task = [n for n in matched if zoo.get(n).task == task]
        if not of_task:
            other = zoo.get(matched[0])
            raise SuiteError(f"{path}: entry {matched[0]!r} is a {other.task} entry, but this is a {task} suite "
                             f"(set task = \"{other.task}\" in a suite of its own)")
        names.extend(n for n in of_task if n not in names)
    return tuple(names)
