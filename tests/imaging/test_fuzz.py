"""Random bytes, with and without a DICOM preamble or image magic, only ever raise ImageReadError."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrg_desk.imaging import ImageReadError, read_image

PREFIXES = [b"", b"\x00" * 128 + b"DICM", b"\x08\x00\x05\x00CS", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=600))
def test_random_bytes_raise_only_image_read_error(prefix, body):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.bin"
        path.write_bytes(prefix + body)
        try:
            image = read_image(path)
        except ImageReadError as error:
            assert error.user_message.startswith("fuzz.bin: ")
        else:  # vanishingly rare, but a parse that succeeds must give a real image
            assert image.pixels.ndim == 2 and image.pixels.size > 0
