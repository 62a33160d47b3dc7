"""Reads files off the GUI thread; only the newest request's result is delivered.

A request is frozen (its id and paths) when made; a worker runs `load_studies` in the
thread pool and reports back through typed signals. If the user opened something else in
the meantime, the older result is dropped, so a slow folder never replaces a newer study.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from rrg_desk.errors import UserFacingError
from rrg_desk.imaging import ImageReadError, Study, load_studies

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    request_id: int
    paths: list[Path]
    studies: list[Study] = field(default_factory=list)
    errors: list[ImageReadError] = field(default_factory=list)
    records: list = field(default_factory=list)  # StudyRecords, when an importer added them to the worklist
    import_error: str = ""  # why the worklist import failed (the studies still show)


Importer = Callable[[list[Study]], list]  # Database.add_studies: the studies just read, no second read


class LoadSignals(QObject):
    finished = Signal(int, object)  # request id, LoadResult
    failed = Signal(int, str)  # request id, message (an unexpected exception, not a bad file)


class LoadTask(QRunnable):
    def __init__(self, request_id: int, paths: list[Path], importer: Importer | None = None) -> None:
        super().__init__()
        self.request_id = request_id
        self.paths = paths
        self.importer = importer
        self.signals = LoadSignals()

    def run(self) -> None:
        try:
            studies, errors = load_studies(self.paths)
        except Exception as exc:  # a bug or an OS error: report it instead of losing the thread
            log.exception("loading %s failed", self.paths)
            self.signals.failed.emit(self.request_id, f"{type(exc).__name__}: {exc}")
            return
        result = LoadResult(self.request_id, self.paths, studies, errors)
        if self.importer is not None and studies:
            try:  # the store is thread-safe; its import re-reads the (now cached) files
                result.records = self.importer(studies)
            except UserFacingError as exc:
                result.import_error = exc.user_message
                log.warning("worklist import of %s failed: %s", self.paths, result.import_error)
            except Exception as exc:  # a bug: said, and the studies still show
                result.import_error = f"{type(exc).__name__}: {exc}"
                log.warning("worklist import of %s failed: %s", self.paths, result.import_error)
        self.signals.finished.emit(self.request_id, result)


class StudyLoader(QObject):
    loaded = Signal(object)  # LoadResult of the current request
    failed = Signal(int, str)  # request id, message
    busyChanged = Signal(bool)

    def __init__(self, pool: QThreadPool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        self._current_id = 0
        self.importer: Importer | None = None  # set by the workstation: files also join the worklist
        # The pool deletes a task after run(); its signal object must live until delivered.
        self._pending: dict[int, LoadSignals] = {}

    @property
    def current_request_id(self) -> int:
        return self._current_id

    def is_busy(self) -> bool:
        return self._current_id in self._pending

    def request(self, paths: list[str | Path]) -> int:
        self._current_id += 1
        task = LoadTask(self._current_id, [Path(p) for p in paths], self.importer)
        task.signals.finished.connect(self._on_finished)
        task.signals.failed.connect(self._on_failed)
        self._pending[task.request_id] = task.signals
        self.busyChanged.emit(True)
        self._pool.start(task)
        return task.request_id

    def wait_for_done(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _on_finished(self, request_id: int, result: LoadResult) -> None:
        if self._settle(request_id):
            self.loaded.emit(result)

    def _on_failed(self, request_id: int, message: str) -> None:
        if self._settle(request_id):
            self.failed.emit(request_id, message)

    def _settle(self, request_id: int) -> bool:
        """Forget the task; True if its result is still wanted."""
        self._pending.pop(request_id, None)
        if request_id != self._current_id:
            log.info("dropping result of outdated load request %d", request_id)
            return False
        self.busyChanged.emit(False)
        return True
