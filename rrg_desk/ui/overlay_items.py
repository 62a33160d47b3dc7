"""Screen-sized annotations drawn over the image: name tags on a dark plate, the heatmap legend.

Both ignore the view's scale (ItemIgnoresTransformations): they keep their size in screen
pixels at any zoom, and RegionOverlay places them in viewport pixels. The dark plate keeps
the text readable over bone and lung alike.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QLinearGradient, QPainter
from PySide6.QtWidgets import QGraphicsItem

from rrg_desk.ui.colormap import DEFAULT_COLORMAP, legend_stops

PLATE_COLOR = QColor(0, 0, 0, 185)
TAG_PADDING = (4.0, 1.5)  # horizontal, vertical


def _screen_sized(item: QGraphicsItem) -> None:
    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
    item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks and drags reach the image
    item.setAcceptHoverEvents(False)


class TagItem(QGraphicsItem):
    """One line of text on a dark rounded plate (region names, the R/L markers)."""

    def __init__(self, text: str, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._text = text
        self._font = QFont()
        self._color = QColor(255, 255, 255)
        _screen_sized(self)

    def text(self) -> str:
        return self._text

    def setFont(self, font: QFont) -> None:
        self.prepareGeometryChange()
        self._font = QFont(font)

    def color(self) -> QColor:
        return QColor(self._color)

    def setColor(self, color: QColor) -> None:
        self._color = QColor(color)
        self.update()

    def boundingRect(self) -> QRectF:
        metrics = QFontMetricsF(self._font)
        pad_x, pad_y = TAG_PADDING
        return QRectF(0, 0, metrics.horizontalAdvance(self._text) + 2 * pad_x, metrics.height() + 2 * pad_y)

    def paint(self, painter: QPainter, _option, _widget=None) -> None:
        rect = self.boundingRect()
        _draw_plate(painter, rect)
        painter.setFont(self._font)
        painter.setPen(self._color)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._text)


def _draw_plate(painter: QPainter, rect: QRectF) -> None:
    """The dark rounded backing that keeps text and the legend readable over bone."""
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(PLATE_COLOR)
    painter.drawRoundedRect(rect, 3.0, 3.0)


class LegendItem(QGraphicsItem):
    """The heatmap colours as a bar, "low" to "high attention", from the heatmap's own LUT."""

    SIZE = (170.0, 34.0)

    def __init__(self, colormap: str = DEFAULT_COLORMAP, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._colormap = colormap
        self._stops = None  # sampled on first paint
        _screen_sized(self)
        self.setToolTip("Heatmap colours: where the model looked, from little (transparent) to most")

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self.SIZE)

    def paint(self, painter: QPainter, _option, _widget=None) -> None:
        rect = self.boundingRect()
        _draw_plate(painter, rect)
        bar = QRectF(6, 5, rect.width() - 12, 10)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        if self._stops is None:
            self._stops = legend_stops(self._colormap)
        for position, color in self._stops:
            gradient.setColorAt(position, color)
        painter.fillRect(bar, gradient)
        font = QFont()
        font.setPointSizeF(8.0)
        painter.setFont(font)
        painter.setPen(QColor(235, 235, 235))
        text = QRectF(6, 16, rect.width() - 12, rect.height() - 17)
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "low")
        painter.drawText(text, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "high attention")
