"""The worklist: the store's studies in a table that pages, with a search box.

Studies still to report come first, newest first (the Status column's sort); a click on
another header sorts by that column. The store answers every question (search, order, count)
in SQL on a worker thread (ui/worklist_worker.py), a page of PAGE_SIZE rows at a time: the
first page on a refresh, the next ones as the radiologist scrolls (Qt's canFetchMore /
fetchMore), so the GUI thread never waits for the database. A refresh (after an import, a
status change, typing) reloads as many rows as are shown and keeps the selection and the
scroll position. Double-click or Enter opens a study. The PACS column shows where each
signed report stands with the PACS (Sent / Queued / Failed: reason).
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableView,
                               QVBoxLayout, QWidget)

from rrg_desk.imaging.dicom_values import display_date, display_name
from rrg_desk.store import StudyStatus, WorklistQuery
from rrg_desk.ui.worklist_worker import FetchResult, PacsStatuses, SourceFactory, WorklistWorker

COLUMNS = (("Patient", "patient_name"), ("ID", "patient_id"), ("Date", "study_date"),
           ("Accession", "accession"), ("Description", "description"), ("Status", "status"), ("PACS", "pacs"))
STATUS_COLUMN = 5
PACS_COLUMN = len(COLUMNS) - 1
STATUS_LABELS = {StudyStatus.NEW: "New", StudyStatus.DRAFTED: "Drafted", StudyStatus.IN_PROGRESS: "In progress",
                 StudyStatus.SIGNED: "Signed", StudyStatus.AMENDED: "Amended"}
SEARCH_DELAY_MS = 200
PAGE_SIZE = 200


def _field(record, name: str) -> str:
    value = getattr(record, name, "")
    return "" if value is None else str(value)


def query_for_sort(column: int, order: Qt.SortOrder) -> WorklistQuery | None:
    """The store query a header sort asks for; None for a column the store cannot sort (PACS).
    The Status column sorts in the worklist order: still to report first, newest first."""
    descending = order == Qt.SortOrder.DescendingOrder
    if column == STATUS_COLUMN or column < 0:
        return WorklistQuery(order_by="worklist", descending=descending and column >= 0)
    if column >= PACS_COLUMN:
        return None
    return WorklistQuery(order_by=COLUMNS[column][1], descending=descending)


class WorklistModel(QAbstractTableModel):
    """The rows loaded so far; asks for more (moreWanted) when the view scrolls to the end."""

    moreWanted = Signal(int)  # offset: the number of rows loaded
    sortRequested = Signal(int, object)  # column, Qt.SortOrder (the view's header was clicked)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._records: list = []
        self._uids: set[str] = set()
        self._pacs: dict = {}  # study uid -> DeliveryStatus (rrg_desk.pacs.outbox)
        self.total: int | None = None  # studies matching the query (None: not known yet)
        self.busy = False  # a query is running: no more pages until it answers

    # --- contents ---------------------------------------------------------------------
    def pacs_label(self, study_uid: str) -> str:
        status = self._pacs.get(study_uid)
        return status.label if status is not None else ""

    def set_records(self, records, total: int | None = None, pacs: dict | None = None) -> None:
        """Replace the rows: in place when the same studies come in the same order (a status
        changed), else a model reset."""
        records = list(records)
        self.total = len(records) if total is None else total
        if pacs is not None:
            self._pacs = dict(pacs)
        if [r.study_uid for r in records] == [r.study_uid for r in self._records]:
            self._records = records
            if records:
                self.dataChanged.emit(self.index(0, 0), self.index(len(records) - 1, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self._records = records
        self._uids = {r.study_uid for r in records}
        self.endResetModel()

    def append_records(self, records, pacs: dict | None = None) -> int:
        """Add a page at the end (studies already shown are skipped); rows added."""
        new = [r for r in records if r.study_uid not in self._uids]
        if pacs:
            self._pacs.update(pacs)
        if not new:
            return 0
        first = len(self._records)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        self._records.extend(new)
        self._uids.update(r.study_uid for r in new)
        self.endInsertRows()
        return len(new)

    def record(self, row: int):
        return self._records[row]

    def records(self) -> list:
        return list(self._records)

    def row_of(self, study_uid: str) -> int:
        if study_uid not in self._uids:
            return -1
        return next(i for i, r in enumerate(self._records) if r.study_uid == study_uid)

    # --- paging -----------------------------------------------------------------------
    @property
    def has_more(self) -> bool:
        """The store holds more matching studies than are loaded."""
        return self.total is not None and len(self._records) < self.total

    def canFetchMore(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and not self.busy and self.has_more

    def fetchMore(self, parent=QModelIndex()) -> None:
        if self.canFetchMore(parent):
            self.busy = True
            self.moreWanted.emit(len(self._records))

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.sortRequested.emit(column, order)  # the store sorts: the panel re-queries

    # --- QAbstractTableModel ----------------------------------------------------------
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
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            raw = self.pacs_label(_field(record, "study_uid")) if name == "pacs" else _field(record, name)
            if name == "patient_name":
                return display_name(raw)
            if name == "study_date":
                return display_date(raw)
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
    refreshed = Signal()  # the rows shown answer the latest refresh, search or sort
    pageAppended = Signal(int)  # rows added by scrolling
    queryFailed = Signal(str)  # a message for the radiologist (also in the count line)

    def __init__(self, source_factory: SourceFactory | None = None, pacs_status: PacsStatuses | None = None,
                 parent: QWidget | None = None) -> None:
        """`source_factory` opens the store reader the worker thread queries (None: no store, no
        rows); `pacs_status` fills the PACS column, called in the worker thread."""
        super().__init__(parent)
        self.worker = WorklistWorker(source_factory, pacs_status, self)
        self.model = WorklistModel(self)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search patient, ID, accession, description…")
        self.search.setClearButtonEnabled(True)
        self.table = WorklistTable(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row measuring
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setResizeContentsPrecision(PAGE_SIZE // 4)  # column widths from a sample, not every row
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
        self._query = WorklistQuery()  # what the rows shown answer
        self._sort = WorklistQuery()  # the header's order (the search box adds the text)
        self._refresh_id: int | None = None  # the refresh in flight
        self._refresh_again = False  # asked again while one was in flight
        self._more_id: int | None = None
        self._selected_uid = ""
        self._reveal_selected = False
        self._restoring = False
        self._sized_columns = False
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.table.doubleClicked.connect(lambda index: self._activate(index.row()))
        self.table.activated_row.connect(self._activate)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.import_files.clicked.connect(self.importFilesRequested)
        self.import_folder.clicked.connect(self.importFolderRequested)
        self.model.moreWanted.connect(self._fetch_more)
        self.model.sortRequested.connect(self._sort_requested)
        self.worker.finished.connect(self._on_result)
        self.worker.failed.connect(self._on_failed)
        header.setSortIndicator(STATUS_COLUMN, Qt.SortOrder.AscendingOrder)  # the worklist order
        self.table.setSortingEnabled(True)  # header clicks -> model.sort -> a store query

    def current_query(self) -> WorklistQuery:
        s = self._sort
        return WorklistQuery(search=self.search.text().strip(), status=s.status, order_by=s.order_by,
                             descending=s.descending)

    # --- refreshing -------------------------------------------------------------------
    @property
    def refreshing(self) -> bool:
        """A refresh is asked for (typing pause) or running: the rows shown may change."""
        return self._refresh_id is not None or self._search_timer.isActive()

    def refresh(self) -> None:
        """Ask the store again (after imports, status changes, typing); returns at once, the
        rows follow (`refreshed`). Calls while one is running are folded into one more."""
        self._search_timer.stop()
        if not self.worker.available:
            self.model.set_records([], 0)
            self.count_label.setText("")
            self.refreshed.emit()
            return
        if self._refresh_id is not None:
            self._refresh_again = True
            return
        self._start_refresh()

    def _start_refresh(self) -> None:
        query = self.current_query()
        loaded = self.model.rowCount() if query == self._query else 0
        rows = max(PAGE_SIZE, -(-loaded // PAGE_SIZE) * PAGE_SIZE)  # what is shown, in whole pages
        self.model.busy = True
        self._more_id = None
        self._refresh_id = self.worker.fetch(query, 0, rows, count=True)

    def _fetch_more(self, offset: int) -> None:
        if not self.worker.available or self._refresh_id is not None:
            self.model.busy = self._refresh_id is not None
            return
        self._more_id = self.worker.fetch(self._query, offset, PAGE_SIZE)

    def _on_result(self, request_id: int, result: FetchResult) -> None:
        if request_id == self._refresh_id:
            self._refresh_id = None
            again, self._refresh_again = self._refresh_again, False
            if not again or result.request.query == self.current_query():
                self._show(result)
            if again:
                self._start_refresh()
                return
            self.model.busy = False
            self.refreshed.emit()
        elif request_id == self._more_id:
            self._more_id = None
            self.model.busy = False
            if result.request.query == self._query:
                added = self.model.append_records(result.page.records, result.pacs)
                self.pageAppended.emit(added)
        # else: an answer nobody waits for any more (a newer refresh replaced it)

    def _on_failed(self, request_id: int, message: str) -> None:
        if request_id not in (self._refresh_id, self._more_id):
            return
        if request_id == self._refresh_id:
            self._refresh_id = None
            if self._refresh_again:
                self._refresh_again = False
                self._start_refresh()
                return
        self._more_id = None
        self.model.busy = False
        self.count_label.setText(message)
        self.queryFailed.emit(message)
        self.refreshed.emit()

    def _show(self, result: FetchResult) -> None:
        """Put a refresh's rows on screen, keeping the selected study and the scroll position."""
        scroll = self.table.verticalScrollBar().value()
        same_query = result.request.query == self._query
        self._query = result.request.query
        self._restoring = True
        try:
            self.model.set_records(result.page.records, result.page.total, result.pacs)
            if not self._sized_columns and result.page.records:
                self.table.resizeColumnsToContents()  # once; afterwards the radiologist's widths stay
                self._sized_columns = True
            row = self.model.row_of(self._selected_uid) if self._selected_uid else -1
            if row >= 0:
                self._select_row(row)
            else:
                self.table.selectionModel().clear()
            if self._reveal_selected and row >= 0:
                self.table.scrollTo(self.model.index(row, 0), QAbstractItemView.ScrollHint.EnsureVisible)
            elif same_query:
                self.table.verticalScrollBar().setValue(scroll)
            else:
                self.table.scrollToTop()
        finally:
            self._restoring = False
        if row >= 0:
            self._reveal_selected = False
        total = self.model.total or 0
        self.count_label.setText(f"{total:,} stud{'y' if total == 1 else 'ies'}")

    def _sort_requested(self, column: int, order) -> None:
        query = query_for_sort(column, Qt.SortOrder(order))
        if query is None:  # PACS: not a store column; the header goes back to the order shown
            header = self.table.horizontalHeader()
            previous = next((i for i, (_title, name) in enumerate(COLUMNS) if name == self._sort.order_by),
                            STATUS_COLUMN)
            header.blockSignals(True)
            header.setSortIndicator(previous, Qt.SortOrder.DescendingOrder if self._sort.descending
                                    else Qt.SortOrder.AscendingOrder)
            header.blockSignals(False)
            return
        if query != self._sort:
            self._sort = query
            self.refresh()

    # --- selection --------------------------------------------------------------------
    def _select_row(self, row: int) -> None:
        index = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not self._restoring:
            self._selected_uid = (current.data(Qt.ItemDataRole.UserRole) or "") if current.isValid() else ""

    def uid_at(self, row: int) -> str:
        return self.model.index(row, 0).data(Qt.ItemDataRole.UserRole) or ""

    def visible_uids(self) -> list[str]:
        """The studies loaded so far, in the order shown."""
        return [r.study_uid for r in self.model.records()]

    def select_uid(self, study_uid: str) -> None:
        """Select the study (now if it is loaded, else when a refresh brings it) and show it."""
        self._selected_uid = study_uid
        self._reveal_selected = True
        row = self.model.row_of(study_uid)
        if row >= 0:
            self._restoring = True
            try:
                self._select_row(row)
                self.table.scrollTo(self.model.index(row, 0), QAbstractItemView.ScrollHint.EnsureVisible)
            finally:
                self._restoring = False
            self._reveal_selected = False

    def _activate(self, row: int) -> None:
        uid = self.uid_at(row)
        if uid:
            self.studyActivated.emit(uid)

    def shutdown(self) -> None:
        """Stop querying (the window closes; the database goes next)."""
        self._search_timer.stop()
        self.worker.shutdown()
