"""Suites are data: TOML files parsed once into typed dataclasses. Unknown keys are errors.

    description = "three small CNNs at 64 px for a 2-core CPU"
    entries = ["cnn1.scratch", "resnet18.*"]     # names or shell patterns
    splits = ["test"]                             # which splits are evaluated
    measure = ["metrics", "efficiency"]           # what is measured

    [recipe]                                      # overrides for every entry
    input_size = 64

    [entry."resnet18.scratch"]                    # overrides for one entry, after [recipe]
    epochs = 4

    [[variant]]                                   # optional: run every entry once per variant,
    name = "lr=1e-2"                              # a training study; the leaderboard shows the
    lr = 1e-2                                     # variant's name as its "setting" column

    seeds = [0, 1, 2]                             # optional: train every row once per seed; the
                                                  # leaderboard adds mean and std across seeds
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
from bench.errors import BrainbenchError
from bench.external import external_entry, is_external, load_spec
from bench.paths import shipped_suites_dir
from zoo.recipe import Recipe, RecipeError, recipe_overrides

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SPLITS = ("test",)
MEASUREMENTS = ("metrics", "efficiency")
TOP_LEVEL_KEYS = {"description", "entries", "splits", "measure", "modes", "recipe", "entry", "variant", "external",
                  "seeds"}
# Deployment modes whose latency a suite can measure (bench/deploy); eager is always measured.
MODES = ("eager", "torchscript", "compile", "onnxruntime", "tensorrt")
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")  # it becomes part of file names

log = logging.getLogger("brainbench")


class SuiteError(BrainbenchError):
    pass


@dataclass(frozen=True)
class Variant:
    """One setting of a training study: a name and the recipe fields it changes."""

    name: str
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteRun:
    """One row of a suite: an entry, optionally under a study variant."""

    entry: zoo.ZooEntry
    recipe: Recipe
    variant: str = ""
    seed: int | None = None  # set when the suite repeats every row over several seeds

    @property
    def run_id(self) -> str:
        """The row's name in reports and file names: `resnet18.scratch`, `resnet18.scratch@lr=1e-2`,
        `resnet18.scratch@seed=1` or `resnet18.scratch@lr=1e-2,seed=1`."""
        setting = ",".join(([self.variant] if self.variant else [])
                           + ([f"seed={self.seed}"] if self.seed is not None else []))
        return f"{self.entry.name}@{setting}" if setting else self.entry.name


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    file_sha256: str
    description: str
    entries: tuple[str, ...]
    splits: tuple[str, ...] = SPLITS
    measure: tuple[str, ...] = MEASUREMENTS
    modes: tuple[str, ...] = ("eager",)
    recipe_overrides: dict = field(default_factory=dict)
    entry_overrides: dict = field(default_factory=dict)  # entry name -> overrides
    variants: tuple[Variant, ...] = ()
    external: tuple[zoo.ZooEntry, ...] = ()  # user models from external-model TOML files
    seeds: tuple[int, ...] = ()  # empty: each row once, with its recipe's seed

    def all_entries(self) -> list[zoo.ZooEntry]:
        return [zoo.get(name) for name in self.entries] + list(self.external)

    def with_external(self, toml_files: list[str]) -> Suite:
        """This suite plus external models given on the command line (--add-model)."""
        added = tuple(external_entry(load_spec(f)) for f in toml_files)
        suite = dataclasses.replace(self, external=self.external + added)
        _check_unique_external_names(suite)
        _note_overrides_not_applied(suite, added)
        return suite

    def recipe_for(self, entry: zoo.ZooEntry, variant: Variant | None = None, seed: int | None = None) -> Recipe:
        """The entry's default recipe, then [recipe], then [entry."name"], then the variant's fields,
        then the seed. An external model was trained elsewhere: no override applies to it, so
        that it is fed the input it declares (its own size, not the suite's input_size)."""
        if is_external(entry):
            return entry.recipe
        overrides = {**self.recipe_overrides, **self.entry_overrides.get(entry.name, {}),
                     **(variant.overrides if variant else {}), **({"seed": seed} if seed is not None else {})}
        return entry.recipe.with_overrides(**overrides)

    def runs(self, entry: zoo.ZooEntry) -> list[SuiteRun]:
        """The rows this suite makes of one entry: one per variant (or one) times one per seed (or one).
        An external model makes one row: variants and seeds change training, which it never has."""
        if is_external(entry):
            return [SuiteRun(entry, self.recipe_for(entry))]
        variants = self.variants or (None,)
        seeds = self.seeds or (None,)
        return [SuiteRun(entry, self.recipe_for(entry, v, seed), v.name if v else "", seed)
                for v in variants for seed in seeds]

    def run_ids(self) -> list[str]:
        return [run.run_id for entry in self.all_entries() for run in self.runs(entry)]

    def measurement_key(self) -> str:
        """What a row of this suite measures; a row measured differently is measured again."""
        return ",".join(sorted(self.measure)) + "|" + ",".join(self.modes)

    def record(self) -> dict:
        return {"name": self.name, "description": self.description, "file": str(self.path),
                "file_sha256": self.file_sha256, "entries": [e.name for e in self.all_entries()],
                "modes": list(self.modes), "seeds": list(self.seeds),
                "variants": {v.name: v.overrides for v in self.variants}}


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
    external_files = _string_list(data, "external", path)
    entries = _expand_entries(_string_list(data, "entries", path, required=True), path)
    if not entries and not external_files:
        raise SuiteError(f"{path}: 'entries' is empty and no external models are listed; "
                         f"registered entries: {', '.join(zoo.names())}")
    splits = tuple(_string_list(data, "splits", path) or SPLITS)
    measure = tuple(_string_list(data, "measure", path) or MEASUREMENTS)
    _reject_unknown(set(splits), set(SPLITS), f"{path}: splits")
    _reject_unknown(set(measure), set(MEASUREMENTS), f"{path}: measure")
    modes = tuple(dict.fromkeys(["eager", *_string_list(data, "modes", path)]))
    _reject_unknown(set(modes), set(MODES), f"{path}: modes")
    recipe = recipe_overrides(_table(data, "recipe", path), f"{path}: [recipe]")
    per_entry = _entry_overrides(_table(data, "entry", path), entries, path)
    variants = _variants(data, path)
    seeds = _seeds(data, path, recipe, per_entry, variants)
    suite = Suite(name=path.stem, path=path, file_sha256=sha256, description=_description(data, path),
                  entries=entries, splits=splits, measure=measure, modes=modes, recipe_overrides=recipe,
                  entry_overrides=per_entry, variants=variants, seeds=seeds,
                  external=tuple(external_entry(load_spec(path.parent / f)) for f in external_files))
    for name in entries:  # combinations of values are checked now too, not mid-run
        try:
            suite.runs(zoo.get(name))
        except ValueError as error:
            raise SuiteError(f"{path}: recipe for {name}: {error}") from None
    _check_unique_external_names(suite)
    _note_overrides_not_applied(suite, suite.external)
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


def _variants(data: dict, path: Path) -> tuple[Variant, ...]:
    tables = data.get("variant", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SuiteError(f"{path}: variants are written as [[variant]] tables")
    variants = []
    for table in tables:
        name = table.get("name")
        if not isinstance(name, str) or not VARIANT_NAME.match(name):
            raise SuiteError(f"{path}: every [[variant]] needs a name of letters, digits and ._=+- (got {name!r})")
        overrides = {k: v for k, v in table.items() if k != "name"}
        variants.append(Variant(name, recipe_overrides(overrides, f"{path}: [[variant]] {name!r}")))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise SuiteError(f"{path}: variant names must be unique, got {names}")
    return tuple(variants)


def _seeds(data: dict, path: Path, recipe: dict, per_entry: dict, variants: tuple[Variant, ...]) -> tuple[int, ...]:
    seeds = data.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in seeds):
        raise SuiteError(f"{path}: 'seeds' must be a list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"{path}: 'seeds' must not repeat a seed, got {seeds}")
    # The seeds list would silently win over any seed written elsewhere.
    places = ([("[recipe]", recipe)] + [(f"[entry.{json.dumps(n)}]", o) for n, o in per_entry.items()]
              + [(f"[[variant]] {v.name!r}", v.overrides) for v in variants])
    for place, overrides in places:
        if seeds and "seed" in overrides:
            raise SuiteError(f"{path}: give either a 'seeds' list or {place} seed, not both")
    return tuple(seeds)


def _check_unique_external_names(suite: Suite) -> None:
    names = [e.name for e in suite.external]
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        raise SuiteError(f"{suite.path}: external model {name} is listed twice (each name is one row)")


def _note_overrides_not_applied(suite: Suite, externals: tuple[zoo.ZooEntry, ...]) -> None:
    """Once per external model, when the suite would have changed a zoo entry's recipe."""
    changes = ([f"[recipe] {', '.join(suite.recipe_overrides)}"] if suite.recipe_overrides else []) \
        + (["[[variant]] tables"] if suite.variants else []) + (["seeds"] if suite.seeds else [])
    if not changes:
        return
    for entry in externals:
        log.info("%s: suite %s's %s not applied to it: an external model keeps its declared input "
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


def _expand_entries(patterns: list[str], path: Path) -> tuple[str, ...]:
    names: list[str] = []
    for pattern in patterns:
        matched = zoo.names(pattern)
        if not matched:
            raise SuiteError(f"{path}: entry {pattern!r} matches no zoo entry; "
                             f"registered entries: {', '.join(zoo.names())}")
        names.extend(n for n in matched if n not in names)
    return tuple(names)
