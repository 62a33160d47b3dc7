"""The store at a year's scale: the v2 -> v3 migration keeps every row, pages come in the
worklist's order without gaps or overlaps, search finds by name/ID/accession/description
(trigram index and LIKE fallback agree), the next study, add_studies' records, and the query
plans (EXPLAIN QUERY PLAN) of the lookups that must stay index ranges. Speed is measured by
bench/bench_worklist.py, never here."""
from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from rrg_desk.imaging import PatientInfo, Study, ViewPosition, XrayImage
from rrg_desk.store import SCHEMA_VERSION, Database, StoreError, WorklistQuery, WorklistReader
from rrg_desk.store.schema import schema_version
from tests.store.conftest import store_at_version
from tests.store.synthetic import synthetic_store_fixtures

STUDIES = 1_200  # 24 days at 50 a day: 150 unsigned at the top, stragglers and amended ones below
synthetic_path, store = synthetic_store_fixtures(STUDIES, audit_per_study=16)


def _reference_order(db: Database) -> list[str]:
    """The worklist order computed in Python from every row: unsigned first, newest first, uid."""
    rows = db._conn.execute("SELECT study_uid, status, study_date FROM studies").fetchall()
    newest_first = sorted(rows, key=lambda r: r[0])
    newest_first.sort(key=lambda r: r[2], reverse=True)
    newest_first.sort(key=lambda r: r[1] in ("signed", "amended"))
    return [r[0] for r in newest_first]


# --- migration ----------------------------------------------------------------------------
def _v2_database(path):
    with store_at_version(path, 2) as conn:
        for i, (name, status) in enumerate([("OLD^SIGNED", "signed"), ("MÜLLER^ANNA", "in_progress"),
                                            ("NEW^PATIENT", "new")]):
            uid = f"1.2.{i}"
            conn.execute("INSERT INTO studies (study_uid, patient_name, patient_id, study_date, accession, "
                         "description, status, imported_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 't', 't')",
                         (uid, name, f"ID-{i}", f"2024010{i + 1}", f"ACC{i}", "XR CHEST PA", status))
            for view in ("z_lateral.dcm", "a_frontal.dcm"):  # added in this order: paths come back in it
                conn.execute("INSERT INTO study_files (study_uid, path) VALUES (?, ?)", (uid, f"/d/{uid}/{view}"))
            conn.execute("INSERT INTO audit_log (at, study_uid, user, action) VALUES ('t', ?, 'dr', 'imported')",
                         (uid,))
        conn.execute("INSERT INTO signed_reports (study_uid, kind, parent_id, findings_text, signer, signed_at, "
                     "sha256) VALUES ('1.2.0', 'report', NULL, 'Clear.', 'dr', 't', 'x')")
        conn.execute("INSERT INTO signed_reports (study_uid, kind, parent_id, addendum_text, signer, signed_at, "
                     "sha256) VALUES ('1.2.0', 'addendum', 1, 'Later.', 'dr', 't', 'y')")
        conn.execute("INSERT INTO drafts VALUES ('1.2.1', '{\"study_uid\": \"1.2.1\"}', 'dr', 't', 1)")


def test_a_v2_database_migrates_to_the_scale_schema_and_keeps_its_data(tmp_path):
    path = tmp_path / "v2.sqlite3"
    _v2_database(path)
    with Database.open(path) as db:
        assert SCHEMA_VERSION >= 3
        record = db.get_study("1.2.1")
        assert (record.patient_name, record.status, record.accession) == ("MÜLLER^ANNA", "in_progress", "ACC1")
        assert record.file_paths == ("/d/1.2.1/z_lateral.dcm", "/d/1.2.1/a_frontal.dcm")
        assert [(r.kind, r.addendum_text) for r in db.signed_reports("1.2.0")] == [("report", ""), ("addendum", "Later.")]
        assert [e.action for e in db.audit_log("1.2.2")] == ["imported"]
        # rows written before the migration are in the new search index, and it stays in step
        assert [r.patient_name for r in db.list_studies("müller")] == ["MÜLLER^ANNA"]
        assert [r.study_uid for r in db.list_studies("ACC2")] == ["1.2.2"]
        assert db.next_unsigned_uid() == "1.2.2"  # newest unsigned first
        names = {row[0] for row in db._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"studies_worklist", "signed_reports_by_study", "audit_by_study"} <= names
    conn = sqlite3.connect(path)
    assert schema_version(conn) == SCHEMA_VERSION
    assert conn.execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 1
    conn.close()


def test_without_fts5_the_migration_still_applies_and_search_uses_like(tmp_path, monkeypatch):
    monkeypatch.setattr("rrg_desk.store.schema.fts5_trigram_available", lambda conn: False)
    path = tmp_path / "v2.sqlite3"
    _v2_database(path)
    with Database.open(path) as db:
        assert db._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'studies_fts'").fetchone() is None
        assert [r.patient_name for r in db.list_studies("patient")] == ["NEW^PATIENT"]
        assert db.explain(*db.audit_query("1.2.0"))  # the rest of v3 is there


# --- paging -------------------------------------------------------------------------------
def test_pages_follow_the_worklist_order_without_gaps_or_overlaps(store):
    expected = _reference_order(store)
    query = WorklistQuery()  # the worklist order: still to report first, newest first
    first = store.worklist_page(query, 0, 100, count=True)
    assert first.total == STUDIES and len(first.records) == 100
    pages = [first.records] + [store.worklist_page(query, offset, 100).records for offset in range(100, STUDIES, 100)]
    uids = [r.study_uid for page in pages for r in page]
    assert uids == expected
    statuses = [r.status for page in pages for r in page]
    boundary = statuses.index(next(s for s in statuses if s in ("signed", "amended")))
    assert all(s not in ("signed", "amended") for s in statuses[:boundary])
    assert all(s in ("signed", "amended") for s in statuses[boundary:])
    assert store.worklist_page(query, STUDIES, 100).records == []
    assert all(len(r.file_paths) == 2 for page in pages for r in page)


def test_every_sort_pages_like_the_full_list(store):
    for order_by in ("patient_name", "study_date", "accession", "status"):
        for descending in (False, True):
            query = WorklistQuery(order_by=order_by, descending=descending)
            whole = [r.study_uid for r in store.list_studies(order_by=order_by, descending=descending)]
            paged = [r.study_uid for offset in range(0, STUDIES, 250)
                     for r in store.worklist_page(query, offset, 250).records]
            assert paged == whole and len(set(paged)) == STUDIES
    names = [r.patient_name.lower() for r in store.list_studies(order_by="patient_name", descending=False)]
    assert names == sorted(names)


def test_signed_studies_leave_the_top_of_the_worklist(store):
    top = store.worklist_page(WorklistQuery(), 0, 1).records[0]
    assert top.status not in ("signed", "amended")
    store._conn.execute("UPDATE studies SET status = 'signed' WHERE study_uid = ?", (top.study_uid,))
    assert store.worklist_page(WorklistQuery(), 0, 1).records[0].study_uid != top.study_uid
    assert top.study_uid in [r.study_uid for r in store.list_studies(status="signed", order_by="worklist",
                                                                        descending=False)]


# --- search -------------------------------------------------------------------------------
def _expected(db: Database, *words: str) -> set[str]:
    rows = db._conn.execute("SELECT study_uid, patient_name, patient_id, accession, description FROM studies")
    return {r[0] for r in rows if all(any(w.lower() in (v or "").lower() for v in r[1:]) for w in words)}


def _found(db: Database, search: str) -> set[str]:
    found = [r.study_uid for r in db.list_studies(search, order_by="worklist", descending=False)]
    assert len(found) == len(set(found))
    assert db.worklist_page(WorklistQuery(search=search), 0, 10, count=True).total == len(found)
    return set(found)


@pytest.mark.parametrize("with_index", [True, False], ids=["trigram index", "LIKE fallback"])
def test_search_finds_by_name_id_accession_and_description(store, with_index):
    if not with_index:
        store._fts = False  # the fallback a SQLite without FTS5 gets
    patient = store._conn.execute("SELECT patient_id, patient_name, accession FROM studies "
                                  "ORDER BY study_uid LIMIT 1 OFFSET 500").fetchone()
    surname = patient[1].split("^")[0]
    cases = [(patient[0],), (patient[0].lower(),), (surname,), (surname.lower()[1:5],), (patient[2],),
             ("portable",), ("chest", "follow-up"), (surname, "portable"), ("ap",), ("PA",), ("%",), ("_",),
             ("nobody-has-this",), (patient[1],)]
    for words in cases:
        assert _found(store, " ".join(words)) == _expected(store, *words), words
    assert _found(store, patient[0]) and len(_found(store, patient[2])) == 1


def test_the_search_index_follows_imports_and_changes(store):
    image = XrayImage(pixels=np.zeros((4, 4), dtype="float32"), view=ViewPosition.PA)
    study = Study("9.9.9", [image], PatientInfo(name="ZEBEDEE^QUINN", patient_id="ZQ-1"), "20270101", "ZACC1",
                  "XR CHEST PA")
    (added,) = store.add_studies([study], user="dr")
    assert added.study_uid == "9.9.9" and added.patient_name == "ZEBEDEE^QUINN"
    assert [r.study_uid for r in store.list_studies("zebedee")] == ["9.9.9"]
    assert store.worklist_page(WorklistQuery(), 0, 1).records[0].study_uid == "9.9.9"  # newest, unsigned
    renamed = Study("9.9.9", [image], PatientInfo(name="YARROW^QUINN", patient_id="ZQ-1"), "20270101", "ZACC1",
                    "XR CHEST PA")
    store.add_studies([renamed])
    assert store.list_studies("zebedee") == [] and [r.study_uid for r in store.list_studies("yarrow")] == ["9.9.9"]
    store.set_status("9.9.9", "in_progress")  # a status change leaves the index alone
    assert [r.study_uid for r in store.list_studies("yarrow")] == ["9.9.9"]


def test_add_studies_returns_each_record_in_the_order_given(store):
    image = XrayImage(pixels=np.zeros((4, 4), dtype="float32"), view=ViewPosition.PA)
    known = store.list_studies(limit=1, order_by="worklist", descending=False)[0]
    studies = [Study("8.8.1", [image], PatientInfo(name="A^B")), Study(known.study_uid, [image], PatientInfo(
        name=known.patient_name, patient_id=known.patient_id), known.study_date, known.accession, known.description),
        Study("8.8.1", [image], PatientInfo(name="A^B"))]
    records = store.add_studies(studies)
    assert [r.study_uid for r in records] == ["8.8.1", known.study_uid, "8.8.1"]
    assert records[1].file_paths[:2] == known.file_paths and records[1].status == known.status
    assert store.count_studies() == STUDIES + 1


# --- next study ---------------------------------------------------------------------------
def test_next_unsigned_walks_the_worklist_order_and_wraps(store):
    todo = [uid for uid in _reference_order(store)
            if store.get_study(uid).status not in ("signed", "amended")]
    assert store.next_unsigned_uid() == todo[0]
    assert store.next_unsigned_uid(todo[0]) == todo[1]
    assert store.next_unsigned_uid(todo[-1]) == todo[0]  # wraps round
    signed = store.list_studies(status="signed", limit=1)[0].study_uid
    assert store.next_unsigned_uid(signed) == todo[0]
    patient_id = store.get_study(todo[5]).patient_id
    mine = [uid for uid in todo if store.get_study(uid).patient_id == patient_id]
    assert store.next_unsigned_uid(mine[0], search=patient_id) == (mine[1] if len(mine) > 1 else None)


# --- a reader of its own ------------------------------------------------------------------
def test_a_worklist_reader_reads_while_the_gui_connection_writes(store):
    first = store.worklist_page(WorklistQuery(), 0, 5).records
    with WorklistReader(store.path) as reader, store._transaction("a long write") as conn:
        conn.execute("UPDATE studies SET status = 'signed' WHERE study_uid = ?", (first[0].study_uid,))
        answers = []
        thread = threading.Thread(target=lambda: answers.append(reader.page(WorklistQuery(), 0, 5, count=True)))
        thread.start()
        thread.join(10)
        assert answers, "the reader waited for the writer"
        assert [r.study_uid for r in answers[0].records] == [r.study_uid for r in first]  # the committed state
    with pytest.raises(StoreError):
        reader.page(WorklistQuery(), 0, 5)  # closed


# --- query plans --------------------------------------------------------------------------
def _plan(db: Database, sql: str, args) -> str:
    return " | ".join(db.explain(sql, args))


def test_one_studys_audit_trail_is_an_index_range(store):
    uid = store.list_studies(limit=1)[0].study_uid
    for filters in ({}, {"action": "opened"}, {"user": "dr.adams"}, {"action": "signed", "user": "dr.adams"}):
        plan = _plan(store, *store.audit_query(uid, **filters))
        assert plan.startswith("SEARCH audit_log USING INDEX audit_by_study (study_uid=?)"), plan
        assert "TEMP B-TREE" not in plan, plan
    assert [e.study_uid for e in store.audit_log(uid)] == [uid] * len(store.audit_log(uid)) != []


def test_lookups_by_study_use_indexes(store):
    from rrg_desk.store import worklist

    conn = store._conn
    for sql in ("SELECT study_uid, path FROM study_files WHERE study_uid IN (?) ORDER BY study_uid, rowid",
                f"SELECT {worklist.STUDY_COLUMNS} FROM studies WHERE study_uid IN (?)",
                "SELECT id FROM signed_reports WHERE study_uid = ? ORDER BY id",
                "SELECT draft_json FROM model_drafts WHERE study_uid = ?"):
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ["x"]))
        assert plan.startswith("SEARCH") and "SCAN" not in plan, (sql, plan)
    first_page = _plan(store, *worklist.page_sql(WorklistQuery(), 0, 100, fts=True))
    assert first_page == "SCAN studies USING INDEX studies_worklist", first_page  # an index range, no sort
    searched = _plan(store, *worklist.page_sql(WorklistQuery(search="PID0000042"), 0, 100, fts=True))
    assert "VIRTUAL TABLE INDEX" in searched, searched
