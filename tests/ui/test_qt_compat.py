"""PySide6 6.12's emit() drops a reference to True per connected emit; rrg_desk.ui gives it
back, so a long session (thousands of emits) never aborts in bool_dealloc."""
from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QObject, Qt, Signal

import rrg_desk.ui  # noqa: F401  (installs the guard)


class _Sender(QObject):
    plain = Signal()
    carrying = Signal(int, object)


def test_many_connected_emits_keep_true_alive(qtbot):
    sender = _Sender()
    received = []
    sender.plain.connect(lambda: received.append(1))
    sender.carrying.connect(lambda *args: received.append(args), Qt.ConnectionType.QueuedConnection)
    before = sys.getrefcount(True)
    for _ in range(20_000):  # without the guard: 20,000 references lost (fatal below that many)
        sender.plain.emit()
    worker = threading.Thread(target=lambda: [sender.carrying.emit(i, None) for i in range(2_000)])
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(received) == 22_000, timeout=10_000)
    lost = before - sys.getrefcount(True)  # other objects come and go meanwhile: a little noise
    assert lost < 1_000, f"{lost} references to True lost over 22,000 emits"


def test_many_void_calls_keep_none_alive():
    """PySide6 6.12 drops a reference to None on every void method call (timer.stop(),
    setText(), processEvents()): without the guard a few thousand calls abort in none_dealloc."""
    from PySide6.QtCore import QTimer

    from rrg_desk.ui import qt_compat

    assert qt_compat._none_reserved or not qt_compat.void_call_leaks_none()
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(1_000_000):  # far more calls than None has references in this process
        timer.stop()
    assert sys.getrefcount(None) > 0
    if qt_compat._none_reserved:  # the reserve pays for them: the process is still alive
        assert before - sys.getrefcount(None) < 1_000_000 + 1_000
