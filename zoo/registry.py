"""The one registry of zoo entries: names map to frozen entries; a duplicate name is an error."""

from __future__ import annotations

import fnmatch

from zoo.entry import ZooEntry

_ENTRIES: dict[str, ZooEntry] = {}


class UnknownEntryError(KeyError):
    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def parse_name(name: str) -> tuple[str, str]:
    """Split `arch.variant`; the one place that knows the naming scheme."""
    arch, dot, variant = name.partition(".")
    if not dot or not arch or not variant or "." in variant:
        raise ValueError(f"zoo entry names look like 'arch.variant' (e.g. 'cnn3.scratch'), got {name!r}")
    return arch, variant


def register(entry: ZooEntry) -> ZooEntry:
    if entry.name in _ENTRIES:
        raise ValueError(f"zoo entry {entry.name!r} is registered twice")
    _ENTRIES[entry.name] = entry
    return entry


def get(name: str) -> ZooEntry:
    parse_name(name)
    try:
        return _ENTRIES[name]
    except KeyError:
        close = fnmatch.filter(_ENTRIES, f"{name.split('.')[0]}*")
        hint = f"; did you mean {', '.join(sorted(close))}?" if close else "; `brainbench list` shows all"
        raise UnknownEntryError(f"no zoo entry named {name!r}{hint}") from None


def names(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern (`resnet*`, `*.scratch`), sorted."""
    return sorted(fnmatch.filter(_ENTRIES, pattern))


def entries(pattern: str = "*") -> list[ZooEntry]:
    return [_ENTRIES[name] for name in names(pattern)]
