"""DICOM / PNG / JPEG -> XrayImage, grouping into studies, windowing. No Qt, no torch."""
from rrg_desk.imaging.errors import (
    ColorImageError,
    CorruptPixelDataError,
    EmptyImageError,
    ImageReadError,
    MissingPixelDataError,
    MultiFrameError,
    NotAnImageError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from rrg_desk.imaging.types import PatientInfo, Study, ViewPosition, Window, XrayImage

# Implemented in reader.py / study.py / windowing.py:
#   read_image(path) -> XrayImage                      (raises ImageReadError subclasses)
#   load_studies(paths) -> (list[Study], list[ImageReadError])
#   apply_window(pixels, window, invert=False) -> uint8 HxW
#   preset_window(image, name) -> Window ; PRESETS = ("default", "full", "lung", "bone")
try:  # the implementation modules arrive with the imaging work; keep the package importable
    from rrg_desk.imaging.reader import read_image
    from rrg_desk.imaging.study import load_studies
    from rrg_desk.imaging.windowing import PRESETS, apply_window, preset_window
except ImportError:  # pragma: no cover - removed once reader/study/windowing exist
    pass

__all__ = [
    "ColorImageError", "CorruptPixelDataError", "EmptyImageError", "ImageReadError",
    "MissingPixelDataError", "MultiFrameError", "NotAnImageError", "UnsupportedImageError",
    "UnsupportedTransferSyntaxError", "PatientInfo", "Study", "ViewPosition", "Window",
    "XrayImage", "read_image", "load_studies", "apply_window", "preset_window", "PRESETS",
]
