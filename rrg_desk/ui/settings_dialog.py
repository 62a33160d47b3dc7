"""Settings: model bundle folder, device, beam size, auto-draft, theme, user name, institution.

The bundle folder is checked when the dialog is accepted (rrg_desk.app.bundles.bundle_problem:
its card reads and checks as loading would, and the files it lists are there) so a wrong
folder is refused with a clear message instead of failing at the next draft. The check reads
JSON only: opening the dialog never loads torch.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from rrg_desk.app.bundles import bundle_problem

DEVICES = (("auto", "Automatic (CUDA if available)"), ("cpu", "CPU"), ("cuda", "CUDA GPU"))
THEMES = (("dark", "Dark"), ("light", "Light"))


class SettingsDialog(QDialog):
    def __init__(self, settings, parent: QWidget | None = None) -> None:
        """settings: an AppSettings (rrg_desk.app.settings); the dialog edits a copy."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._original = settings
        self.bundle_dir = QLineEdit(str(getattr(settings, "bundle_dir", "") or ""), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        bundle_row = QHBoxLayout()
        bundle_row.addWidget(self.bundle_dir, 1)
        bundle_row.addWidget(browse)
        self.device = QComboBox(self)
        for key, label in DEVICES:
            self.device.addItem(label, key)
        self.device.setCurrentIndex(max(self.device.findData(getattr(settings, "device", "auto")), 0))
        self.beam_size = QSpinBox(self)
        self.beam_size.setRange(0, 8)
        self.beam_size.setSpecialValueText("Model default")  # shown for 0: the bundle card's beam size
        self.beam_size.setValue(int(getattr(settings, "beam_size", 0) or 0))
        self.beam_size.setToolTip("Beam search width: larger is slower and usually a little better; "
                                  "the model default drafts exactly what `rrg-desk draft` does")
        self.auto_draft = QCheckBox("Draft automatically when a study is opened", self)
        self.auto_draft.setChecked(bool(getattr(settings, "auto_draft", False)))
        self.theme = QComboBox(self)
        for key, label in THEMES:
            self.theme.addItem(label, key)
        self.theme.setCurrentIndex(max(self.theme.findData(getattr(settings, "theme", "dark")), 0))
        self.user_name = QLineEdit(str(getattr(settings, "user_name", "") or ""), self)
        self.user_name.setPlaceholderText("Name that signs reports and appears in the audit log")
        self.institution_name = QLineEdit(str(getattr(settings, "institution_name", "") or ""), self)
        self.institution_name.setPlaceholderText("Printed at the top of every PDF page")
        self.institution_address = QLineEdit(str(getattr(settings, "institution_address", "") or ""), self)
        self.institution_address.setPlaceholderText("Department, address, telephone (one line)")
        self.pacs_auto_send = QCheckBox("Send signed reports and addenda to the PACS automatically", self)
        self.pacs_auto_send.setChecked(bool(getattr(settings, "pacs_auto_send", True)))
        self.pacs_auto_send.setToolTip("Off: reports reach the PACS only with Export ▸ Send to PACS")
        self.pacs_server = QLineEdit(str(getattr(settings, "pacs_server", "") or ""), self)
        self.pacs_server.setPlaceholderText("PACS server name (empty: the first one in PACS ▸ Servers…)")
        self.error = QLabel("", self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff7070;")
        form = QFormLayout()
        form.addRow("Model bundle folder", bundle_row)
        form.addRow("Device", self.device)
        form.addRow("Beam size", self.beam_size)
        form.addRow("", self.auto_draft)
        form.addRow("Theme", self.theme)
        form.addRow("User name", self.user_name)
        form.addRow("Institution", self.institution_name)
        form.addRow("Institution address", self.institution_address)
        form.addRow("Reports to PACS", self.pacs_server)
        form.addRow("", self.pacs_auto_send)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(560, 0)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder", self.bundle_dir.text())
        if folder:
            self.bundle_dir.setText(folder)

    def edited_settings(self):
        bundle = self.bundle_dir.text().strip()
        return dataclasses.replace(
            self._original, bundle_dir=str(Path(bundle).expanduser()) if bundle else "",
            device=self.device.currentData(), beam_size=self.beam_size.value(),
            auto_draft=self.auto_draft.isChecked(), theme=self.theme.currentData(),
            user_name=" ".join(self.user_name.text().split()),
            institution_name=self.institution_name.text().strip(),
            institution_address=self.institution_address.text().strip(),
            pacs_auto_send=self.pacs_auto_send.isChecked(), pacs_server=self.pacs_server.text().strip())

    def accept(self) -> None:
        problem = bundle_problem(self.bundle_dir.text())
        if problem:
            self.error.setText(problem)
            self.bundle_dir.setFocus()
            return
        if not self.user_name.text().strip():
            self.error.setText("Enter your name: audit entries and signatures carry it.")
            self.user_name.setFocus()
            return
        super().accept()
