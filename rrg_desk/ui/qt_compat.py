"""Guards for two reference-count bugs in the pinned PySide6 (6.12.0) on CPython 3.11.

1. Every `emit()` called from Python on a signal with at least one receiver drops one
   reference to `True` that it never took (it returns True).
2. Every call from Python to a Qt method returning void (`QTimer.stop()`, `QLabel.setText()`,
   `QApplication.processEvents()`, ...) drops one reference to `None`.

`True` and `None` are shared objects with a few thousand references in a running app, so a
few thousand emits or void calls (progress, autosave, worklist pages, every keystroke's
repaint) later Python aborts with "Fatal Python error: bool_dealloc" / "none_dealloc".

`install()` (run when rrg_desk.ui is imported) measures each leak on a probe and, only if it
is there, repairs it: emit() is wrapped to give True's reference back; None, which no wrapper
can cover (every void method of every class leaks), gets a reserve of 2**40 references, which
makes it as immortal as it is in CPython 3.12 (None is never freed anyway: freeing it is the
abort). An extra reference is harmless; a missing one is fatal. With a PySide6 that does not
leak, nothing is changed.
"""
from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance

_PROBE_EMITS = 8
_PROBE_CALLS = 64
NONE_RESERVE = 2**40  # void calls before None's count could reach zero again (decades of use)
_installed = False
_none_reserved = False


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


def void_call_leaks_none() -> bool:
    """Does a call to a void Qt method lose a reference to None (measured, not assumed)?"""
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        timer.stop()
    lost = before - sys.getrefcount(None)
    for _ in range(max(lost, 0)):  # give back what the probe took
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    return lost >= _PROBE_CALLS


def _reserve_none() -> bool:
    """Give None a reserve of references once, if void calls leak them; True when reserved."""
    global _none_reserved
    if _none_reserved:
        return True
    if not void_call_leaks_none():
        return False
    # ob_refcnt is the first field of every object in a release build of CPython 3.11
    refcount = ctypes.c_ssize_t.from_address(id(None))
    refcount.value += NONE_RESERVE
    _none_reserved = True
    return True


def install() -> bool:
    """Repair whichever leak this PySide6 has; True when emit() was wrapped (idempotent)."""
    global _installed
    _reserve_none()
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
