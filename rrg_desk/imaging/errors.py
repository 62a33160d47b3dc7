"""Typed refusals of the readers, each with a sentence a radiologist understands."""
from __future__ import annotations

from pathlib import Path

from rrg_desk.errors import UserFacingError

# Images above this many pixels are refused before decoding, to keep memory bounded
# (a 43 x 43 cm detector at 0.1 mm is ~18 megapixels).
MAX_PIXELS = 100_000_000


def file_message(path: Path | None, reason: str, detail: str = "", unnamed: str = "The file") -> str:
    """One line naming the file first: "img.dcm: <reason> (<detail>)"."""
    message = f"{path.name if path is not None else unnamed}: {reason}"
    return f"{message} ({detail})" if detail else message


class ImageReadError(UserFacingError):
    """Base class: the file cannot be shown. Each subclass words its `reason`."""

    reason = "The file cannot be opened as a chest X-ray."

    def __init__(self, path: str | Path | None = None, detail: str = "") -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(file_message(self.path, self.reason, detail), detail)


class NotAnImageError(ImageReadError):
    reason = "this is not a DICOM, PNG or JPEG image."


class EmptyImageError(ImageReadError):
    reason = "the image has no pixels (zero width or height)."


class MissingPixelDataError(ImageReadError):
    reason = "the DICOM file holds no image (no Pixel Data); it may be a report or a structured document."


class CorruptPixelDataError(ImageReadError):
    reason = "the image data is damaged or incomplete (the file may be truncated)."


class MultiFrameError(ImageReadError):
    reason = "multi-frame images (cine, tomosynthesis) are not supported; open a single-frame radiograph."


class ColorImageError(ImageReadError):
    reason = "colour images are not supported; chest radiographs must be greyscale."


class UnsupportedTransferSyntaxError(ImageReadError):
    reason = "the image is compressed in a format this workstation cannot decode."


class UnsupportedImageError(ImageReadError):
    reason = "this kind of image is not supported."


class DecoderFailedError(UnsupportedTransferSyntaxError, CorruptPixelDataError):
    """A compressed image whose decoder failed: damaged data or an unreadable codec variant.

    Deriving from both lets callers treat it as either kind of refusal.
    """

    reason = "the compressed image data could not be decoded (damaged, or a codec variant this workstation cannot read)."


class ImageTooLargeError(UnsupportedImageError):
    reason = "the image is implausibly large for a radiograph and was not loaded (memory safety)."


class UnreadableFileError(ImageReadError):
    reason = "the file does not exist or cannot be read (check the path and permissions)."
