"""Ready when the radiologist is: the window loads the models in a child process as soon as it
shows; a study opened before they are ready is drafted when they are; a native crash in the
child leaves the window and the typed text intact, says so, and the models come back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest

from rrg_desk.app.settings import AppSettings
from rrg_desk.inference.process import InferenceProcess
from rrg_desk.paths import samples_dir
from rrg_desk.store import Database
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.settings import open_settings
from tests.ui.conftest import open_and_wait

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh_process():
    """A child of this module's own: it starts cold (torch not loaded), like an app at start."""
    process = InferenceProcess()
    yield process
    process.stop()


@pytest.fixture
def window_factory(qtbot, tmp_path, tiny_bundle, fresh_process, monkeypatch):
    monkeypatch.setattr(InferenceProcess, "shared", classmethod(lambda cls: fresh_process))
    windows = []

    def make(auto_draft: bool) -> MainWindow:
        settings = AppSettings(bundle_dir=str(tiny_bundle), device="cpu", auto_draft=auto_draft,
                               user_name="Dr Test", identity_confirmed=True, beam_size=1)
        database = Database.open(tmp_path / f"worklist{len(windows)}.sqlite3")
        main = MainWindow(settings=open_settings(), app_settings=settings, database=database)
        qtbot.addWidget(main)
        windows.append(main)
        return main

    yield make
    for main in windows:
        main.close()


def test_the_models_load_once_the_window_shows_and_an_early_study_waits_for_them(window_factory, qtbot,
                                                                                 monkeypatch):
    main = window_factory(auto_draft=True)
    assert main.models_status.text() == "Models not loaded"
    main.show()  # the warm start begins right after the window is shown, before any study
    qtbot.waitUntil(lambda: main.models_status.text() == "Models loading…", timeout=5_000)
    states, asked = [], []
    main.worker.modelsStateChanged.connect(lambda state, text: states.append(state))
    request = main.worker.request_draft
    monkeypatch.setattr(main.worker, "request_draft",
                        lambda *args: asked.append(main.worker.models_state) or request(*args))
    with qtbot.waitSignal(main.reporting.draftApplied, timeout=180_000):
        main.open_paths([samples_dir() / "study1"])  # auto-draft: asked for while torch still loads
    assert asked == ["loading"]
    assert states == ["ready"]  # the draft ran once the models were ready, without asking again
    assert main.models_status.text() == "Models ready" and "loaded in" in main.models_status.toolTip()
    assert main.session.draft is not None


def test_a_native_crash_in_inference_keeps_the_window_and_the_text(window_factory, qtbot):
    main = window_factory(auto_draft=False)
    main.show()
    open_and_wait(qtbot, main, [samples_dir() / "study2"])
    qtbot.waitUntil(main.worker.models_ready, timeout=180_000)
    edit = main.editor.edits["findings"]
    edit.setFocus()
    edit.moveCursor(QTextCursor.MoveOperation.End)
    QTest.keyClicks(edit, "Typed before the crash.")
    old_pid = main.worker.child_pid

    main.worker.crash_child_at("detect")  # the child segfaults halfway through the next draft
    with qtbot.waitSignal(main.reporting.draftFailed, timeout=120_000) as blocker:
        main.commands["draft"].trigger()
    assert "stopped unexpectedly" in blocker.args[0] and "SIGSEGV" in blocker.args[0]
    assert "kept" in blocker.args[0]
    assert main.isVisible() and main.last_error_box is not None and main.last_error_box.isVisible()
    assert "Typed before the crash." in main.editor.section_text("findings")
    assert not main.worker.is_busy()

    qtbot.waitUntil(main.worker.models_ready, timeout=180_000)  # a new child, models warmed again
    assert main.worker.child_pid not in (None, old_pid)
    with qtbot.waitSignal(main.reporting.draftApplied, timeout=120_000):
        main.commands["draft"].trigger()
    assert "Typed before the crash." in main.editor.section_text("findings")  # the radiologist's text wins


def test_making_another_bundle_active_warms_it(window_factory, qtbot, tmp_path):
    from rrg_desk.models.bundle import build_random_bundle

    main = window_factory(auto_draft=False)
    main.show()
    qtbot.waitUntil(main.worker.models_ready, timeout=180_000)
    other = build_random_bundle(tmp_path / "other", size="tiny", seed=4)
    settings = AppSettings(**{**main.app_settings.to_dict(), "bundle_dir": str(other)})
    with qtbot.waitSignal(main.worker.modelsStateChanged, timeout=10_000,
                          check_params_cb=lambda state, text: state == "loading"):
        main.apply_settings(settings)
    qtbot.waitUntil(main.worker.models_ready, timeout=120_000)
    assert json.loads((other / "card.json").read_text())["bundle_id"] in main.models_status.toolTip()


def test_the_gui_process_never_imports_torch(tiny_bundle, tmp_path):
    """A whole headless run (open, warm start, auto-draft, screenshot) in a fresh process."""
    script = ("import sys\n"
              "from rrg_desk.ui.app import run_gui\n"
              "if __name__ == '__main__':\n"
              "    code = run_gui(sys.argv[1:])\n"
              "    print('TORCH', 'torch' in sys.modules)\n"
              "    sys.exit(code)\n")
    runner = tmp_path / "run_gui.py"
    runner.write_text(script)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RRG_DESK_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(runner), "--screenshot", str(out), "--bundle", str(tiny_bundle),
                           str(samples_dir() / "study1")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.is_file() and "TORCH False" in proc.stdout
