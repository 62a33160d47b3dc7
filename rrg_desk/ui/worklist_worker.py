"""Worklist queries off the GUI thread: a page of studies (and their PACS statuses) per request.

    worker = WorklistWorker(database.worklist_reader,  # opened on first use, in the worker thread
                            delivery.statuses,         # optional: [uid] -> {uid: DeliveryStatus}
                            parent)
    request_id = worker.fetch(query, offset, limit, count=True)
    worker.finished -> (request_id, FetchResult) ; worker.failed -> (request_id, message)

One thread, so requests run in the order made and the reader's connection is never used by
two threads at once. Every request carries an id; the panel keeps only the answers it still
wants (a newer search or refresh makes older answers stale). `shutdown()` drops the queued
requests, waits for the running one and closes the connection (before the database closes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Protocol

from PySide6.QtCore import QObject, Signal

from rrg_desk.store import WorklistPage, WorklistQuery
from rrg_desk.ui.jobs import JobRunner


class WorklistSource(Protocol):
    """What the worker queries (rrg_desk.store.WorklistReader): a page of the worklist, then closed."""

    def page(self, query: WorklistQuery, offset: int, limit: int, count: bool) -> WorklistPage: ...

    def close(self) -> None: ...


SourceFactory = Callable[[], WorklistSource]  # opens the source, in the worker thread (Database.worklist_reader)
PacsStatuses = Callable[[list[str]], dict]  # [study uid] -> {uid: DeliveryStatus} (PacsDelivery.statuses)


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


class WorklistWorker(QObject):
    finished = Signal(int, object)  # request id, FetchResult
    failed = Signal(int, str)

    def __init__(self, source_factory: SourceFactory | None = None, pacs_status: PacsStatuses | None = None,
                 parent: QObject | None = None) -> None:
        """Without a `source_factory` (no store) every request goes unanswered."""
        super().__init__(parent)
        self.source_factory = source_factory
        self.pacs_status = pacs_status
        self.jobs = JobRunner(self, max_threads=1)
        self.closed = False
        self._source = None
        self._last_id = 0

    @property
    def available(self) -> bool:
        return self.source_factory is not None and not self.closed

    def source(self) -> WorklistSource:
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
            self.jobs.start(lambda _job: self._fetch(request), self._finished,
                            partial(self._failed, request.request_id))
        return request.request_id

    def _fetch(self, request: FetchRequest) -> FetchResult:
        """The job (in the worklist's one thread): a page, then the PACS statuses of its studies."""
        page = self.source().page(request.query, request.offset, request.limit, request.count)
        pacs = self.pacs_status([r.study_uid for r in page.records]) if self.pacs_status is not None else {}
        return FetchResult(request, page, pacs)

    def _finished(self, result: FetchResult) -> None:
        if not self.closed:
            self.finished.emit(result.request.request_id, result)

    def _failed(self, request_id: int, message: str) -> None:
        if not self.closed:
            self.failed.emit(request_id, message)

    def wait(self, msecs: int = 5_000) -> bool:
        return self.jobs.wait(msecs)

    def shutdown(self, msecs: int = 10_000) -> None:
        """No more queries: drop the queued ones, wait for the running one, close the reader."""
        self.closed = True
        self.jobs.shutdown(msecs)
        source, self._source = self._source, None
        if source is not None:
            source.close()
