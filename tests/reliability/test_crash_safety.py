"""SIGKILL during autosave / sign / export, and full or read-only storage, lose nothing."""
from __future__ import annotations

import errno
import os

import pytest

from fuzz.crash import run_crash_campaign
from fuzz.crash_child import synthetic_draft
from rrg_desk.app.session import Session
from rrg_desk.app.settings import AppSettings
from rrg_desk.paths import samples_dir
from rrg_desk.reports.export import ExportError
from rrg_desk.store import Database, StoreError

KILLS = 30


def test_sigkill_at_random_moments_loses_no_signed_report_and_no_draft(tmp_path):
    result = run_crash_campaign(KILLS, tmp_path, seed=3, max_delay_s=0.6)
    assert result["failures"] == 0, result["failure_examples"]
    assert result["iterations"] == KILLS
    assert result["signed_reports_confirmed_and_verified"] > 0  # the checks had something to check
    assert result["drafts_restored_by_session"] > 0
    assert result["events"].get("autosaved", 0) > KILLS


@pytest.fixture
def session(tmp_path):
    db = Database.open(tmp_path / "store.sqlite3")
    db.import_studies([samples_dir() / "study1"])
    session = Session(db, AppSettings(user_name="Dr Ada", auto_draft=False))
    uid = db.list_studies()[0].study_uid
    session.open_study(uid)
    session.apply_draft(synthetic_draft(uid))
    yield session
    db.close()


def _type_a_report(session) -> str:
    text = "Typed before the disk filled up. " * 200  # a few kB: needs new database pages
    session.edit("findings", text)
    return session.document.findings_text()


def test_a_full_disk_keeps_the_text_on_screen_and_saves_once_there_is_room(session):
    conn = session.db._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the engine itself reports SQLITE_FULL
    text = _type_a_report(session)
    with pytest.raises(StoreError) as caught:
        session.autosave()
    assert "disk is full" in caught.value.user_message and "kept on screen" in caught.value.user_message
    assert session.dirty and session.document.findings_text() == text  # still in memory, still to save
    conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    assert session.autosave()
    assert session.db.load_draft(session.study_uid).findings_text() == text


def test_a_read_only_database_keeps_the_text_on_screen(session):
    session.db._conn.execute("PRAGMA query_only = ON")  # root ignores chmod; the engine does not
    text = _type_a_report(session)
    with pytest.raises(StoreError) as caught:
        session.autosave()
    assert "read-only" in caught.value.user_message
    assert session.dirty and session.document.findings_text() == text
    with pytest.raises(StoreError):
        session.sign(reviewed_flags=session.check_before_sign())
    assert session.document.findings_text() == text and not session.is_signed


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_data_folder_is_a_clear_store_error(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "db.sqlite3").touch()
    for path in (folder / "db.sqlite3", folder):
        path.chmod(0o444 if path.is_file() else 0o555)
    try:
        with pytest.raises(StoreError) as caught:
            Database.open(folder / "db.sqlite3")
        assert caught.value.user_message
    finally:
        folder.chmod(0o755)
        (folder / "db.sqlite3").chmod(0o644)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only")])
def test_export_to_a_full_or_read_only_disk_is_an_export_error_and_keeps_the_report(session, tmp_path,
                                                                                   monkeypatch, code, words):
    import rrg_desk.fileio as fileio

    def failing_replace(src, dst):  # the disk refuses the finished file
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    text = _type_a_report(session)
    out = tmp_path / "exports"
    out.mkdir()
    for fmt in ("txt", "json", "fhir", "sr", "png"):
        with pytest.raises(ExportError) as caught:
            session.export([fmt], out)
        assert words in caught.value.user_message, fmt
    assert list(out.iterdir()) == []  # no half-written file
    assert session.document.findings_text() == text
    monkeypatch.undo()
    assert session.export(["txt"], out)["txt"].read_text().count("Typed before") == 200
