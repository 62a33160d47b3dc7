"""Worklist queries off the GUI thread: a page of studies (and their PACS statuses) per request.

    worker = WorklistWorker(parent)
    worker.source_factory = database.worklist_reader   # opened on first use, in the worker thread
    worker.pacs_status = delivery.statuses              # optional: [uid] -> {uid: DeliveryStatus}
    request_id = worker.fetch(query, offset, limit, count=True)
    worker.finished -> (request_id, FetchResult) ; worker.failed -> (request_id, message)

One thread, so requests run in the order made and the reader's connection is never used by
two threads at once. Every request carries an id; the panel keeps only the answers it still
wants (a newer search or refresh makes older answers stale). `shutdown()` drops the queued
requests, waits for the running one and closes the connection (before the database closes).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from rrg_desk.errors import UserFacingError
from rrg_desk.store import WorklistPage, WorklistQuery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchRequest:
    request_id: int
    query: WorklistQuery
    offset: int
    limit: int
    count: bool


@dataclass
class FetchResult:
    request: FetchRequest
    page: WorklistPage
    pacs: dict = field(default_factory=dict)  # study uid -> DeliveryStatus, for the page's studies


class _Signals(QObject):
    finished = Signal(int, object)  # request id, FetchResult
    failed = Signal(int, str)  # request id, message for the radiologist


class _FetchTask(QRunnable):
    def __init__(self, owner: "WorklistWorker", request: FetchRequest,
                 pacs_status: Callable[[list[str]], dict] | None) -> None:
        super().__init__()
        self.owner = owner
        self.request = request
        self.pacs_status = pacs_status

    def run(self) -> None:
        request, owner = self.request, self.owner
        if owner.closed:
            return
        try:
            page = owner.source().page(request.query, request.offset, request.limit, request.count)
            pacs = self.pacs_status([r.study_uid for r in page.records]) if self.pacs_status is not None else {}
        except UserFacingError as exc:  # a StoreError
            owner.signals.failed.emit(request.request_id, exc.user_message)
            return
        except Exception as exc:  # a bug: say it instead of losing the thread
            log.exception("worklist query failed")
            owner.signals.failed.emit(request.request_id, f"{type(exc).__name__}: {exc}")
            return
        owner.signals.finished.emit(request.request_id, FetchResult(request, page, pacs))


class WorklistWorker(QObject):
    finished = Signal(int, object)  # request id, FetchResult
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.source_factory: Callable[[], object] | None = None  # -> an object with page(query, offset, limit, count)
        self.pacs_status: Callable[[list[str]], dict] | None = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.signals = _Signals(self)  # lives in the GUI thread: emissions from the pool are queued to it
        self.signals.finished.connect(self._finished)
        self.signals.failed.connect(self._failed)
        self.closed = False
        self._source = None
        self._last_id = 0

    @property
    def available(self) -> bool:
        return self.source_factory is not None and not self.closed

    def source(self):
        """The reader, opened on first use (called in the worker thread only)."""
        if self._source is None:
            if self.source_factory is None:
                raise RuntimeError("the worklist has no store")
            self._source = self.source_factory()
        return self._source

    def fetch(self, query: WorklistQuery, offset: int, limit: int, count: bool = False) -> int:
        self._last_id += 1
        request = FetchRequest(self._last_id, query, offset, limit, count)
        if self.available:
            self.pool.start(_FetchTask(self, request, self.pacs_status))
        return request.request_id

    def _finished(self, request_id: int, result: FetchResult) -> None:
        if not self.closed:
            self.finished.emit(request_id, result)

    def _failed(self, request_id: int, message: str) -> None:
        if not self.closed:
            self.failed.emit(request_id, message)

    def wait(self, msecs: int = 5_000) -> bool:
        return self.pool.waitForDone(msecs)

    def shutdown(self, msecs: int = 10_000) -> None:
        """No more queries: drop the queued ones, wait for the running one, close the reader."""
        self.closed = True
        self.pool.clear()
        self.pool.waitForDone(msecs)
        source, self._source = self._source, None
        if source is not None and hasattr(source, "close"):
            source.close()
