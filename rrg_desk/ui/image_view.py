"""One radiograph on a QGraphicsScene: window/level, zoom, pan, invert.

Mouse (standard radiology convention):
- right-drag: horizontal = window width (right widens, i.e. less contrast),
  vertical = window level/center (down raises the level, i.e. darker image);
- left-drag or middle-drag: pan; wheel: zoom anchored under the mouse.

The pixmap item is the parent of every overlay (region boxes, heatmaps), so overlays are
placed in image pixel coordinates and follow zoom and pan for free.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsItem, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from rrg_desk.imaging import Window, XrayImage, apply_window, preset_window
from rrg_desk.ui.qt_image import gray_to_qimage

log = logging.getLogger(__name__)

MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
WHEEL_STEP = 1.25  # zoom factor per wheel notch (120 eighths of a degree)
# Right-drag across this many screen pixels sweeps the image's whole value range.
WL_DRAG_PIXELS_FOR_FULL_RANGE = 512.0


class ImageView(QGraphicsView):
    windowLevelChanged = Signal(float, float)  # center, width
    zoomChanged = Signal(float)  # screen pixels per image pixel
    inversionChanged = Signal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(0, 0, 0))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        # Anchoring is done by hand in zoom_by so wheel zoom is exact without mouse tracking.
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)  # right button is W/L
        self.setAcceptDrops(False)  # drops go to the main window
        self.viewport().setAcceptDrops(False)
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._pixmap_item)
        self._image: XrayImage | None = None
        self._window: Window | None = None
        self._inverted = False
        self._fit_mode = True
        self._qimage: QImage | None = None
        self._buffer = None  # numpy bytes behind _qimage; must outlive it
        self._drag_button: Qt.MouseButton | None = None
        self._drag_origin = QPoint()
        self._drag_last = QPoint()
        self._drag_start_window: Window | None = None

    # ----- image and display state -------------------------------------------------
    @property
    def image(self) -> XrayImage | None:
        return self._image

    @property
    def image_item(self) -> QGraphicsPixmapItem:
        return self._pixmap_item

    def set_image(self, image: XrayImage | None) -> None:
        self._image = image
        self.clear_overlays()
        if image is None:
            self._window, self._qimage, self._buffer = None, None, None
            self._pixmap_item.setPixmap(QPixmap())
            self.setSceneRect(QRectF())
            return
        self._window = image.display_window()
        self._inverted = False
        self._render()
        self.setSceneRect(QRectF(0, 0, image.width, image.height))
        self.fit_to_window()
        self.windowLevelChanged.emit(self._window.center, self._window.width)
        self.inversionChanged.emit(self._inverted)

    def display_window(self) -> Window | None:
        return self._window

    def set_display_window(self, window: Window) -> None:
        if self._image is None or window == self._window:
            return
        self._window = window
        self._render()
        self.windowLevelChanged.emit(window.center, window.width)

    def apply_preset(self, name: str) -> None:
        if self._image is not None:
            self.set_display_window(preset_window(self._image, name))

    def is_inverted(self) -> bool:
        return self._inverted

    def set_inverted(self, inverted: bool) -> None:
        if inverted == self._inverted:
            return
        self._inverted = inverted
        if self._image is not None:
            self._render()
        self.inversionChanged.emit(inverted)

    def toggle_invert(self) -> None:
        self.set_inverted(not self._inverted)

    def reset(self) -> None:
        """Back to the file's window, not inverted, fitted."""
        if self._image is None:
            return
        self.set_inverted(False)
        self.set_display_window(self._image.display_window())
        self.fit_to_window()

    def displayed_qimage(self) -> QImage:
        """What the pixmap item shows, as a QImage (tests and screenshots read it back)."""
        return self._pixmap_item.pixmap().toImage()

    def _render(self) -> None:
        gray = apply_window(self._image.pixels, self._window, invert=self._inverted)
        self._qimage, self._buffer = gray_to_qimage(gray)
        self._pixmap_item.setPixmap(QPixmap.fromImage(self._qimage))

    def _value_range(self) -> float:
        return self._image.full_range_window().width if self._image is not None else 1.0

    def _min_window_width(self) -> float:
        return max(self._value_range() / 4096.0, 1e-6)

    # ----- zoom ---------------------------------------------------------------------
    def zoom_factor(self) -> float:
        return float(self.transform().m11())

    def is_fit_mode(self) -> bool:
        return self._fit_mode

    def zoom_by(self, factor: float, anchor: QPoint | None = None) -> None:
        """Scale by factor keeping the scene point under `anchor` (viewport coords) fixed."""
        if self._image is None or factor <= 0:
            return
        current = self.zoom_factor()
        factor = min(max(current * factor, MIN_ZOOM), MAX_ZOOM) / current
        anchor = anchor if anchor is not None else self.viewport().rect().center()
        scene_point = self.mapToScene(anchor)
        self._fit_mode = False
        self.scale(factor, factor)
        drift = self.mapFromScene(scene_point) - anchor
        self._scroll_by(drift.x(), drift.y())
        self.zoomChanged.emit(self.zoom_factor())

    def fit_to_window(self) -> None:
        self._fit_mode = True
        if self._image is None:
            return
        self.fitInView(self._pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomChanged.emit(self.zoom_factor())

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, centred on what the view showed."""
        if self._image is None:
            return
        centre = self.mapToScene(self.viewport().rect().center())
        self._fit_mode = False
        self.resetTransform()
        self.centerOn(centre)
        self.zoomChanged.emit(self.zoom_factor())

    def _scroll_by(self, dx: int, dy: int) -> None:
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + dx)
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + dy)

    # ----- overlays -----------------------------------------------------------------
    def add_overlay(self, item: QGraphicsItem) -> QGraphicsItem:
        """Attach an item drawn on top of the image, in image pixel coordinates."""
        item.setParentItem(self._pixmap_item)
        return item

    def overlays(self) -> list[QGraphicsItem]:
        return list(self._pixmap_item.childItems())

    def clear_overlays(self) -> None:
        for item in self._pixmap_item.childItems():
            self.scene().removeItem(item)

    # ----- Qt events ----------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120.0
        if notches:
            self.zoom_by(WHEEL_STEP ** notches, event.position().toPoint())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._drag_button = button
            self._drag_origin = self._drag_last = event.position().toPoint()
            self._drag_start_window = self._window
            if button != Qt.MouseButton.RightButton:
                self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_button is None:
            super().mouseMoveEvent(event)
            return
        pos = event.position().toPoint()
        if self._drag_button == Qt.MouseButton.RightButton:
            self._drag_window_level(pos - self._drag_origin)
        else:
            step = pos - self._drag_last
            self._scroll_by(-step.x(), -step.y())
        self._drag_last = pos
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag_button is not None and event.button() == self._drag_button:
            self._drag_button = None
            self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def _drag_window_level(self, offset: QPoint) -> None:
        start = self._drag_start_window
        if start is None or self._image is None:
            return
        units_per_pixel = self._value_range() / WL_DRAG_PIXELS_FOR_FULL_RANGE
        width = max(start.width + offset.x() * units_per_pixel, self._min_window_width())
        self.set_display_window(Window(center=start.center + offset.y() * units_per_pixel, width=width))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode and self._image is not None:
            self.fitInView(self._pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoomChanged.emit(self.zoom_factor())
