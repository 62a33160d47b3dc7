"""The button row of a dialog that does one thing: Cancel beside a button named for it."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPushButton


def cancel_and_accept(dialog: QDialog, accept_text: str) -> tuple[QDialogButtonBox, QPushButton]:
    """Cancel and an accepting button ("Export", "Sign addendum") wired to the dialog's
    accept/reject; the caller lays the box out and may disable the button."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, dialog)
    accept_button = buttons.addButton(accept_text, QDialogButtonBox.ButtonRole.AcceptRole)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons, accept_button
