"""Real-world files shipped inside the pydicom wheel (only local ones; nothing downloads).

get_testdata_files(pattern) also fetches pydicom's external data set, so this module lists
the wheel's own test_files folder and calls get_testdata_file only for names found there.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import pydicom.data
from pydicom.data import get_testdata_file

from rrg_desk.imaging import (
    ColorImageError,
    CorruptPixelDataError,
    MissingPixelDataError,
    MultiFrameError,
    ViewPosition,
    read_image,
)


WHEEL_FILES = Path(pydicom.data.__file__).parent / "test_files"


def _local(name: str) -> Path:
    """A test file that is inside the installed wheel; skip rather than trigger a download."""
    if not (WHEEL_FILES / name).is_file():
        pytest.skip(f"{name} is not in the local pydicom wheel")
    return Path(get_testdata_file(name))


def _cr_files() -> list[Path]:
    """The CR radiographs of the wheel's DICOMDIR test set (MONOCHROME1, AP and LL views)."""
    return sorted(p for p in (WHEEL_FILES / "dicomdirtests").rglob("*") if p.is_file() and p.parent.name.startswith("CR"))


def test_cr_monochrome1_files_are_inverted_against_raw_pixels():
    files = _cr_files()
    assert len(files) >= 3
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.PhotometricInterpretation == "MONOCHROME1"
        image = read_image(path)
        raw = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        # inversion reverses order: the brightest display pixel is the smallest raw value
        assert np.argmax(image.pixels) == np.argmin(raw)
        np.testing.assert_allclose(image.pixels + raw, (image.pixels + raw).flat[0], rtol=1e-5)
        assert image.pixel_spacing_mm is not None


def test_cr_views_from_view_position():
    views = {read_image(p).view for p in _cr_files()}
    assert ViewPosition.LATERAL in views and ViewPosition.AP in views


def test_ct_small_rescaled_to_hounsfield_units():
    path = _local("CT_small.dcm")
    ds = pydicom.dcmread(path)
    image = read_image(path)
    np.testing.assert_allclose(image.pixels, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert image.pixels.min() < 0  # air is negative HU


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_compressed_mr_matches_uncompressed(name):
    reference = read_image(_local("MR_small.dcm")).pixels
    np.testing.assert_array_equal(read_image(_local(name)).pixels, reference)


def test_big_endian_matches_little_endian():
    np.testing.assert_array_equal(
        read_image(_local("MR_small_bigendian.dcm")).pixels, read_image(_local("MR_small.dcm")).pixels
    )


def test_deflated_transfer_syntax():
    assert read_image(_local("image_dfl.dcm")).pixels.shape == (512, 512)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("MR_truncated.dcm", CorruptPixelDataError),
        ("SC_rgb_jpeg.dcm", ColorImageError),
        ("examples_palette.dcm", ColorImageError),
        ("reportsi.dcm", MissingPixelDataError),
        ("rtdose.dcm", MultiFrameError),
        ("JPEG-lossy.dcm", CorruptPixelDataError),  # a 12-bit JPEG no installed plugin decodes
    ],
)
def test_refusals_on_real_files(name, error):
    with pytest.raises(error):
        read_image(_local(name))


def test_get_testdata_file_for_a_local_name_stays_local():
    assert Path(get_testdata_file("CT_small.dcm")).exists()
