"""The worklist asks the outbox for the statuses of the studies it shows: by study, through an
index, without reading the SR bytes; the answer agrees with the whole-outbox statuses."""
from __future__ import annotations

import sqlite3

from rrg_desk.pacs import Outbox
from rrg_desk.store import Database


def test_statuses_of_some_studies_match_the_whole_outbox(tmp_path):
    with Database.open(tmp_path / "w.sqlite3") as db, Outbox(db) as outbox:
        sent = outbox.enqueue("1.1", 1, "pacs", "9.1", b"SR one")
        outbox.record_attempt(sent.id)
        failed = outbox.enqueue("1.2", 2, "pacs", "9.2", b"SR two")
        outbox.record_attempt(failed.id, "connection refused")
        outbox.enqueue("1.3", 3, "pacs", "9.3", b"SR three")
        outbox.enqueue("1.1", 4, "pacs", "9.4", b"addendum")  # a newer version waits: queued again
        everything = outbox.statuses()
        assert {uid: s.state for uid, s in everything.items()} == {"1.1": "queued", "1.2": "failed", "1.3": "queued"}
        some = outbox.statuses(["1.2", "1.1", "no-such-study", "1.2"])
        assert some == {uid: everything[uid] for uid in ("1.1", "1.2")}
        assert some["1.2"].label == "Failed: connection refused"
        assert outbox.statuses([]) == {}
    conn = sqlite3.connect(tmp_path / "w.sqlite3")
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN SELECT id FROM pacs_outbox WHERE study_uid IN (?, ?)",
                                           ("1.1", "1.2"))]
    conn.close()
    assert plan and plan[0].startswith("SEARCH pacs_outbox USING") and "pacs_outbox_by_study" in plan[0], plan
