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
