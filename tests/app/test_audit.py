"""Every action of a whole study is audited exactly once, under a named user; the admin's rows
and CSV say what happened (exported files with their format and path, PDF included)."""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from rrg_desk.app.audit import COLUMNS, audit_csv_text, audit_rows, summary, write_audit_csv
from rrg_desk.app.session import Session, SessionError
from rrg_desk.app.settings import AppSettings
from rrg_desk.paths import samples_dir
from rrg_desk.reports.export import ExportError
from rrg_desk.store import Database
from tests.reports.synthetic import make_draft


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "audit.sqlite3"


def _fake_pdf(job, out: Path) -> Path:
    """Stands in for the Qt PDF exporter the UI registers: the core only needs write(job, out)."""
    key_image = job.key_image_png()
    out.write_bytes(b"%PDF-1.4 " + job.document.findings_text().encode() + (b" key" if key_image else b""))
    return out


def _whole_study(db_path: Path, out: Path) -> tuple[str, list]:
    db = Database.open(db_path)
    session = Session(db, AppSettings(user_name="jdoe", auto_draft=False))  # the OS login, not yet confirmed
    session.confirm_identity("  Dr  Ada   Lovelace ")
    db.import_studies([samples_dir() / "study1"], session.user)
    uid = db.list_studies()[0].study_uid
    session.open_study(uid)
    session.open_study(uid)  # shown again (worklist click, loader): not a second "opened"
    session.apply_draft(make_draft(uid))
    first = session.document.findings[0]
    session.accept(first.id)
    session.accept_all()
    session.accept_all()  # nothing left to accept: no entry
    session.edit("findings", session.document.findings_text() + " No pneumothorax.")
    session.autosave()
    session.sign(reviewed_flags=session.check_before_sign())
    session.register_exporter("pdf", ".pdf", _fake_pdf)
    written = session.export(["txt", "pdf", "sr", "png"], out, include_key_image=True)
    assert written["pdf"].read_bytes().endswith(b" key")  # the key image reached the renderer
    session.add_addendum("Compared with the outside film: unchanged.")
    db.mark_clean_shutdown()
    db.close()
    db = Database.open(db_path)  # restart, open the same study
    restarted = Session(db, AppSettings(user_name="Dr Ada Lovelace", identity_confirmed=True))
    restarted.open_study(uid)
    entries = db.audit_log()
    db.close()
    return uid, entries


def test_a_whole_study_is_audited_once_per_action_under_the_confirmed_name(db_path, tmp_path):
    uid, entries = _whole_study(db_path, tmp_path)
    actions = [e.action for e in entries]
    assert actions == ["identity_confirmed", "imported", "opened", "drafted", "accepted", "accepted_all", "edited",
                       "flags_reviewed", "signed", "exported", "addendum", "opened"]
    assert all(e.user == "Dr Ada Lovelace" for e in entries)  # no entry with an empty user
    assert entries[0].study_uid is None and entries[0].detail == {"previous": "jdoe"}
    assert all(e.study_uid == uid for e in entries[1:])
    exported = entries[actions.index("exported")]
    files = {item["format"]: Path(item["path"]) for item in exported.detail["files"]}
    assert set(files) == {"txt", "pdf", "sr", "png"}  # the PDF with the others, in the same entry
    assert all(path.is_absolute() and path.is_file() and path.parent == tmp_path for path in files.values())
    assert files["pdf"].suffix == ".pdf" and exported.detail["signed"] is True
    # the second findings sentence and the impression: the first was accepted on its own
    assert entries[actions.index("accepted_all")].detail == {"sentences": 2}


@pytest.fixture
def drafted(tmp_path):
    """Study 1 imported, opened and drafted under Dr Ada: (database, session, study uid)."""
    with Database.open(tmp_path / "drafted.sqlite3") as db:
        session = Session(db, AppSettings(user_name="Dr Ada"))
        db.import_studies([samples_dir() / "study1"], session.user)
        uid = db.list_studies()[0].study_uid
        session.open_study(uid)
        session.apply_draft(make_draft(uid))
        yield db, session, uid


def test_a_failing_format_still_audits_the_files_already_written(drafted, tmp_path):
    db, session, uid = drafted

    def broken_pdf(*_args):
        raise ExportError("The disk is full.")

    session.register_exporter("pdf", ".pdf", broken_pdf)
    with pytest.raises(ExportError):
        session.export(["txt", "pdf", "json"], tmp_path)
    exported = db.audit_log(uid, "exported")
    assert len(exported) == 1
    assert [f["format"] for f in exported[0].detail["files"]] == ["txt"]
    assert exported[0].detail["not_written"] == ["pdf", "json"]
    assert "TXT " in summary(exported[0]) and "not written: pdf, json" in summary(exported[0])


def test_each_format_is_written_through_the_one_path_with_one_audit_entry(drafted, tmp_path):
    db, session, uid = drafted
    session.register_exporter("pdf", ".pdf", _fake_pdf)
    assert session.exporters.names() == ["txt", "json", "fhir", "sr", "png", "pdf"]
    for fmt in session.exporters.names():
        folder = tmp_path / fmt
        folder.mkdir()
        before = len(db.audit_log(uid, "exported"))
        written = session.export([fmt], folder, include_key_image=True)
        entries = db.audit_log(uid, "exported")
        assert len(entries) == before + 1, fmt
        assert entries[-1].detail["files"] == [{"format": fmt, "path": str(written[fmt].resolve())}]
        assert written[fmt].is_file() and written[fmt].name.endswith(session.exporters[fmt].suffix)
    with pytest.raises(ValueError, match="pdf_export"):
        Session(db, AppSettings(user_name="Dr Ada")).export(["pdf"], tmp_path)  # not registered there


@pytest.mark.parametrize("review, action", [("accept", "accepted"), ("reject", "rejected")])
def test_accepting_or_rejecting_a_sentence_audits_its_region_and_text(drafted, review, action):
    db, session, uid = drafted
    first = session.document.findings[0]
    getattr(session, review)(first.id)
    (entry,) = db.audit_log(uid, action)
    assert entry.detail == {"region": first.region, "text": first.text}
    assert (first.id in [s.id for s in session.document.findings]) == (review == "accept")


def test_summary_is_short_and_the_json_column_keeps_everything():
    from rrg_desk.store import AuditEntry

    entry = AuditEntry(1, "2026-01-05T09:03:04.123456+00:00", "1.2", "Dr A", "drafted",
                       {"total_ms": 8190.9184160031145, "refused_inputs": ["a", "b"], "device": "cpu"})
    assert summary(entry) == "total ms: 8191; refused inputs: 2; device: cpu"
    row = audit_rows([entry])[0]
    assert row[1] == "2026-01-05 09:03:04" and json.loads(row[-1])["total_ms"] == 8190.9184160031145


def test_identity_must_not_be_blank(tmp_path):
    with Database.open(tmp_path / "b.sqlite3") as db:
        session = Session(db, AppSettings(user_name="jdoe"))
        with pytest.raises(SessionError, match="Enter your name"):
            session.confirm_identity("   ")
        assert not session.identity_confirmed and db.audit_log() == []
        assert session.user == "jdoe"


def test_rows_and_csv_say_the_same_thing(db_path, tmp_path):
    uid, entries = _whole_study(db_path, tmp_path)
    with Database.open(db_path) as db:
        studies = {r.study_uid: r for r in db.list_studies()}
        assert db.audit_users() == ["Dr Ada Lovelace"]
        assert [e.action for e in db.audit_log(uid, user="Dr Ada Lovelace", action="opened")] == ["opened"] * 2
        assert db.audit_log(user="someone else") == []
    rows = audit_rows(entries, studies)
    exported = next(row for row in rows if row[3] == "exported")
    assert exported[4] == "SAMPLE^ONE (SAMPLE-0001)" and "PDF " in exported[6] and ".pdf" in exported[6]
    assert "T" not in exported[1] and len(exported[1]) == 19  # 2026-01-05 09:03:04, not raw ISO
    out = write_audit_csv(rows, tmp_path / "audit.csv")
    parsed = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert tuple(parsed[0]) == COLUMNS and [tuple(r) for r in parsed[1:]] == rows
    assert json.loads(parsed[1 + rows.index(exported)][-1])["files"][1]["format"] == "pdf"
    assert audit_csv_text([]) == ",".join(COLUMNS) + "\n"
    assert Counter(r[3] for r in rows)["exported"] == 1
