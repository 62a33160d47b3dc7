"""The inference child process: torch, the models and every draft live here, not in the GUI.

`serve(connection)` is the target of the process that rrg_desk.inference.process starts
(multiprocessing, spawn). It reads requests (plain dicts: study, DraftSettings, ids; never
model weights) and answers with plain data (Draft, Sentence, numpy arrays, messages):

    request                                   answers
    {"type": "warm", bundle_dir, device}      {"type": "ready", key, bundle_id, seconds}
                                              | {"type": "warm_failed", key, message}
    {"type": "draft", request_id, bundle_dir, device, study, settings}
                                              {"type": "progress", request_id, stage, index, total}*,
                                              then "draft" | "failed" | "refused" | "cancelled"
    {"type": "describe", ..., study, box, settings}   "described" | "failed" | "cancelled"
    {"type": "heatmap", ..., image, finding}          "heatmap" | "failed" | "cancelled"
    {"type": "cancel", request_id}            (the request stops between stages: "cancelled")
    {"type": "crash_at", stage}               the next draft segfaults at that stage (tests of the
                                              workstation's crash handling only)
    {"type": "quit"}

Requests run one at a time in arrival order, so a draft sent while the models load waits for
them. A reader thread takes cancellations while a request runs. One pipeline (bundle, device)
is kept: asking for another releases the first, so the bundle is loaded once per process.
On "quit", or when the parent goes away (its end of the pipe closes), the child exits at once.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any

from rrg_desk.errors import UserFacingError

log = logging.getLogger(__name__)

TERMINAL = frozenset({"draft", "described", "heatmap", "failed", "refused", "cancelled"})
NO_BUNDLE_MESSAGE = ("No model bundle is configured. Choose a bundle folder in Settings "
                     "(Edit ▸ Settings…) to draft reports.")


def unexpected_message(exc: BaseException) -> str:
    """What the radiologist sees of an error that is not a UserFacingError: a bug."""
    return f"An unexpected error stopped the model ({type(exc).__name__}: {exc})."


class NoBundle(UserFacingError):
    def __init__(self) -> None:
        super().__init__(NO_BUNDLE_MESSAGE)


class _Service:
    def __init__(self, connection) -> None:
        self.connection = connection
        self.inbox: queue.Queue = queue.Queue()
        self.tokens: dict[int, Any] = {}  # request id -> CancelToken of a request not yet answered
        self.cancelled: set[int] = set()
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.pipeline = None
        self.key: tuple[str, str] | None = None
        self.crash_at: str | None = None

    # -- messages ----------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        with self.send_lock:
            self.connection.send(message)

    def read(self) -> None:
        """Reader thread: requests to the inbox, cancellations straight to their token."""
        from rrg_desk.inference.request import CancelToken

        while True:
            try:
                message = self.connection.recv()
            except (EOFError, OSError):  # the parent is gone: nothing here is worth finishing
                os._exit(0)
            kind = message.get("type")
            if kind == "cancel":
                with self.lock:
                    self.cancelled.add(message["request_id"])
                    token = self.tokens.get(message["request_id"])
                if token is not None:
                    token.cancel()
                continue
            if kind == "quit":  # at once, even halfway through loading torch: the child keeps no state
                os._exit(0)
            if "request_id" in message:
                with self.lock:
                    self.tokens[message["request_id"]] = CancelToken()
            self.inbox.put(message)

    # -- the models --------------------------------------------------------------------------
    def pipeline_for(self, bundle_dir, device: str):
        from rrg_desk.inference.pipeline import DraftPipeline, forget_cached_bundles

        if not bundle_dir:
            raise NoBundle()
        key = (str(bundle_dir), device or "auto")
        if self.pipeline is None or self.key != key:
            self.pipeline = self.key = None
            forget_cached_bundles()  # the previous bundle goes before the next one loads
            pipeline = DraftPipeline(key[0], key[1])
            pipeline.bundle  # load and verify now
            self.pipeline, self.key = pipeline, key
        return self.pipeline

    def warm(self, message: dict) -> None:
        key = [str(message.get("bundle_dir") or ""), message.get("device") or "auto"]
        started = time.perf_counter()
        try:
            pipeline = self.pipeline_for(message.get("bundle_dir"), message.get("device"))
        except UserFacingError as exc:
            self.send({"type": "warm_failed", "key": key, "message": exc.user_message})
            return
        except Exception as exc:  # noqa: BLE001 - a bug is reported too, the process stays
            log.exception("warming the models failed")
            self.send({"type": "warm_failed", "key": key, "message": unexpected_message(exc)})
            return
        self.send({"type": "ready", "key": key, "bundle_id": pipeline.bundle.bundle_id,
                   "device": str(pipeline.device), "seconds": time.perf_counter() - started})

    def run(self, message: dict) -> None:
        request_id, kind = message["request_id"], message["type"]
        with self.lock:
            token = self.tokens.get(request_id)
            early = request_id in self.cancelled
        try:
            if early:
                self.send({"type": "cancelled", "request_id": request_id})
                return
            self.send(self.answer(message, token))
        except Exception as exc:  # noqa: BLE001
            from rrg_desk.imaging.input_check import InputRefusal
            from rrg_desk.inference.request import DraftCancelled

            if isinstance(exc, DraftCancelled):
                self.send({"type": "cancelled", "request_id": request_id})
            elif isinstance(exc, InputRefusal):  # not an error: the radiologist may still draft anyway
                self.send({"type": "refused", "request_id": request_id, "message": exc.user_message})
            elif isinstance(exc, UserFacingError):
                self.send({"type": "failed", "request_id": request_id, "kind": kind, "message": exc.user_message})
            else:
                log.exception("%s request %d failed", kind, request_id)
                self.send({"type": "failed", "request_id": request_id, "kind": kind,
                           "message": unexpected_message(exc)})
        finally:
            with self.lock:
                self.tokens.pop(request_id, None)
                self.cancelled.discard(request_id)

    def answer(self, message: dict, token) -> dict:
        from rrg_desk.inference.request import DraftSettings

        request_id, kind = message["request_id"], message["type"]
        settings = message.get("settings") or DraftSettings()
        pipeline = self.pipeline_for(message.get("bundle_dir"), message.get("device"))
        if kind == "draft":
            def progress(stage: str, index: int, total: int) -> None:
                if self.crash_at == stage:
                    import faulthandler

                    faulthandler._sigsegv()  # a real native crash, as a broken kernel would cause
                self.send({"type": "progress", "request_id": request_id, "stage": stage, "index": index,
                           "total": total})

            draft = pipeline.draft(message["study"], settings, cancel=token, progress=progress)
            return {"type": "draft", "request_id": request_id, "draft": draft}
        if kind == "describe":
            sentence = pipeline.describe_region(message["study"], tuple(message["box"]), settings)
            return {"type": "described", "request_id": request_id, "sentence": sentence}
        if kind == "heatmap":
            heatmap = pipeline.finding_heatmap(message["image"], message["finding"])
            return {"type": "heatmap", "request_id": request_id, "finding": message["finding"], "heatmap": heatmap}
        raise ValueError(f"unknown request {kind!r}")

    def loop(self) -> None:
        threading.Thread(target=self.read, name="rrg-desk-inference-reader", daemon=True).start()
        while True:
            message = self.inbox.get()
            if message is None:
                return
            kind = message.get("type")
            if kind == "warm":
                self.warm(message)
            elif kind == "crash_at":
                self.crash_at = message.get("stage")
            else:
                self.run(message)


def serve(connection, log_level: int = logging.WARNING) -> None:
    """The child's main: answer requests until the parent quits or goes away."""
    logging.basicConfig(level=log_level, format=f"rrg-desk inference[{os.getpid()}] %(levelname)s %(name)s: "
                                                "%(message)s")
    try:
        _Service(connection).loop()
    except (BrokenPipeError, EOFError, ConnectionResetError):  # the parent went away mid-answer
        pass
    finally:
        connection.close()
