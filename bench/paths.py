"""Where brainbench reads and writes: one place that knows the defaults and their overrides.

Precedence everywhere: explicit argument (a CLI flag), then environment variable, then default.
"""

from __future__ import annotations

import os
from pathlib import Path

EMBEDDED_DATASET = Path(__file__).parent / "data" / "embedded" / "brain-tumor-mri-mini"


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
