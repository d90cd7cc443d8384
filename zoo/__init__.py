"""brainbench's model zoo: what a model IS (registry, architectures, variants, recipes).

Importing `zoo` registers every entry. `zoo` never imports `bench`.
"""

from zoo import entries as _entries  # noqa: F401  (registers the entries)
from zoo.entry import ZooEntry
from zoo.recipe import Recipe
from zoo.registry import UnknownEntryError, entries, get, names, parse_name, register

__all__ = ["Recipe", "UnknownEntryError", "ZooEntry", "entries", "get", "names", "parse_name", "register"]
