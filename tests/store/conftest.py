from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import pytest

from rrg_desk.paths import samples_dir
from rrg_desk.store import Database
from rrg_desk.store.schema import migrate


@contextlib.contextmanager
def store_at_version(path, version: int) -> Iterator[sqlite3.Connection]:
    """A store file as an older RRG Desk left it: its schema migrated up to `version` only; the
    caller writes that version's rows through the connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(conn, target=version) == (0, version)
        yield conn
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path):
    database = Database.open(tmp_path / "store.sqlite3")
    yield database
    database.close()


@pytest.fixture
def imported(db):
    """The four sample studies in the worklist: study_uid by patient name."""
    records, errors = db.import_studies([samples_dir()], user="tester")
    assert errors == []
    return {r.patient_name: r.study_uid for r in records}
