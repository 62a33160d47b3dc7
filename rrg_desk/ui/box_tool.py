"""Describe-region tool: Shift+drag (or drag while the tool is armed) draws a box on the image.

RGRG's region-selection mode: the radiologist points at an area and the generator writes a
sentence about it. This filter only draws the box and reports it in image pixels; the main
window asks the model worker for the sentence.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

MIN_BOX_SIDE_PX = 8  # in image pixels; smaller drags are treated as slips
BOX_COLOR = QColor(120, 255, 120)


class BoxTool(QObject):
    boxDrawn = Signal(object)  # (x0, y0, x1, y1) in image pixels of the view's image
    armedChanged = Signal(bool)

    def __init__(self, view, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self._armed = False
        self._origin: QPointF | None = None
        self._rubber: QGraphicsRectItem | None = None
        view.viewport().installEventFilter(self)

    def set_armed(self, armed: bool) -> None:
        """Armed: a plain left-drag draws (one box, then disarms). Shift+drag always draws."""
        if armed != self._armed:
            self._armed = armed
            self.view.viewport().setCursor(Qt.CursorShape.CrossCursor) if armed else self.view.viewport().unsetCursor()
            self.armedChanged.emit(armed)

    def is_armed(self) -> bool:
        return self._armed

    def _image_point(self, event) -> QPointF:
        return self.view.image_item.mapFromScene(self.view.mapToScene(event.position().toPoint()))

    def eventFilter(self, watched, event) -> bool:
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            if self.view.image is None:
                return False
            if self._armed or event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self._origin = self._image_point(event)
                self._rubber = QGraphicsRectItem(QRectF(self._origin, self._origin))
                pen = QPen(BOX_COLOR, 2.0, Qt.PenStyle.DashLine)
                pen.setCosmetic(True)
                self._rubber.setPen(pen)
                self._rubber.setZValue(10.0)
                self.view.add_overlay(self._rubber)
                return True
        elif kind == QEvent.Type.MouseMove and self._origin is not None:
            self._rubber.setRect(QRectF(self._origin, self._image_point(event)).normalized())
            return True
        elif kind == QEvent.Type.MouseButtonRelease and self._origin is not None \
                and event.button() == Qt.MouseButton.LeftButton:
            rect = QRectF(self._origin, self._image_point(event)).normalized()
            self._finish()
            image = self.view.image
            rect = rect.intersected(QRectF(0, 0, image.width, image.height))
            if rect.width() >= MIN_BOX_SIDE_PX and rect.height() >= MIN_BOX_SIDE_PX:
                self.set_armed(False)
                self.boxDrawn.emit((rect.left(), rect.top(), rect.right(), rect.bottom()))
            return True
        return False

    def _finish(self) -> None:
        if self._rubber is not None and self._rubber.scene() is not None:
            self._rubber.scene().removeItem(self._rubber)
        self._rubber, self._origin = None, None

    def detach(self) -> None:
        self._finish()
        self.view.viewport().removeEventFilter(self)
