"""Decode one image file into a square uint8 array, channels first, ready for the cache.

Each step is a small function: read (PIL) -> pixels in 0..255 -> optional crop to the head
-> pad to a square with black -> resize -> channels first.
"""

import re
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps
from scipy import ndimage

from bench.data.entries import regular_file_problem
from bench.errors import ImageDecodeError

# Modes that are normalised first to a mode handled below (alpha modes keep their alpha).
_CONVERSIONS = {"1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA",
                "CMYK": "RGB", "YCbCr": "RGB", "RGBX": "RGB", "HSV": "RGB", "LAB": "RGB"}
_HIGH_DEPTH = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_EIGHT_BIT = {"L", "LA", "RGB", "RGBA"}
_OPENING_PX = 5        # thinner bright lines (borders, rulers) are not anatomy
_MARGIN = 0.03         # fraction of the head's height/width kept around it
_THRESHOLD = 0.15      # fraction of the 99th percentile that counts as "not background"
# Largest image decoded. Decoding costs about 17 bytes per pixel at its peak (Pillow's image, then
# float32 colour pixels), so 64 megapixels is about 1 GB per decoding thread; the largest MRI
# exports seen are around 16 megapixels. Checked from the header, before any pixel is loaded.
MAX_PIXELS = 64_000_000

# Pillow warns (above 89 megapixels) when it opens a large image. Every image it warns about is
# above MAX_PIXELS, so _read refuses it with a message naming the file and its size; the raw
# warning would only repeat that, without the file name. warnings.catch_warnings swaps
# process-wide state, so the threads that decode in parallel take turns (opening reads only
# the header: microseconds).
_OPEN_LOCK = threading.Lock()


# zoo.entry.RESIZE_FILTERS by name; "area" is Pillow's box filter (the mean over each source area).
RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST,
              "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
              "area": Image.Resampling.BOX}


def decode_image(path: Path, size: int, channels: int, crop_to_content: bool = False,
                 resize: str = "bilinear") -> np.ndarray:
    """Return a uint8 array of shape (channels, size, size); ImageDecodeError if unreadable."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    path = Path(path)
    pixels = _to_uint8(_pixels(_read(path), path))  # (H, W) or (H, W, 3)
    if channels == 1 and pixels.ndim == 3:
        pixels = _luminance(pixels)
    if crop_to_content:
        gray = pixels if pixels.ndim == 2 else _luminance(pixels)
        top, bottom, left, right = content_box(gray)
        pixels = pixels[top:bottom, left:right]
    pixels = _resize(_pad_square(pixels), size, resize)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[None], channels, axis=0)
    else:
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels)


def _read(path: Path) -> Image.Image:
    """Open, fully decode and orient the image; the file is closed on return."""
    # LOAD_TRUNCATED_IMAGES must stay False (Pillow's default): then load() raises on a
    # truncated file instead of silently returning a half-grey image.
    # Checked outside the try below: this is a setup bug, not a bad file to skip.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; truncated files "
                           f"would decode silently (reading {path})")
    problem = regular_file_problem(path)
    if problem is not None:  # never open() a FIFO (it blocks) or a device
        raise ImageDecodeError(f"{path}: {problem}")
    try:
        with _open_quietly(path) as img:
            _check_size(img.size, path)
            img.load()
            # exif_transpose returns a new in-memory image, so it outlives the file handle.
            return ImageOps.exif_transpose(img)
    # Pillow's format plugins raise many exception types on malformed input (OSError,
    # SyntaxError, struct.error, IndexError, DecompressionBombError...); all mean "bad file".
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:  # above 179 megapixels Pillow refuses in open()
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "too large"
        raise ImageDecodeError(f"{path}: {size}, above the {MAX_PIXELS / 1e6:.0f}-megapixel limit; "
                               "not decoded") from None
    except Exception as exc:
        raise ImageDecodeError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from exc


def _open_quietly(path: Path) -> Image.Image:
    """Image.open (header only, pixels load lazily) without Pillow's DecompressionBombWarning."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _check_size(size: tuple[int, int], path: Path) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageDecodeError(f"{path}: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
                               f"above the {MAX_PIXELS / 1e6:.0f}-megapixel limit; not decoded")


def _pixels(img: Image.Image, path: Path) -> np.ndarray:
    """Float32 pixels in 0..255: (H, W) for grey sources, (H, W, 3) for colour ones."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in _CONVERSIONS:
        img = img.convert(_CONVERSIONS[img.mode])
    if img.mode in _HIGH_DEPTH:
        return _scale_by_max(np.asarray(img, dtype=np.float32))
    if img.mode not in _EIGHT_BIT:
        raise ImageDecodeError(f"{path}: unsupported image mode {img.mode!r}")
    arr = np.asarray(img, dtype=np.float32)
    if img.mode in ("LA", "RGBA"):
        # Composite over black, the MRI background: colour * alpha, then drop alpha.
        arr = arr[..., :-1] * (arr[..., -1:] / 255.0)
    return arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr


def _scale_by_max(arr: np.ndarray) -> np.ndarray:
    """Map 16/32-bit values to 0..255 by the image's own maximum.

    MRI exports often fill only 12 of 16 bits, so a fixed 65535 scale would leave them
    nearly black, and Pillow's convert('L') clips everything above 255 to white.
    """
    arr = np.clip(np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)
    peak = float(arr.max()) if arr.size else 0.0
    return arr * (255.0 / peak) if peak > 0 else arr


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma, the same weights as Pillow's convert('L')."""
    return _to_uint8(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))


def _pad_square(pixels: np.ndarray) -> np.ndarray:
    """Pad with black to a centred square, so resizing never stretches the anatomy."""
    h, w = pixels.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    pad = [(top, side - h - top), (left, side - w - left)] + [(0, 0)] * (pixels.ndim - 2)
    return np.pad(pixels, pad)


def _resize(pixels: np.ndarray, size: int, resize: str = "bilinear") -> np.ndarray:
    """Resize a square (H, W) or (H, W, 3) uint8 array; antialiased bilinear unless told otherwise."""
    if pixels.shape[0] == size:
        return pixels
    # Pillow's bilinear filter widens with the scale factor, i.e. it antialiases downscaling.
    img = Image.fromarray(pixels).resize((size, size), RESAMPLING[resize])
    return np.asarray(img)


def content_box(gray: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the head in a 2-D uint8 image; bottom/right exclusive.

    Thin bright lines at the edges (frames, rulers) are removed by a binary opening and
    the head is the largest remaining bright component. A blank image gives the full box.
    """
    if gray.ndim != 2:
        raise ValueError(f"content_box needs a 2-D grayscale array, got shape {gray.shape}")
    h, w = gray.shape
    mask = _foreground(gray)
    labels, count = ndimage.label(mask)
    if count == 0:
        return 0, h, 0, w
    largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    rows, cols = ndimage.find_objects(labels, max_label=largest)[largest - 1]
    # Margin relative to the head, not the image: the head then fills the same fraction of
    # the output whatever the original framing.
    dy = int(np.ceil(_MARGIN * (rows.stop - rows.start)))
    dx = int(np.ceil(_MARGIN * (cols.stop - cols.start)))
    return (max(rows.start - dy, 0), min(rows.stop + dy, h),
            max(cols.start - dx, 0), min(cols.stop + dx, w))


def _foreground(gray: np.ndarray) -> np.ndarray:
    """Bright-enough pixels, with structures thinner than _OPENING_PX erased."""
    # A fraction of a high percentile of the interior, not of the maximum: saturated pixels
    # (burnt-in text, a white frame, which on a small image is several % of all pixels)
    # must not push the threshold up into the dim rim of the head.
    b = _OPENING_PX
    inner = gray[b:-b, b:-b] if min(gray.shape) > 4 * b else gray
    level = max(_THRESHOLD * float(np.percentile(inner, 99)), 1.0)
    mask = (gray > level).view(np.uint8)
    # Opening with a square = min filter then max filter; both are separable, so this is
    # several times faster than binary_opening. Zero padding (not reflection) so that a
    # thin line on the edge is not mirrored into a thick one that survives.
    eroded = ndimage.minimum_filter(mask, size=_OPENING_PX, mode="constant", cval=0)
    return ndimage.maximum_filter(eroded, size=_OPENING_PX, mode="constant", cval=0) > 0
