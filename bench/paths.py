"""Where brainbench reads and writes: one place that knows the defaults and their overrides.

Precedence everywhere: explicit argument (a CLI flag), then environment variable, then default.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

EMBEDDED_DATASET = Path(__file__).parent / "data" / "embedded" / "brain-tumor-mri-mini"
# The project's suites/ beside bench/: used when the `suites` package is not importable, as under
# an editable install made before suites/ became a package (its finder maps only bench and zoo).
SOURCE_TREE_SUITES = Path(__file__).resolve().parent.parent / "suites"


def user_cache_dir() -> Path:
    """The per-user cache root: $XDG_CACHE_HOME/brainbench, else ~/.cache/brainbench."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "brainbench"


def _resolve(explicit: str | os.PathLike | None, env_var: str, default: Path) -> Path:
    if explicit is not None:
        return Path(explicit).expanduser()
    from_env = os.environ.get(env_var)
    if from_env:
        return Path(from_env).expanduser()
    return default


def dataset_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--data, then $BRAINBENCH_DATA, then the mini dataset embedded in the package."""
    return _resolve(explicit, "BRAINBENCH_DATA", EMBEDDED_DATASET)


def store_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Checkpoint store: --store, then $BRAINBENCH_STORE, then <user cache>/store."""
    return _resolve(explicit, "BRAINBENCH_STORE", user_cache_dir() / "store")


def decoded_cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Decoded-image cache: --cache, then $BRAINBENCH_CACHE, then <user cache>/decoded."""
    return _resolve(explicit, "BRAINBENCH_CACHE", user_cache_dir() / "decoded")


def shipped_suites_dir() -> Path:
    """The folder of the suites shipped with brainbench: the `suites` package (installed as package
    data), else the source tree's suites/."""
    try:
        folder = resources.files("suites")
    except ModuleNotFoundError:
        return SOURCE_TREE_SUITES
    # Only a regular package is ours: a stray ./suites folder without __init__.py would be a namespace.
    if isinstance(folder, Path) and (folder / "__init__.py").is_file():
        return folder
    return SOURCE_TREE_SUITES
