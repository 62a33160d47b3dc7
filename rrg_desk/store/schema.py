"""The database schema as an ordered list of migrations (never edit a released one: add one).

`schema_version` holds one row, the number of migrations applied. Each migration runs in
the caller's transaction, so a failed upgrade leaves the previous version intact.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

from rrg_desk.store.records import SIGNED_STATUSES, StudyStatus


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


_STATUS_CHECK = f"status IN ({_sql_list(StudyStatus)})"


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute statements one by one: executescript() would COMMIT our migration transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


def _v1_studies_drafts_audit(conn: sqlite3.Connection) -> None:
    """Worklist, working drafts and the append-only audit log."""
    _run_script(conn, f"""
        CREATE TABLE studies (
            study_uid    TEXT PRIMARY KEY,
            patient_name TEXT NOT NULL DEFAULT '',
            patient_id   TEXT NOT NULL DEFAULT '',
            birth_date   TEXT NOT NULL DEFAULT '',
            sex          TEXT NOT NULL DEFAULT '',
            study_date   TEXT NOT NULL DEFAULT '',
            accession    TEXT NOT NULL DEFAULT '',
            description  TEXT NOT NULL DEFAULT '',
            modality     TEXT NOT NULL DEFAULT '',
            status       TEXT NOT NULL DEFAULT '{StudyStatus.NEW}' CHECK ({_STATUS_CHECK}),
            imported_at  TEXT NOT NULL,
            updated_at   TEXT NOT NULL
        );
        CREATE TABLE study_files (
            study_uid        TEXT NOT NULL REFERENCES studies(study_uid) ON DELETE CASCADE,
            path             TEXT NOT NULL,
            sop_instance_uid TEXT NOT NULL DEFAULT '',
            view             TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (study_uid, path)
        );
        CREATE TABLE drafts (
            study_uid     TEXT PRIMARY KEY REFERENCES studies(study_uid) ON DELETE CASCADE,
            document_json TEXT NOT NULL,
            saved_by      TEXT NOT NULL,
            saved_at      TEXT NOT NULL,
            saved_at_ns   INTEGER NOT NULL
        );
        CREATE TABLE audit_log (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            at          TEXT NOT NULL,
            study_uid   TEXT,
            user        TEXT NOT NULL,
            action      TEXT NOT NULL,
            detail_json TEXT NOT NULL DEFAULT '{{}}'
        );
        CREATE INDEX audit_by_study ON audit_log(study_uid, id);
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """)


def _v2_signoff_model_drafts_state(conn: sqlite3.Connection) -> None:
    """Immutable signed reports and addenda, the model's drafts, app state, worklist indexes."""
    _run_script(conn, """
        CREATE TABLE signed_reports (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            study_uid       TEXT NOT NULL REFERENCES studies(study_uid),
            kind            TEXT NOT NULL CHECK (kind IN ('report', 'addendum')),
            parent_id       INTEGER REFERENCES signed_reports(id),
            findings_text   TEXT NOT NULL DEFAULT '',
            impression_text TEXT NOT NULL DEFAULT '',
            addendum_text   TEXT NOT NULL DEFAULT '',
            document_json   TEXT,
            signer          TEXT NOT NULL,
            signed_at       TEXT NOT NULL,
            sha256          TEXT NOT NULL,
            flags_json      TEXT NOT NULL DEFAULT '[]',
            CHECK ((kind = 'report') = (parent_id IS NULL))
        );
        CREATE UNIQUE INDEX one_report_per_study ON signed_reports(study_uid) WHERE kind = 'report';
        CREATE TRIGGER signed_reports_no_update BEFORE UPDATE ON signed_reports
            BEGIN SELECT RAISE(ABORT, 'signed reports are immutable'); END;
        CREATE TRIGGER signed_reports_no_delete BEFORE DELETE ON signed_reports
            BEGIN SELECT RAISE(ABORT, 'signed reports are immutable'); END;
        CREATE TABLE model_drafts (
            study_uid  TEXT PRIMARY KEY REFERENCES studies(study_uid) ON DELETE CASCADE,
            draft_json TEXT NOT NULL,
            bundle_id  TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        );
        CREATE TABLE app_state (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE INDEX studies_by_date ON studies(study_date);
        CREATE INDEX studies_by_status ON studies(status);
    """)


DONE_EXPR = f"(status IN ({_sql_list(SIGNED_STATUSES)}))"  # 0 for a study still to report, 1 once signed
SEARCH_COLUMNS = ("patient_name", "patient_id", "accession", "description")


def fts5_trigram_available(conn: sqlite3.Connection) -> bool:
    """Can this SQLite build index substrings (FTS5 with the trigram tokenizer, SQLite >= 3.34)?"""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.rrg_fts5_probe USING fts5(x, tokenize='trigram')")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.rrg_fts5_probe")
    return True


def _v3_worklist_at_scale(conn: sqlite3.Connection) -> None:
    """A worklist of tens of thousands of studies: an index in the worklist's own order
    (unsigned first, then newest study first, so a page is an index range), a study's signed
    reports and addenda by study (the v2 index only covers kind = 'report'), and a substring
    search index over patient name, patient ID, accession and description kept in step by
    triggers. A study's files are already found by the primary key of study_files
    (study_uid, path); no second index is needed for them.

    The search table holds its own copy of the four columns keyed by study_uid (not by the
    studies rowid, which VACUUM may renumber). Without FTS5 trigram support in this SQLite
    the search table is left out and searching falls back to LIKE."""
    _run_script(conn, f"""
        CREATE INDEX studies_worklist ON studies({DONE_EXPR}, study_date DESC, study_uid);
        CREATE INDEX signed_reports_by_study ON signed_reports(study_uid, id);
    """)
    if not fts5_trigram_available(conn):
        return
    columns = ", ".join(SEARCH_COLUMNS)
    new_values = ", ".join(f"new.{c}" for c in SEARCH_COLUMNS)
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in SEARCH_COLUMNS)
    _run_script(conn, f"""
        CREATE VIRTUAL TABLE studies_fts USING fts5(study_uid UNINDEXED, {columns}, tokenize='trigram');
        INSERT INTO studies_fts (study_uid, {columns}) SELECT study_uid, {columns} FROM studies;
        CREATE TRIGGER studies_fts_insert AFTER INSERT ON studies BEGIN
            INSERT INTO studies_fts (study_uid, {columns}) VALUES (new.study_uid, {new_values});
        END;
        CREATE TRIGGER studies_fts_update AFTER UPDATE OF study_uid, {columns} ON studies
            WHEN old.study_uid IS NOT new.study_uid OR {changed} BEGIN
            DELETE FROM studies_fts WHERE study_uid = old.study_uid;
            INSERT INTO studies_fts (study_uid, {columns}) VALUES (new.study_uid, {new_values});
        END;
        CREATE TRIGGER studies_fts_delete AFTER DELETE ON studies BEGIN
            DELETE FROM studies_fts WHERE study_uid = old.study_uid;
        END;
    """)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1_studies_drafts_audit,
    _v2_signoff_model_drafts_state,
    _v3_worklist_at_scale,
]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(Exception):
    def __init__(self, found: int) -> None:
        super().__init__(f"database schema version {found} is newer than this program's {SCHEMA_VERSION}")
        self.found = found


def schema_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Apply the missing migrations up to `target` in one transaction; (from, to) versions.

    `conn` must be in autocommit mode (isolation_level=None): the transaction is ours."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise SchemaTooNewError(current)
        for migration in MIGRATIONS[current:target]:
            migration(conn)
        if target > current:
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current, max(current, target)
