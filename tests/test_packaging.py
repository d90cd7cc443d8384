"""A non-editable install works on its own: the wheel carries the suites and leaves the tests out.

The wheel is built from a copy of the project (so the build leaves nothing in the source tree),
installed into a bare folder, and used from another directory with only that folder on the path.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("pyproject.toml", "README.md", "MANIFEST.in", "build_hooks.py")
PACKAGES = ("bench", "zoo", "suites")


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in PROJECT_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)])
    (built,) = out.glob("brainbench-*.whl")
    return built


def test_wheel_ships_the_suites_and_no_test_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "suites/__init__.py" in names and "suites/quick.toml" in names
    shipped_suites = {n for n in names if n.startswith("suites/") and n.endswith(".toml")}
    assert shipped_suites == {f"suites/{p.name}" for p in (ROOT / "suites").glob("*.toml")}
    assert "bench/cli.py" in names and "bench/data/embedded/brain-tumor-mri-mini/MANIFEST.csv" in names
    assert not [n for n in names if Path(n).name.startswith("test_") or Path(n).name == "conftest.py"]
    assert "build_hooks.py" not in names


def test_wheel_declares_its_direct_imports(wheel):
    metadata = zipfile.ZipFile(wheel).read("brainbench-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: huggingface_hub" in metadata or "Requires-Dist: huggingface-hub" in metadata
    assert 'onnxruntime-gpu>=1.18; extra == "onnx-gpu"' in metadata


def test_installed_wheel_runs_the_quick_suite_lookup_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    script = (
        "import bench, suites\n"
        "from bench.suites import load_suite\n"
        "s = load_suite('quick')\n"
        "print(bench.__file__); print(suites.__file__); print(s.path); print(','.join(s.entries))\n"
    )
    lines = run([sys.executable, "-c", script], cwd=elsewhere, env=env).stdout.splitlines()
    assert all(line.startswith(str(target)) for line in lines[:3]), lines  # not the source tree
    assert "cnn0.scratch" in lines[3].split(",")

    listing = run([sys.executable, "-m", "bench.cli", "list", "cnn*"], cwd=elsewhere, env=env).stdout
    assert "cnn0.scratch" in listing
