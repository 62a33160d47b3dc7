"""Dark Fusion theme: radiographs are read in dim rooms, so the chrome stays dark.

Fusion draws check boxes as a Base-coloured square with a border one shade off the window:
on the dark palette they all but vanish (the truthfulness review and the export dialog are
made of them). `ClearIndicatorStyle` draws every check indicator (QCheckBox and checkable
list items) with a WindowText-coloured border and a filled, ticked box when on, in both themes.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleFactory

_INDICATORS = (QStyle.PrimitiveElement.PE_IndicatorCheckBox, QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck)


class ClearIndicatorStyle(QProxyStyle):
    """Fusion, with check indicators that contrast with the window in any palette."""

    def drawPrimitive(self, element, option, painter: QPainter, widget=None) -> None:
        if element not in _INDICATORS:
            super().drawPrimitive(element, option, painter, widget)
            return
        state, palette = option.state, option.palette
        enabled = bool(state & QStyle.StateFlag.State_Enabled)
        side = min(option.rect.width(), option.rect.height()) - 2
        box = QRectF(option.rect.x() + (option.rect.width() - side) / 2,
                     option.rect.y() + (option.rect.height() - side) / 2, side, side)
        on = bool(state & QStyle.StateFlag.State_On)
        partial = bool(state & QStyle.StateFlag.State_NoChange)
        border = palette.color(QPalette.ColorRole.WindowText)
        if state & QStyle.StateFlag.State_MouseOver and enabled:
            border = palette.color(QPalette.ColorRole.Highlight).lighter(130)
        fill = palette.color(QPalette.ColorRole.Highlight) if (on or partial) else palette.color(QPalette.ColorRole.Base)
        if not enabled:
            border, fill = QColor(border), QColor(fill)
            border.setAlphaF(0.45)
            fill.setAlphaF(0.45)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(border, max(1.5, side / 9)))
        painter.setBrush(fill)
        painter.drawRoundedRect(box.adjusted(0.5, 0.5, -0.5, -0.5), 2, 2)
        mark = QColor(palette.color(QPalette.ColorRole.HighlightedText))
        if not enabled:
            mark.setAlphaF(0.6)
        pen = QPen(mark, max(2.0, side / 6), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if on:
            tick = QPainterPath(QPointF(box.left() + side * 0.22, box.top() + side * 0.52))
            tick.lineTo(QPointF(box.left() + side * 0.42, box.top() + side * 0.72))
            tick.lineTo(QPointF(box.left() + side * 0.78, box.top() + side * 0.30))
            painter.drawPath(tick)
        elif partial:
            painter.drawLine(QPointF(box.left() + side * 0.25, box.center().y()),
                             QPointF(box.right() - side * 0.25, box.center().y()))
        painter.restore()


def _set_style(app: QApplication) -> None:
    if "Fusion" in QStyleFactory.keys():
        app.setStyle(ClearIndicatorStyle(QStyleFactory.create("Fusion")))

_DARK_COLORS = {
    QPalette.ColorRole.Window: QColor(37, 37, 38),
    QPalette.ColorRole.WindowText: QColor(220, 220, 220),
    QPalette.ColorRole.Base: QColor(25, 25, 26),
    QPalette.ColorRole.AlternateBase: QColor(45, 45, 48),
    QPalette.ColorRole.ToolTipBase: QColor(50, 50, 52),
    QPalette.ColorRole.ToolTipText: QColor(230, 230, 230),
    QPalette.ColorRole.PlaceholderText: QColor(130, 130, 130),
    QPalette.ColorRole.Text: QColor(220, 220, 220),
    QPalette.ColorRole.Button: QColor(48, 48, 50),
    QPalette.ColorRole.ButtonText: QColor(220, 220, 220),
    QPalette.ColorRole.BrightText: QColor(255, 90, 90),
    QPalette.ColorRole.Link: QColor(86, 156, 214),
    QPalette.ColorRole.Highlight: QColor(38, 110, 180),
    QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
}

_DISABLED_COLORS = {
    QPalette.ColorRole.WindowText: QColor(110, 110, 110),
    QPalette.ColorRole.Text: QColor(110, 110, 110),
    QPalette.ColorRole.ButtonText: QColor(110, 110, 110),
    QPalette.ColorRole.Highlight: QColor(70, 70, 72),
}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in _DARK_COLORS.items():
        palette.setColor(role, color)
    for role, color in _DISABLED_COLORS.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, color)
    return palette


def apply_dark_theme(app: QApplication) -> None:
    """Fusion renders the palette faithfully on every platform (native styles ignore parts)."""
    _set_style(app)
    app.setPalette(dark_palette())


def apply_theme(app: QApplication, name: str = "dark") -> None:
    """"dark" (the default, for reading rooms) or "light" (Fusion's standard palette)."""
    if name == "light":
        _set_style(app)
        app.setPalette(app.style().standardPalette())
    else:
        apply_dark_theme(app)
