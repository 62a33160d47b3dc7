"""Runs the models off the GUI thread: drafts, describe-a-region, finding heatmaps.

One QThread owns one DraftPipeline, so the models are loaded once and always used from the
same thread. Requests are frozen when made (study, settings, a CancelToken); the answer
comes back through typed signals carrying the request id. Only the newest request of each
kind is wanted: an older one is cancelled between stages and its late result is dropped,
so a result for a study that is no longer open never reaches the screen.

torch is imported by the worker thread on the first request, never at startup.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from rrg_desk.imaging.input_check import InputRefusal  # torch-free, like CancelToken
from rrg_desk.inference.cancel import CancelToken  # torch-free: held by the GUI thread

log = logging.getLogger(__name__)

KIND_DRAFT, KIND_DESCRIBE, KIND_HEATMAP = "draft", "describe", "heatmap"


@dataclass
class _Job:
    kind: str
    request_id: int
    study: Any = None  # rrg_desk.imaging.Study
    settings: Any = None  # rrg_desk.inference.pipeline.DraftSettings (None: the card's)
    box: tuple[float, float, float, float] | None = None
    image: Any = None  # XrayImage, for heatmaps
    finding: str = ""
    bundle_dir: Path | None = None
    device: str = "auto"
    cancel: "CancelToken | None" = None
    cancelled_early: list[bool] = field(default_factory=lambda: [False])


def user_message(exc: BaseException) -> str:
    """The message a radiologist sees: typed errors carry one; anything else is a bug."""
    message = getattr(exc, "user_message", None)
    if message:
        return str(message)
    return f"An unexpected error stopped the model ({type(exc).__name__}: {exc})."


class _Engine(QObject):
    """Lives in the worker thread; owns the pipeline."""

    progressed = Signal(int, str, int, int)
    draftReady = Signal(int, object)
    regionDescribed = Signal(int, object)
    heatmapReady = Signal(int, str, object)
    failed = Signal(int, str, str)  # request id, kind, message
    refused = Signal(int, str)  # request id, why the input check refused to draft
    cancelled = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self._pipeline = None
        self._pipeline_key: tuple[str, str] | None = None

    def _pipeline_for(self, bundle_dir: Path, device: str):
        from rrg_desk.inference.pipeline import DraftPipeline  # torch loads here, in this thread

        key = (str(bundle_dir), device)
        if self._pipeline is None or self._pipeline_key != key:
            self._pipeline, self._pipeline_key = DraftPipeline(bundle_dir, device), key
        return self._pipeline

    @Slot(object)
    def run(self, job: _Job) -> None:
        if job.cancelled_early[0]:
            self.cancelled.emit(job.request_id)
            return
        try:
            from rrg_desk.inference.pipeline import DraftCancelled, DraftSettings
        except Exception as exc:  # a broken install: say so instead of dying silently
            log.exception("cannot import the inference pipeline")
            self.failed.emit(job.request_id, job.kind, user_message(exc))
            return
        # plain dicts come from the GUI thread, which must not import the pipeline (torch)
        settings = DraftSettings(**job.settings) if isinstance(job.settings, dict) else job.settings or DraftSettings()
        try:
            if job.bundle_dir is None:
                raise _NoBundle()
            pipeline = self._pipeline_for(job.bundle_dir, job.device)
            if job.kind == KIND_DRAFT:
                draft = pipeline.draft(job.study, settings, cancel=job.cancel,
                                       progress=lambda stage, i, n: self.progressed.emit(job.request_id, stage, i, n))
                self.draftReady.emit(job.request_id, draft)
            elif job.kind == KIND_DESCRIBE:
                self.regionDescribed.emit(job.request_id, pipeline.describe_region(job.study, job.box, settings))
            else:
                self.heatmapReady.emit(job.request_id, job.finding, pipeline.finding_heatmap(job.image, job.finding))
        except DraftCancelled:
            self.cancelled.emit(job.request_id)
        except InputRefusal as exc:  # not an error: the radiologist may still draft anyway
            self.refused.emit(job.request_id, exc.user_message)
        except Exception as exc:
            if not getattr(exc, "user_message", None):
                log.exception("%s request %d failed", job.kind, job.request_id)
            self.failed.emit(job.request_id, job.kind, user_message(exc))


class _NoBundle(Exception):
    user_message = ("No model bundle is configured. Choose a bundle folder in Settings "
                    "(Edit ▸ Settings…) to draft reports.")


class DraftWorker(QObject):
    """The GUI-side handle. Every request returns its id; signals carry it back."""

    progressed = Signal(int, str, int, int)  # request id, stage, index, total
    finished = Signal(int, object)  # request id, Draft
    failed = Signal(int, str)  # request id, message for the user
    refused = Signal(int, str)  # request id, why the input check refused (the UI offers "Draft anyway")
    cancelled = Signal(int)  # request id
    regionDescribed = Signal(int, object)  # request id, Sentence
    describeFailed = Signal(int, str)
    heatmapReady = Signal(int, str, object)  # request id, finding, ndarray
    busyChanged = Signal(bool)
    _submit = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bundle_dir: Path | None = None
        self.device = "auto"
        self._next_id = 0
        self._current: dict[str, _Job | None] = {KIND_DRAFT: None, KIND_DESCRIBE: None, KIND_HEATMAP: None}
        self._thread = QThread(self)
        self._thread.setObjectName("rrg-desk-models")
        self._engine = _Engine()
        self._engine.moveToThread(self._thread)
        self._thread.finished.connect(self._engine.deleteLater)
        self._submit.connect(self._engine.run)
        self._engine.progressed.connect(self._on_progress)
        self._engine.draftReady.connect(self._on_draft)
        self._engine.regionDescribed.connect(self._on_described)
        self._engine.heatmapReady.connect(self._on_heatmap)
        self._engine.failed.connect(self._on_failed)
        self._engine.refused.connect(self._on_refused)
        self._engine.cancelled.connect(self._on_cancelled)
        self._thread.start()

    def configure(self, bundle_dir: str | Path | None, device: str = "auto") -> None:
        self.bundle_dir = Path(bundle_dir) if bundle_dir else None
        self.device = device or "auto"

    # ----- requests -----------------------------------------------------------------
    def request_draft(self, study, settings=None) -> int:
        return self._start(_Job(KIND_DRAFT, 0, study=study, settings=settings, cancel=CancelToken()))

    def request_describe(self, study, box: tuple[float, float, float, float], settings=None) -> int:
        return self._start(_Job(KIND_DESCRIBE, 0, study=study, settings=settings, box=tuple(box)))

    def request_heatmap(self, image, finding: str) -> int:
        return self._start(_Job(KIND_HEATMAP, 0, image=image, finding=finding))

    def _start(self, job: _Job) -> int:
        self._drop(job.kind)
        self._next_id += 1
        job.request_id = self._next_id
        job.bundle_dir, job.device = self.bundle_dir, self.device
        self._current[job.kind] = job
        self.busyChanged.emit(True)
        self._submit.emit(job)
        return job.request_id

    def cancel(self) -> None:
        """Cancel everything in flight (the study changed or the user pressed Cancel)."""
        for kind in self._current:
            self._drop(kind)
        self.busyChanged.emit(False)

    def _drop(self, kind: str) -> None:
        job = self._current[kind]
        if job is not None:
            job.cancelled_early[0] = True
            if job.cancel is not None:
                job.cancel.cancel()
            self._current[kind] = None

    def is_busy(self, kind: str = KIND_DRAFT) -> bool:
        return self._current[kind] is not None

    def current_request_id(self, kind: str = KIND_DRAFT) -> int | None:
        job = self._current[kind]
        return job.request_id if job is not None else None

    def shutdown(self, msecs: int = 30_000) -> None:
        self.cancel()
        self._thread.quit()
        if not self._thread.wait(msecs):
            log.warning("the model thread did not stop within %d ms", msecs)

    # ----- results (GUI thread) ---------------------------------------------------------
    def _settle(self, kind: str, request_id: int) -> bool:
        job = self._current[kind]
        if job is None or job.request_id != request_id:
            log.info("dropping the result of outdated %s request %d", kind, request_id)
            return False
        self._current[kind] = None
        if not any(self._current.values()):
            self.busyChanged.emit(False)
        return True

    def _kind_of(self, request_id: int) -> str | None:
        return next((k for k, j in self._current.items() if j is not None and j.request_id == request_id), None)

    def _on_progress(self, request_id: int, stage: str, index: int, total: int) -> None:
        if self.current_request_id(KIND_DRAFT) == request_id:
            self.progressed.emit(request_id, stage, index, total)

    def _on_draft(self, request_id: int, draft) -> None:
        if self._settle(KIND_DRAFT, request_id):
            self.finished.emit(request_id, draft)

    def _on_described(self, request_id: int, sentence) -> None:
        if self._settle(KIND_DESCRIBE, request_id):
            self.regionDescribed.emit(request_id, sentence)

    def _on_heatmap(self, request_id: int, finding: str, heatmap) -> None:
        if self._settle(KIND_HEATMAP, request_id):
            self.heatmapReady.emit(request_id, finding, heatmap)

    def _on_failed(self, request_id: int, kind: str, message: str) -> None:
        if not self._settle(kind, request_id):
            return
        if kind == KIND_DRAFT:
            self.failed.emit(request_id, message)
        elif kind == KIND_DESCRIBE:
            self.describeFailed.emit(request_id, message)
        else:
            log.warning("finding heatmap failed: %s", message)

    def _on_refused(self, request_id: int, message: str) -> None:
        kind = self._kind_of(request_id)
        if kind is not None and kind != KIND_DRAFT:  # only drafts offer "Draft anyway"
            self._on_failed(request_id, kind, message)
        elif self._settle(KIND_DRAFT, request_id):
            self.refused.emit(request_id, message)

    def _on_cancelled(self, request_id: int) -> None:
        # A cancelled job was already dropped from _current; report it all the same.
        self.cancelled.emit(request_id)
