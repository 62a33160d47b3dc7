"""The study area: frontal and lateral side by side, each with its metadata strip.

View commands (fit, presets, invert, ...) apply to every image of the study, as a reader
compares PA and lateral at the same settings; right-drag W/L acts on the image under it.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QStackedLayout, QVBoxLayout, QWidget

from rrg_desk.imaging import Study, XrayImage
from rrg_desk.ui.image_view import ImageView
from rrg_desk.ui.metadata_strip import MetadataStrip

EMPTY_HINT = ("No study open.\n\nOpen a study with File ▸ Open file… (Ctrl+O) or "
              "File ▸ Open folder… (Ctrl+Shift+O),\nor drop DICOM / PNG / JPEG files or a folder here.")


def display_order(study: Study) -> list[XrayImage]:
    """Frontal first, then lateral, then any other image of the study."""
    leading = [image for image in (study.frontal, study.lateral) if image is not None]
    return leading + [image for image in study.images if all(image is not lead for lead in leading)]


class ImagePane(QWidget):
    """One ImageView with its MetadataStrip underneath."""

    def __init__(self, image: XrayImage, parent=None) -> None:
        super().__init__(parent)
        self.view = ImageView(self)
        self.strip = MetadataStrip(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.strip)
        self.view.windowLevelChanged.connect(self.strip.set_window)
        self.view.zoomChanged.connect(self.strip.set_zoom)
        self.view.inversionChanged.connect(self.strip.set_inverted)
        self.strip.set_image(image)
        self.view.set_image(image)


class StudyViewer(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._study: Study | None = None
        self._panes: list[ImagePane] = []
        self._hint = QLabel(EMPTY_HINT, self)
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setWordWrap(True)
        self._splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self._splitter.setChildrenCollapsible(False)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self._hint)
        self._stack.addWidget(self._splitter)

    @property
    def study(self) -> Study | None:
        return self._study

    @property
    def panes(self) -> list[ImagePane]:
        return list(self._panes)

    @property
    def views(self) -> list[ImageView]:
        return [pane.view for pane in self._panes]

    def set_study(self, study: Study | None) -> None:
        for pane in self._panes:
            pane.setParent(None)
            pane.deleteLater()
        self._panes = []
        self._study = study
        if study is None:
            self._stack.setCurrentWidget(self._hint)
            return
        for image in display_order(study):
            pane = ImagePane(image, self._splitter)
            self._splitter.addWidget(pane)
            self._panes.append(pane)
        self._splitter.setSizes([1000] * len(self._panes))  # equal shares
        self._stack.setCurrentWidget(self._splitter)

    # ----- commands applied to every image ------------------------------------------
    def fit(self) -> None:
        for view in self.views:
            view.fit_to_window()

    def one_to_one(self) -> None:
        for view in self.views:
            view.one_to_one()

    def zoom_by(self, factor: float) -> None:
        for view in self.views:
            view.zoom_by(factor)

    def toggle_invert(self) -> None:
        for view in self.views:
            view.toggle_invert()

    def reset(self) -> None:
        for view in self.views:
            view.reset()

    def apply_preset(self, name: str) -> None:
        for view in self.views:
            view.apply_preset(name)
