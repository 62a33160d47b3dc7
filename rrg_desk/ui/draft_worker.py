"""Runs the models away from the GUI: drafts, describe-a-region, finding heatmaps.

The models live in a child process (rrg_desk.inference.process / service): the GUI process
never imports torch, so loading them cannot freeze the window, and a native crash in
inference ends the child, not the workstation. `warm_up()` (the main window calls it once it
is shown) starts the child and loads torch and the active bundle before any study is opened;
a request made meanwhile waits in the child and runs as soon as they are ready. Switching the
bundle (configure) warms the new one.

Requests are frozen when made (study, settings); the answer comes back through typed signals
carrying the request id. Only the newest request of each kind is wanted: an older one is
cancelled between stages and its late result is dropped, so a result for a study that is no
longer open never reaches the screen.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from rrg_desk.inference.process import FAILED, LOADING, READY, STOPPED, InferenceProcess, describe_exit
from rrg_desk.inference.request import DraftSettings
from rrg_desk.inference.service import NO_BUNDLE_MESSAGE
from rrg_desk.models.card import CARD_FILE

log = logging.getLogger(__name__)

KIND_DRAFT, KIND_DESCRIBE, KIND_HEATMAP = "draft", "describe", "heatmap"
MODELS_OFF = "off"  # no bundle to load (or not warmed yet)

__all__ = ["DraftWorker", "KIND_DRAFT", "KIND_DESCRIBE", "KIND_HEATMAP"]


def crash_message(reason: str) -> str:
    return (f"The drafting engine stopped unexpectedly ({reason}). Your report and everything you typed are "
            "kept. The models are being reloaded; press Draft (Ctrl+D) to try again.")


@dataclass
class _Job:
    kind: str
    request_id: int
    message: dict


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
    modelsStateChanged = Signal(str, str)  # off | loading | ready | failed, a line for the status bar
    _received = Signal(object)  # a message from the inference process's reader thread

    def __init__(self, parent: QObject | None = None, process: InferenceProcess | None = None) -> None:
        super().__init__(parent)
        self.bundle_dir: Path | None = None
        self.device = "auto"
        self.process = process or InferenceProcess.shared()
        self.models_state, self.models_text, self.models_tooltip = MODELS_OFF, "Models not loaded", ""
        self._warm_wanted = False
        self._current: dict[str, _Job | None] = {KIND_DRAFT: None, KIND_DESCRIBE: None, KIND_HEATMAP: None}
        self._closed = False
        self._received.connect(self._on_message)
        self.process.subscribe(self._listen)

    def configure(self, bundle_dir: str | Path | None, device: str = "auto") -> None:
        """The bundle and device of later requests; once warm_up() was called, a change re-warms."""
        new = (Path(bundle_dir) if bundle_dir else None, device or "auto")
        changed = new != (self.bundle_dir, self.device)
        self.bundle_dir, self.device = new
        if changed and self._warm_wanted:
            self.warm_up()

    # ----- the models ---------------------------------------------------------------------
    def warm_up(self) -> None:
        """Start loading torch and the configured bundle in the background (idempotent)."""
        self._warm_wanted = True
        if self.bundle_dir is None:
            self._set_models(MODELS_OFF, "Models not loaded", "No model bundle is configured (Edit ▸ Settings…).")
            return
        if not (self.bundle_dir / CARD_FILE).is_file():  # nothing a child could load: do not start one
            self._set_models(FAILED, "Models not loaded", f"No model bundle at {self.bundle_dir} ({CARD_FILE} missing).")
            return
        self.process.warm(self.bundle_dir, self.device)
        self._follow(self.process.state, self.process.key, self.process.detail)

    def models_ready(self) -> bool:
        return self.models_state == READY

    @property
    def child_pid(self) -> int | None:
        return self.process.pid

    def _our_key(self) -> tuple[str, str] | None:
        return (str(self.bundle_dir), self.device) if self.bundle_dir is not None else None

    def _follow(self, state: str, key, detail: dict) -> None:
        if key is None or tuple(key) != self._our_key():
            return  # another bundle's news (a window configured differently)
        if state == LOADING:
            self._set_models(LOADING, "Models loading…", f"Loading torch and the model bundle {self.bundle_dir} "
                                                         "in the background; a draft asked for now starts when "
                                                         "they are ready.")
        elif state == READY:
            self._set_models(READY, "Models ready", f"Bundle {detail.get('bundle_id', '?')} on "
                                                   f"{detail.get('device', '?')}, loaded in "
                                                   f"{float(detail.get('seconds', 0.0)):.1f} s.")
        elif state == FAILED:
            self._set_models(FAILED, "Models not loaded", str(detail.get("message", "")))
        elif state == STOPPED:
            self._set_models(MODELS_OFF, "Models not loaded", str(detail.get("message", "")))

    def _set_models(self, state: str, text: str, tooltip: str = "") -> None:
        if (state, text, tooltip) != (self.models_state, self.models_text, self.models_tooltip):
            self.models_state, self.models_text, self.models_tooltip = state, text, tooltip
            self.modelsStateChanged.emit(state, text)

    # ----- requests -----------------------------------------------------------------------
    def request_draft(self, study, settings: DraftSettings | None = None) -> int:
        return self._start(KIND_DRAFT, {"study": study, "settings": settings})

    def request_describe(self, study, box: tuple[float, float, float, float],
                         settings: DraftSettings | None = None) -> int:
        return self._start(KIND_DESCRIBE, {"study": study, "box": tuple(box), "settings": settings})

    def request_heatmap(self, image, finding: str) -> int:
        return self._start(KIND_HEATMAP, {"image": image, "finding": finding})

    def _start(self, kind: str, fields: dict) -> int:
        self._drop(kind)
        request_id = self.process.next_request_id()
        message = {"type": kind, "request_id": request_id, "device": self.device,
                   "bundle_dir": str(self.bundle_dir) if self.bundle_dir is not None else "", **fields}
        self._current[kind] = _Job(kind, request_id, message)
        self.busyChanged.emit(True)
        if self.bundle_dir is None:  # nothing to load: say where to set it (asynchronously, like any answer)
            QTimer.singleShot(0, lambda: self._on_message({"type": "failed", "request_id": request_id,
                                                           "kind": kind, "message": NO_BUNDLE_MESSAGE}))
        else:
            self.process.submit(message, self._listen)
        return request_id

    def cancel(self) -> None:
        """Cancel everything in flight (the study changed or the user pressed Cancel)."""
        for kind in self._current:
            self._drop(kind)
        self.busyChanged.emit(False)

    def _drop(self, kind: str) -> None:
        job = self._current[kind]
        if job is not None:
            self._current[kind] = None
            self.process.cancel(job.request_id)
            self.cancelled.emit(job.request_id)

    def is_busy(self, kind: str = KIND_DRAFT) -> bool:
        return self._current[kind] is not None

    def crash_child_at(self, stage: str) -> None:
        """Tests of the crash handling: the child segfaults when its next draft reaches `stage`."""
        self.process.crash_at(stage)

    def shutdown(self, msecs: int = 30_000) -> None:
        """Stop listening and cancel what is in flight; the shared child lives on (stopped at exit)."""
        if self._closed:
            return
        self.cancel()
        self._closed = True
        self.process.unsubscribe(self._listen)

    # ----- answers ------------------------------------------------------------------------
    def _listen(self, message: dict) -> None:
        """On the inference process's reader thread: hand the message to the GUI thread."""
        if self._closed:
            return
        try:
            self._received.emit(message)
        except RuntimeError:  # this QObject was deleted with its window
            self._closed = True

    def _on_message(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "state":
            self._follow(message["state"], message.get("key"), message)
            return
        if kind == "exited":
            self._on_exited(message)
            return
        request_id = message.get("request_id")
        job = next((j for j in self._current.values() if j is not None and j.request_id == request_id), None)
        if job is None:
            if kind not in ("progress", "cancelled"):
                log.info("dropping the %s answer of outdated request %s", kind, request_id)
            return
        if kind == "progress":
            if job.kind == KIND_DRAFT:
                self.progressed.emit(request_id, message["stage"], message["index"], message["total"])
            return
        self._settle(job)
        if kind == "draft":
            self.finished.emit(request_id, message["draft"])
        elif kind == "described":
            self.regionDescribed.emit(request_id, message["sentence"])
        elif kind == "heatmap":
            self.heatmapReady.emit(request_id, message["finding"], message["heatmap"])
        elif kind == "refused" and job.kind == KIND_DRAFT:  # only drafts offer "Draft anyway"
            self.refused.emit(request_id, message["message"])
        elif kind in ("failed", "refused"):
            self._fail(job, message["message"])
        elif kind == "cancelled":
            self.cancelled.emit(request_id)

    def _settle(self, job: _Job) -> None:
        self._current[job.kind] = None
        if not any(self._current.values()):
            self.busyChanged.emit(False)

    def _fail(self, job: _Job, message: str) -> None:
        if job.kind == KIND_DRAFT:
            self.failed.emit(job.request_id, message)
        elif job.kind == KIND_DESCRIBE:
            self.describeFailed.emit(job.request_id, message)
        else:
            log.warning("finding heatmap failed: %s", message)

    def _on_exited(self, message: dict) -> None:
        """The child died (a native crash, killed): what was in flight fails with a clear message."""
        text = crash_message(message.get("reason") or describe_exit(message.get("exitcode")))
        pending = set(message.get("pending") or ())
        for job in [j for j in self._current.values() if j is not None and j.request_id in pending]:
            self._settle(job)
            self._fail(job, text)
