"""Signed reports to the PACS: sign (or sign an addendum) -> outbox -> STOW-RS, with retries.

    delivery = PacsDelivery(session, credentials, jobs, parent)   # the worklist's PACS column: delivery.statuses
    connect_pacs_delivery(delivery, window)   # wires signing, the export dialog and the worklist

With a PACS configured (pacs-servers.json; the setting `pacs_server` picks one, else the first)
and the setting `pacs_auto_send` on, every signature queues the report's SR in the outbox (on
the GUI thread: a local SQLite write, so nothing is lost if the network hangs) and a worker
sends it. When the server is down the SR stays queued: a timer retries the outbox (30 s,
doubling to 10 min) until it is empty, and the worklist's PACS column shows sent / queued /
failed with the reason. The export dialog's "Send to PACS" queues and sends on request. The
rules (which version, which UID, the audit) are Qt-free, in rrg_desk/pacs/send.py.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

from rrg_desk.pacs import (
    CredentialStore, Outbox, PacsError, PacsServer, client_for, queue_signed_report, report_server, retry_outbox,
    send_signed_report,
)
from rrg_desk.ui.jobs import JobRunner

log = logging.getLogger(__name__)

FIRST_RETRY_MS = 30_000
MAX_RETRY_MS = 600_000


class PacsDelivery(QObject):
    delivered = Signal(object)  # DeliveryResult of a send started here (sent or still queued)
    statusChanged = Signal()  # the outbox changed: redraw the worklist's PACS column
    message = Signal(str)  # one line for the status bar

    def __init__(self, session, credentials: CredentialStore | None = None, jobs: JobRunner | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.credentials = credentials or CredentialStore()
        self.jobs = jobs or JobRunner(self, max_threads=1)  # the PACS panel's: one network job at a time
        self.retry_delay_ms = FIRST_RETRY_MS
        self.closed = False
        self.retry_timer = QTimer(self)
        self.retry_timer.setSingleShot(True)
        self.retry_timer.timeout.connect(self.retry_pending)

    # --- what and where ------------------------------------------------------------------
    @property
    def db(self):
        return self.session.db

    def server(self) -> PacsServer | None:
        """The PACS reports go to, or None (none configured, or the setting names no server)."""
        try:
            return report_server(getattr(self.session.settings, "pacs_server", "") or "")
        except PacsError as exc:
            self.message.emit(exc.user_message)
            return None

    def server_name(self) -> str | None:
        server = self.server()
        return server.name if server is not None else None

    @property
    def auto_send(self) -> bool:
        return bool(getattr(self.session.settings, "pacs_auto_send", True))

    def statuses(self, study_uids: list[str] | None = None) -> dict:
        """study uid -> DeliveryStatus (empty when the outbox cannot be read); only the studies
        named when `study_uids` is given. Thread-safe (its own connection): the worklist calls
        it from its worker for the rows it loads."""
        try:
            with Outbox(self.db) as outbox:
                return outbox.statuses(study_uids)
        except Exception as exc:  # a PacsError, StoreError or bug: a status column must never break the worklist
            log.warning("PACS outbox not readable: %s", exc)
            return {}

    # --- sending -------------------------------------------------------------------------
    def on_signed(self, report) -> None:
        """After a signature (report or addendum): send when auto-send is on and a PACS is set."""
        if self.auto_send and self.server() is not None:
            self.send(report.study_uid)

    def send(self, study_uid: str) -> bool:
        """Queue the study's newest signed version for the PACS and start sending it. False
        (with a message) when there is no PACS or the report cannot be prepared."""
        server = self.server()
        if server is None:
            self.message.emit("No PACS is configured: add one in the PACS panel (Servers…).")
            return False
        organisation = getattr(self.session.settings, "institution_name", "") or ""
        try:
            queue_signed_report(self.db, study_uid, server.name, organisation)
        except PacsError as exc:
            self.message.emit(exc.user_message)
            return False
        self.statusChanged.emit()
        try:
            client = client_for(server, self.credentials)
        except PacsError as exc:  # e.g. no password known yet: stays queued
            self.message.emit(f"The report is queued for PACS '{server.name}'. {exc.user_message} "
                              "Then use Send queued reports in the PACS panel.")
            return True
        db, user = self.db, self.session.user
        self._start(lambda _job: send_signed_report(db, client, study_uid, user=user, organisation=organisation),
                    self._sent)
        self.message.emit(f"Sending the report to PACS '{server.name}'…")
        return True

    def retry_pending(self) -> None:
        """Try the queued reports again (the timer calls this; no dialogs)."""
        db, user, credentials = self.db, self.session.user, self.credentials

        def client_by_name(name: str):
            return client_for(_find(name), credentials)

        self._start(lambda _job: retry_outbox(db, client_by_name, user=user), self._retried)

    def _start(self, work, on_done) -> None:
        self.jobs.start(work, on_done, self._failed)

    def _sent(self, result) -> None:
        self.message.emit(result.message)
        self.delivered.emit(result)
        self._after_attempt()

    def _retried(self, results) -> None:
        sent = sum(1 for r in results if r.sent)
        if results:
            self.message.emit(f"PACS: {sent} queued report{'s' if sent != 1 else ''} sent, "
                              f"{len(results) - sent} still queued.")
        self._after_attempt()

    def _failed(self, message: str) -> None:
        self.message.emit(message)
        self._after_attempt()

    def close(self) -> None:
        """The window is closing: no more retries or status refreshes (the database goes next).
        A send in flight finishes first; queued jobs are dropped (the outbox keeps their reports
        for the next start) and a retrieve stops between images."""
        self.closed = True
        self.retry_timer.stop()
        self.jobs.shutdown(10_000)

    def _after_attempt(self) -> None:
        if self.closed:  # a queued timer or a send finishing after the window closed
            return
        self.statusChanged.emit()
        try:
            with Outbox(self.db) as outbox:
                waiting = bool(outbox.pending())
        except PacsError:
            waiting = False
        if not waiting:
            self.retry_delay_ms = FIRST_RETRY_MS
            self.retry_timer.stop()
            return
        if not self.retry_timer.isActive():
            self.retry_timer.start(self.retry_delay_ms)
            self.retry_delay_ms = min(self.retry_delay_ms * 2, MAX_RETRY_MS)

    def wait(self, msecs: int = 5_000) -> bool:
        return self.jobs.wait(msecs)


def _find(name: str) -> PacsServer:
    from rrg_desk.pacs import find_server

    return find_server(name)


def connect_pacs_delivery(delivery: PacsDelivery, window) -> None:
    """Wire a MainWindow's delivery (built with its PACS panel, the worklist showing its statuses):
    signatures and the export dialog's "Send to PACS" go to it, outbox changes and the PACS
    panel's retry refresh the worklist's PACS column."""
    window.signoff.signed.connect(delivery.on_signed)
    window.signoff.addendumSigned.connect(delivery.on_signed)
    window.signoff.pacsSendRequested.connect(delivery.send)
    delivery.statusChanged.connect(window.worklist.refresh)
    delivery.message.connect(window.statusBar().showMessage)
    window.pacs_panel.outboxRetried.connect(lambda _sent, _queued: window.worklist.refresh())
    window.worklist.refresh()
    QTimer.singleShot(0, delivery._after_attempt)  # reports queued in an earlier session: retry later
