"""The line of facts under each image: who, when, which view, size, spacing, W/L, zoom."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy

from rrg_desk.imaging import XrayImage
from rrg_desk.imaging.dicom_values import display_date, display_name

SEPARATOR = "  ·  "


def format_spacing(spacing: tuple[float, float] | None) -> str:
    if spacing is None:
        return "spacing unknown"
    row, col = spacing
    return f"{row:.3g} mm" if row == col else f"{row:.3g}×{col:.3g} mm"


def describe_image(image: XrayImage) -> list[str]:
    """The static facts, in reading order (patient first, as on a film label)."""
    name = display_name(image.patient.name) or "Unnamed patient"
    patient_id = f"ID {image.patient.patient_id}" if image.patient.patient_id else "no ID"
    date = display_date(image.study_date) or "no date"
    return [name, patient_id, date, image.view.value, format_spacing(image.pixel_spacing_mm),
            f"{image.width}×{image.height} px"]


def format_window(center: float, width: float) -> str:
    return f"W {width:.0f} / L {center:.0f}" if width >= 10 else f"W {width:.3g} / L {center:.3g}"


class MetadataStrip(QLabel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setContentsMargins(6, 3, 6, 3)
        self._facts: list[str] = []
        self._window_text = ""
        self._zoom_text = ""
        self._inverted_text = ""

    def set_image(self, image: XrayImage | None) -> None:
        self._facts = describe_image(image) if image is not None else []
        self._window_text = self._zoom_text = self._inverted_text = ""
        self._refresh()

    def set_window(self, center: float, width: float) -> None:
        self._window_text = format_window(center, width)
        self._refresh()

    def set_zoom(self, zoom: float) -> None:
        self._zoom_text = f"{zoom * 100:.0f}%"
        self._refresh()

    def set_inverted(self, inverted: bool) -> None:
        self._inverted_text = "inverted" if inverted else ""
        self._refresh()

    def _refresh(self) -> None:
        extras = (self._window_text, self._zoom_text, self._inverted_text)
        parts = self._facts + [text for text in extras if text]
        self.setText(SEPARATOR.join(parts))
        self.setToolTip("\n".join(parts))
