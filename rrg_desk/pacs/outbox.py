"""The PACS outbox: reports waiting to be sent, persisted in the store's SQLite file.

The table belongs to the PACS package and is created by its own ordered migrations
(`pacs_schema_version`), next to the store's tables, without touching the store's schema.
An entry holds the exact bytes to send (the DICOM SR), so every retry sends the same
SOP instance and a PACS that already has it simply keeps one copy.

    outbox = Outbox(db)   # db: rrg_desk.store.Database (its file, its own connection)
    outbox.enqueue(...) -> OutboxEntry ; outbox.pending() ; outbox.record_attempt(...)
    outbox.statuses(uids=None) -> {study_uid: DeliveryStatus}   # sent / queued / failed + reason
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rrg_desk.pacs.errors import PacsError
from rrg_desk.store import Database, StoreError
from rrg_desk.store.records import utc_now_iso

BUSY_TIMEOUT_S = 5.0


def _v1_outbox(conn: sqlite3.Connection) -> None:
    conn.execute("""
        CREATE TABLE IF NOT EXISTS pacs_outbox (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            study_uid        TEXT NOT NULL,
            report_id        INTEGER NOT NULL,
            server_name      TEXT NOT NULL,
            kind             TEXT NOT NULL DEFAULT 'sr',
            sop_instance_uid TEXT NOT NULL,
            payload          BLOB NOT NULL,
            status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            last_error       TEXT NOT NULL DEFAULT '',
            created_at       TEXT NOT NULL,
            last_attempt_at  TEXT,
            sent_at          TEXT,
            UNIQUE (report_id, server_name, kind)
        )""")
    conn.execute("CREATE INDEX IF NOT EXISTS pacs_outbox_pending ON pacs_outbox(status, id)")


def _v2_outbox_by_study(conn: sqlite3.Connection) -> None:
    """The worklist asks for the statuses of the studies it shows: find them by study."""
    conn.execute("CREATE INDEX IF NOT EXISTS pacs_outbox_by_study ON pacs_outbox(study_uid, id)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_outbox, _v2_outbox_by_study]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply missing PACS migrations in one transaction; returns the version reached."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS pacs_schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM pacs_schema_version").fetchone()
        current = int(row[0]) if row else 0
        for migration in MIGRATIONS[current:]:
            migration(conn)
        if current < len(MIGRATIONS):
            conn.execute("DELETE FROM pacs_schema_version")
            conn.execute("INSERT INTO pacs_schema_version (version) VALUES (?)", (len(MIGRATIONS),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(current, len(MIGRATIONS))


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    study_uid: str
    report_id: int
    server_name: str
    kind: str
    sop_instance_uid: str
    payload: bytes
    status: str
    attempts: int
    last_error: str
    created_at: str
    last_attempt_at: str | None
    sent_at: str | None


_COLUMNS = ("id, study_uid, report_id, server_name, kind, sop_instance_uid, payload, status, attempts, "
            "last_error, created_at, last_attempt_at, sent_at")


class Outbox:
    def __init__(self, db: Database | str | Path) -> None:
        path = db.path if isinstance(db, Database) else Path(db)
        try:
            self._conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            migrate(self._conn)
        except sqlite3.Error as exc:
            raise PacsError(f"The PACS outbox in {path} cannot be used ({exc}).") from exc

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _sql(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise StoreError(f"The PACS outbox could not be updated ({what}): {exc}") from exc

    def enqueue(self, study_uid: str, report_id: int, server_name: str, sop_instance_uid: str, payload: bytes,
                kind: str = "sr") -> OutboxEntry:
        """Queue (idempotent: the same report for the same server is queued once)."""
        with self._sql("queueing a report") as conn:
            conn.execute("INSERT OR IGNORE INTO pacs_outbox (study_uid, report_id, server_name, kind, "
                         "sop_instance_uid, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (study_uid, report_id, server_name, kind, sop_instance_uid, payload, utc_now_iso()))
            row = conn.execute(f"SELECT {_COLUMNS} FROM pacs_outbox WHERE report_id = ? AND server_name = ? "
                               "AND kind = ?", (report_id, server_name, kind)).fetchone()
        return OutboxEntry(*row)

    def get(self, entry_id: int) -> OutboxEntry:
        with self._sql("reading the outbox") as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM pacs_outbox WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise KeyError(entry_id)
        return OutboxEntry(*row)

    def pending(self, server_name: str | None = None) -> list[OutboxEntry]:
        query = f"SELECT {_COLUMNS} FROM pacs_outbox WHERE status = 'pending'"
        args: tuple = ()
        if server_name is not None:
            query += " AND server_name = ?"
            args = (server_name,)
        with self._sql("reading the outbox") as conn:
            return [OutboxEntry(*row) for row in conn.execute(query + " ORDER BY id", args)]

    def entries(self, study_uid: str | None = None) -> list[OutboxEntry]:
        where, args = ("WHERE study_uid = ?", (study_uid,)) if study_uid else ("", ())
        with self._sql("reading the outbox") as conn:
            return [OutboxEntry(*row) for row in conn.execute(f"SELECT {_COLUMNS} FROM pacs_outbox {where} "
                                                              "ORDER BY id", args)]

    def statuses(self, study_uids: list[str] | None = None) -> dict[str, "DeliveryStatus"]:
        """Per study: sent / queued / failed (with the reason) over all its report versions;
        only the studies named when `study_uids` is given (the worklist's page: an index
        lookup each). The SR bytes are not read (entries carry an empty payload here)."""
        columns = _COLUMNS.replace("payload", "x''")
        if study_uids is None:
            with self._sql("reading the outbox") as conn:
                rows = conn.execute(f"SELECT {columns} FROM pacs_outbox ORDER BY id").fetchall()
        else:
            rows = []
            unique = list(dict.fromkeys(study_uids))
            with self._sql("reading the outbox") as conn:
                for start in range(0, len(unique), 500):
                    chunk = unique[start:start + 500]
                    rows += conn.execute(f"SELECT {columns} FROM pacs_outbox WHERE study_uid IN "
                                         f"({', '.join('?' * len(chunk))})", chunk).fetchall()
            rows.sort(key=lambda row: row[0])
        return delivery_statuses([OutboxEntry(*row) for row in rows])

    def record_attempt(self, entry_id: int, error: str = "") -> OutboxEntry:
        """Count an attempt: sent when `error` is empty, else still pending with the reason."""
        now = utc_now_iso()
        with self._sql("recording a send attempt") as conn:
            if error:
                conn.execute("UPDATE pacs_outbox SET attempts = attempts + 1, last_error = ?, last_attempt_at = ? "
                             "WHERE id = ?", (error, now, entry_id))
            else:
                conn.execute("UPDATE pacs_outbox SET attempts = attempts + 1, last_error = '', status = 'sent', "
                             "last_attempt_at = ?, sent_at = ? WHERE id = ?", (now, now, entry_id))
        return self.get(entry_id)


@dataclass(frozen=True)
class DeliveryStatus:
    """Where a study's signed report stands with the PACS (the worklist's PACS column).

    state: "sent" (every version stored), "queued" (waiting, not tried yet) or "failed" (the
    last attempt failed; still queued and retried) with the reason in `error`."""

    state: str
    server_name: str
    error: str = ""
    attempts: int = 0

    @property
    def label(self) -> str:
        if self.state == "sent":
            return "Sent"
        if self.state == "queued":
            return "Queued"
        return f"Failed: {self.error}" if self.error else "Failed"


def delivery_statuses(entries: list[OutboxEntry]) -> dict[str, DeliveryStatus]:
    """study uid -> DeliveryStatus, from the outbox entries (oldest first)."""
    by_study: dict[str, list[OutboxEntry]] = {}
    for entry in entries:
        by_study.setdefault(entry.study_uid, []).append(entry)
    statuses = {}
    for study_uid, rows in by_study.items():
        pending = [e for e in rows if e.status != "sent"]
        if not pending:
            statuses[study_uid] = DeliveryStatus("sent", rows[-1].server_name, attempts=rows[-1].attempts)
            continue
        failed = [e for e in pending if e.last_error]
        if failed:
            newest = max(failed, key=lambda e: (e.last_attempt_at or "", e.id))
            statuses[study_uid] = DeliveryStatus("failed", newest.server_name, newest.last_error, newest.attempts)
        else:
            statuses[study_uid] = DeliveryStatus("queued", pending[-1].server_name)
    return statuses
