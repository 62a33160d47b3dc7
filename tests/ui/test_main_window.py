"""MainWindow: opening (background, dialogs' path, drop), errors, recent files, shortcuts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from rrg_desk.imaging import ViewPosition
from rrg_desk.ui.actions import ACTION_SPECS
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.qt_image import qimage_to_gray
from rrg_desk.ui.recent_files import RecentFiles
from rrg_desk.ui.settings import open_settings
from rrg_desk.ui.study_viewer import EMPTY_HINT
from tests.ui.conftest import open_and_wait
from tests.ui.dicom_factory import write_test_dicom


def test_starts_empty_with_a_hint(window):
    assert window.current_study is None
    assert window.viewer.views == []
    assert "Open a study" in EMPTY_HINT and window.viewer._hint.isVisible()
    assert not window.commands["invert"].isEnabled()


def test_opening_a_folder_shows_frontal_and_lateral_side_by_side(window, qtbot, study_dir):
    open_and_wait(qtbot, window, [study_dir])
    views = window.viewer.views
    assert [v.image.view for v in views] == [ViewPosition.PA, ViewPosition.LATERAL]
    qtbot.waitUntil(lambda: all(v.isVisible() for v in views))
    left, right = (v.mapTo(window, QPoint(0, 0)) for v in views)
    assert right.x() > left.x() and right.y() == left.y()  # side by side
    strip = window.viewer.panes[0].strip.text()
    for fact in ("DOE, JANE", "ID P123", "2024-01-02", "PA", "0.175 mm", "200×256 px", "W 4096 / L 2048"):
        assert fact in strip, fact
    assert "DOE, JANE" in window.windowTitle()
    assert window.commands["invert"].isEnabled()


def test_a_single_image_fills_the_area(window, qtbot, tmp_path):
    path = write_test_dicom(tmp_path / "only.dcm")
    open_and_wait(qtbot, window, [path])
    (view,) = window.viewer.views
    qtbot.waitUntil(lambda: view.width() > 0.9 * window.viewer.width())


def test_reading_happens_off_the_gui_thread(window, qtbot, study_dir, monkeypatch):
    import threading

    import rrg_desk.ui.loader as loader_module

    threads = []
    real = loader_module.load_studies
    monkeypatch.setattr(loader_module, "load_studies", lambda paths: threads.append(threading.current_thread()) or real(paths))
    open_and_wait(qtbot, window, [study_dir])
    assert threads and threads[0] is not threading.main_thread()


def test_outdated_request_is_dropped(window, qtbot, tmp_path, study_dir, monkeypatch):
    import threading

    import rrg_desk.ui.loader as loader_module

    gate = threading.Event()
    real = loader_module.load_studies

    def slow_for_first(paths):
        if Path(paths[0]).name == "old.dcm":
            gate.wait(10)
        return real(paths)

    monkeypatch.setattr(loader_module, "load_studies", slow_for_first)
    old = write_test_dicom(tmp_path / "old.dcm", patient_name="OLD^STUDY")
    window.open_paths([old])
    open_and_wait(qtbot, window, [study_dir])  # the newer request finishes first
    gate.set()
    window.loader.wait_for_done(5_000)
    QApplication.processEvents()  # deliver the late (queued) result of the old request
    assert window.current_study.patient.name == "DOE^JANE"
    assert not window.loader.is_busy()


def test_bad_file_shows_an_error_and_keeps_the_current_study(window, qtbot, tmp_path, study_dir):
    open_and_wait(qtbot, window, [study_dir])
    shown_before = qimage_to_gray(window.viewer.views[0].displayed_qimage())
    bad = tmp_path / "noise.dcm"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    open_and_wait(qtbot, window, [bad])
    box = window.last_error_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "noise.dcm" in box.informativeText() and "current study stays open" in box.text()
    assert window.isVisible()
    assert window.current_study.patient.name == "DOE^JANE"
    np.testing.assert_array_equal(qimage_to_gray(window.viewer.views[0].displayed_qimage()), shown_before)
    assert str(bad.resolve()) not in window.recent.paths()


def test_mixed_good_and_bad_files_open_the_good_and_list_the_bad(window, qtbot, tmp_path):
    good = write_test_dicom(tmp_path / "good.dcm")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    open_and_wait(qtbot, window, [good, bad])
    assert len(window.viewer.views) == 1
    assert "broken.png" in window.last_error_box.informativeText()


def test_dropping_a_file_url_opens_it(window, qtbot, tmp_path):
    path = write_test_dicom(tmp_path / "dropped.dcm", patient_name="DROP^ME")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.studyShown, timeout=10_000):
        window.dropEvent(event)
    assert event.isAccepted()
    assert window.current_study.patient.name == "DROP^ME"


def test_dropping_non_file_data_is_ignored(window):
    mime = QMimeData()
    mime.setText("not a file")
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert not event.isAccepted() and not window.loader.is_busy()


def test_recent_files_are_recorded_newest_first_and_persist(window, qtbot, tmp_path, study_dir):
    other = write_test_dicom(tmp_path / "other.dcm")
    open_and_wait(qtbot, window, [study_dir])
    open_and_wait(qtbot, window, [other])
    expected = [str(other.resolve()), str(study_dir.resolve())]
    assert window.recent.paths() == expected
    assert RecentFiles(open_settings()).paths() == expected  # written to the INI file
    labels = [a.data() for a in window.recent_menu.actions() if a.data()]
    assert labels == expected
    open_and_wait(qtbot, window, [study_dir])  # re-opening moves it to the top, no duplicate
    assert window.recent.paths() == expected[::-1]


def test_recent_menu_entry_reopens(window, qtbot, study_dir):
    window.recent.add(study_dir)
    entry = next(a for a in window.recent_menu.actions() if a.data())
    with qtbot.waitSignal(window.studyShown, timeout=10_000):
        entry.trigger()
    assert window.current_study is not None


def test_settings_file_is_in_the_user_data_folder(isolated_user_data):
    settings = open_settings()
    assert Path(settings.fileName()).parent == isolated_user_data


def test_keyboard_shortcuts_drive_every_view(window, qtbot, study_dir):
    open_and_wait(qtbot, window, [study_dir])
    views = window.viewer.views
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    views[0].setFocus()
    QTest.keyClick(views[0], Qt.Key.Key_I)
    assert all(v.is_inverted() for v in views)
    QTest.keyClick(views[0], Qt.Key.Key_1)
    assert all(abs(v.zoom_factor() - 1.0) < 1e-6 for v in views)
    QTest.keyClick(views[0], Qt.Key.Key_F)
    assert all(v.is_fit_mode() for v in views)
    QTest.keyClick(views[0], Qt.Key.Key_3)  # full-range preset
    assert all(v.display_window() == v.image.full_range_window() for v in views)
    QTest.keyClick(views[0], Qt.Key.Key_R)
    assert all(not v.is_inverted() and v.display_window() == v.image.default_window for v in views)


def test_preset_actions(window, qtbot, study_dir):
    open_and_wait(qtbot, window, [study_dir])
    window.commands["preset_bone"].trigger()
    bone = [v.display_window() for v in window.viewer.views]
    window.commands["preset_lung"].trigger()
    lung = [v.display_window() for v in window.viewer.views]
    assert all(b.center > l.center for b, l in zip(bone, lung))  # bone window sits higher


def test_shortcuts_dialog_lists_every_shortcut(window):
    dialog = window.show_shortcuts()
    listed = {dialog.table.item(row, 1).text() for row in range(dialog.table.rowCount())}
    for spec in ACTION_SPECS:
        if spec.shortcut:
            assert spec.help in listed
    required = {"Ctrl+O", "Ctrl+Shift+O", "F", "1", "I", "R", "Ctrl+Q"}
    assert required <= {spec.shortcut for spec in ACTION_SPECS}


def test_add_panel_docks_a_widget_with_a_toggle(window):
    from PySide6.QtWidgets import QLabel

    dock = window.add_panel("Findings", QLabel("findings"))
    assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert dock.toggleViewAction() in window.panels_menu.actions()


def test_ctrl_q_closes_the_window(qtbot):
    main = MainWindow(settings=open_settings())
    qtbot.addWidget(main)
    main.show()
    main.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is main)
    QTest.keyClick(main, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not main.isVisible()


def test_open_dialogs_open_what_the_user_picked(window, qtbot, tmp_path, study_dir, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    single = write_test_dicom(tmp_path / "picked.dcm", patient_name="PICKED^FILE")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(single)], ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(study_dir))
    with qtbot.waitSignal(window.studyShown, timeout=10_000):
        window.commands["open_file"].trigger()
    assert window.current_study.patient.name == "PICKED^FILE"
    with qtbot.waitSignal(window.studyShown, timeout=10_000):
        window.commands["open_folder"].trigger()
    assert len(window.viewer.views) == 2


def test_cancelled_dialog_opens_nothing(window, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([], ""))
    window.open_file_dialog()
    assert not window.loader.is_busy() and window.current_study is None


def test_empty_folder_says_nothing_was_found(window, qtbot, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    open_and_wait(qtbot, window, [empty])
    assert "No images were found" in window.last_error_box.text()


def test_dark_theme_palette_is_dark():
    from PySide6.QtGui import QPalette

    from rrg_desk.ui.theme import dark_palette

    palette = dark_palette()
    window_color = palette.color(QPalette.ColorRole.Window)
    text_color = palette.color(QPalette.ColorRole.WindowText)
    assert window_color.lightness() < 60 < 180 < text_color.lightness()


def test_an_unexpected_reader_crash_is_reported_not_lost(window, qtbot, study_dir, monkeypatch):
    import rrg_desk.ui.loader as loader_module

    open_and_wait(qtbot, window, [study_dir])

    def crash(paths):
        raise OSError("disk went away")

    monkeypatch.setattr(loader_module, "load_studies", crash)
    with qtbot.waitSignal(window.loader.failed, timeout=10_000) as blocker:
        request_id = window.open_paths([study_dir])
    assert blocker.args[0] == request_id
    assert "disk went away" in window.last_error_box.text()
    assert window.current_study is not None and window.isVisible()
