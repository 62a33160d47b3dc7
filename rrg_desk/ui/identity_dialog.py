"""Who is working? Asked once at the first start (prefilled with the OS login name), and from
Edit ▸ Who am I…: every audit entry and every signature carries the name confirmed here."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget


class IdentityDialog(QDialog):
    def __init__(self, current: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Who is reporting?")
        self.setModal(True)  # before the first action
        intro = QLabel("Your name as it should appear on signed reports and in the audit log. "
                       "Every action you take is recorded under it; change it later in Edit ▸ Settings.", self)
        intro.setWordWrap(True)
        self.name_edit = QLineEdit(current, self)
        self.name_edit.selectAll()
        self.error = QLabel("", self)
        self.error.setStyleSheet("color: #ff7070;")
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Confirm")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.name_edit)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(460, 0)

    def name(self) -> str:
        return " ".join(self.name_edit.text().split())

    def accept(self) -> None:
        if not self.name():
            self.error.setText("Enter your name: every audit entry and signature carries it.")
            self.error.show()
            self.name_edit.setFocus()
            return
        super().accept()
