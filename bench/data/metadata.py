"""Read a dataset's metadata table: one CSV row per image, with its class and, when declared, its
patient group, fold and mask.

Each problem stops the run with one line naming the table, the row (its line in the file: the
header is row 1, as in a spreadsheet) and the value: a missing column, an image or mask that is
missing, outside the dataset folder or not a regular file, an unknown class, a fold that is not an
integer, an empty group. The entries rules hold here too: only regular files (or links to them)
are read, a path through a link to a folder is refused, and each real file is listed once.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench.data.declaration import Declaration
from bench.data.entries import printable, regular_file_problem
from bench.errors import DatasetError


@dataclass(frozen=True)
class MetadataRow:
    line: int  # the row's line in the table (the header is line 1)
    path: Path  # absolute, below the dataset root
    rel: str  # POSIX path relative to the dataset root
    label: str  # a class name of the declaration
    group: str | None = None
    fold: int | None = None
    mask: Path | None = None


def read_metadata(root: Path, declaration: Declaration) -> list[MetadataRow]:
    """The rows of `declaration`'s table below the resolved `root`, in table order, every value checked."""
    table = root / declaration.table
    return _TableReader(root, table, declaration).rows()


class _TableReader:
    def __init__(self, root: Path, table: Path, declaration: Declaration):
        self.root = root
        self.table = table
        self.name = printable(str(table))
        self.declaration = declaration
        self.link_checked: dict[str, str | None] = {}  # folder rel -> why it cannot be entered, or None

    def fail(self, line: int, message: str) -> DatasetError:
        return DatasetError(f"{self.name} row {line}: {message}")

    def rows(self) -> list[MetadataRow]:
        problem = regular_file_problem(self.table)
        if problem is not None:
            raise DatasetError(f"{self.name}: the metadata table of {self.declaration.where} is missing or "
                               f"unreadable ({problem})")
        try:
            with open(self.table, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                self.check_header(reader.fieldnames or [])
                rows = [self.row(reader.line_num, record) for record in reader]
        except UnicodeDecodeError as error:
            raise DatasetError(f"{self.name}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except csv.Error as error:
            raise DatasetError(f"{self.name}: not a readable CSV table ({error})") from None
        except OSError as error:
            raise DatasetError(f"{self.name}: cannot be read ({error.strerror or error})") from None
        self.check_once_each(rows)
        return rows

    def check_header(self, header: list[str]) -> None:
        d = self.declaration
        declared = {"path_column": d.path_column, "label_column": d.label_column, "group_column": d.group_column,
                    "fold_column": d.fold_column, "mask_column": d.mask_column}
        for key, column in declared.items():
            if column is not None and column not in header:
                raise DatasetError(f"{self.name}: column {column!r} (images.{key} of {d.where}) is not in the "
                                   f"header (columns: {', '.join(header) or 'none'})")

    def row(self, line: int, record: dict) -> MetadataRow:
        d = self.declaration
        value = self.cell(record, d.path_column)
        path, rel = self.file(line, value, f"image {value!r}")
        label = self.cell(record, d.label_column)
        try:
            label = d.labels.normalize(label, what="class")
        except DatasetError as error:
            raise self.fail(line, f"{error} (column {d.label_column!r})") from None
        group = fold = mask = None
        if d.group_column is not None:
            group = self.cell(record, d.group_column)
            if not group:
                raise self.fail(line, f"image {rel!r} has no group: column {d.group_column!r} is empty")
        if d.fold_column is not None:
            fold = self.fold(line, self.cell(record, d.fold_column), rel)
        if d.mask_column is not None:
            mask_value = self.cell(record, d.mask_column)
            if not mask_value:
                raise self.fail(line, f"image {rel!r} has no mask: column {d.mask_column!r} is empty")
            mask, _ = self.file(line, mask_value, f"mask file {mask_value!r} for image {rel!r}")
        return MetadataRow(line, path, rel, label, group, fold, mask)

    @staticmethod
    def cell(record: dict, column: str) -> str:
        return (record.get(column) or "").strip()  # a short row leaves its last cells None

    def fold(self, line: int, value: str, rel: str) -> int:
        column = self.declaration.fold_column
        if not value:
            raise self.fail(line, f"image {rel!r} has no fold: column {column!r} is empty")
        try:
            return int(value)
        except ValueError:
            raise self.fail(line, f"fold {value!r} in column {column!r} is not an integer") from None

    def file(self, line: int, value: str, what: str) -> tuple[Path, str]:
        """(absolute path, root-relative POSIX path) of a file the table names; it must be a regular
        file below the root, reached without a link to a folder."""
        if not value:
            raise self.fail(line, f"{what}: the path is empty")
        written = PurePosixPath(value)
        parts = [part for part in written.parts if part != "."]
        if written.is_absolute() or ".." in parts or not parts:
            raise self.fail(line, f"{what} is outside the dataset folder {printable(str(self.root))}")
        rel = "/".join(parts)
        for depth in range(1, len(parts)):
            problem = self.folder_problem("/".join(parts[:depth]))
            if problem is not None:
                raise self.fail(line, f"{what} is not readable: {problem}")
        path = self.root / rel
        problem = regular_file_problem(path)
        if problem == "no such file":
            raise self.fail(line, f"{what} is missing")
        if problem is not None:
            raise self.fail(line, f"{what} is {problem}")
        return path, rel

    def folder_problem(self, folder_rel: str) -> str | None:
        """Why a folder on a file's path cannot be entered (a link: never followed), or None."""
        if folder_rel not in self.link_checked:
            folder = self.root / folder_rel
            problem = None
            if os.path.islink(folder):
                problem = f"{folder_rel} is a symbolic link to a folder, not followed (one can relabel images)"
            self.link_checked[folder_rel] = problem
        return self.link_checked[folder_rel]

    def check_once_each(self, rows: list[MetadataRow]) -> None:
        """A file listed twice (two rows, or two paths to one real file) would be counted, and could
        be split, twice: name both rows."""
        first: dict[str, MetadataRow] = {}
        for row in rows:
            real = os.path.realpath(row.path)
            earlier = first.setdefault(real, row)
            if earlier is not row:
                raise self.fail(row.line, f"image {row.rel!r} is the same file as {earlier.rel!r} of row "
                                          f"{earlier.line}; list each image once")
