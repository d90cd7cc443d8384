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
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import zoo
from bench.errors import BrainbenchError
from bench.external import external_entry, load_spec
from zoo.recipe import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"
SPLITS = ("test",)
MEASUREMENTS = ("metrics", "efficiency")
TOP_LEVEL_KEYS = {"description", "entries", "splits", "measure", "modes", "recipe", "entry", "variant", "external",
                  "seeds"}
# Deployment modes whose latency a suite can measure (bench/deploy); eager is always measured.
MODES = ("eager", "torchscript", "compile", "onnxruntime", "tensorrt")
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")  # it becomes part of file names
RECIPE_FIELDS = {f.name for f in dataclasses.fields(Recipe)}


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
        return dataclasses.replace(self, external=self.external + added)

    def recipe_for(self, entry: zoo.ZooEntry, variant: Variant | None = None, seed: int | None = None) -> Recipe:
        """The entry's default recipe, then [recipe], then [entry."name"], then the variant's fields,
        then the seed."""
        overrides = {**self.recipe_overrides, **self.entry_overrides.get(entry.name, {}),
                     **(variant.overrides if variant else {}), **({"seed": seed} if seed is not None else {})}
        return entry.recipe.with_overrides(**overrides)

    def runs(self, entry: zoo.ZooEntry) -> list[SuiteRun]:
        """The rows this suite makes of one entry: one per variant (or one) times one per seed (or one)."""
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


def find_suite_file(name_or_path: str) -> Path:
    """A path to a .toml file, or a name looked up in ./suites/ and then the project's suites/."""
    given = Path(name_or_path)
    if given.suffix == ".toml":
        if not given.is_file():
            raise SuiteError(f"suite file {given} does not exist")
        return given
    for folder in (Path.cwd() / "suites", SUITES_DIR):
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in SUITES_DIR.glob("*.toml"))
    raise SuiteError(f"no suite named {name_or_path!r}; known suites: {', '.join(known)}")


def load_suite(name_or_path: str) -> Suite:
    path = find_suite_file(name_or_path)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SuiteError(f"suite file {path} is not valid TOML: {error}") from None
    return _parse(data, path, hashlib.sha256(raw).hexdigest())


def _parse(data: dict, path: Path, sha256: str) -> Suite:
    _reject_unknown(set(data), TOP_LEVEL_KEYS, f"{path}")
    entries = _expand_entries(_string_list(data, "entries", path, required=True), path)
    splits = tuple(_string_list(data, "splits", path) or SPLITS)
    measure = tuple(_string_list(data, "measure", path) or MEASUREMENTS)
    _reject_unknown(set(splits), set(SPLITS), f"{path}: splits")
    _reject_unknown(set(measure), set(MEASUREMENTS), f"{path}: measure")
    modes = tuple(dict.fromkeys(["eager", *_string_list(data, "modes", path)]))
    _reject_unknown(set(modes), set(MODES), f"{path}: modes")
    recipe = _table(data, "recipe", path)
    _reject_unknown(set(recipe), RECIPE_FIELDS, f"{path}: [recipe]")
    per_entry = _table(data, "entry", path)
    for name, overrides in per_entry.items():
        if name not in entries:
            raise SuiteError(f"{path}: [entry.{name!r}] names an entry that is not in this suite's entries")
        if not isinstance(overrides, dict):
            raise SuiteError(f"{path}: [entry.{name!r}] must be a table of recipe fields")
        _reject_unknown(set(overrides), RECIPE_FIELDS, f"{path}: [entry.{name!r}]")
    suite = Suite(name=path.stem, path=path, file_sha256=sha256, description=str(data.get("description", "")),
                  entries=entries, splits=splits, measure=measure, modes=modes, recipe_overrides=recipe,
                  entry_overrides=per_entry, variants=_variants(data, path), seeds=_seeds(data, path),
                  external=tuple(external_entry(load_spec(path.parent / f))
                                 for f in _string_list(data, "external", path)))
    for name in entries:  # bad values (e.g. epochs = 0) are reported now, not mid-run
        try:
            suite.runs(zoo.get(name))
        except ValueError as error:
            raise SuiteError(f"{path}: recipe for {name}: {error}") from None
    return suite


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
        _reject_unknown(set(overrides), RECIPE_FIELDS, f"{path}: [[variant]] {name!r}")
        variants.append(Variant(name, overrides))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise SuiteError(f"{path}: variant names must be unique, got {names}")
    return tuple(variants)


def _seeds(data: dict, path: Path) -> tuple[int, ...]:
    seeds = data.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in seeds):
        raise SuiteError(f"{path}: 'seeds' must be a list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"{path}: 'seeds' must not repeat a seed, got {seeds}")
    if "seed" in data.get("recipe", {}) and seeds:
        raise SuiteError(f"{path}: give either [recipe] seed or a 'seeds' list, not both")
    return tuple(seeds)


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
            raise SuiteError(f"{path}: entry {pattern!r} matches no zoo entry (see `brainbench list`)")
        names.extend(n for n in matched if n not in names)
    return tuple(names)
