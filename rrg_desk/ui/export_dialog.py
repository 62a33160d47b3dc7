"""Export choices: formats, folder, anonymise, key image, send to PACS. Writing (and sending)
is done by the caller."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QDialog, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QVBoxLayout, QWidget)

from rrg_desk.ui.dialog_buttons import cancel_and_accept

FORMATS = (("txt", "Plain text (.txt)"), ("pdf", "PDF (.pdf)"), ("json", "JSON (.json)"),
           ("fhir", "FHIR R4 DiagnosticReport (.fhir.json)"), ("sr", "DICOM SR (.sr.dcm)"),
           ("png", "Annotated image (.png)"))


class ExportDialog(QDialog):
    def __init__(self, folder: str | Path, signed: bool, parent: QWidget | None = None,
                 pacs_server: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export report")
        note = QLabel("The report is signed." if signed else
                      "<b>This report is not signed</b>: every file is marked “DRAFT — not signed”.", self)
        note.setWordWrap(True)
        self.format_boxes: dict[str, QCheckBox] = {}
        group = QGroupBox("Formats", self)
        grid = QGridLayout(group)
        for index, (key, label) in enumerate(FORMATS):
            box = QCheckBox(label, group)
            box.setChecked(key in ("txt", "pdf"))
            self.format_boxes[key] = box
            grid.addWidget(box, index // 2, index % 2)
        self.folder = QLineEdit(str(folder), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(QLabel("Folder", self))
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.anonymise = QCheckBox("Anonymise (remove patient name, ID and birth date)", self)
        self.key_image = QCheckBox("Include the annotated key image (PDF, FHIR)", self)
        self.key_image.setChecked(True)
        # the signed report's DICOM SR to the PACS (through the outbox: queued if it is down)
        self.send_to_pacs = QCheckBox(f"Send to PACS '{pacs_server}' (DICOM SR)" if pacs_server else "Send to PACS",
                                      self)
        self.send_to_pacs.setEnabled(bool(signed and pacs_server))
        self.send_to_pacs.setToolTip(
            "Stores the signed report on the PACS; the same version is never stored twice" if signed and pacs_server
            else "Sign the report first" if not signed else "No PACS is configured (PACS panel ▸ Servers…)")
        buttons, self.export_button = cancel_and_accept(self, "Export")
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(group)
        layout.addLayout(folder_row)
        layout.addWidget(self.anonymise)
        layout.addWidget(self.key_image)
        layout.addWidget(self.send_to_pacs)
        layout.addWidget(buttons)
        for box in (*self.format_boxes.values(), self.send_to_pacs):
            box.toggled.connect(self._update)
        self._update()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _update(self, *_args) -> None:
        self.export_button.setEnabled(bool(self.formats()) or self.send_to_pacs.isChecked())

    def formats(self) -> list[str]:
        return [key for key, box in self.format_boxes.items() if box.isChecked()]

    def set_formats(self, formats) -> None:
        for key, box in self.format_boxes.items():
            box.setChecked(key in formats)
