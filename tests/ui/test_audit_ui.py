"""Identity before the first action, exports (PDF among others) audited once with path and
format, "opened" once after a restart, and the admin's read-only audit viewer with CSV."""
from __future__ import annotations

import csv

import pytest
from PySide6.QtWidgets import QAbstractItemView

from rrg_desk.app.settings import AppSettings
from rrg_desk.paths import samples_dir
from rrg_desk.store import Database
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.settings import open_settings
from tests.ui.conftest import open_and_wait
from tests.ui.workstation_fixtures import make_draft


def _window(qtbot, db_path, **settings):
    main = MainWindow(settings=open_settings(), database=Database.open(db_path),
                      app_settings=AppSettings(bundle_dir="", auto_draft=False, **settings))
    qtbot.addWidget(main)
    main.show()
    qtbot.waitExposed(main)
    qtbot.wait(20)  # let the start-up timers run (the PACS outbox check reads the database)
    return main


def test_identity_is_confirmed_once_and_carried_by_every_entry(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "jdoe")
    main = _window(qtbot, tmp_path / "w.sqlite3")
    assert main.session.user == "jdoe"  # the OS login until confirmed
    dialog = main.confirm_identity()
    assert dialog is not None and dialog.isVisible() and dialog.name_edit.text() == "jdoe"
    dialog.name_edit.setText("   ")
    dialog.accept()  # refused: the dialog stays up and says why
    assert dialog.isVisible() and "Enter your name" in dialog.error.text()
    dialog.name_edit.setText("Dr Grace Hopper")
    dialog.accept()
    assert main.session.user == "Dr Grace Hopper" and main.app_settings.identity_confirmed
    assert AppSettings.load().user_name == "Dr Grace Hopper"  # kept for the next start
    assert main.confirm_identity() is None  # confirmed once
    open_and_wait(qtbot, main, [samples_dir() / "study1"])
    log = main.database.audit_log()
    assert [e.action for e in log] == ["identity_confirmed", "imported", "opened"]
    assert {e.user for e in log} == {"Dr Grace Hopper"}
    main.close()


def test_pdf_exported_with_other_formats_is_audited_once_with_every_path(qtbot, tmp_path):
    db_path = tmp_path / "w.sqlite3"
    main = _window(qtbot, db_path, user_name="Dr Test", identity_confirmed=True)
    open_and_wait(qtbot, main, [samples_dir() / "study1"])
    uid = main.session.study_uid
    main.session.apply_draft(make_draft(uid))
    main.reporting.show_report()
    main.editor.accept_all()
    out = tmp_path / "exports"
    out.mkdir()
    written = main.signoff.export(["txt", "pdf", "json"], out, anonymise=False, key_image=True)
    assert set(written) == {"txt", "pdf", "json"} and written["pdf"].read_bytes().startswith(b"%PDF-")
    exported = main.database.audit_log(uid, "exported")
    assert len(exported) == 1
    assert {(f["format"], f["path"]) for f in exported[0].detail["files"]} == {
        (fmt, str(path.resolve())) for fmt, path in written.items()}
    assert len(main.database.audit_log(uid, "accepted_all")) == 1
    main.close()

    # restart: the worklist click and the loader both show the study; one "opened"
    again = _window(qtbot, db_path, user_name="Dr Test", identity_confirmed=True)
    again.reporting.open_study(uid)
    open_and_wait(qtbot, again, [samples_dir() / "study1"])
    again.worklist.studyActivated.emit(uid)
    assert [e.action for e in again.database.audit_log(uid)].count("opened") == 2  # one per session
    assert all(e.user == "Dr Test" for e in again.database.audit_log())

    again.database.audit(None, "Dr Other", "identity_confirmed", {})  # someone else on this machine
    viewer = again.open_audit_dialog()
    assert viewer.table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    total = viewer.model.rowCount()
    assert total == len(again.database.audit_log())
    viewer.set_filters(study_uid=uid, action="exported")
    assert viewer.model.rowCount() == 1
    assert viewer.cell(0, 3) == "exported" and "PDF " in viewer.cell(0, 6) and viewer.cell(0, 2) == "Dr Test"
    viewer.set_filters(user="Dr Other")
    assert viewer.model.rowCount() == 1 and viewer.cell(0, 2) == "Dr Other"
    viewer.set_filters(user="Dr Test")
    assert viewer.model.rowCount() == total - 1
    viewer.set_filters()
    csv_path = viewer.export_csv(tmp_path / "audit.csv")
    with open(csv_path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert len(rows) == total + 1 and [r[3] for r in rows[1:]].count("exported") == 1
    assert viewer.export_csv(tmp_path / "missing" / "audit.csv") is None
    assert "could not be written" in viewer.count.text()
    viewer.close()
    again.close()


@pytest.mark.parametrize("blank", ["", "   "])
def test_settings_dialog_refuses_a_blank_name(qtbot, tmp_path, blank):
    main = _window(qtbot, tmp_path / "w.sqlite3", user_name="Dr Test", identity_confirmed=True)
    dialog = main.open_settings_dialog()
    dialog.bundle_dir.setText("")
    dialog.user_name.setText(blank)
    dialog.accept()
    assert dialog.isVisible() and "Enter your name" in dialog.error.text()
    dialog.user_name.setText("Dr Other")
    dialog.institution_name.setText("St Elsewhere Hospital")
    dialog.accept()
    assert main.session.user == "Dr Other" and main.app_settings.institution_name == "St Elsewhere Hospital"
    assert main.database.audit_log(action="identity_confirmed")[-1].detail == {"previous": "Dr Test"}
    main.close()
