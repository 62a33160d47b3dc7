"""The study statuses and audit actions are StrEnums whose values are what the store holds."""
from __future__ import annotations

import sqlite3

import pytest

from rrg_desk.store import SIGNED_STATUSES, AuditAction, Database, StudyRecord, StudyStatus
from rrg_desk.store.schema import DONE_EXPR


def test_the_stored_values_are_unchanged():
    assert [s.value for s in StudyStatus] == ["new", "drafted", "in_progress", "signed", "amended"]
    assert [a.value for a in AuditAction] == [
        "imported", "opened", "drafted", "edited", "accepted", "rejected", "accepted_all", "flags_reviewed",
        "signed", "addendum", "exported", "recovered", "status_changed", "input_refused", "draft_anyway",
        "identity_confirmed"]
    assert SIGNED_STATUSES == ("signed", "amended")
    assert DONE_EXPR == "(status IN ('signed', 'amended'))"  # the text of the studies_worklist index


def test_the_schema_checks_the_same_statuses(tmp_path):
    Database.open(tmp_path / "db.sqlite3").close()
    conn = sqlite3.connect(tmp_path / "db.sqlite3")
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'studies'").fetchone()[0]
    conn.close()
    assert ("status       TEXT NOT NULL DEFAULT 'new' CHECK "
            "(status IN ('new', 'drafted', 'in_progress', 'signed', 'amended'))") in sql


def test_a_record_holds_its_status_as_the_enum():
    record = StudyRecord(study_uid="1.2.3", status="in_progress")
    assert record.status is StudyStatus.IN_PROGRESS
    assert StudyRecord(study_uid="1.2.3").status is StudyStatus.NEW
    with pytest.raises(ValueError):
        StudyRecord(study_uid="1.2.3", status="archived")


def test_unknown_actions_and_statuses_are_refused(tmp_path):
    with Database.open(tmp_path / "db.sqlite3") as db:
        with pytest.raises(ValueError):
            db.audit(None, "dr", "deleted")
        db.audit(None, "dr", AuditAction.IDENTITY_CONFIRMED)
        assert [e.action for e in db.audit_log(action="identity_confirmed")] == ["identity_confirmed"]
        with pytest.raises(ValueError):
            db.set_status("1.2.3", "archived")
