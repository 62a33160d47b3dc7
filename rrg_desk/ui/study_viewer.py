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

# Frontal and lateral panes are built with the window and reused by every study: the first
# QGraphicsView costs ~20 ms to build, which would otherwise land in the GUI stall of opening
# the first study while the models load (issue 17).
PANES_BUILT_AHEAD = 2

EMPTY_HINT = ("No study open.\n\nOpen a study with File ▸ Open file… (Ctrl+O) or "
              "File ▸ Open folder… (Ctrl+Shift+O),\nor drop DICOM / PNG / JPEG files or a folder here.")


def display_order(study: Study) -> list[XrayImage]:
    """Frontal first, then lateral, then any other image of the study."""
    leading = [image for image in (study.frontal, study.lateral) if image is not None]
    return leading + [image for image in study.images if all(image is not lead for lead in leading)]


class ImagePane(QWidget):
    """One ImageView with its MetadataStrip underneath; set_image shows another image in it."""

    def __init__(self, parent=None) -> None:
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

    def set_image(self, image: XrayImage | None) -> None:
        self.strip.set_image(image)
        self.view.set_image(image)


class StudyViewer(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._study: Study | None = None
        self._panes: list[ImagePane] = []  # the study's, in display order
        self._built: list[ImagePane] = []  # every pane, shown or kept hidden for the next study
        self._hint = QLabel(EMPTY_HINT, self)
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setWordWrap(True)
        self._splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self._splitter.setChildrenCollapsible(False)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self._hint)
        self._stack.addWidget(self._splitter)
        for _ in range(PANES_BUILT_AHEAD):
            self._build_pane()

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
        self._study = study
        images = display_order(study) if study is not None else []
        while len(self._built) < len(images):
            self._build_pane()
        for index, pane in enumerate(self._built):
            pane.set_image(images[index] if index < len(images) else None)
            pane.setVisible(index < len(images))
        self._panes = self._built[:len(images)]
        if study is None:
            self._stack.setCurrentWidget(self._hint)
            return
        self._splitter.setSizes([1000] * len(self._built))  # equal shares among the shown panes
        self._stack.setCurrentWidget(self._splitter)

    def _build_pane(self) -> None:
        pane = ImagePane(self._splitter)
        pane.hide()
        self._splitter.addWidget(pane)
        self._built.append(pane)

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
