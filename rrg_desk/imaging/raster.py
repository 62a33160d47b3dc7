"""PNG / JPEG file -> XrayImage through Pillow (8- and 16-bit greyscale).

Such files are display-ready exports: values are used as they are (brighter = denser),
16-bit PNGs keep their 16-bit values, and EXIF orientation is applied. The view comes
from the file name when it names one ("..._lateral.png", "pa.jpg"), else UNKNOWN.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from rrg_desk.imaging.errors import (
    MAX_PIXELS,
    ColorImageError,
    CorruptPixelDataError,
    EmptyImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from rrg_desk.imaging.sniff import FileFormat
from rrg_desk.imaging.types import Window, XrayImage
from rrg_desk.imaging.views import view_from_text

log = logging.getLogger(__name__)

_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
_GREY_TOLERANCE = 3  # levels of 255
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def read_raster(path: Path, file_format: FileFormat) -> XrayImage:
    """Read a PNG or JPEG. Raises ImageReadError subclasses; Pillow's own exceptions are
    mapped by the caller (reader.read_image)."""
    with warnings.catch_warnings():
        # Pillow's DecompressionBombWarning is superseded by our own size limit below
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            width, height = image.size  # header only: nothing decoded yet
            if width <= 0 or height <= 0:
                raise EmptyImageError(path, f"{width} x {height}")
            if width * height > MAX_PIXELS:
                raise ImageTooLargeError(path, f"{width} x {height} pixels declared")
            if getattr(image, "n_frames", 1) > 1:
                raise UnsupportedImageError(path, "animated or multi-page image")
            image.load()
            image = ImageOps.exif_transpose(image)
            pixels, bits = _greyscale_values(image, path)
    if pixels.size == 0:
        raise EmptyImageError(path)
    return XrayImage(
        pixels=pixels,
        view=view_from_text(path.stem),
        pixel_spacing_mm=None,
        # 8-bit exports are meant to be shown exactly as stored: black 0 .. white 255
        default_window=Window(center=127.5, width=255.0) if bits == 8 else None,
        source_path=path,
        source_format=file_format.value,
        bits_stored=bits,
        metadata={"PillowMode": image.mode},
    )


def _greyscale_values(image: Image.Image, path: Path) -> tuple[np.ndarray, int]:
    """float32 HxW values and the bit depth they came from."""
    mode = image.mode
    if mode in ("L", "1"):
        return np.asarray(image.convert("L"), dtype=np.float32), 8
    if mode == "LA":
        return np.asarray(image.getchannel("L"), dtype=np.float32), 8
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image)
        if values.ndim != 2:
            raise CorruptPixelDataError(path, f"unexpected array shape {values.shape}")
        return values.astype(np.float32), 16
    if mode == "F":
        return np.nan_to_num(np.asarray(image, dtype=np.float32)), 32
    if mode in _COLOUR_MODES:
        rgb = np.asarray(image.convert("RGB"))
        if _channels_equal(rgb):
            return rgb.mean(axis=2, dtype=np.float32), 8
        raise ColorImageError(path, f"{mode} image with colour content")
    raise UnsupportedImageError(path, f"pixel mode {mode}")


def _channels_equal(rgb: np.ndarray) -> bool:
    """Greyscale saved as RGB (common for exported X-rays) has equal channels; JPEG's
    chroma rounding may leave them a few levels apart, which is still greyscale."""
    channels = rgb.astype(np.int16)
    spread = channels.max(axis=2) - channels.min(axis=2)
    return int(spread.max(initial=0)) <= _GREY_TOLERANCE
