"""`read_image(path)`: the one entry point; the boundary where foreign exceptions become ours."""
from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from rrg_desk.imaging.errors import (
    CorruptPixelDataError,
    ImageReadError,
    ImageTooLargeError,
    NotAnImageError,
    UnreadableFileError,
)
from rrg_desk.imaging.raster import read_raster
from rrg_desk.imaging.sniff import FileFormat, sniff_format
from rrg_desk.imaging.types import XrayImage

log = logging.getLogger(__name__)


def read_image(path: str | Path) -> XrayImage:
    """Read a DICOM, PNG or JPEG radiograph; the format is detected from the content.

    Raises only ImageReadError subclasses, each with a `user_message` for the radiologist.
    """
    path = Path(path)
    if path.is_dir():
        raise NotAnImageError(path, "this is a folder")
    if path.exists() and not path.is_file():
        # a FIFO or device would block the read forever
        raise NotAnImageError(path, "not a regular file")
    try:
        file_format = sniff_format(path)
    except OSError as exc:
        raise UnreadableFileError(path, exc.strerror or type(exc).__name__) from exc
    if file_format is None:
        raise NotAnImageError(path)
    try:
        if file_format is FileFormat.DICOM:
            from rrg_desk.imaging.dicom import read_dicom  # pydicom only when a DICOM is read (~0.4 s)

            return read_dicom(path)
        return read_raster(path, file_format)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(path) from exc
    except MemoryError as exc:
        raise ImageTooLargeError(path, "not enough memory") from exc
    except OSError as exc:
        # Pillow reports truncated/broken streams as OSError; so does a vanished file
        if not path.exists():
            raise UnreadableFileError(path) from exc
        log.info("%s: %s read failed: %s", path.name, file_format.value, exc)
        raise CorruptPixelDataError(path) from exc
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the boundary: decoders raise anything on junk (even panics)
        log.info("%s: %s read failed: %r", path.name, file_format.value, exc)
        raise CorruptPixelDataError(path, f"unreadable {file_format.value} data") from exc
