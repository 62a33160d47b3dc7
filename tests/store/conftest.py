from __future__ import annotations

import pytest

from rrg_desk.paths import samples_dir
from rrg_desk.store import Database


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
