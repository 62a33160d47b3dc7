"""The image and study types every layer above imaging speaks (no Qt, no torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np


class ViewPosition(str, Enum):
    PA = "PA"
    AP = "AP"
    LATERAL = "LATERAL"
    UNKNOWN = "UNKNOWN"

    @property
    def is_frontal(self) -> bool:
        return self in (ViewPosition.PA, ViewPosition.AP, ViewPosition.UNKNOWN)


@dataclass(frozen=True)
class Window:
    """A display window: values in [center - width/2, center + width/2] span black..white."""

    center: float
    width: float

    def __post_init__(self) -> None:
        if not (self.width > 0):
            raise ValueError(f"window width must be positive, got {self.width}")


@dataclass
class PatientInfo:
    name: str = ""
    patient_id: str = ""
    birth_date: str = ""  # DICOM DA, YYYYMMDD, may be empty
    sex: str = ""


@dataclass
class XrayImage:
    """One radiograph, ready to display.

    `pixels` is float32 HxW in display orientation: brighter = denser (bone white),
    i.e. MONOCHROME1 already inverted, Modality LUT (rescale) applied. The VOI window
    read from the file is kept separately in `default_window` so the viewer can
    re-window the full dynamic range. Exception: a VOI LUT Sequence (often non-linear,
    not expressible as a window) is applied to `pixels`, and `default_window` then spans
    the LUT's output range (metadata["VOILUTApplied"] == "yes"); see imaging/dicom.py.
    """

    pixels: np.ndarray
    view: ViewPosition = ViewPosition.UNKNOWN
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing
    default_window: Window | None = None
    source_path: Path | None = None
    source_format: str = ""  # "DICOM", "PNG", "JPEG"
    bits_stored: int = 8
    patient: PatientInfo = field(default_factory=PatientInfo)
    study_uid: str = ""
    series_uid: str = ""
    sop_instance_uid: str = ""
    study_date: str = ""
    accession_number: str = ""
    study_description: str = ""
    modality: str = ""
    metadata: dict[str, str] = field(default_factory=dict)  # other readable header fields

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def full_range_window(self) -> Window:
        lo, hi = float(self.pixels.min()), float(self.pixels.max())
        return Window(center=(lo + hi) / 2.0, width=max(hi - lo, 1e-6))

    def display_window(self) -> Window:
        return self.default_window or self.full_range_window()


@dataclass
class Study:
    """Images of one examination: the frontal view drives regions, the lateral helps."""

    study_uid: str
    images: list[XrayImage]
    patient: PatientInfo = field(default_factory=PatientInfo)
    study_date: str = ""
    accession_number: str = ""
    description: str = ""
    source: Path | None = None  # folder or first file it was opened from

    @property
    def frontal(self) -> XrayImage | None:
        frontal = [im for im in self.images if im.view in (ViewPosition.PA, ViewPosition.AP)]
        if frontal:
            return frontal[0]
        unknown = [im for im in self.images if im.view is ViewPosition.UNKNOWN]
        return unknown[0] if unknown else None

    @property
    def primary_image(self) -> XrayImage:
        """The image the draft's regions, the overlays and the key image are on: the frontal
        view, else the first image (a lateral-only study)."""
        return self.frontal or self.images[0]

    @property
    def lateral(self) -> XrayImage | None:
        lateral = [im for im in self.images if im.view is ViewPosition.LATERAL]
        return lateral[0] if lateral else None
