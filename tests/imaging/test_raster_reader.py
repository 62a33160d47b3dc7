"""PNG and JPEG: 8/16-bit greyscale kept as stored, greyscale RGB accepted, colour refused."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rrg_desk.imaging import ColorImageError, ViewPosition, Window, read_image
from tests.fixtures_dicom import ramp, write_jpeg, write_png


def test_png_8bit(tmp_path):
    raw = ramp(20, 30, 255, np.uint8)
    image = read_image(write_png(tmp_path / "a.png", raw))
    np.testing.assert_array_equal(image.pixels, raw)
    assert (image.source_format, image.bits_stored) == ("PNG", 8)
    assert image.default_window == Window(127.5, 255.0)  # shown exactly as stored
    assert image.pixel_spacing_mm is None


def test_png_16bit_keeps_16bit_values(tmp_path):
    raw = ramp(20, 30, 60000, np.uint16, bottom=300)
    image = read_image(write_png(tmp_path / "b.png", raw))
    np.testing.assert_array_equal(image.pixels, raw)
    assert image.bits_stored == 16
    assert image.default_window is None
    assert image.display_window() == Window(center=30150.0, width=59700.0)


def test_rgb_png_with_equal_channels_is_greyscale(tmp_path):
    raw = ramp(12, 14, 255, np.uint8)
    image = read_image(write_png(tmp_path / "g.png", np.stack([raw] * 3, axis=-1)))
    np.testing.assert_array_equal(image.pixels, raw)


def test_rgba_png_with_equal_channels_is_greyscale(tmp_path):
    raw = ramp(12, 14, 255, np.uint8)
    rgba = np.stack([raw, raw, raw, np.full_like(raw, 255)], axis=-1)
    path = tmp_path / "ga.png"
    Image.fromarray(rgba).save(path)
    np.testing.assert_array_equal(read_image(path).pixels, raw)


def test_colour_png_is_refused(tmp_path):
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0] = 200  # red
    with pytest.raises(ColorImageError):
        read_image(write_png(tmp_path / "c.png", rgb))


def test_palette_png_of_grey_levels_is_accepted(tmp_path):
    raw = ramp(10, 10, 255, np.uint8)
    path = tmp_path / "p.png"
    Image.fromarray(raw).convert("P").save(path)
    np.testing.assert_array_equal(read_image(path).pixels, raw)


def test_jpeg_greyscale(tmp_path):
    raw = ramp(32, 32, 255, np.uint8)
    image = read_image(write_jpeg(tmp_path / "x.jpg", raw))
    assert image.source_format == "JPEG"
    assert np.abs(image.pixels - raw).max() <= 4


def test_jpeg_saved_as_rgb_grey_is_accepted(tmp_path):
    raw = ramp(32, 32, 255, np.uint8)
    image = read_image(write_jpeg(tmp_path / "rgbgrey.jpg", np.stack([raw] * 3, axis=-1)))
    assert np.abs(image.pixels - raw).max() <= 4


def test_colour_jpeg_is_refused(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 2] = 255
    with pytest.raises(ColorImageError):
        read_image(write_jpeg(tmp_path / "blue.jpg", rgb))


def test_jpeg_exif_orientation_is_applied(tmp_path):
    raw = np.zeros((8, 16), np.uint8)
    raw[:, :8] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rot.jpg"
    Image.fromarray(raw).save(path, exif=exif, quality=100)
    image = read_image(path)
    assert image.pixels.shape == (16, 8)
    assert image.pixels[:4].mean() > 200 and image.pixels[-4:].mean() < 50  # white half now on top


@pytest.mark.parametrize(
    ("name", "view"),
    [
        ("chest_lateral.png", ViewPosition.LATERAL),
        ("cxr_lat.png", ViewPosition.LATERAL),
        ("PA.png", ViewPosition.PA),
        ("0001-AP-supine.jpg", ViewPosition.AP),
        ("patient_chest.png", ViewPosition.UNKNOWN),
        ("image.png", ViewPosition.UNKNOWN),
        ("pa_and_lateral.png", ViewPosition.UNKNOWN),  # contradictory
    ],
)
def test_view_from_file_name(tmp_path, name, view):
    path = tmp_path / name
    raw = ramp(8, 8, 255, np.uint8)
    if name.endswith(".jpg"):
        write_jpeg(path, raw)
    else:
        write_png(path, raw)
    assert read_image(path).view is view


def test_png_detected_by_content_not_extension(tmp_path):
    path = write_png(tmp_path / "scan.dcm", ramp(8, 8, 255, np.uint8))
    assert read_image(path).source_format == "PNG"
