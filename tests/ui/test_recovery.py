"""Autosave then SIGKILL: the next start restores the unsaved draft and says so."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from rrg_desk.app.settings import AppSettings
from rrg_desk.paths import samples_dir, user_data_dir
from rrg_desk.store import Database
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.settings import open_settings

ROOT = Path(__file__).resolve().parents[2]
TYPED = "Unsaved words typed before the crash."
CHILD = f"""
from PySide6.QtCore import QTimer
from PySide6.QtTest import QTest
from rrg_desk.app.settings import AppSettings
from rrg_desk.ui.app import create_application
from rrg_desk.ui.main_window import MainWindow

app = create_application()
window = MainWindow(app_settings=AppSettings(auto_draft=False, bundle_dir="", user_name="Dr Kill"))
window.show()

def type_text():
    edit = window.editor.edits["findings"]
    edit.setFocus()
    QTest.keyClicks(edit, {TYPED!r})
    print("TYPED", flush=True)

window.studyShown.connect(lambda study: QTimer.singleShot(0, type_text))
window.reporting.autosaved.connect(lambda: print("AUTOSAVED", flush=True))
window.open_paths([{str(samples_dir() / 'study3')!r}])
app.exec()
"""


def wait_for_line(proc: subprocess.Popen, marker: str, timeout: float) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line.strip())
            if line.strip() == marker:
                return seen
    raise AssertionError(f"{marker} not seen; child said {seen}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}")


def test_killed_app_restores_the_autosaved_draft_on_next_start(qtbot):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(proc, "TYPED", 60)
        typed_at = time.monotonic()
        wait_for_line(proc, "AUTOSAVED", 30)
        assert time.monotonic() - typed_at < 4.0  # 2 s after the last keystroke, plus slack
        with Database.open(user_data_dir() / "rrg-desk.sqlite3") as db:  # the draft really is on disk
            uid = db.list_studies(search="SAMPLE0003")[0].study_uid
            assert db.load_draft(uid).findings_text() == TYPED
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    main = MainWindow(settings=open_settings(), app_settings=AppSettings(auto_draft=False, bundle_dir=""))
    qtbot.addWidget(main)
    main.show()
    qtbot.waitUntil(lambda: main.session.record is not None, timeout=10_000)
    assert main.session.record.study_uid == uid
    assert main.editor.section_text("findings") == TYPED
    assert "Recovered" in main.statusBar().currentMessage()
    assert main.last_error_box is not None and "Recovered" in main.last_error_box.text()
    actions = [entry.action for entry in main.session.db.audit_log(uid)]
    assert "recovered" in actions
