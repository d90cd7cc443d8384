"""Tests for bench.data.decode: every pixel format, alpha, 16-bit scaling, padding, corrupt
files and the crop-to-content box. Every image is generated here, in tmp_path."""

import numpy as np
import pytest
from PIL import Image, ImageFile

from bench.data.decode import content_box, decode_image
from bench.errors import ImageDecodeError

W, H = 24, 16  # non-square on purpose: every mode test also goes through padding


def _left_bright(peak: float, dtype) -> np.ndarray:
    """H x W array, left half at `peak`, right half at peak / 8."""
    arr = np.full((H, W), peak / 8, dtype=np.float64)
    arr[:, : W // 2] = peak
    return arr.astype(dtype)


def _make(mode: str) -> Image.Image:
    gray = Image.fromarray(_left_bright(240, np.uint8))
    rgb = Image.merge("RGB", [gray] * 3)
    opaque = Image.new("L", (W, H), 255)
    makers = {
        "L": lambda: gray,
        "RGB": lambda: rgb,
        "RGBA": lambda: Image.merge("RGBA", [gray] * 3 + [opaque]),
        "LA": lambda: Image.merge("LA", [gray, opaque]),
        "P": lambda: rgb.quantize(colors=4),
        "CMYK": lambda: rgb.convert("CMYK"),
        "I;16": lambda: Image.fromarray(_left_bright(3000, np.uint16)),
        # convert() would clip to 255, so build the big-endian image from raw bytes.
        "I;16B": lambda: Image.frombytes("I;16B", (W, H), _left_bright(3000, ">u2").tobytes()),
        "I": lambda: Image.fromarray(_left_bright(70000, np.int32)),
        "F": lambda: Image.fromarray(_left_bright(1.5, np.float32)),
    }
    return makers[mode]()


# (mode, file format): the format is one that keeps the mode on disk.
CASES = [("L", "PNG"), ("L", "JPEG"), ("RGB", "PNG"), ("RGB", "JPEG"), ("RGBA", "PNG"),
         ("LA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("I;16B", "TIFF"),
         ("I", "TIFF"), ("F", "TIFF")]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mode,fmt", CASES)
def test_every_mode_decodes_with_content(tmp_path, mode, fmt, channels):
    path = tmp_path / f"img.{fmt.lower()}"
    _make(mode).save(path, fmt)
    with Image.open(path) as check:
        assert check.mode == mode  # else this case would not test what it claims
    out = decode_image(path, 32, channels)
    assert out.shape == (channels, 32, 32) and out.dtype == np.uint8
    band = out[:, 14:18].astype(float)  # rows inside the image, away from the padding
    assert band[:, :, :14].mean() > 150 > 60 > band[:, :, 18:].mean()


def test_16bit_with_12bit_range_scales_by_own_max(tmp_path):
    values = np.linspace(0, 4095, 32 * 32).reshape(32, 32).astype(np.uint16)
    path = tmp_path / "mri12.png"
    Image.fromarray(values).save(path)
    out = decode_image(path, 32, 1)[0]
    assert out.max() == 255 and out.min() == 0
    assert (out == 255).mean() < 0.01  # not clipped to white
    np.testing.assert_allclose(out, values * 255.0 / 4095, atol=0.51)


def test_all_zero_16bit_stays_zero(tmp_path):
    path = tmp_path / "zero.png"
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(path)
    assert decode_image(path, 8, 1).max() == 0


def test_alpha_is_composited_over_black(tmp_path):
    alpha = np.zeros((8, 8), np.uint8)
    alpha[:, 4:] = 255
    alpha[0, :] = 128
    rgba = np.dstack([np.full((8, 8, 3), 255, np.uint8), alpha])
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = decode_image(path, 8, 3)
    assert (out[:, 1:, :4] == 0).all()  # fully transparent white -> black
    assert (out[:, 1:, 4:] == 255).all()
    assert (out[:, 0] == 128).all()


def test_gray_to_three_channels_gives_identical_planes(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).save(path)
    out = decode_image(path, 8, 3)
    assert (out[0] == out[1]).all() and (out[1] == out[2]).all()
    assert (out[0] == decode_image(path, 8, 1)[0]).all()
    assert out[0, 7, 7] == 252


def test_colour_to_one_channel_is_luminance(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)
    assert (decode_image(path, 8, 1) == 76).all()  # 0.299 * 255


@pytest.mark.parametrize("shape", [(20, 40), (40, 20)])
def test_non_square_is_padded_centred_not_stretched(tmp_path, shape):
    path = tmp_path / "rect.png"
    Image.fromarray(np.full(shape, 255, np.uint8)).save(path)
    out = decode_image(path, 20, 1)[0]
    out = out if shape[0] < shape[1] else out.T  # make the band horizontal
    assert (out[:4] == 0).all() and (out[16:] == 0).all()  # black padding above and below
    assert (out[6:14] == 255).all()  # white band in the middle, full width


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 20), np.uint8)
    arr[:, :10] = 255  # left half white; orientation 6 rotates it 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.png"
    Image.fromarray(arr).save(path, exif=exif)
    out = decode_image(path, 20, 1)[0]
    assert out[:8, 6:14].min() == 255 and out[12:, 6:14].max() == 0


def _noise_jpeg(path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (128, 128), dtype=np.uint8)).save(path, quality=95)


def test_intact_noise_jpeg_decodes(tmp_path):
    path = tmp_path / "ok.jpg"
    _noise_jpeg(path)
    assert decode_image(path, 16, 1).shape == (1, 16, 16)


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "missing"])
def test_unreadable_files_raise_decode_error_naming_file(tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "garbage":
        path.write_bytes(b"this is not an image at all" * 10)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        _noise_jpeg(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match=str(path)):
        decode_image(path, 16, 1)


def test_refuses_to_run_with_truncated_loading_enabled(tmp_path, monkeypatch):
    # Someone else turning this global on would make truncated files decode silently.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = tmp_path / "ok.jpg"
    _noise_jpeg(path)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        decode_image(path, 16, 1)


def test_bad_channels_is_value_error(tmp_path):
    with pytest.raises(ValueError, match="2"):
        decode_image(tmp_path / "x.png", 16, 2)


def _head(size=128, frame=0, line_edge=None):
    """Bright textured ellipse on black, optionally with a white frame or one edge line."""
    yy, xx = np.mgrid[:size, :size]
    inside = ((yy - 70) / 30) ** 2 + ((xx - 64) / 22) ** 2 <= 1
    img = np.where(inside, 120 + (xx * 7 + yy * 3) % 100, 0).astype(np.uint8)
    if frame:
        img[:frame], img[-frame:], img[:, :frame], img[:, -frame:] = 255, 255, 255, 255
    edge = {"top": (0, slice(None)), "bottom": (-1, slice(None)),
            "left": (slice(None), 0), "right": (slice(None), -1)}.get(line_edge)
    if edge:
        img[edge] = 255
    return img, inside


def _expected_box(inside):
    rows, cols = np.nonzero(inside)
    my = int(np.ceil(0.03 * (rows.max() + 1 - rows.min())))
    mx = int(np.ceil(0.03 * (cols.max() + 1 - cols.min())))
    return rows.min() - my, rows.max() + 1 + my, cols.min() - mx, cols.max() + 1 + mx


@pytest.mark.parametrize("frame,line_edge", [(0, None), (1, None), (2, None), (3, None),
                                             (0, "top"), (0, "bottom"), (0, "left"),
                                             (0, "right")])
def test_content_box_finds_head_despite_thin_borders(frame, line_edge):
    img, inside = _head(frame=frame, line_edge=line_edge)
    box = content_box(img)
    assert np.abs(np.subtract(box, _expected_box(inside))).max() <= 2, box


def test_content_box_ignores_line_touching_the_head():
    img, inside = _head()
    img[99, :] = 255  # the head's lowest row is 99: a ruler line across the image touches it
    assert np.abs(np.subtract(content_box(img), _expected_box(inside))).max() <= 2


def test_content_box_keeps_dim_rim_next_to_saturated_frame():
    yy, xx = np.mgrid[:128, :128]
    r2 = ((yy - 64) / 40) ** 2 + ((xx - 64) / 40) ** 2
    img = np.where(r2 <= 1, 30, 0) + np.where(r2 <= 0.6, 30, 0)  # rim 30, core 60
    img = img.astype(np.uint8)
    img[:3], img[-3:], img[:, :3], img[:, -3:] = 255, 255, 255, 255
    assert np.abs(np.subtract(content_box(img), _expected_box(r2 <= 1))).max() <= 2


def test_content_box_of_blank_image_is_whole_image():
    assert content_box(np.zeros((30, 50), np.uint8)) == (0, 30, 0, 50)


def test_content_box_rejects_colour_array():
    with pytest.raises(ValueError, match="2-D"):
        content_box(np.zeros((8, 8, 3), np.uint8))


def test_crop_to_content_makes_small_head_fill_output(tmp_path):
    yy, xx = np.mgrid[:200, :200]
    img = np.where((yy - 100) ** 2 + (xx - 100) ** 2 <= 15 ** 2, 200, 0).astype(np.uint8)
    # A 2-px frame has more pixels than the disc: only the opening stops it from winning.
    img[:2], img[-2:], img[:, :2], img[:, -2:] = 255, 255, 255, 255
    path = tmp_path / "small_head.png"
    Image.fromarray(img).save(path)
    plain = decode_image(path, 64, 1)[0]
    cropped = decode_image(path, 64, 1, crop_to_content=True)[0]
    assert (plain[2:-2, 2:-2] > 100).mean() < 0.05  # inside the (resized) frame
    assert (cropped > 100).mean() > 0.6  # disc fills ~pi/4 of its box, less the margin
    cols = np.nonzero((cropped > 100).any(axis=0))[0]
    assert cols.max() - cols.min() >= 0.8 * 64
