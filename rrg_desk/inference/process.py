"""The parent's handle on the inference child process (rrg_desk.inference.service).

Why a child process: importing torch and loading a bundle in a thread of the GUI process holds
the GIL for long stretches (shared libraries load, C++ initialisers run, modules unmarshal),
so the window froze for up to a third of a second however the work was chunked; a child runs
on another core without touching the GUI's interpreter (bench/bench_warm_start.py measures the
three ways), and a native crash in inference (a segfault in a kernel, the OOM killer) ends the
child, not the workstation with the radiologist's unsaved text.

Nothing here imports torch or Qt. Plain data crosses the pipe (studies, DraftSettings, drafts);
model weights never do: the child reads the bundle itself. The process is started with the
"spawn" method (a fresh interpreter; the frozen build calls multiprocessing.freeze_support()).

    process = InferenceProcess.shared()       # one per app; stopped at exit
    process.subscribe(callback)               # callback(message) runs on a reader thread
    process.warm(bundle_dir, device)          # start the child, load torch and the bundle
    process.submit({"type": "draft", "request_id": process.next_request_id(), ...}, callback)
    process.cancel(request_id)

Messages to listeners are the child's answers (see service.py) and two of this module's:
    {"type": "state", "state": "stopped|loading|ready|failed", "key": [bundle, device], "detail": ...}
    {"type": "exited", "exitcode": int, "pending": [request ids that will get no answer], "expected": bool}
After an unexpected exit of a child that had its models ready, a new one is started and warmed
(a crash while loading is not retried until the next request).
"""
from __future__ import annotations

import atexit
import itertools
import logging
import multiprocessing.util  # noqa: F401 - its exit hook (ends daemonic children) must run after ours
import queue
import signal
import threading
import time
from typing import Callable

from rrg_desk.inference.service import TERMINAL

log = logging.getLogger(__name__)
_exiting = False  # the interpreter is exiting: a child that ends now is no crash


@atexit.register
def _mark_exiting() -> None:
    global _exiting
    _exiting = True

Listener = Callable[[dict], None]
STOPPED, LOADING, READY, FAILED = "stopped", "loading", "ready", "failed"
_STOP = object()


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            return f"it crashed with {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"it was ended by signal {-exitcode}"
    return f"it exited with code {exitcode}"


class _Child:
    """One generation of the child process and its two threads."""

    def __init__(self, context, log_level: int) -> None:
        from rrg_desk.inference.service import serve

        self.conn, child_conn = context.Pipe()
        self.child_conn = child_conn
        self.process = context.Process(target=serve, args=(child_conn, log_level), name="rrg-desk-inference",
                                       daemon=True)
        self.outbox: queue.Queue = queue.Queue()
        self.ready = False  # its models were ready once (a later crash restarts it)
        self.expected_exit = False
        self.alive = True


class InferenceProcess:
    _shared: "InferenceProcess | None" = None
    _shared_lock = threading.Lock()

    def __init__(self, start_method: str = "spawn", log_level: int = logging.WARNING) -> None:
        import multiprocessing

        self._context = multiprocessing.get_context(start_method)
        self._log_level = log_level
        self._lock = threading.RLock()
        self._child: _Child | None = None
        self._listeners: list[Listener] = []
        self._owners: dict[int, Listener] = {}  # request id -> who asked, until its answer
        self._ids = itertools.count(1)
        self._state, self._key, self._detail = STOPPED, None, {}

    @classmethod
    def shared(cls) -> "InferenceProcess":
        """The app's one inference process (created on first use, stopped at exit)."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
                atexit.register(cls._shared.stop)
            return cls._shared

    # -- state ------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def key(self) -> tuple[str, str] | None:
        return self._key

    @property
    def detail(self) -> dict:
        """What the last state change said: bundle_id, device, seconds (ready) or message (failed)."""
        return dict(self._detail)

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.process.pid if child is not None and child.alive else None

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener not in self._listeners:
                self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
            for request_id in [r for r, owner in self._owners.items() if owner == listener]:
                del self._owners[request_id]

    def next_request_id(self) -> int:
        return next(self._ids)

    # -- requests ---------------------------------------------------------------------------
    def warm(self, bundle_dir, device: str = "auto") -> None:
        """Load torch and this bundle in the child now (no-op when it is loading or ready)."""
        key = (str(bundle_dir), device or "auto")
        with self._lock:
            if self._key == key and self._state in (LOADING, READY) and self._child is not None:
                return
            self._key = key
            self._set_state(LOADING, {})
            self._send({"type": "warm", "bundle_dir": key[0], "device": key[1]})

    def submit(self, message: dict, listener: Listener) -> None:
        """Send a request; its answers go to `listener`. The models of its bundle are warmed
        first when they are not the ready ones, so the request waits for them in the child."""
        with self._lock:
            if message.get("bundle_dir"):
                self.warm(message["bundle_dir"], message.get("device") or "auto")
            self._owners[message["request_id"]] = listener
            self._send(message)

    def cancel(self, request_id: int) -> None:
        with self._lock:
            if request_id in self._owners and self._child is not None:
                self._send({"type": "cancel", "request_id": request_id})

    def crash_at(self, stage: str) -> None:
        """Make the child segfault when its next draft reaches `stage` (crash-handling tests)."""
        with self._lock:
            self._send({"type": "crash_at", "stage": stage})

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the child to quit; end it if it does not within `timeout` seconds."""
        with self._lock:
            child, self._child = self._child, None
            if child is None:
                return
            child.expected_exit = True
            child.outbox.put({"type": "quit"})
            child.outbox.put(_STOP)
            self._set_state(STOPPED, {})
        process = child.process
        if process.pid is None:  # not started yet: the sender starts it, then sends it the quit
            return
        deadline = time.monotonic() + timeout
        while process.exitcode is None and time.monotonic() < deadline:
            process.join(0.05)  # (its pipe closes a moment before the exit can be collected)
        if process.exitcode is None:
            log.warning("the inference process did not quit within %.0f s; ending it", timeout)
            process.terminate()
            process.join(2.0)
            if process.is_alive():
                process.kill()
                process.join(2.0)

    # -- plumbing ---------------------------------------------------------------------------
    def _send(self, message: dict) -> None:
        if self._child is None:
            self._start()
        self._child.outbox.put(message)

    def _start(self) -> None:
        child = _Child(self._context, self._log_level)
        self._child = child
        threading.Thread(target=self._sender, args=(child,), name="rrg-desk-inference-sender", daemon=True).start()

    def _sender(self, child: _Child) -> None:
        """Starts the process (off the GUI thread), then writes the outbox to it."""
        try:
            child.process.start()
        except Exception as exc:  # noqa: BLE001 - say why drafting cannot work, do not die
            log.exception("cannot start the inference process")
            child.child_conn.close()
            self._on_exit(child, None, f"the model process could not start ({type(exc).__name__}: {exc})")
            return
        child.child_conn.close()  # the child's end lives in the child now: its exit closes the pipe
        threading.Thread(target=self._reader, args=(child,), name="rrg-desk-inference-reader", daemon=True).start()
        while True:
            message = child.outbox.get()
            if message is _STOP:
                return
            try:
                child.conn.send(message)
            except (OSError, ValueError):  # the child is gone: the reader reports it
                return
            except Exception:  # noqa: BLE001 - an unpicklable request fails alone
                log.exception("could not send a %s request", message.get("type"))
                if "request_id" in message:
                    self._deliver({"type": "failed", "request_id": message["request_id"],
                                   "kind": message.get("type", ""), "message": "The request could not be sent "
                                   "to the model process (see the log)."})

    def _reader(self, child: _Child) -> None:
        while True:
            try:
                message = child.conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 - an answer that cannot be read: log it, keep reading
                log.exception("unreadable answer from the inference process")
                continue
            kind = message.get("type")
            if kind in ("ready", "warm_failed"):
                with self._lock:
                    current = child is self._child and tuple(message["key"]) == self._key
                    if kind == "ready":
                        child.ready = True
                    if current:
                        if kind == "ready":
                            self._set_state(READY, {k: message[k] for k in ("bundle_id", "device", "seconds")})
                        else:
                            self._set_state(FAILED, {"message": message["message"]})
                continue
            self._deliver(message)
        child.process.join(5.0)
        child.conn.close()
        self._on_exit(child, child.process.exitcode, None)

    def _on_exit(self, child: _Child, exitcode: int | None, why: str | None) -> None:
        with self._lock:
            child.alive = False
            if child.expected_exit or _exiting:
                return
            current = child is self._child
            if current:
                self._child = None
            pending = sorted(self._owners)
            owners = dict(self._owners)
            self._owners.clear()
            reason = why or describe_exit(exitcode)
            log.error("the inference process stopped unexpectedly: %s", reason)
            restart = current and child.ready and self._key is not None
            if current:
                self._set_state(FAILED if not restart else STOPPED, {"message": reason, "exitcode": exitcode})
        exited = {"type": "exited", "exitcode": exitcode, "pending": pending, "expected": False, "reason": reason}
        for listener in self._listeners_snapshot(owners.values()):
            self._call(listener, exited)
        if restart:  # it had its models once: get them ready again for the next request
            key = self._key
            with self._lock:
                if self._child is None and self._key == key:
                    self._key = None
                    self.warm(*key)

    def _deliver(self, message: dict) -> None:
        request_id = message.get("request_id")
        with self._lock:
            owner = self._owners.get(request_id)
            if message.get("type") in TERMINAL:
                self._owners.pop(request_id, None)
        if owner is not None:
            self._call(owner, message)

    def _set_state(self, state: str, detail: dict) -> None:
        self._state, self._detail = state, dict(detail)
        message = {"type": "state", "state": state, "key": list(self._key) if self._key else None, **detail}
        for listener in self._listeners_snapshot():
            self._call(listener, message)

    def _listeners_snapshot(self, extra=()) -> list[Listener]:
        with self._lock:
            listeners = list(self._listeners)
        return listeners + [l for l in extra if l not in listeners]

    @staticmethod
    def _call(listener: Listener, message: dict) -> None:
        try:
            listener(message)
        except Exception:  # noqa: BLE001 - one broken listener must not stop the reader
            log.exception("an inference listener failed on %s", message.get("type"))
