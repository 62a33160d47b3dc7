"""Worklist queries that stay fast at tens of thousands of studies: one place builds the SQL.

    WorklistQuery(search="", status=None, order_by="worklist", descending=False)
    page(conn, query, offset, limit, count=False) -> WorklistPage   # a page in query order
    records(conn, uids) -> list[StudyRecord]                         # by uid, in the order given
    next_unsigned(conn, after_uid, search) -> uid | None             # Report > Next study
    WorklistReader(path)                                              # a worker thread's own connection

The "worklist" order is the radiologist's: studies still to report first, then the newest
study first (an index, studies_worklist, holds exactly this order, so a page is an index
range). Search words must each match the patient's name or ID, the accession or the
description (a substring, case-insensitive); words of three characters or more are looked up
in the trigram index (studies_fts), shorter ones with LIKE. A study's files come by its key.

Qt-free. The Database uses these on its connection; a worker thread uses a WorklistReader,
whose own connection reads a WAL snapshot without waiting for (or holding up) the writers.
"""
from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from rrg_desk.store.errors import mapped_errors
from rrg_desk.store.records import StudyRecord, StudyStatus
from rrg_desk.store.schema import DONE_EXPR, SEARCH_COLUMNS

WORKLIST_ORDER = "worklist"
SORT_COLUMNS = {WORKLIST_ORDER: DONE_EXPR, "study_date": "study_date",
                "patient_name": "patient_name COLLATE NOCASE", "patient_id": "patient_id", "accession": "accession",
                "description": "description COLLATE NOCASE", "status": "status", "imported_at": "imported_at",
                "updated_at": "updated_at", "modality": "modality"}
STUDY_COLUMNS = ("study_uid, patient_name, patient_id, birth_date, sex, study_date, accession, "
                 "description, modality, status, imported_at, updated_at")
FTS_MIN_WORD = 3  # the trigram index cannot find a shorter word
_IN_CHUNK = 500  # uids per IN (...) list, far below SQLite's parameter limit


@dataclass(frozen=True)
class WorklistQuery:
    """What the worklist shows: a search, an optional status, an order.

    order_by "worklist" (the default) puts the studies still to report first (descending=True:
    the signed first), each group newest study first; any other SORT_COLUMNS key sorts by
    that column. Ties are broken by study uid, so pages never overlap."""

    search: str = ""
    status: StudyStatus | None = None
    order_by: str = WORKLIST_ORDER
    descending: bool = False

    def __post_init__(self) -> None:
        if self.order_by not in SORT_COLUMNS:
            raise ValueError(f"cannot sort by {self.order_by!r}; expected one of {sorted(SORT_COLUMNS)}")
        if self.status is not None:
            StudyStatus(self.status)  # ValueError for an unknown status


@dataclass(frozen=True)
class WorklistPage:
    query: WorklistQuery
    offset: int
    records: list[StudyRecord] = field(default_factory=list)
    total: int | None = None  # studies matching the query, when counted


def has_search_index(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'studies_fts'").fetchone() is not None


def _like_pattern(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def where_clause(query: WorklistQuery, fts: bool) -> tuple[str, list]:
    """('WHERE ...' or '', arguments) selecting the studies the query matches."""
    clauses: list[str] = []
    args: list = []
    words = query.search.split()
    indexed = [w for w in words if len(w) >= FTS_MIN_WORD] if fts else []
    if indexed:  # every word a quoted phrase: a substring of one column, all words AND-ed
        clauses.append("study_uid IN (SELECT study_uid FROM studies_fts WHERE studies_fts MATCH ?)")
        args.append(" AND ".join('"' + w.replace('"', '""') + '"' for w in indexed))
    for word in words:
        if word in indexed:
            continue
        clauses.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in SEARCH_COLUMNS) + ")")
        args += [_like_pattern(word)] * len(SEARCH_COLUMNS)
    if query.status is not None:
        clauses.append("status = ?")
        args.append(query.status)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def order_clause(query: WorklistQuery) -> str:
    direction = "DESC" if query.descending else "ASC"
    if query.order_by == WORKLIST_ORDER:
        return f"ORDER BY {DONE_EXPR} {direction}, study_date DESC, study_uid"
    return f"ORDER BY {SORT_COLUMNS[query.order_by]} {direction}, study_uid"


def page_sql(query: WorklistQuery, offset: int, limit: int | None, fts: bool) -> tuple[str, list]:
    where, args = where_clause(query, fts)
    sql = f"SELECT {STUDY_COLUMNS} FROM studies {where} {order_clause(query)}"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        args = [*args, int(limit), int(offset)]
    elif offset:
        sql += " LIMIT -1 OFFSET ?"
        args = [*args, int(offset)]
    return sql, args


def count_sql(query: WorklistQuery, fts: bool) -> tuple[str, list]:
    where, args = where_clause(query, fts)
    return f"SELECT COUNT(*) FROM studies {where}", args


def files(conn: sqlite3.Connection, uids: list[str]) -> dict[str, tuple[str, ...]]:
    """Each study's file paths in the order they were added (primary-key lookups only)."""
    found: dict[str, list[str]] = {uid: [] for uid in uids}
    unique = list(found)
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start:start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for uid, path in conn.execute(f"SELECT study_uid, path FROM study_files WHERE study_uid IN ({marks}) "
                                      "ORDER BY study_uid, rowid", chunk):
            found[uid].append(path)
    return {uid: tuple(paths) for uid, paths in found.items()}


def _with_files(conn: sqlite3.Connection, rows: list[tuple]) -> list[StudyRecord]:
    paths = files(conn, [r[0] for r in rows])
    return [StudyRecord(*row, file_paths=paths[row[0]]) for row in rows]


def records(conn: sqlite3.Connection, uids: list[str]) -> list[StudyRecord]:
    """The studies of `uids` in that order (a uid not in the store is left out)."""
    rows: dict[str, tuple] = {}
    unique = list(dict.fromkeys(uids))
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start:start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {STUDY_COLUMNS} FROM studies WHERE study_uid IN ({marks})", chunk):
            rows[row[0]] = row
    by_uid = {r.study_uid: r for r in _with_files(conn, list(rows.values()))}
    return [by_uid[uid] for uid in uids if uid in by_uid]


def page(conn: sqlite3.Connection, query: WorklistQuery, offset: int = 0, limit: int | None = None,
         count: bool = False, fts: bool | None = None) -> WorklistPage:
    """`limit` studies from `offset` in the query's order (all when limit is None); with
    count=True also how many studies match in all."""
    fts = has_search_index(conn) if fts is None else fts
    sql, args = page_sql(query, offset, limit, fts)
    rows = conn.execute(sql, args).fetchall()
    total = None
    if count:
        if limit is not None and offset == 0 and len(rows) < limit:
            total = len(rows)  # everything is on this page
        else:
            sql, args = count_sql(query, fts)
            total = int(conn.execute(sql, args).fetchone()[0])
    return WorklistPage(query, offset, _with_files(conn, rows), total)


def next_unsigned(conn: sqlite3.Connection, after_uid: str | None, search: str = "",
                  fts: bool | None = None) -> str | None:
    """The study to report after `after_uid` in the worklist order (the next one not signed,
    wrapping round to the first); the first one when `after_uid` is None or not among the
    matches; None when no other study waits."""
    fts = has_search_index(conn) if fts is None else fts
    where, args = where_clause(WorklistQuery(search=search), fts)
    todo = f"{DONE_EXPR} = 0"
    where = f"{where} AND {todo}" if where else f"WHERE {todo}"
    order = "ORDER BY study_date DESC, study_uid LIMIT 1"  # within the unsigned: the worklist order
    if after_uid is not None:
        row = conn.execute("SELECT study_date FROM studies WHERE study_uid = ?", (after_uid,)).fetchone()
        current_is_todo = row is not None and conn.execute(
            f"SELECT 1 FROM studies {where} AND study_uid = ?", [*args, after_uid]).fetchone() is not None
        if current_is_todo:
            following = conn.execute(
                f"SELECT study_uid FROM studies {where} AND (study_date < ? OR (study_date = ? AND study_uid > ?)) "
                f"{order}", [*args, row[0], row[0], after_uid]).fetchone()
            if following is not None:
                return following[0]
        first = conn.execute(f"SELECT study_uid FROM studies {where} AND study_uid != ? {order}",
                             [*args, after_uid]).fetchone()
        return first[0] if first is not None else None
    first = conn.execute(f"SELECT study_uid FROM studies {where} {order}", args).fetchone()
    return first[0] if first is not None else None


class WorklistReader:
    """Worklist reads on a connection of their own, for one worker thread at a time.

    In WAL mode a reader sees the last committed state and neither waits for the GUI
    thread's writes (autosave, sign-off) nor makes them wait. Errors are StoreErrors."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with mapped_errors("opening the worklist"):
            self._conn = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None,
                                         check_same_thread=False)
            try:
                self._conn.execute("PRAGMA query_only=ON")
                self._conn.execute("PRAGMA busy_timeout=5000")
                self._fts = has_search_index(self._conn)
            except BaseException:
                self._conn.close()
                raise

    def page(self, query: WorklistQuery, offset: int = 0, limit: int | None = None,
             count: bool = False) -> WorklistPage:
        with mapped_errors("reading the worklist"):
            self._conn.execute("BEGIN")  # one snapshot for the rows, their files and the count
            try:
                return page(self._conn, query, offset, limit, count, fts=self._fts)
            finally:
                if self._conn.in_transaction:  # a read transaction: ending it holds no WAL checkpoint back
                    self._conn.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> "WorklistReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
