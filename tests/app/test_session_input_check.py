"""The session's side of the input check: the refusal is kept and audited, "draft anyway" is
audited with the reason it overrode, and nothing the radiologist typed is lost."""
from __future__ import annotations

import pytest

from rrg_desk.app.session import Session, SessionError
from rrg_desk.app.settings import AppSettings
from rrg_desk.inference.request import DraftSettings
from rrg_desk.paths import samples_dir
from rrg_desk.store import Database
from tests.reports.synthetic import make_draft

REASON = "01_pa.dcm: the DICOM header says this is an MR image, not a chest radiograph. (Modality MR)"


@pytest.fixture
def session(tmp_path):
    db = Database.open(tmp_path / "session.sqlite3")
    db.import_studies([samples_dir() / "study1"])
    yield Session(db, AppSettings(user_name="Dr Ada", beam_size=2))
    db.close()


@pytest.fixture
def uid(session):
    return session.db.list_studies()[0].study_uid


def _actions(session, uid):
    return [(entry.action, entry.detail) for entry in session.db.audit_log(uid)]


def test_a_refusal_is_kept_and_audited(session, uid):
    assert not session.note_refusal(REASON)  # no study open: nothing to note
    session.open_study(uid)
    assert session.note_refusal(REASON) and session.refusal == REASON
    assert _actions(session, uid)[-1] == ("input_refused", {"reason": REASON})


def test_draft_anyway_is_audited_and_asks_for_the_override(session, uid):
    session.open_study(uid)
    with pytest.raises(SessionError):
        session.draft_anyway()  # nothing was refused
    session.note_refusal(REASON)
    settings = session.draft_anyway()
    assert settings == DraftSettings(beam_size=2, draft_anyway=True)
    assert _actions(session, uid)[-1] == ("draft_anyway", {"reason": REASON})
    assert session.draft_request_settings() == DraftSettings(beam_size=2)


def test_drafting_anyway_keeps_the_typed_text_and_logs_the_override(session, uid):
    session.open_study(uid)
    session.edit("findings", "Typed before the refusal.")
    session.note_refusal(REASON)
    session.draft_anyway()
    draft = make_draft(uid)
    draft.settings = {"draft_anyway": True, "refused_inputs": [REASON]}
    assert session.apply_draft(draft)
    assert session.document.findings_text() == "Typed before the refusal."
    assert session.refusal is None
    drafted = [detail for action, detail in _actions(session, uid) if action == "drafted"]
    assert drafted[-1]["draft_anyway"] is True and drafted[-1]["refused_inputs"] == [REASON]


def test_opening_a_study_forgets_an_old_refusal(session, uid):
    session.open_study(uid)
    session.note_refusal(REASON)
    session.open_study(uid)
    assert session.refusal is None
    with pytest.raises(SessionError):
        session.draft_anyway()
