"""A one-purpose dialog's buttons: the named one accepts, Cancel rejects."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox

from rrg_desk.ui.dialog_buttons import cancel_and_accept


def test_the_named_button_accepts_and_cancel_rejects(qtbot):
    dialog = QDialog()
    qtbot.addWidget(dialog)
    buttons, export_button = cancel_and_accept(dialog, "Export")
    assert export_button.text() == "Export" and buttons.buttonRole(export_button) == QDialogButtonBox.ButtonRole.AcceptRole
    dialog.open()
    with qtbot.waitSignal(dialog.accepted, timeout=2_000):
        qtbot.mouseClick(export_button, Qt.MouseButton.LeftButton)
    dialog.open()
    with qtbot.waitSignal(dialog.rejected, timeout=2_000):
        qtbot.mouseClick(buttons.button(QDialogButtonBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
