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
    for _ in range(20_000):  # more than True's references in this process: fatal without the guard
        sender.plain.emit()
    worker = threading.Thread(target=lambda: [sender.carrying.emit(i, None) for i in range(2_000)])
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(received) == 22_000, timeout=10_000)
    assert sys.getrefcount(True) >= before
