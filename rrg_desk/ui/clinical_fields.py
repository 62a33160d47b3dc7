"""Indication, technique and comparison of the open report: three editable lines above the
findings (prefilled from the DICOM header by the session), printed on the PDF."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLineEdit, QWidget

from rrg_desk.reports.document import CLINICAL_SECTIONS

PLACEHOLDERS = {"indication": "Why the examination was requested",
                "technique": "Views and technique",
                "comparison": "Earlier studies compared with (none: leave empty)"}


class ClinicalFields(QGroupBox):
    edited = Signal(str, str)  # section name, text (typed by the radiologist)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Clinical details", parent)
        self.edits: dict[str, QLineEdit] = {}
        form = QFormLayout(self)
        form.setContentsMargins(6, 4, 6, 4)
        for name in CLINICAL_SECTIONS:
            edit = QLineEdit(self)
            edit.setPlaceholderText(PLACEHOLDERS[name])
            edit.textEdited.connect(lambda text, n=name: self.edited.emit(n, text))  # typing only, not set_values
            self.edits[name] = edit
            form.addRow(name.capitalize(), edit)

    def set_values(self, clinical: dict[str, str] | None, read_only: bool) -> None:
        for name, edit in self.edits.items():
            edit.setText((clinical or {}).get(name, ""))
            edit.setReadOnly(read_only or clinical is None)
            edit.setCursorPosition(0)

    def value(self, name: str) -> str:
        return self.edits[name].text()
