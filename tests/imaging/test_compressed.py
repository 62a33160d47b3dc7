"""Compressed transfer syntaxes decode to the same pixels (lossless) or close (JPEG)."""
from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import (
    HTJ2KLossless,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    MPEG2MPML,
    RLELossless,
)

from rrg_desk.imaging import (
    CorruptPixelDataError,
    UnsupportedTransferSyntaxError,
    read_image,
)
from rrg_desk.imaging.errors import DecoderFailedError
from tests.fixtures_dicom import ramp, write_dicom

RAW12 = ramp(40, 56, 4095)


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_lossless_syntaxes_round_trip_exactly(tmp_path, syntax):
    image = read_image(write_dicom(tmp_path / "c.dcm", RAW12, bits_stored=12, transfer_syntax=syntax))
    np.testing.assert_array_equal(image.pixels, RAW12)
    assert image.metadata["TransferSyntax"] == syntax.name


def test_rle_monochrome1_signed(tmp_path):
    signed = ramp(16, 24, 2047, np.int16, bottom=-2048)
    path = write_dicom(tmp_path / "r.dcm", signed, bits_stored=12, photometric="MONOCHROME1", transfer_syntax=RLELossless)
    np.testing.assert_array_equal(read_image(path).pixels, -1 - signed.astype(np.float32))


def test_jpeg_baseline_8bit_decodes_close_to_source(tmp_path):
    raw = ramp(64, 64, 255, np.uint8)
    image = read_image(write_dicom(tmp_path / "j.dcm", raw, transfer_syntax=JPEGBaseline8Bit))
    assert image.pixels.shape == raw.shape
    assert np.abs(image.pixels - raw).max() <= 4  # lossy, but a smooth ramp survives
    assert image.metadata["TransferSyntax"] == JPEGBaseline8Bit.name


def test_jpeg2000_lossy_syntax_is_readable(tmp_path):
    path = write_dicom(
        tmp_path / "j2k.dcm", RAW12, bits_stored=12, transfer_syntax=JPEG2000, encoding_options={"j2k_psnr": [70]}
    )
    image = read_image(path)
    assert image.pixels.shape == RAW12.shape
    assert np.abs(image.pixels - RAW12).mean() < 16  # lossy at ~70 dB PSNR: close, not exact


def test_syntax_without_decoder_is_refused(tmp_path):
    path = write_dicom(tmp_path / "mpeg.dcm", RAW12, transfer_syntax=MPEG2MPML)
    with pytest.raises(UnsupportedTransferSyntaxError, match="cannot decode"):
        read_image(path)


def test_unknown_private_syntax_is_refused(tmp_path):
    path = write_dicom(tmp_path / "priv.dcm", RAW12, transfer_syntax="1.3.6.1.4.1.99999.1")
    with pytest.raises(UnsupportedTransferSyntaxError):
        read_image(path)


def test_decoder_failure_is_typed_both_ways(tmp_path):
    # raw bytes declared as HTJ2K: a decoder exists and fails on them
    path = write_dicom(tmp_path / "bad.dcm", RAW12, transfer_syntax=HTJ2KLossless)
    with pytest.raises(DecoderFailedError) as info:
        read_image(path)
    assert isinstance(info.value, UnsupportedTransferSyntaxError)
    assert isinstance(info.value, CorruptPixelDataError)


def test_truncated_compressed_file_is_refused(tmp_path):
    path = write_dicom(tmp_path / "t.dcm", RAW12, bits_stored=12, transfer_syntax=JPEGLSLossless, truncate=True)
    with pytest.raises(CorruptPixelDataError):
        read_image(path)
