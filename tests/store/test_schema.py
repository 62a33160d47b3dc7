from __future__ import annotations

import sqlite3

import pytest

from rrg_desk.store import SCHEMA_VERSION, Database, StoreError
from rrg_desk.store.schema import MIGRATIONS, migrate, schema_version
from tests.store.conftest import store_at_version


def _v1_database(path):
    with store_at_version(path, 1) as conn:
        conn.execute("INSERT INTO studies (study_uid, patient_name, status, imported_at, updated_at) "
                     "VALUES ('1.2.3', 'OLD^PATIENT', 'in_progress', 't', 't')")
        conn.execute("INSERT INTO drafts VALUES ('1.2.3', '{\"study_uid\": \"1.2.3\"}', 'dr', 't', 1)")
        conn.execute("INSERT INTO audit_log (at, study_uid, user, action) VALUES ('t', '1.2.3', 'dr', 'opened')")


def test_a_v1_database_migrates_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    _v1_database(path)
    with Database.open(path) as db:
        record = db.get_study("1.2.3")
        assert (record.patient_name, record.status) == ("OLD^PATIENT", "in_progress")
        assert [e.action for e in db.audit_log("1.2.3")] == ["opened"]
        assert db.signed_reports("1.2.3") == []  # the v2 table exists now
    conn = sqlite3.connect(path)
    assert schema_version(conn) == SCHEMA_VERSION == len(MIGRATIONS) >= 2
    conn.close()


def test_opening_twice_does_not_migrate_again(tmp_path):
    path = tmp_path / "db.sqlite3"
    Database.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn) == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_a_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "db.sqlite3"
    _v1_database(path)

    def broken(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("simulated failure")

    monkeypatch.setattr("rrg_desk.store.schema.MIGRATIONS", [MIGRATIONS[0], broken])
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, target=2)
    assert schema_version(conn) == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    conn.close()


def test_a_newer_schema_is_refused_with_a_message(tmp_path):
    path = tmp_path / "db.sqlite3"
    Database.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE schema_version SET version = 999")
    conn.close()
    with pytest.raises(StoreError) as caught:
        Database.open(path)
    assert "newer RRG Desk" in caught.value.user_message


def test_wal_foreign_keys_and_busy_timeout(db):
    conn = db._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    with pytest.raises(sqlite3.IntegrityError):  # a draft for an unknown study is refused
        conn.execute("INSERT INTO drafts VALUES ('nope', '{}', 'x', 't', 1)")


def test_default_path_is_in_the_user_data_folder(isolated_user_data):
    with Database.open() as db:
        assert db.path == isolated_user_data / "rrg-desk.sqlite3" and db.path.exists()


def test_audit_log_and_signed_reports_are_immutable_in_sql(db, imported):
    from rrg_desk.reports.document import ReportDocument, ReportSentence

    uid = imported["SAMPLE^ONE"]
    db.sign(uid, ReportDocument(uid, findings=[ReportSentence("The lungs are clear.")]), "Dr A", [])
    conn = db._conn
    for statement in ("UPDATE signed_reports SET findings_text = 'forged'",
                      "DELETE FROM signed_reports",
                      "UPDATE audit_log SET user = 'someone else'",
                      "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.DatabaseError, match="immutable|append-only"):
            conn.execute(statement)
    with pytest.raises(sqlite3.DatabaseError):  # deleting the study would cascade into them
        conn.execute("DELETE FROM studies WHERE study_uid = ?", (uid,))
    report = db.signed_reports(uid)[0]
    assert report.findings_text == "The lungs are clear." and report.verify()
