"""Dark Fusion theme: radiographs are read in dim rooms, so the chrome stays dark."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

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
    if "Fusion" in QStyleFactory.keys():
        app.setStyle("Fusion")
    app.setPalette(dark_palette())


def apply_theme(app: QApplication, name: str = "dark") -> None:
    """"dark" (the default, for reading rooms) or "light" (Fusion's standard palette)."""
    if name == "light":
        if "Fusion" in QStyleFactory.keys():
            app.setStyle("Fusion")
        app.setPalette(app.style().standardPalette())
    else:
        apply_dark_theme(app)
