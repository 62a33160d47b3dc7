"""A guard for a reference-count bug in the pinned PySide6 (6.12.0): every `emit()` called
from Python on a signal with at least one receiver drops one reference to `True` that it
never took (it returns True). `True` is a shared object with a few thousand references in
a running app, so a few thousand emits (progress, autosave, worklist pages) later Python
aborts with "Fatal Python error: bool_dealloc".

`install()` (run when rrg_desk.ui is imported) measures the leak on a probe signal and, only
if it is there, wraps `SignalInstance.emit` to give the reference back. An extra reference
to True is harmless (it is never freed); a missing one is fatal. With a PySide6 that does
not leak, nothing is wrapped.
"""
from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_PROBE_EMITS = 8
_installed = False


class _Probe(QObject):
    fired = Signal()


def emit_leaks_true() -> bool:
    """Does a connected emit() lose a reference to True (measured, not assumed)?"""
    probe = _Probe()
    probe.fired.connect(lambda: None)
    before = sys.getrefcount(True)
    for _ in range(_PROBE_EMITS):
        probe.fired.emit()
    lost = before - sys.getrefcount(True)
    for _ in range(max(lost, 0)):  # give back what the probe took
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    probe.deleteLater()
    return lost >= _PROBE_EMITS


def install() -> bool:
    """Wrap SignalInstance.emit when this PySide6 leaks; True when wrapped (idempotent)."""
    global _installed
    if _installed:
        return True
    if not emit_leaks_true():
        return False
    original = SignalInstance.emit
    incref = ctypes.pythonapi.Py_IncRef
    true = ctypes.py_object(True)

    def emit(self, *args):
        result = original(self, *args)
        if result is True:  # the reference the binding dropped (unconnected emits: one spare)
            incref(true)
        return result

    emit.__doc__ = original.__doc__
    SignalInstance.emit = emit
    _installed = True
    return True
