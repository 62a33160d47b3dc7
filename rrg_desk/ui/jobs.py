"""The one way the UI runs short background work: a JobRunner per panel or dialog.

    self.jobs = JobRunner(self, max_threads=1)          # its own pool: shutdown waits only for its jobs
    job = self.jobs.start(lambda job: work(args), self._done, self._failed)
    job = self.jobs.start(lambda job: retrieve(..., progress=job.report, cancel=job.is_cancelled),
                          self._done, self._failed, on_progress=self._progressed)

`work(job)` runs in the pool; the callbacks run on the GUI thread, however they are written
(bound methods, lambdas, partials): the pool thread only emits the runner's relay signals,
which are queued to the GUI thread, and the runner calls the job's callbacks there. Every job
has one CancelToken: a cancelled job that has not started never runs, a running one sees it
through `job.is_cancelled` (between its stages), and its late result or error is dropped.
A failure reaches `on_failed` as one line for the user (a UserFacingError's message, else the
exception's type and text, with the traceback logged).

The long-lived draft worker (ui/draft_worker.py) is not a job: it talks to the inference
process. superqt's FunctionWorker is not used because its run() swaps the process-wide
warnings filters and showwarning inside catch_warnings from the pool thread, which is not
thread-safe (CPython gh-128384): two overlapping jobs leave showwarning pointing at a
finished worker and the test suite's error filters overridden.
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

from rrg_desk.errors import UserFacingError
from rrg_desk.inference.request import CancelToken

log = logging.getLogger(__name__)

_job_ids = itertools.count(1)  # unique across runners, so a shared relay never confuses two jobs


def failure_message(exc: Exception) -> str:
    """The line shown for a failed job; an unexpected exception's traceback goes to the log."""
    if isinstance(exc, UserFacingError):
        return exc.user_message
    log.error("background job failed", exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


@dataclass(eq=False)
class Job:
    """One piece of background work: what runs, its cancel token, and who hears back."""

    work: Callable[[Job], Any]
    on_finished: Callable[[Any], None]
    on_failed: Callable[[str], None] | None = None
    on_progress: Callable[[int, int], None] | None = None
    id: int = field(default_factory=lambda: next(_job_ids))
    cancel_token: CancelToken = field(default_factory=CancelToken)
    _relay: _Relay | None = field(default=None, repr=False)

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def is_cancelled(self) -> bool:
        """For the work function (a `cancel` predicate, as rrg_desk.pacs takes)."""
        return self.cancel_token.cancelled

    def report(self, done: int, total: int) -> None:
        """For the work function: progress, delivered to on_progress on the GUI thread."""
        if self._relay is not None and not self.is_cancelled():
            self._relay.progressed.emit(self.id, done, total)


class _Relay(QObject):
    """Lives on the GUI thread; the pool thread emits, so every delivery is queued there."""

    progressed = Signal(int, int, int)  # job id, done, total
    settled = Signal(int, bool, object)  # job id, succeeded, result or message


class _Runnable(QRunnable):
    """Deleted by the pool after run(); it holds the relay, which the runner also keeps."""

    def __init__(self, job: Job, relay: _Relay) -> None:
        super().__init__()
        self.job, self.relay = job, relay

    def run(self) -> None:
        job = self.job
        if job.is_cancelled():  # cancelled while queued: never runs
            self.relay.settled.emit(job.id, False, "")
            return
        try:
            result = job.work(job)
        except Exception as exc:  # shown to the user; must not end the pool thread silently
            self.relay.settled.emit(job.id, False, failure_message(exc))
        else:
            self.relay.settled.emit(job.id, True, result)


class JobRunner(QObject):
    """Starts jobs in its own thread pool and calls back on the GUI thread."""

    def __init__(self, parent: QObject | None = None, max_threads: int | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads or QThread.idealThreadCount())
        self._relay = _Relay()  # no parent: running jobs still hold it if this runner goes first
        self._relay.progressed.connect(self._on_progressed)
        self._relay.settled.connect(self._on_settled)
        self._jobs: dict[int, Job] = {}  # started and not yet settled

    def start(self, work: Callable[[Job], Any], on_finished: Callable[[Any], None],
              on_failed: Callable[[str], None] | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> Job:
        job = Job(work, on_finished, on_failed, on_progress, _relay=self._relay)
        self._jobs[job.id] = job
        self.pool.start(_Runnable(job, self._relay))
        return job

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def is_running(self, job: Job | None) -> bool:
        """Started and not yet settled (queued counts as running)."""
        return job is not None and job.id in self._jobs

    def cancel_all(self) -> None:
        for job in self._jobs.values():
            job.cancel()

    def wait(self, msecs: int = -1) -> bool:
        """Block until every started job has returned (True) or msecs passed (False)."""
        return self.pool.waitForDone(msecs)

    def shutdown(self, msecs: int = -1) -> bool:
        """No more results: cancel every job, drop the queued ones, wait for the running ones."""
        self.cancel_all()
        self.pool.clear()  # a job removed from the queue never settles: forget it here
        done = self.pool.waitForDone(msecs)
        self._jobs.clear()
        return done

    def _on_progressed(self, job_id: int, done: int, total: int) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.on_progress is not None and not job.is_cancelled():
            job.on_progress(done, total)

    def _on_settled(self, job_id: int, succeeded: bool, value: object) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None or job.is_cancelled():
            return
        if succeeded:
            job.on_finished(value)
        elif job.on_failed is not None:
            job.on_failed(value)


__all__ = ["Job", "JobRunner", "failure_message"]
