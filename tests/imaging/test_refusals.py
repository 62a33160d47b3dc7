"""Every refusal: the typed error with a readable message; never a crash, never a hang."""
from __future__ import annotations

import numpy as np
import pytest

from rrg_desk.imaging import (
    ColorImageError,
    CorruptPixelDataError,
    EmptyImageError,
    ImageReadError,
    MissingPixelDataError,
    MultiFrameError,
    NotAnImageError,
    read_image,
)
from rrg_desk.imaging.errors import ImageTooLargeError, UnreadableFileError, UnsupportedImageError
from tests.fixtures_dicom import ramp, write_dicom, write_png

RAW = ramp(16, 16, 4095)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"Findings: no acute cardiopulmonary process.\n", NotAnImageError),
        (bytes(range(256)) * 4, NotAnImageError),
        (b"", NotAnImageError),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, CorruptPixelDataError),  # PNG magic, no image
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, CorruptPixelDataError),  # JPEG magic, no image
        (b"\x00" * 128 + b"DICM" + b"\xff" * 64, ImageReadError),  # DICOM magic, junk after
    ],
)
def test_non_images(tmp_path, content, error):
    path = tmp_path / "file.dcm"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        read_image(path)
    assert info.value.user_message.startswith("file.dcm: ")


def test_directory_is_refused(tmp_path):
    with pytest.raises(NotAnImageError, match="folder"):
        read_image(tmp_path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(UnreadableFileError):
        read_image(tmp_path / "nope.dcm")


def test_multi_frame(tmp_path):
    path = write_dicom(tmp_path / "mf.dcm", np.stack([RAW, RAW, RAW]), number_of_frames=3)
    with pytest.raises(MultiFrameError, match="3 frames"):
        read_image(path)


def test_rgb_dicom(tmp_path):
    with pytest.raises(ColorImageError, match="3 samples per pixel"):
        read_image(write_dicom(tmp_path / "rgb.dcm", np.zeros((8, 8, 3), np.uint8)))


def test_greyscale_pixels_with_colour_photometric(tmp_path):
    with pytest.raises(ColorImageError):
        read_image(write_dicom(tmp_path / "pal.dcm", RAW, photometric="PALETTE COLOR"))


def test_samples_per_pixel_three_with_monochrome_label(tmp_path):
    with pytest.raises(ColorImageError):
        read_image(write_dicom(tmp_path / "spp.dcm", RAW, samples_per_pixel=3))


def test_missing_pixel_data(tmp_path):
    with pytest.raises(MissingPixelDataError) as info:
        read_image(write_dicom(tmp_path / "np.dcm", RAW, drop_pixel_data=True))
    assert "no Pixel Data" in info.value.user_message


def test_truncated_pixel_data(tmp_path):
    with pytest.raises(CorruptPixelDataError, match="truncated"):
        read_image(write_dicom(tmp_path / "tr.dcm", ramp(64, 64, 4095), truncate=True))


@pytest.mark.parametrize(("rows", "columns"), [(0, 16), (16, 0), (0, 0)])
def test_zero_size(tmp_path, rows, columns):
    with pytest.raises(EmptyImageError):
        read_image(write_dicom(tmp_path / "z.dcm", RAW, rows=rows, columns=columns))


def test_absurd_dimensions_refused_before_decoding(tmp_path):
    # 60000 x 60000 x 2 bytes would be 7 GB; the header alone must be enough to refuse
    path = write_dicom(tmp_path / "huge.dcm", RAW, rows=60000, columns=60000)
    with pytest.raises(ImageTooLargeError):
        read_image(path)
    assert isinstance(ImageTooLargeError(path), UnsupportedImageError)


def test_header_size_disagreeing_with_data(tmp_path):
    with pytest.raises(CorruptPixelDataError):
        read_image(write_dicom(tmp_path / "mismatch.dcm", RAW, rows=32))


def test_truncated_png(tmp_path):
    path = write_png(tmp_path / "t.png", ramp(64, 64, 255, np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptPixelDataError):
        read_image(path)


def test_every_refusal_message_is_plain_language():
    from rrg_desk.imaging import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, ImageReadError)]
    assert len(classes) >= 10
    for cls in classes:
        message = cls("study/img.dcm", "detail").user_message
        assert message.startswith("img.dcm: ") and message.endswith("(detail)")
        assert "Traceback" not in message and "Error" not in message


def test_named_pipe_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    with pytest.raises(NotAnImageError, match="regular file"):
        read_image(fifo)
