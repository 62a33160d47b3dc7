"""An addendum to a signed report: its own text and its own sign-off."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from rrg_desk.ui.dialog_buttons import cancel_and_accept


class AddendumDialog(QDialog):
    def __init__(self, signed_summary: str, signer: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Addendum")
        intro = QLabel(f"{signed_summary}<br>The signed report cannot change. This addendum is added to it "
                       f"and signed by <b>{signer}</b>.", self)
        intro.setWordWrap(True)
        self.text = QPlainTextEdit(self)
        self.text.setPlaceholderText("Addendum text…")
        buttons, self.sign_button = cancel_and_accept(self, "Sign addendum")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.text.textChanged.connect(lambda: self.sign_button.setEnabled(bool(self.addendum_text())))
        self.sign_button.setEnabled(False)
        self.resize(520, 320)

    def addendum_text(self) -> str:
        return self.text.toPlainText().strip()

    def accept(self) -> None:
        if self.addendum_text():
            super().accept()
