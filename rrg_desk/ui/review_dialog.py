"""Before signing: the truthfulness flags, each to be ticked as reviewed (or go back and edit).

Sign stays disabled until every flag is ticked; the ticked flags are what the session logs
with the signature ("flags_reviewed"). Double-clicking a flag jumps to its sentence.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

KIND_TITLES = {
    "asserted_below_threshold": "Text asserts, classifier disagrees",
    "negated_or_omitted_above_threshold": "Classifier sees, text denies or omits",
    "unreviewed_model_text": "Model text not reviewed",
}


class ReviewDialog(QDialog):
    sentenceRequested = Signal(str)  # sentence id to show in the editor

    def __init__(self, flags: list, signer: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Review before signing")
        self.flags = list(flags)
        intro = QLabel(
            f"<b>{len(self.flags)} point{'s' if len(self.flags) != 1 else ''} to review</b> before "
            f"signing as <b>{signer}</b>. Tick each one you have checked on the image, or go back to "
            "edit the report. Your decision is recorded in the audit log.", self)
        intro.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        for flag in self.flags:
            item = QListWidgetItem(f"{KIND_TITLES.get(flag.kind, flag.kind)}\n{flag.message}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, flag.sentence_id or "")
            self.list.addItem(item)
        self.tick_all = QPushButton("Tick all as reviewed", self)
        self.buttons = QDialogButtonBox(self)
        self.sign_button = self.buttons.addButton("Sign", QDialogButtonBox.ButtonRole.AcceptRole)
        self.back_button = self.buttons.addButton("Back to editing", QDialogButtonBox.ButtonRole.RejectRole)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.tick_all)
        layout.addWidget(self.buttons)
        self.list.itemChanged.connect(self._update)
        self.list.itemDoubleClicked.connect(self._show_sentence)
        self.tick_all.clicked.connect(lambda: self.set_all_checked(True))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.resize(640, 420)
        self._update()

    def set_checked(self, row: int, checked: bool) -> None:
        self.list.item(row).setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def set_all_checked(self, checked: bool) -> None:
        for row in range(self.list.count()):
            self.set_checked(row, checked)

    def reviewed_flags(self) -> list:
        return [flag for row, flag in enumerate(self.flags)
                if self.list.item(row).checkState() == Qt.CheckState.Checked]

    def all_reviewed(self) -> bool:
        return len(self.reviewed_flags()) == len(self.flags)

    def _update(self, *_args) -> None:
        self.sign_button.setEnabled(self.all_reviewed())

    def _show_sentence(self, item: QListWidgetItem) -> None:
        sentence_id = item.data(Qt.ItemDataRole.UserRole)
        if sentence_id:
            self.sentenceRequested.emit(sentence_id)

    def accept(self) -> None:
        if self.all_reviewed():  # the button is disabled otherwise; Enter must not bypass it
            super().accept()
