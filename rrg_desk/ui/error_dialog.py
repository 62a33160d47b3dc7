"""The message a radiologist sees when files cannot be opened: one line per file."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from rrg_desk.imaging import ImageReadError

MAX_LISTED = 15  # beyond this the list goes into "Show details"


def describe_errors(errors: list[ImageReadError]) -> str:
    lines = [f"• {error.user_message}" for error in errors[:MAX_LISTED]]
    if len(errors) > MAX_LISTED:
        lines.append(f"… and {len(errors) - MAX_LISTED} more (see details).")
    return "\n".join(lines)


def create_error_box(parent: QWidget, errors: list[ImageReadError], opened_something: bool) -> QMessageBox:
    """A window-modal (non-blocking) box; the caller shows it with open()."""
    count = len(errors)
    headline = f"{count} file{'s' if count != 1 else ''} could not be opened."
    if not opened_something:
        headline += " The current study stays open."
    box = QMessageBox(QMessageBox.Icon.Warning, "Some files could not be opened", headline,
                      QMessageBox.StandardButton.Ok, parent)
    box.setInformativeText(describe_errors(errors))
    if count > MAX_LISTED:
        box.setDetailedText("\n".join(error.user_message for error in errors))
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
    return box
