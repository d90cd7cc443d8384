"""The text of a metadata-table dataset declaration (brainbench-dataset.toml), for tests that
write small datasets: one builder instead of a TOML literal per test file. Only what a test
varies is a parameter; the columns are the ones every generated table here uses."""

from __future__ import annotations

from collections.abc import Sequence


def protocol_table(name: str, kind: str = "kfold", **fields) -> str:
    """One [[protocol]] table; values are written as TOML (strings quoted, numbers bare)."""
    lines = ["[[protocol]]"] + ([f'name = "{name}"'] if name else []) + [f'kind = "{kind}"']
    lines += [f"{key} = {_toml(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def metadata_declaration(name: str, classes: Sequence[str], *, description: str | None = None,
                         fold_column: str | None = "fold", mask_column: str | None = "mask",
                         protocols: Sequence[str] | None = None, extra: str = "") -> str:
    """A declaration reading metadata.csv (image, class, pid and the given fold and mask columns).
    Default protocol: "patient-wise", the k folds of the fold column."""
    lines = [f'name = "{name}"'] + ([f"description = {_toml(description)}"] if description else [])
    lines += ["[labels]", f"classes = {_toml(list(classes))}", "[images]", 'from = "metadata"',
              'table = "metadata.csv"', 'path_column = "image"', 'label_column = "class"', 'group_column = "pid"']
    lines += [f'fold_column = "{fold_column}"'] if fold_column else []
    lines += [f'mask_column = "{mask_column}"'] if mask_column else []
    if protocols is None:
        protocols = [protocol_table("patient-wise", fold_column=fold_column)]
    return "\n" + "\n".join(lines) + "\n" + "".join(protocols) + extra


def _toml(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)
