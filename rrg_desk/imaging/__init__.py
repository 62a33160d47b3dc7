"""DICOM / PNG / JPEG -> XrayImage, grouping into studies, windowing. No Qt, no torch.

    read_image(path) -> XrayImage                      (raises ImageReadError subclasses)
    load_studies(paths) -> (list[Study], list[ImageReadError])
    apply_window(pixels, window, invert=False) -> uint8 HxW
    preset_window(image, name) -> Window ; PRESETS = ("default", "full", "lung", "bone")
"""
from rrg_desk.imaging.errors import (
    ColorImageError,
    CorruptPixelDataError,
    DecoderFailedError,
    EmptyImageError,
    ImageReadError,
    ImageTooLargeError,
    MissingPixelDataError,
    MultiFrameError,
    NotAnImageError,
    UnreadableFileError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from rrg_desk.imaging.reader import read_image
from rrg_desk.imaging.study import load_studies
from rrg_desk.imaging.types import PatientInfo, Study, ViewPosition, Window, XrayImage
from rrg_desk.imaging.windowing import PRESETS, apply_window, preset_window

__all__ = [
    "ColorImageError", "CorruptPixelDataError", "EmptyImageError", "ImageReadError",
    "MissingPixelDataError", "MultiFrameError", "NotAnImageError",
    "UnsupportedImageError", "UnsupportedTransferSyntaxError", "DecoderFailedError",
    "ImageTooLargeError", "UnreadableFileError", "PatientInfo", "Study", "ViewPosition",
    "Window", "XrayImage", "read_image", "load_studies", "apply_window", "preset_window", "PRESETS",
]
