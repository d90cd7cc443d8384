"""An interruption on purpose, after a given epoch: how the tests and the GPU self-check prove that
a resumed training continues exactly where an uninterrupted one would be."""

from __future__ import annotations

from bench.train.store import CheckpointStore


class Interrupted(Exception):
    """Raised from the store's per-epoch history write, as a kill would stop the run there."""


def interrupt_after(store: CheckpointStore, epochs: int) -> None:
    """Raise Interrupted from the per-epoch callback (history writing) once `epochs` epochs are done;
    the resume state of that epoch is written just before, as after a real interruption."""
    write_history = store.write_history

    def interrupting(key, rows):
        write_history(key, rows)
        if len(rows) == epochs:
            raise Interrupted

    store.write_history = interrupting
