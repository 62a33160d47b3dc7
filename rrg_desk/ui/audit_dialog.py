"""Edit ▸ Audit log… (admin): the audit log read-only, filtered by study, user and action,
exported as CSV. Rows come from rrg_desk.app.audit, so the table and the CSV agree."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QTableView, QVBoxLayout, QWidget)

from rrg_desk.app.audit import HEADERS, audit_rows, write_audit_csv
from rrg_desk.store import AuditAction, StoreError

log = logging.getLogger(__name__)
ALL = "__all__"


class AuditDialog(QDialog):
    def __init__(self, database, parent: QWidget | None = None, study_uid: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Audit log")
        self.database = database
        self.rows: list[tuple[str, ...]] = []
        self.study, self.user, self.action = QComboBox(self), QComboBox(self), QComboBox(self)
        self.model = QStandardItemModel(0, len(HEADERS), self)
        self.model.setHorizontalHeaderLabels(list(HEADERS))
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # read-only
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.count = QLabel("", self)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.clicked.connect(self._choose_csv)
        filters = QHBoxLayout()
        for label, combo in (("Study", self.study), ("User", self.user), ("Action", self.action)):
            filters.addWidget(QLabel(label, self))
            filters.addWidget(combo, 1 if combo is self.study else 0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.addButton(self.export_button, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count)
        layout.addWidget(buttons)
        self.resize(1100, 600)
        self._fill_filters(study_uid)
        for combo in (self.study, self.user, self.action):
            combo.currentIndexChanged.connect(self.refresh)
        self.refresh()

    def _fill_filters(self, study_uid: str | None) -> None:
        self._studies = {}
        try:
            self._studies = {r.study_uid: r for r in self.database.list_studies(order_by="patient_name",
                                                                                 descending=False)}
            users = self.database.audit_users()
        except StoreError as exc:
            users = []
            self.count.setText(exc.user_message)
        self.study.addItem("All studies", ALL)
        for uid, record in self._studies.items():
            self.study.addItem(f"{record.patient_name or '(no name)'} — {record.patient_id or '-'} — "
                               f"{record.study_date or '-'}", uid)
        self.user.addItem("All users", ALL)
        for user in users:
            self.user.addItem(user or "(empty)", user)
        self.action.addItem("All actions", ALL)
        for action in AuditAction:
            self.action.addItem(action.replace("_", " "), action.value)
        if study_uid is not None and self.study.findData(study_uid) >= 0:
            self.study.setCurrentIndex(self.study.findData(study_uid))

    @staticmethod
    def _value(combo: QComboBox) -> str | None:
        value = combo.currentData()
        return None if value == ALL else value

    def set_filters(self, study_uid: str | None = None, user: str | None = None, action: str | None = None) -> None:
        for combo, value in ((self.study, study_uid), (self.user, user), (self.action, action)):
            index = combo.findData(ALL if value is None else value)
            combo.setCurrentIndex(max(index, 0))
        self.refresh()

    def refresh(self) -> None:
        try:
            entries = self.database.audit_log(study_uid=self._value(self.study), action=self._value(self.action),
                                              user=self._value(self.user))
        except StoreError as exc:
            self.count.setText(exc.user_message)
            return
        self.rows = audit_rows(entries, self._studies)
        self.model.removeRows(0, self.model.rowCount())
        for row in self.rows:
            items = [QStandardItem(value) for value in row]
            items[-2].setToolTip(row[-2])
            self.model.appendRow(items)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(len(HEADERS) - 2, min(self.table.columnWidth(len(HEADERS) - 2), 520))
        self.count.setText(f"{len(self.rows)} entr{'y' if len(self.rows) == 1 else 'ies'}")

    def _choose_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the audit log", str(Path.home() / "rrg-desk-audit.csv"),
                                              "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> Path | None:
        """Write the rows shown (filters applied) as CSV; a failure is said in the dialog."""
        try:
            out = write_audit_csv(self.rows, path)
        except OSError as exc:
            self.count.setText(f"The CSV could not be written to {path} ({exc.strerror or exc}).")
            return None
        self.count.setText(f"{len(self.rows)} entries written to {out}.")
        return out

    def cell(self, row: int, column: int) -> str:
        return self.model.item(row, column).text()
