"""The SQLite store: connection, transactions, studies (the worklist), audit log, app state.

One file in the user data folder (WAL journal, foreign keys, busy timeout). With WAL and
synchronous=NORMAL a commit survives the application being killed (only a power cut may
lose the last commits), and an autosave costs about a millisecond.
Drafts and sign-off live in store/drafts.py and store/signoff.py (mixed into Database).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil

from rrg_desk.imaging import ImageReadError, Study, load_studies
from rrg_desk.paths import user_data_dir
from rrg_desk.store.drafts import DraftsMixin
from rrg_desk.store.errors import ReportSignedError, StoreError, StudyNotFoundError, mapped_errors
from rrg_desk.store.records import SIGNED_STATUSES, AuditAction, AuditEntry, StudyRecord, StudyStatus, utc_now_iso
from rrg_desk.store.schema import SchemaTooNewError, migrate
from rrg_desk.store.signoff import SignOffMixin
from rrg_desk.store import worklist as _worklist
from rrg_desk.store.worklist import (
    STUDY_COLUMNS, WorklistPage, WorklistQuery, WorklistReader, has_search_index, next_unsigned,
)

log = logging.getLogger(__name__)

DATABASE_FILE_NAME = "rrg-desk.sqlite3"
BUSY_TIMEOUT_S = 5.0
_RUNNING_KEY, _CLEAN_AT_KEY = "running_instances", "clean_shutdown_ns"
_OPEN_TOKENS: set[str] = set()  # Database instances open in this process


class Database(DraftsMixin, SignOffMixin):
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()  # one connection, possibly shared with a worker thread
        self._token = uuid.uuid4().hex
        self._last_edit_audit_ns: dict[str, int] = {}
        self._previous_clean, self._recoverable = self._register_instance()
        with self._reading("opening the database"):
            self._fts = has_search_index(conn)  # the trigram search index (absent without FTS5)

    # --- lifecycle ----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path | None = None) -> "Database":
        """Open (creating and migrating if needed) the database; StoreError when impossible."""
        with mapped_errors("opening the database"):
            path = Path(path) if path is not None else user_data_dir() / DATABASE_FILE_NAME
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                try:
                    before, after = migrate(conn)
                except SchemaTooNewError as exc:
                    raise StoreError("The database was written by a newer RRG Desk; update the program "
                                     "to open it.") from exc
                if before != after:
                    log.info("database %s migrated from schema %d to %d", path, before, after)
                return cls(conn, path)
            except BaseException:
                conn.close()
                raise

    def close(self) -> None:
        with self._lock:
            _OPEN_TOKENS.discard(self._token)
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self, where: str) -> Iterator[sqlite3.Connection]:
        with self._lock, mapped_errors(where):
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _reading(self, where: str) -> Iterator[sqlite3.Connection]:
        with self._lock, mapped_errors(where):
            yield self._conn

    # --- app state, clean shutdown and recovery -----------------------------------------
    def _state(self, conn: sqlite3.Connection, key: str, default: str = "") -> str:
        row = conn.execute("SELECT value FROM app_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    @staticmethod
    def _set_state(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT INTO app_state (key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _register_instance(self) -> tuple[bool, list[str]]:
        """Record this instance as running; was the previous run's shutdown clean?

        An instance listed as running whose process is gone (or, in this process, whose
        Database was closed without `mark_clean_shutdown`) crashed or was killed."""
        with self._transaction("starting") as conn:
            running = json.loads(self._state(conn, _RUNNING_KEY, "[]"))
            alive, crashed = [], []
            for entry in running:
                pid, token = int(entry.get("pid", 0)), str(entry.get("token", ""))
                if pid == os.getpid():
                    (alive if token in _OPEN_TOKENS else crashed).append(entry)
                else:
                    (alive if psutil.pid_exists(pid) else crashed).append(entry)
            self._set_state(conn, _RUNNING_KEY, json.dumps(alive + [{"pid": os.getpid(), "token": self._token}]))
            recoverable: list[str] = []
            if crashed:
                clean_at = int(self._state(conn, _CLEAN_AT_KEY, "0"))
                recoverable = [row[0] for row in conn.execute(
                    "SELECT study_uid FROM drafts WHERE saved_at_ns > ? ORDER BY saved_at_ns DESC", (clean_at,))]
        _OPEN_TOKENS.add(self._token)
        if crashed:
            log.warning("the previous session did not shut down cleanly; %d working draft(s) to recover",
                        len(recoverable))
        return not crashed, recoverable

    def mark_clean_shutdown(self) -> None:
        with self._transaction("closing") as conn:
            running = json.loads(self._state(conn, _RUNNING_KEY, "[]"))
            self._set_state(conn, _RUNNING_KEY, json.dumps([e for e in running if e.get("token") != self._token]))
            self._set_state(conn, _CLEAN_AT_KEY, str(time.time_ns()))
        _OPEN_TOKENS.discard(self._token)

    def was_clean_shutdown(self) -> bool:
        """Did the previous session end with mark_clean_shutdown()? (judged when opened)"""
        return self._previous_clean

    def unsaved_recovery(self) -> list[str]:
        """Study uids whose working draft was saved after the last clean shutdown, when the
        previous session crashed or was killed (most recent first; judged when opened)."""
        return list(self._recoverable)

    def installation_secret(self) -> str:
        """A random per-database secret (keys the pseudonyms of anonymised exports)."""
        with self._transaction("reading the installation secret") as conn:
            secret = self._state(conn, "installation_secret")
            if not secret:
                secret = uuid.uuid4().hex + uuid.uuid4().hex
                self._set_state(conn, "installation_secret", secret)
            return secret

    # --- audit --------------------------------------------------------------------------
    @staticmethod
    def _audit(conn: sqlite3.Connection, study_uid: str | None, user: str, action: AuditAction,
               detail: dict | None) -> int:
        action = AuditAction(action)  # ValueError for an unknown action
        cursor = conn.execute(
            "INSERT INTO audit_log (at, study_uid, user, action, detail_json) VALUES (?, ?, ?, ?, ?)",
            (utc_now_iso(), study_uid, user, action, json.dumps(detail or {}, ensure_ascii=False, default=str)))
        return int(cursor.lastrowid)

    def audit(self, study_uid: str | None, user: str, action: AuditAction, detail: dict | None = None) -> None:
        with self._transaction(f"logging '{action}'") as conn:
            self._audit(conn, study_uid, user, action, detail)

    @staticmethod
    def audit_query(study_uid: str | None = None, action: AuditAction | None = None,
                    user: str | None = None) -> tuple[str, list]:
        """The SQL audit_log() runs (one study's trail is an index range of audit_by_study)."""
        clauses, args = [], []
        for column, value in (("study_uid", study_uid), ("action", action), ("user", user)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return f"SELECT id, at, study_uid, user, action, detail_json FROM audit_log {where} ORDER BY id", args

    def audit_log(self, study_uid: str | None = None, action: AuditAction | None = None,
                  user: str | None = None) -> list[AuditEntry]:
        """The audit entries, oldest first; each filter given narrows them (exact match)."""
        sql, args = self.audit_query(study_uid, action, user)
        with self._reading("reading the audit log") as conn:
            rows = conn.execute(sql, args).fetchall()
        return [AuditEntry(id=r[0], at=r[1], study_uid=r[2], user=r[3], action=r[4], detail=json.loads(r[5]))
                for r in rows]

    def explain(self, sql: str, args: list | tuple = ()) -> list[str]:
        """EXPLAIN QUERY PLAN of a query, one line per step (for tests and the benchmark)."""
        with self._reading("explaining a query") as conn:
            return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", list(args))]

    def audit_users(self) -> list[str]:
        """Everyone who appears in the audit log (for the viewer's filter)."""
        with self._reading("reading the audit log") as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT user FROM audit_log ORDER BY user COLLATE NOCASE")]

    # --- studies ------------------------------------------------------------------------
    def import_studies(self, paths: Iterable[str | Path], user: str = "") -> tuple[list[StudyRecord], list[ImageReadError]]:
        """Read files/folders into the worklist. Re-importing the same files changes nothing."""
        studies, errors = load_studies(paths)  # file I/O outside the database lock
        return self.add_studies(studies, user), errors

    def add_studies(self, studies: list[Study], user: str = "") -> list[StudyRecord]:
        """Add studies already read from disk to the worklist (idempotent)."""
        now = utc_now_iso()
        with self._transaction("importing studies") as conn:
            for study in studies:
                self._upsert_study(conn, study, now, user)
            return _worklist.records(conn, [study.study_uid for study in studies])

    def _upsert_study(self, conn: sqlite3.Connection, study: Study, now: str, user: str) -> None:
        known = conn.execute("SELECT 1 FROM studies WHERE study_uid = ?", (study.study_uid,)).fetchone()
        modality = next((im.modality for im in study.images if im.modality), "")
        values = (study.patient.name, study.patient.patient_id, study.patient.birth_date, study.patient.sex,
                  study.study_date, study.accession_number, study.description, modality)
        if known:
            conn.execute("UPDATE studies SET patient_name=?, patient_id=?, birth_date=?, sex=?, study_date=?, "
                         "accession=?, description=?, modality=? WHERE study_uid=?", (*values, study.study_uid))
        else:
            conn.execute(f"INSERT INTO studies ({STUDY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (study.study_uid, *values, StudyStatus.NEW, now, now))
        added = 0
        for image in study.images:
            path = str(Path(image.source_path).resolve()) if image.source_path else ""
            cursor = conn.execute("INSERT OR IGNORE INTO study_files (study_uid, path, sop_instance_uid, view) "
                                  "VALUES (?, ?, ?, ?)", (study.study_uid, path, image.sop_instance_uid,
                                                          image.view.value))
            added += cursor.rowcount
        if not known:
            self._audit(conn, study.study_uid, user, AuditAction.IMPORTED,
                        {"files": added, "source": str(Path(study.source).resolve()) if study.source else ""})

    def list_studies(self, search: str = "", status: StudyStatus | None = None, order_by: str = "study_date",
                     descending: bool = True, limit: int | None = None, offset: int = 0) -> list[StudyRecord]:
        """The worklist, or `limit` studies of it from `offset`. `search` words must each match
        patient name/ID, accession or description; order_by "worklist" puts the studies still
        to report first (see rrg_desk/store/worklist.py)."""
        query = WorklistQuery(search=search, status=status, order_by=order_by, descending=descending)
        return self.worklist_page(query, offset, limit).records

    def worklist_page(self, query: WorklistQuery, offset: int = 0, limit: int | None = None,
                      count: bool = False) -> WorklistPage:
        """A page of the worklist in the query's order (with the number of matches if asked)."""
        with self._reading("reading the worklist") as conn:
            return _worklist.page(conn, query, offset, limit, count, fts=self._fts)

    def count_studies(self, query: WorklistQuery = WorklistQuery()) -> int:
        sql, args = _worklist.count_sql(query, self._fts)
        with self._reading("counting the worklist") as conn:
            return int(conn.execute(sql, args).fetchone()[0])

    def next_unsigned_uid(self, after_uid: str | None = None, search: str = "") -> str | None:
        """The next study to report after `after_uid` in the worklist order (wrapping round);
        None when no other study waits."""
        with self._reading("finding the next study") as conn:
            return next_unsigned(conn, after_uid, search, fts=self._fts)

    def worklist_reader(self) -> WorklistReader:
        """A read connection of its own for a worker thread (close it when done)."""
        return WorklistReader(self.path)

    def get_study(self, study_uid: str) -> StudyRecord:
        with self._reading("reading a study") as conn:
            found = _worklist.records(conn, [study_uid])
        if not found:
            raise StudyNotFoundError(study_uid)
        return found[0]

    def load_study(self, study_uid: str) -> Study:
        """Re-read the study's image files (StoreError if they moved or became unreadable)."""
        record = self.get_study(study_uid)
        present = [p for p in record.file_paths if Path(p).exists()]
        if not present:
            where = str(Path(record.file_paths[0]).parent) if record.file_paths else "?"
            raise StoreError(f"The images of this study are no longer at {where}. Re-import them from their new place.")
        studies, errors = load_studies(present)
        study = next((s for s in studies if s.study_uid == study_uid), None)
        if study is None:
            detail = errors[0].user_message if errors else "the files now hold another study"
            raise StoreError(f"The images of this study could not be read again: {detail}")
        return study

    def set_status(self, study_uid: str, status: StudyStatus, user: str = "") -> None:
        status = StudyStatus(status)  # ValueError for an unknown status
        with self._transaction("changing the study status") as conn:
            row = conn.execute("SELECT status FROM studies WHERE study_uid = ?", (study_uid,)).fetchone()
            if row is None:
                raise StudyNotFoundError(study_uid)
            if row[0] in SIGNED_STATUSES and status not in SIGNED_STATUSES:
                raise ReportSignedError(study_uid)
            if row[0] != status:
                conn.execute("UPDATE studies SET status = ?, updated_at = ? WHERE study_uid = ?",
                             (status, utc_now_iso(), study_uid))
                self._audit(conn, study_uid, user, AuditAction.STATUS_CHANGED, {"from": row[0], "to": status})
