"""Torture cases for dataset discovery and decoding: every odd entry a real dataset folder can hold
is either a counted skip with a warning naming it, or a one-line DatasetError, never a hang,
a loop, a relabelled image or a traceback. Every entry is real: FIFOs, sockets, links, file names
that are not UTF-8, and large PNGs written once per session."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from bench.audit.audit import run_audit
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.data.decode import decode_image
from bench.data.discover import discover
from bench.data.declaration import default_labels
from bench.errors import DatasetError, ImageDecodeError

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
PREP = Preprocessing(size=16, channels=1)


@pytest.fixture
def small(make_dataset) -> Path:
    """Kaggle layout, 2 training and 1 test image per class (8 + 4)."""
    return make_dataset({f"Training/{c}": 2 for c in CLASSES} | {f"Testing/{c}": 1 for c in CLASSES}, size=16)


@contextlib.contextmanager
def fails_fast(seconds: int = 10):
    """Turn a hang (open() on a FIFO blocks forever) into a test failure instead of a stuck suite."""
    def give_up(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: something blocked")
    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def skipped(index) -> dict[str, str]:
    return {entry["path"]: entry["reason"] for entry in index.skipped_entries}


# --- links -----------------------------------------------------------------------------------

def test_a_folder_link_inside_a_class_folder_is_not_followed(small, caplog):
    os.symlink("..", small / "Training/glioma/up")  # would file every training image under glioma
    index = discover(small)
    assert len(index.train) == 8
    assert [index.labels.names[s.label] for s in index.train].count("glioma") == 2
    assert skipped(index) == {"Training/glioma/up": "a symbolic link to a folder, not followed "
                                                    "(a folder link can loop or relabel images)"}
    assert "skipping Training/glioma/up" in caplog.text
    assert index.record()["n_unusable_entries_skipped"] == 1


def test_a_linked_split_folder_is_refused_with_its_name(small, tmp_path):
    real = tmp_path / "elsewhere"
    (small / "Testing").rename(real)
    os.symlink(real, small / "Testing")
    with pytest.raises(DatasetError, match=r"/Testing is a symbolic link to a folder; links to folders"):
        discover(small)


def test_a_file_reached_twice_counts_once(small, tmp_path, caplog):
    outside = tmp_path / "outside.png"
    outside.write_bytes((small / "Training/glioma/img_000.png").read_bytes())
    os.symlink(outside, small / "Training/glioma/link_a.png")
    os.symlink(outside, small / "Training/glioma/link_b.png")
    # A link to a file of another class: the real file keeps its folder's label.
    os.symlink("../meningioma/img_000.png", small / "Training/glioma/a_link_to_meningioma.png")
    index = discover(small)
    rels = [s.rel for s in index.train]
    assert "Training/glioma/link_a.png" in rels and "Training/glioma/link_b.png" not in rels
    assert "Training/glioma/a_link_to_meningioma.png" not in rels
    assert "Training/meningioma/img_000.png" in rels
    assert len(index.train) == 9
    assert skipped(index) == {
        "Training/glioma/a_link_to_meningioma.png": "the same file as Training/meningioma/img_000.png (counted once)",
        "Training/glioma/link_b.png": "the same file as Training/glioma/link_a.png (counted once)"}
    assert "link_b.png" in caplog.text


@pytest.mark.parametrize("kind, reason", [("loop", "a symbolic link loop"), ("dangling", "a dangling symbolic link")])
def test_broken_links_are_counted_skips_in_train_and_audit(small, tmp_path, caplog, kind, reason):
    link = small / "Training/glioma/bad.jpg"
    os.symlink("bad.jpg" if kind == "loop" else "nowhere.jpg", link)
    data = load_dataset(small, PREP, tmp_path / "cache")
    assert len(data.decoded.train) == 8
    assert data.record()["unusable_entries_skipped"] == [{"path": "Training/glioma/bad.jpg", "reason": reason}]
    assert f"skipping Training/glioma/bad.jpg in {small}: {reason}" in caplog.text
    assert len(run_audit(data.index).train) == 8


# --- entries that are not regular files ---------------------------------------------------

def test_a_fifo_named_like_an_image_is_skipped_not_opened(small, tmp_path, caplog):
    os.mkfifo(small / "Training/glioma/x.jpg")
    with fails_fast():
        data = load_dataset(small, PREP, tmp_path / "cache")
        run_audit(data.index)
    assert data.record()["unusable_entries_skipped"] == [
        {"path": "Training/glioma/x.jpg", "reason": "not a regular file (a FIFO)"}]
    assert "Training/glioma/x.jpg" in caplog.text


def test_a_socket_named_like_an_image_is_skipped(small, monkeypatch):
    monkeypatch.chdir(small / "Training/glioma")  # a socket path must be short: bind a relative name
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("s.png")
        assert skipped(discover(small)) == {"Training/glioma/s.png": "not a regular file (a socket)"}


def test_a_folder_named_like_an_image_is_a_folder(small):
    folder = small / "Training/glioma/x.jpg"
    folder.mkdir()
    (folder / "inside.png").write_bytes((small / "Training/glioma/img_000.png").read_bytes())
    index = discover(small)
    assert "Training/glioma/x.jpg/inside.png" in [s.rel for s in index.train]
    with pytest.raises(ImageDecodeError, match=r"x.jpg: not a regular file \(a folder\)"):
        decode_image(folder, 16, 1)


def test_a_file_name_that_is_not_utf8_is_named_and_skipped(small, tmp_path, caplog):
    folder = os.fsencode(small / "Training/glioma")
    with open(folder + b"/\xff\xfe.jpg", "wb") as out:
        out.write((small / "Training/glioma/img_000.png").read_bytes())
    os.mkdir(folder + b"/sub\xe9")
    data = load_dataset(small, PREP, tmp_path / "cache")
    assert len(data.decoded.train) == 8
    reasons = skipped(data.index)
    assert reasons == {"Training/glioma/\\xff\\xfe.jpg": "its name is not valid UTF-8; rename it",
                       "Training/glioma/sub\\xe9": "its name is not valid UTF-8; rename it"}
    assert "Training/glioma/\\xff\\xfe.jpg" in caplog.text
    json.dumps(data.record(), ensure_ascii=False).encode("utf-8")  # survives the UTF-8 writers


# --- files that do not decode ---------------------------------------------------------------

def _truncated_jpeg(path: Path, source: Path) -> None:
    Image.open(source).convert("L").resize((64, 64)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:300])


@pytest.mark.parametrize("case", ["zero-bytes", "text", "truncated"])
def test_undecodable_files_are_counted_skips_naming_the_file(small, tmp_path, caplog, case):
    bad = small / "Training/notumor/bad.jpg"
    if case == "zero-bytes":
        bad.write_bytes(b"")
    elif case == "text":
        bad.write_text("this is a text file, not a JPEG\n")
    else:
        _truncated_jpeg(bad, small / "Training/notumor/img_000.png")
    data = load_dataset(small, PREP, tmp_path / "cache")
    assert len(data.decoded.train) == 8
    assert [s["path"] for s in data.decoded.skipped] == ["Training/notumor/bad.jpg"]
    assert data.record()["n_unreadable_skipped"] == 1
    assert f"skipping unreadable image {bad}" in caplog.text


def _blank_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit black PNG; zeros compress to almost nothing, so even 900 megapixels is cheap."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    idat += packer.compress(row * (height % 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def huge_pngs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("huge")
    return {"144mp": _blank_png(folder / "144mp.png", 12000, 12000),
            "900mp": _blank_png(folder / "900mp.png", 30000, 30000)}


@contextlib.contextmanager
def no_pillow_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [str(w.message) for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []


@pytest.mark.parametrize("name, size", [("144mp", "12000x12000 pixels (144 megapixels)"),
                                        ("900mp", "900 megapixels")])
def test_huge_images_are_refused_from_the_header(huge_pngs, name, size):
    with no_pillow_warning(), pytest.raises(ImageDecodeError) as error:
        decode_image(huge_pngs[name], 16, 1)
    assert str(error.value) == f"{huge_pngs[name]}: {size}, above the 64-megapixel limit; not decoded"


def test_a_huge_image_in_a_dataset_is_a_counted_skip(small, huge_pngs, tmp_path, caplog):
    os.symlink(huge_pngs["144mp"], small / "Training/pituitary/huge.png")
    with no_pillow_warning():
        data = load_dataset(small, PREP, tmp_path / "cache")
        audited = run_audit(data.index)
    assert [s["path"] for s in data.decoded.skipped] == ["Training/pituitary/huge.png"]
    assert [s["path"] for s in audited.skipped] == ["Training/pituitary/huge.png"]
    assert "huge.png: 12000x12000 pixels (144 megapixels), above the 64-megapixel limit" in caplog.text


# --- degenerate class folders ---------------------------------------------------------------

@pytest.mark.parametrize("folders", [{"Training/glioma": 3, "Testing/glioma": 1}, {"glioma": 5}])
def test_one_class_only_is_refused(make_dataset, folders):
    # A flat folder has no training split yet (protocols draw it), so its message says "images".
    with pytest.raises(DatasetError, match="only class 'glioma' has (training )?images in .*; a classifier needs at "
                                           "least two classes"):
        discover(make_dataset(folders, size=16))


def test_a_class_folder_empty_in_both_splits_is_warned_about(small, caplog):
    for split in ("Training", "Testing"):
        for image in (small / split / "meningioma").iterdir():
            image.unlink()
    index = discover(small)
    assert index.empty_classes == ("meningioma",)
    assert ("class 'meningioma' has no images (empty folder Training/meningioma and Testing/meningioma); "
            "it is left out of training and testing") in caplog.text
    assert index.record()["empty_classes"] == ["meningioma"]


def test_a_class_folder_with_a_typo_is_named(small):
    (small / "Training/pituitary").rename(small / "Training/pituitry")
    with pytest.raises(DatasetError, match=r"/Training/pituitry: unknown class folder 'pituitry' "
                                           r"\(did you mean 'pituitary'\?\)"):
        discover(small)


def test_no_testing_folder_names_both_layouts(small):
    shutil.rmtree(small / "Testing")
    with pytest.raises(DatasetError, match="has a Training folder but no Testing folder .*flat layout"):
        discover(small)
