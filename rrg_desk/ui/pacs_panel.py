"""The PACS panel: search a PACS, retrieve studies into the worklist, resend queued reports.

    panel = PacsPanel(database, user=lambda: settings.user_name)   # user: who the audit names
    main_window.add_panel("PACS", panel, area)
    panel.studyRetrieved.connect(worklist.refresh)

Network work runs as jobs (ui/jobs.py), one at a time: search, retrieve with progress,
outbox retry; errors arrive as the PacsError's user_message in the status line, never as a
traceback.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDateEdit, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
    QHBoxLayout, QHeaderView, QInputDialog, QLabel, QLineEdit, QListWidget, QProgressBar, QPushButton,
    QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from rrg_desk.imaging.dicom_values import display_date, display_name
from rrg_desk.pacs import (
    CredentialStore, PacsError, PacsServer, PacsSettingsError, StudyQuery, client_for, find_server, load_servers,
    retrieve_into_store, retry_outbox, save_servers,
)
from rrg_desk.store import Database
from rrg_desk.ui.jobs import Job, JobRunner

MODALITY_CHOICES = (("CR + DX", ("CR", "DX")), ("CR", ("CR",)), ("DX", ("DX",)), ("Any", ()))
COLUMNS = ("Patient", "Patient ID", "Date", "Accession", "Description", "Modalities", "Images")


class ServerDialog(QDialog):
    """Edit the list of PACS servers; the password goes to the keychain or this session only."""

    def __init__(self, credentials: CredentialStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS servers")
        self.credentials = credentials
        self.servers = load_servers()
        self.passwords: dict[str, str] = {}
        self.list = QListWidget()
        self.name, self.url, self.username, self.password = QLineEdit(), QLineEdit(), QLineEdit(), QLineEdit()
        self.url.setPlaceholderText("https://pacs.example.org/dicom-web")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("unchanged" if credentials.uses_keychain else "asked once per session")
        self.verify_tls = QCheckBox("Verify the server's TLS certificate")
        self.verify_tls.setChecked(True)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, 3600)
        self.timeout.setValue(30)
        self.timeout.setSuffix(" s")
        self.message = QLabel()
        self.message.setWordWrap(True)
        form = QFormLayout()
        for label, widget in (("Name", self.name), ("DICOMweb URL", self.url), ("User", self.username),
                              ("Password", self.password), ("", self.verify_tls), ("Timeout", self.timeout)):
            form.addRow(label, widget)
        add, remove = QPushButton("Add / update"), QPushButton("Remove")
        add.clicked.connect(self.add_or_update)
        remove.clicked.connect(self.remove_selected)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.list.currentRowChanged.connect(self._show)
        self._refresh()

    def _refresh(self) -> None:
        self.list.clear()
        self.list.addItems([f"{s.name} — {s.url}" for s in self.servers])

    def _show(self, row: int) -> None:
        if 0 <= row < len(self.servers):
            server = self.servers[row]
            self.name.setText(server.name)
            self.url.setText(server.url)
            self.username.setText(server.username)
            self.verify_tls.setChecked(server.verify_tls)
            self.timeout.setValue(server.timeout_s)
            self.password.clear()

    def add_or_update(self) -> bool:
        try:
            server = PacsServer(self.name.text().strip(), self.url.text().strip(), self.username.text().strip(),
                                verify_tls=self.verify_tls.isChecked(), timeout_s=self.timeout.value())
        except PacsSettingsError as exc:
            self.message.setText(exc.user_message)
            return False
        self.servers = [s for s in self.servers if s.name != server.name] + [server]
        if self.password.text():
            self.passwords[server.name] = self.password.text()
            self.password.clear()
        self.message.setText("" if server.verify_tls else "TLS verification is off: use only for a trusted test server.")
        self._refresh()
        return True

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.servers):
            del self.servers[row]
            self._refresh()

    def save(self) -> None:
        try:
            save_servers(self.servers)
        except PacsSettingsError as exc:
            self.message.setText(exc.user_message)
            return
        for server in self.servers:
            if server.name in self.passwords:
                self.credentials.remember(server, self.passwords[server.name])
        self.accept()


class PacsPanel(QWidget):
    studyRetrieved = Signal(str)
    searchFinished = Signal(int)  # number of studies found
    outboxRetried = Signal(int, int)  # sent, still queued
    errorShown = Signal(str)

    def __init__(self, db: Database, parent: QWidget | None = None, credentials: CredentialStore | None = None,
                 jobs: JobRunner | None = None, user: Callable[[], str] | None = None) -> None:
        """`user`: who retrieves and resends, for the audit (asked at each job; None: nobody named)."""
        super().__init__(parent)
        self.db = db
        self._user = user or (lambda: "")
        self.credentials = credentials or CredentialStore()
        # one network job at a time, in a pool of our own (close waits only for ours)
        self.jobs = jobs or JobRunner(self, max_threads=1)
        self.hits = []
        self._busy = False
        self._build()
        self.reload_servers()

    # --- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.server = QComboBox()
        manage = QPushButton("Servers…")
        manage.clicked.connect(self.edit_servers)
        self.patient_name, self.patient_id, self.accession = QLineEdit(), QLineEdit(), QLineEdit()
        self.patient_name.setPlaceholderText("e.g. doe jane")
        self.use_dates = QCheckBox("Study date from")
        self.date_from, self.date_to = QDateEdit(QDate.currentDate().addMonths(-1)), QDateEdit(QDate.currentDate())
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.modality = QComboBox()
        self.modality.addItems([label for label, _ in MODALITY_CHOICES])
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        for edit in (self.patient_name, self.patient_id, self.accession):
            edit.returnPressed.connect(self.search)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.doubleClicked.connect(lambda _index: self.retrieve_selected())
        self.retrieve_button = QPushButton("Retrieve selected")
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.outbox_button = QPushButton("Send queued reports")
        self.outbox_button.clicked.connect(self.retry_outbox)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel()
        self.status.setWordWrap(True)

        servers = QHBoxLayout()
        servers.addWidget(self.server, 1)
        servers.addWidget(manage)
        form = QFormLayout()
        form.addRow("PACS", servers)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Accession", self.accession)
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        form.addRow(self.use_dates, dates)
        form.addRow("Modality", self.modality)
        actions = QHBoxLayout()
        actions.addWidget(self.search_button)
        actions.addWidget(self.retrieve_button)
        actions.addWidget(self.outbox_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(actions)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

    # --- helpers --------------------------------------------------------------------------
    @property
    def user(self) -> str:
        return str(self._user() or "")

    def reload_servers(self) -> None:
        current = self.server.currentText()
        self.server.clear()
        try:
            self.server.addItems([s.name for s in load_servers()])
        except PacsSettingsError as exc:
            self.show_error(exc.user_message)
        if current:
            self.server.setCurrentText(current)
        self._update_enabled()

    def _update_enabled(self) -> None:
        has_server = self.server.count() > 0
        for button in (self.search_button, self.retrieve_button):
            button.setEnabled(has_server and not self._busy)
        self.outbox_button.setEnabled(not self._busy)

    def show_error(self, message: str) -> None:
        self.status.setText(message)
        self.errorShown.emit(message)

    def edit_servers(self) -> None:
        if ServerDialog(self.credentials, self).exec() == QDialog.DialogCode.Accepted:
            self.reload_servers()

    def _client_for_name(self, name: str, ask: bool = True):
        server = find_server(name)
        try:
            return client_for(server, self.credentials)
        except PacsSettingsError:
            if not ask:
                raise
            password, ok = QInputDialog.getText(self, "PACS password", f"Password for {server.username} on "
                                                f"{server.name}:", QLineEdit.EchoMode.Password)
            if not ok:
                raise
            self.credentials.remember(server, password)
            return client_for(server, self.credentials)

    def _current_client(self):
        if self.server.count() == 0:
            raise PacsSettingsError("Add a PACS server first (Servers…).")
        return self._client_for_name(self.server.currentText())

    def _start(self, work: Callable[[Job], object], on_done: Callable[[object], None], label: str,
               progress: bool = False) -> None:
        self._busy = True  # one job at a time: the buttons stay disabled until it settles
        self._update_enabled()
        self.status.setText(label)
        self.progress.setVisible(progress)
        self.progress.setRange(0, 0)
        self.jobs.start(work, partial(self._job_finished, on_done), self._job_failed,
                        on_progress=self._progressed if progress else None)

    def _job_finished(self, on_done: Callable[[object], None], result) -> None:
        self._finish()
        on_done(result)

    def _job_failed(self, message: str) -> None:
        self._finish()
        self.show_error(message)

    def _progressed(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _finish(self) -> None:
        self._busy = False
        self.progress.setVisible(False)
        self._update_enabled()

    # --- actions --------------------------------------------------------------------------
    def query(self) -> StudyQuery:
        modalities = dict(MODALITY_CHOICES)[self.modality.currentText()]
        date_from = self.date_from.date().toPython() if self.use_dates.isChecked() else None
        date_to = self.date_to.date().toPython() if self.use_dates.isChecked() else None
        return StudyQuery(patient_name=self.patient_name.text(), patient_id=self.patient_id.text(),
                          accession=self.accession.text(), date_from=date_from, date_to=date_to,
                          modalities=modalities)

    def search(self) -> None:
        try:
            client = self._current_client()
        except PacsError as exc:
            self.show_error(exc.user_message)
            return
        query = self.query()
        self._start(lambda _job: client.search_studies(query), self._show_hits, "Searching…")

    def _show_hits(self, hits) -> None:
        self.hits = list(hits)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.hits))
        for row, hit in enumerate(self.hits):
            values = (display_name(hit.patient_name), hit.patient_id, display_date(hit.study_date), hit.accession,
                      hit.description, "/".join(hit.modalities),
                      "" if hit.instance_count is None else str(hit.instance_count))
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, hit.study_uid)
                self.table.setItem(row, column, item)
        self.table.setSortingEnabled(True)
        self.status.setText(f"{len(self.hits)} studies found." if self.hits else "No study matches.")
        self.searchFinished.emit(len(self.hits))

    def selected_study_uids(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) for row in rows]

    def retrieve_selected(self) -> None:
        uids = self.selected_study_uids()
        if not uids:
            self.show_error("Select one or more studies in the results first.")
            return
        try:
            client = self._current_client()
        except PacsError as exc:
            self.show_error(exc.user_message)
            return
        db, user = self.db, self.user

        def work(job: Job) -> list:
            records = []
            for uid in uids:  # one at a time: each arrives whole in the worklist or not at all
                records.append(retrieve_into_store(client, db, uid, user=user, progress=job.report,
                                                   cancel=job.is_cancelled))
            return records

        self._start(work, self._retrieved, f"Retrieving {len(uids)} stud{'y' if len(uids) == 1 else 'ies'}…",
                    progress=True)

    def _retrieved(self, records) -> None:
        self.status.setText(f"{len(records)} stud{'y' if len(records) == 1 else 'ies'} added to the worklist.")
        for record in records:
            self.studyRetrieved.emit(record.study_uid)

    def retry_outbox(self) -> None:
        db, user = self.db, self.user
        client_by_name = lambda name: self._client_for_name(name, ask=False)  # noqa: E731 (no dialogs off-thread)
        self._start(lambda _job: retry_outbox(db, client_by_name, user=user), self._outbox_done,
                    "Sending queued reports…")

    def _outbox_done(self, results) -> None:
        sent = sum(1 for r in results if r.sent)
        queued = len(results) - sent
        if not results:
            self.status.setText("No report is waiting to be sent.")
        elif queued:
            self.show_error(f"{sent} sent, {queued} still queued: {results[-1].message}")
        else:
            self.status.setText(f"{sent} queued report{'s' if sent != 1 else ''} sent.")
        self.outboxRetried.emit(sent, queued)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        self.jobs.wait(5_000)
        super().closeEvent(event)


__all__ = ["PacsPanel", "ServerDialog"]
