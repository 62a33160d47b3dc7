from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime

import numpy as np
import pytest

from rrg_desk.reports.document import ReportDocument, ReportSentence
from rrg_desk.reports.truthfulness import Flag
from rrg_desk.store import Database, ReportSignedError, StoreError, StudyNotFoundError
from rrg_desk.store.records import SignedHistory
from rrg_desk.store.signoff import signed_report_meta
from tests.reports.synthetic import make_draft


def _document(uid: str, text: str = "The lungs are clear.") -> ReportDocument:
    document = ReportDocument(uid)
    document.replace_section_text("findings", text)
    document.replace_section_text("impression", "No acute cardiopulmonary abnormality.")
    return document


def test_save_and_load_draft_round_trip_with_model_draft(db, imported):
    uid = imported["SAMPLE^ONE"]
    draft = make_draft(uid)
    db.save_model_draft(uid, draft, "dr")
    assert db.get_study(uid).status == "drafted"
    document = ReportDocument.from_draft(draft)
    db.save_draft(uid, document, "dr")
    assert db.get_study(uid).status == "drafted"  # nothing reviewed yet
    document.accept(document.findings[0].id)
    db.save_draft(uid, document, "dr")
    assert db.get_study(uid).status == "in_progress"
    loaded = db.load_draft(uid)
    assert loaded.to_dict() == document.to_dict()
    assert loaded.draft is not None and np.array_equal(loaded.draft.finding_heatmaps["Cardiomegaly"],
                                                        draft.finding_heatmaps["Cardiomegaly"])
    assert db.load_model_draft(uid).sentences == draft.sentences  # heatmaps kept exactly
    assert db.load_draft(imported["SAMPLE^TWO"]) is None
    actions = [e.action for e in db.audit_log(uid)]
    assert actions == ["imported", "drafted", "edited"]  # "edited" is throttled, not per keystroke


def test_save_draft_for_unknown_study(db):
    with pytest.raises(StudyNotFoundError):
        db.save_draft("9.9.9", _document("9.9.9"), "dr")


def test_autosave_is_cheap(db, imported):
    uid = imported["SAMPLE^ONE"]
    document = ReportDocument.from_draft(make_draft(uid))
    document.replace_section_text("findings", " ".join(["The heart is enlarged."] * 60))  # a long report
    timings = []
    for i in range(30):
        document.replace_section_text("impression", f"Cardiomegaly, version {i}.")
        start = time.perf_counter()
        db.save_draft(uid, document, "dr")
        timings.append((time.perf_counter() - start) * 1000)
    assert statistics.median(timings) < 20, timings
    assert db.load_draft(uid).impression_text() == "Cardiomegaly, version 29."


def test_sign_makes_the_report_immutable(db, imported):
    uid = imported["SAMPLE^ONE"]
    document = _document(uid)
    db.save_draft(uid, document, "dr")
    flag = Flag("asserted_below_threshold", "Edema", document.findings[0].id, "check edema")
    report = db.sign(uid, document, "Dr A", [flag])
    assert (report.kind, report.parent_id, report.signer) == ("report", None, "Dr A")
    assert report.findings_text == "The lungs are clear." and report.verify()
    assert report.flags_reviewed == [flag.to_dict()]
    assert db.get_study(uid).status == "signed" and db.is_signed(uid)
    assert db.load_draft(uid) is None  # the working copy became the signed report
    with pytest.raises(ReportSignedError):
        db.save_draft(uid, document, "dr")
    with pytest.raises(ReportSignedError):
        db.sign(uid, document, "Dr A", [])
    log = db.audit_log(uid)
    assert [e.action for e in log][-2:] == ["flags_reviewed", "signed"]
    assert log[-2].detail["flags"][0]["finding"] == "Edema"
    assert log[-1].detail["sha256"] == report.sha256


def test_sign_needs_a_signer_and_text(db, imported):
    uid = imported["SAMPLE^ONE"]
    with pytest.raises(StoreError, match="name"):
        db.sign(uid, _document(uid), "  ", [])
    with pytest.raises(StoreError, match="empty"):
        db.sign(uid, ReportDocument(uid), "Dr A", [])
    assert not db.is_signed(uid)


def test_addenda_have_their_own_signoff(db, imported):
    uid = imported["SAMPLE^ONE"]
    with pytest.raises(StoreError, match="sign the report first"):
        db.add_addendum(uid, "More.", "Dr A")
    original = db.sign(uid, _document(uid), "Dr A", [])
    addendum = db.add_addendum(uid, "  Also a left rib fracture.  ", "Dr B")
    assert (addendum.kind, addendum.parent_id, addendum.addendum_text) == ("addendum", original.id,
                                                                          "Also a left rib fracture.")
    assert addendum.verify() and addendum.text == "Also a left rib fracture."
    assert [r.id for r in db.signed_reports(uid)] == [original.id, addendum.id]
    assert db.get_study(uid).status == "amended"
    assert db.audit_log(uid)[-1].action == "addendum"
    with pytest.raises(StoreError):
        db.add_addendum(uid, " ", "Dr B")


def test_the_signed_history_is_the_report_then_its_addenda_and_makes_the_export_meta(db, imported):
    uid = imported["SAMPLE^ONE"]
    assert db.signed_history(uid) == SignedHistory() and db.signed_history(uid).versions == ()
    unsigned = signed_report_meta(db.load_study(uid), db.signed_history(uid), "salt")
    assert not unsigned.signed and (unsigned.signer, unsigned.report_id, unsigned.addenda) == ("", "", ())
    original = db.sign(uid, _document(uid), "Dr A", [])
    first, second = db.add_addendum(uid, "First.", "Dr B"), db.add_addendum(uid, "Second.", "Dr C")
    history = db.signed_history(uid)
    assert history.original == original and history.addenda == (first, second)
    assert [r.id for r in history.versions] == [original.id, first.id, second.id]
    meta = signed_report_meta(db.load_study(uid), history, "salt", organisation="St Elsewhere")
    assert (meta.signer, meta.report_id, meta.organisation, meta.study_uid) == ("Dr A", str(original.id),
                                                                                 "St Elsewhere", uid)
    assert meta.signed_at == datetime.fromisoformat(original.signed_at) and meta.pseudonym_salt == "salt"
    assert [(a.text, a.signer, a.signed_at) for a in meta.addenda] == [
        ("First.", "Dr B", datetime.fromisoformat(first.signed_at)),
        ("Second.", "Dr C", datetime.fromisoformat(second.signed_at))]


def test_tampering_is_detected_by_the_checksum(db, imported):
    uid = imported["SAMPLE^ONE"]
    report = db.sign(uid, _document(uid), "Dr A", [])
    from dataclasses import replace
    assert not replace(report, findings_text="forged").verify()


def test_audit_rejects_unknown_actions_and_filters(db, imported):
    db.audit(None, "admin", "exported", {"formats": ["txt"]})
    with pytest.raises(ValueError):
        db.audit(None, "admin", "deleted_everything")
    entries = db.audit_log(action="exported")
    assert len(entries) == 1 and entries[0].study_uid is None and entries[0].detail == {"formats": ["txt"]}


# --- clean shutdown and recovery ---------------------------------------------------------

def test_clean_shutdown_means_nothing_to_recover(tmp_path, imported_path_db):
    path, uid = imported_path_db
    db = Database.open(path)
    db.save_draft(uid, _document(uid), "dr")
    db.mark_clean_shutdown()
    db.close()
    with Database.open(path) as again:
        assert again.was_clean_shutdown() and again.unsaved_recovery() == []


def test_close_without_clean_marker_is_a_crash(tmp_path, imported_path_db):
    path, uid = imported_path_db
    db = Database.open(path)
    db.save_draft(uid, _document(uid, "Small right effusion."), "dr")
    db.close()  # no mark_clean_shutdown: the app died
    with Database.open(path) as again:
        assert not again.was_clean_shutdown()
        assert again.unsaved_recovery() == [uid]
        assert again.load_draft(uid).findings_text() == "Small right effusion."


def test_a_second_live_instance_is_not_a_crash(imported_path_db):
    path, _ = imported_path_db
    first = Database.open(path)
    second = Database.open(path)
    assert second.was_clean_shutdown()
    second.mark_clean_shutdown()
    first.mark_clean_shutdown()
    first.close()
    second.close()


def test_recovery_after_sigkill(imported_path_db):
    """A real process saves a draft and is killed with SIGKILL before any clean shutdown."""
    path, uid = imported_path_db
    script = (
        "import sys, time\n"
        "from rrg_desk.store import Database\n"
        "from rrg_desk.reports.document import ReportDocument\n"
        "db = Database.open(sys.argv[1])\n"
        "doc = ReportDocument(sys.argv[2])\n"
        "doc.replace_section_text('findings', 'Typed just before the crash.')\n"
        "db.save_draft(sys.argv[2], doc, 'dr')\n"
        "print('saved', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), uid], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "saved"
        proc.kill()  # SIGKILL: no chance to mark a clean shutdown
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with Database.open(path) as again:
        assert not again.was_clean_shutdown()
        assert again.unsaved_recovery() == [uid]
        assert again.load_draft(uid).findings_text() == "Typed just before the crash."


@pytest.fixture
def imported_path_db(tmp_path):
    from rrg_desk.paths import samples_dir

    path = tmp_path / "recovery.sqlite3"
    with Database.open(path) as db:
        (record,), _ = db.import_studies([samples_dir() / "study2"])
        db.mark_clean_shutdown()
    return path, record.study_uid


# --- failures become StoreError ----------------------------------------------------------

class _FailingConnection:
    """Wraps a sqlite3 connection; writes fail with the given OperationalError."""

    def __init__(self, conn: sqlite3.Connection, message: str) -> None:
        self._conn, self._message = conn, message

    def execute(self, sql, *args):
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError(self._message)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


@pytest.mark.parametrize("message, words", [("database or disk is full", "disk is full"),
                                            ("attempt to write a readonly database", "read-only"),
                                            ("database is locked", "busy")])
def test_write_failures_become_store_errors_and_keep_the_old_draft(db, imported, message, words):
    uid = imported["SAMPLE^ONE"]
    db.save_draft(uid, _document(uid, "First version."), "dr")
    real = db._conn
    db._conn = _FailingConnection(real, message)
    try:
        with pytest.raises(StoreError) as caught:
            db.save_draft(uid, _document(uid, "Second version."), "dr")
        assert words in caught.value.user_message and "kept on screen" in caught.value.user_message
        with pytest.raises(StoreError):
            db.sign(uid, _document(uid), "Dr A", [])
    finally:
        db._conn = real
    assert not real.in_transaction  # rolled back
    assert db.load_draft(uid).findings_text() == "First version."


def test_a_read_only_database_is_a_store_error(db, imported):
    uid = imported["SAMPLE^ONE"]
    db._conn.execute("PRAGMA query_only = ON")  # the engine itself refuses writes
    with pytest.raises(StoreError) as caught:
        db.save_draft(uid, _document(uid), "dr")
    assert "read-only" in caught.value.user_message


def test_unopenable_locations_are_store_errors(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        Database.open(blocker / "sub" / "db.sqlite3")  # a file where a folder should be
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError) as caught:
        Database.open(garbage)
    assert "damaged" in caught.value.user_message


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root ignores folder permissions")
def test_read_only_data_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(StoreError):
            Database.open(folder / "db.sqlite3")
    finally:
        folder.chmod(0o755)


def test_read_only_data_folder_even_as_root(tmp_path, monkeypatch):
    """Root ignores permissions, so the OS refusal is simulated where it happens."""
    import errno
    from pathlib import Path

    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(StoreError) as caught:
        Database.open(tmp_path / "ro" / "db.sqlite3")
    assert "read-only" in caught.value.user_message
    monkeypatch.undo()

    def cannot_open(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr("rrg_desk.store.database.sqlite3.connect", cannot_open)
    with pytest.raises(StoreError) as caught:
        Database.open(tmp_path / "db.sqlite3")
    assert "could not be opened" in caught.value.user_message
