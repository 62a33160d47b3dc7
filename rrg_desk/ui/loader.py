"""Reads files off the GUI thread; only the newest request's result is delivered.

A request is frozen (its id and paths) when made; a job (ui/jobs.py) runs `load_studies`
and the worklist import in the pool and reports back through typed signals. If the user
opened something else in the meantime, the older result is dropped, so a slow folder never
replaces a newer study.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from rrg_desk.imaging import ImageReadError, Study, load_studies
from rrg_desk.ui.jobs import JobRunner, failure_message

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


def read_and_import(request_id: int, paths: list[Path], importer: Importer | None) -> LoadResult:
    """The job: read the files, then add the studies to the worklist (runs in the pool)."""
    studies, errors = load_studies(paths)
    result = LoadResult(request_id, paths, studies, errors)
    if importer is not None and studies:
        try:  # the store is thread-safe; its import re-reads the (now cached) files
            result.records = importer(studies)
        except Exception as exc:
            result.import_error = failure_message(exc)
            log.warning("worklist import of %s failed: %s", paths, result.import_error)
    return result


class StudyLoader(QObject):
    loaded = Signal(object)  # LoadResult of the current request
    failed = Signal(int, str)  # request id, message (an unexpected exception, not a bad file)
    busyChanged = Signal(bool)

    def __init__(self, importer: Importer | None = None, parent: QObject | None = None) -> None:
        """`importer`: the workstation's, so files read also join the worklist (None: viewing only)."""
        super().__init__(parent)
        self.jobs = JobRunner(self)
        self.importer = importer
        self._current_id = 0
        self._pending: set[int] = set()  # request ids whose job has not reported yet

    def is_busy(self) -> bool:
        return self._current_id in self._pending

    def request(self, paths: list[str | Path]) -> int:
        self._current_id += 1
        request_id, importer = self._current_id, self.importer
        frozen = [Path(p) for p in paths]
        self._pending.add(request_id)
        self.busyChanged.emit(True)
        self.jobs.start(lambda _job: read_and_import(request_id, frozen, importer),
                        partial(self._on_finished, request_id), partial(self._on_failed, request_id))
        return request_id

    def wait_for_done(self, msecs: int = -1) -> bool:
        return self.jobs.wait(msecs)

    def _on_finished(self, request_id: int, result: LoadResult) -> None:
        if self._settle(request_id):
            self.loaded.emit(result)

    def _on_failed(self, request_id: int, message: str) -> None:
        if self._settle(request_id):
            self.failed.emit(request_id, message)

    def _settle(self, request_id: int) -> bool:
        """Forget the request; True if its result is still wanted."""
        self._pending.discard(request_id)
        if request_id != self._current_id:
            log.info("dropping result of outdated load request %d", request_id)
            return False
        self.busyChanged.emit(False)
        return True
