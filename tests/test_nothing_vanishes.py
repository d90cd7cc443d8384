"""Nothing vanishes: damaged rows are shown, McNemar names what it skipped, writes are atomic."""

import csv
import os
import re
from pathlib import Path

import pytest

from bench.io import FILE_MODE, atomic_path, remove_stale_temporaries, write_atomically
from bench.report.leaderboard import leaderboard_markdown
from bench.runner.entry_pipeline import ENTRIES_DIR, PREDICTIONS_CSV
from bench.runner.rows import read_row, row_path, write_row
from bench.runner.significance import compare_with_top

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_an_unreadable_row_file_is_a_damaged_row_naming_its_path(tmp_path):
    write_row(tmp_path, {"entry": "cnn0.scratch", "status": "ok"})
    path = row_path(tmp_path, "cnn0.scratch")
    path.write_text('{"entry": "cnn0.scratch", "status": "o')  # torn by hand
    row = read_row(tmp_path, "cnn0.scratch")
    assert row["status"] == "damaged" and str(path) in row["error"] and "JSONDecodeError" in row["error"]
    path.write_text('["not", "a", "row"]')
    assert read_row(tmp_path, "cnn0.scratch")["status"] == "damaged"
    assert read_row(tmp_path, "cnn1.scratch") is None  # absent is still absent


def test_the_leaderboard_lists_a_damaged_row(tmp_path):
    path = row_path(tmp_path, "cnn0.scratch")
    path.parent.mkdir(parents=True)
    path.write_text("{")
    results = {"rows": [read_row(tmp_path, "cnn0.scratch")], "suite": {"name": "t"}, "environment": {},
               "dataset": {}}
    text = leaderboard_markdown(results, tmp_path)
    assert "**cnn0.scratch** (damaged)" in text and str(path) in text


def _predictions(out_dir: Path, run_id: str, correct: list[bool]) -> None:
    path = out_dir / ENTRIES_DIR / run_id / PREDICTIONS_CSV
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "predicted"])
        for i, ok in enumerate(correct):
            writer.writerow([f"img{i}.jpg", "glioma", "glioma" if ok else "notumor"])


def test_mcnemar_names_the_rows_it_skipped_and_why(tmp_path):
    rows = [{"entry": name, "status": "ok", "test_acc": acc} for name, acc in
            (("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6))]
    _predictions(tmp_path, "a", [True] * 10)
    _predictions(tmp_path, "b", [True] * 5 + [False] * 5)
    broken = tmp_path / ENTRIES_DIR / "c" / PREDICTIONS_CSV
    broken.parent.mkdir(parents=True)
    broken.write_text("path,label\nimg0.jpg,glioma\n")  # no "predicted" column
    result = compare_with_top(rows, tmp_path, "test_acc", None)
    assert set(result["rows"]) == {"b"}
    assert "no column 'predicted'" in result["skipped"]["c"]
    assert result["skipped"]["d"].startswith("no ") and PREDICTIONS_CSV in result["skipped"]["d"]
    text = leaderboard_markdown({"rows": rows, "comparisons": result, "suite": {"name": "t"}, "environment": {},
                                 "dataset": {}}, tmp_path)
    assert "Left out of the test" in text and "`c`" in text and "`d`" in text


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "leaderboard.md"
    write_atomically(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["leaderboard.md"]


def test_written_files_get_the_ordinary_mode_not_mkstemps_0600(tmp_path):
    path = tmp_path / "row.json"
    write_atomically(path, b"{}")
    assert path.stat().st_mode & 0o777 == FILE_MODE
    assert FILE_MODE & 0o040  # readable by the group under the usual umasks (022, 002)


WRITE_CALL = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*['\"][wa]b?['\"]|\.savefig\(|np\.save")


def test_every_file_brainbench_writes_goes_through_the_atomic_writer():
    # Readers (McNemar, report, resume) must never see half a file: bench/io.py is the one writer.
    offenders = []
    for path in BENCH.rglob("*.py"):
        if path.name.startswith("test_") or path.name == "conftest.py" or path == BENCH / "io.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            # Allowed: temporary paths of the atomic writer, in-memory buffers, and files inside a
            # staging folder that is renamed into place as a whole (the decoded cache).
            if WRITE_CALL.search(line) and not any(word in line for word in ("atomic", "tmp", "buffer", "staging")):
                offenders.append(f"{path.relative_to(BENCH.parent)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_temporaries_of_a_killed_writer_are_swept_once_stale(tmp_path):
    # kill -9 mid-write runs no clean-up: atomic_path's temporary stays until someone removes it.
    import subprocess
    import sys
    import time

    target = tmp_path / "row.json"
    script = ("import os, sys\nfrom bench.io import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_text('half')\n    os.kill(os.getpid(), 9)\n")
    subprocess.run([sys.executable, "-c", script, str(target)], cwd=BENCH.parent)
    [left] = tmp_path.glob(".*.tmp")
    assert not target.exists()
    fresh = tmp_path / ".other.json.abc.tmp"
    fresh.write_text("a live writer's")
    old = time.time() - 3600
    os.utime(left, (old, old))
    assert remove_stale_temporaries(tmp_path) == [left]
    assert fresh.exists() and not left.exists()
