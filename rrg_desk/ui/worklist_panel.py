"""The worklist: the store's studies in a sortable table with a search box.

Search runs in the database (patient name/ID, accession, description) a moment after the
last keystroke; column clicks sort in the view. Double-click or Enter opens a study. The PACS
column shows where each signed report stands with the PACS (Sent / Queued / Failed: reason).
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableView,
                               QVBoxLayout, QWidget)

from rrg_desk.ui.metadata_strip import format_dicom_date, format_person_name

COLUMNS = (("Patient", "patient_name"), ("ID", "patient_id"), ("Date", "study_date"),
           ("Accession", "accession"), ("Description", "description"), ("Status", "status"), ("PACS", "pacs"))
STATUS_LABELS = {"new": "New", "drafted": "Drafted", "in_progress": "In progress", "signed": "Signed",
                 "amended": "Amended"}
SEARCH_DELAY_MS = 200
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def _field(record, name: str) -> str:
    value = getattr(record, name, "")
    return "" if value is None else str(value)


class WorklistModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._records: list = []
        self._pacs: dict = {}  # study uid -> DeliveryStatus (rrg_desk.pacs.outbox)

    def set_pacs_statuses(self, statuses: dict) -> None:
        self._pacs = dict(statuses)
        if self._records:
            column = len(COLUMNS) - 1
            self.dataChanged.emit(self.index(0, column), self.index(len(self._records) - 1, column))

    def pacs_label(self, study_uid: str) -> str:
        status = self._pacs.get(study_uid)
        return status.label if status is not None else ""

    def set_records(self, records) -> None:
        self.beginResetModel()
        self._records = list(records)
        self.endResetModel()

    def record(self, row: int):
        return self._records[row]

    def records(self) -> list:
        return list(self._records)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        record = self._records[index.row()]
        name = COLUMNS[index.column()][1]
        raw = self.pacs_label(_field(record, "study_uid")) if name == "pacs" else _field(record, name)
        if role == SORT_ROLE:
            return raw.lower()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if name == "patient_name":
                return format_person_name(raw)
            if name == "study_date":
                return format_dicom_date(raw)
            if name == "status":
                return STATUS_LABELS.get(raw, raw)
            return raw
        if role == Qt.ItemDataRole.UserRole:
            return _field(record, "study_uid")
        return None


class WorklistTable(QTableView):
    activated_row = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.activated_row.emit(self.currentIndex().row())
            return
        super().keyPressEvent(event)


class WorklistPanel(QWidget):
    studyActivated = Signal(str)  # study uid
    importFilesRequested = Signal()
    importFolderRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.query: Callable[[str], list] | None = None  # search -> StudyRecords (the store's)
        self.pacs_status: Callable[[], dict] | None = None  # -> {study uid: DeliveryStatus} (PACS column)
        self.model = WorklistModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search patient, ID, accession, description…")
        self.search.setClearButtonEnabled(True)
        self.table = WorklistTable(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # newest studies first
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.count_label = QLabel("", self)
        self.import_files = QPushButton("Import files…", self)
        self.import_folder = QPushButton("Import folder…", self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_files)
        buttons.addWidget(self.import_folder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count_label)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.table.doubleClicked.connect(lambda index: self._activate(index.row()))
        self.table.activated_row.connect(self._activate)
        self.import_files.clicked.connect(self.importFilesRequested)
        self.import_folder.clicked.connect(self.importFolderRequested)

    def refresh(self) -> None:
        """Re-run the search against the store (after imports, status changes, typing)."""
        self._search_timer.stop()
        records = self.query(self.search.text().strip()) if self.query is not None else []
        self.model.set_pacs_statuses(self.pacs_status() if self.pacs_status is not None else {})
        self.model.set_records(records)
        shown = len(records)
        self.count_label.setText(f"{shown} stud{'y' if shown == 1 else 'ies'}")

    def uid_at(self, view_row: int) -> str:
        return self.proxy.index(view_row, 0).data(Qt.ItemDataRole.UserRole) or ""

    def visible_uids(self) -> list[str]:
        return [self.uid_at(row) for row in range(self.proxy.rowCount())]

    def select_uid(self, study_uid: str) -> None:
        for row in range(self.proxy.rowCount()):
            if self.uid_at(row) == study_uid:
                self.table.selectRow(row)
                return

    def _activate(self, view_row: int) -> None:
        uid = self.uid_at(view_row)
        if uid:
            self.studyActivated.emit(uid)
