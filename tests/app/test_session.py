from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from rrg_desk.app.session import Session, SessionError, UnreviewedFlagsError
from rrg_desk.app.settings import AppSettings
from rrg_desk.paths import samples_dir
from rrg_desk.reports.draft import Sentence
from rrg_desk.reports.truthfulness import ASSERTED_BELOW, UNREVIEWED
from rrg_desk.store import Database, ReportSignedError
from tests.reports.synthetic import make_draft


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "session.sqlite3"
    with Database.open(path) as db:
        db.import_studies([samples_dir()])
        db.mark_clean_shutdown()
    return path


@pytest.fixture
def session(db_path):
    db = Database.open(db_path)
    yield Session(db, AppSettings(user_name="Dr Ada", autosave_seconds=2.0))
    db.close()


def _uid(session, name="SAMPLE^ONE"):
    return next(r.study_uid for r in session.db.list_studies() if r.patient_name == name)


def test_open_study_loads_images_and_logs(session):
    opened = session.open_study(_uid(session))
    assert len(opened.study.images) == 2 and opened.record.patient_id == "SAMPLE-0001"
    assert not opened.restored_draft and not opened.recovered and opened.message == ""
    assert session.document is None and session.needs_draft()
    assert session.db.audit_log(opened.record.study_uid)[-1].action == "opened"


def test_open_study_reuses_images_the_caller_just_read(session, monkeypatch):
    uid = _uid(session)
    already_read = session.db.load_study(uid)
    monkeypatch.setattr(session.db, "load_study", lambda _uid: pytest.fail("read the files a second time"))
    opened = session.open_study(uid, already_read)
    assert opened.study is already_read


def test_add_studies_joins_the_worklist_without_reading_files(tmp_path, monkeypatch):
    from rrg_desk.imaging import load_studies
    from rrg_desk.store import database as database_module

    studies, _ = load_studies([samples_dir() / "study2"])
    monkeypatch.setattr(database_module, "load_studies", lambda paths: pytest.fail("read the files again"))
    with Database.open(tmp_path / "w.sqlite3") as db:
        records = db.add_studies(studies)
        assert [r.study_uid for r in records] == [studies[0].study_uid]
        assert db.add_studies(studies)[0].study_uid == studies[0].study_uid  # idempotent
        assert len(db.list_studies()) == 1


def test_apply_draft_builds_the_document_and_drops_stale_results(session):
    uid = _uid(session)
    session.open_study(uid)
    assert not session.apply_draft(make_draft(_uid(session, "SAMPLE^TWO")))  # another study: dropped
    assert session.document is None
    assert session.apply_draft(make_draft(uid))
    assert session.document.findings_text() == "The heart is enlarged. The lungs are clear."
    assert not session.needs_draft() and session.db.load_model_draft(uid) is not None


def test_a_new_draft_keeps_the_radiologists_text(session):
    uid = _uid(session)
    session.open_study(uid)
    session.apply_draft(make_draft(uid))
    session.edit("findings", "My own words about the heart.")
    redraft = make_draft(uid, {"Edema": 0.9})
    session.apply_draft(redraft)
    assert session.document.findings_text() == "My own words about the heart."
    assert session.document.draft is redraft  # overlays and findings follow the new draft


def test_autosave_and_restore(session, db_path):
    uid = _uid(session)
    session.open_study(uid)
    session.apply_draft(make_draft(uid))
    session.edit("impression", "Mild cardiomegaly.")
    assert session.dirty
    assert session.autosave() and not session.dirty and not session.autosave()
    other = Database.open(db_path)  # what a restarted app would see
    assert other.load_draft(uid).impression_text() == "Mild cardiomegaly."
    other.close()
    session.open_study(_uid(session, "SAMPLE^TWO"))
    reopened = session.open_study(uid)
    assert reopened.restored_draft and not reopened.recovered
    assert session.document.impression_text() == "Mild cardiomegaly."
    assert session.document.draft is not None  # heatmaps back for the overlays


def test_reopening_reads_the_model_draft_once_and_the_document_shares_it(session, monkeypatch):
    uid = _uid(session)
    session.open_study(uid)
    session.apply_draft(make_draft(uid))
    session.edit("findings", "My own words.")
    session.autosave()
    session.open_study(_uid(session, "SAMPLE^TWO"))
    reads, load = [], session.db.load_model_draft
    monkeypatch.setattr(session.db, "load_model_draft", lambda study_uid: reads.append(study_uid) or load(study_uid))
    assert session.open_study(uid).restored_draft
    assert reads == [uid]
    assert session.draft is not None and session.document.draft is session.draft


def test_a_described_region_joins_the_findings_as_unreviewed_model_text(session):
    uid = _uid(session)
    session.open_study(uid)
    session.apply_draft(make_draft(uid))
    session.autosave()
    heat = np.ones((4, 4), np.float32)
    added = session.add_described_region(Sentence("  small nodule in the right upper zone", "right_upper_zone", heat))
    assert added.text == "Small nodule in the right upper zone." and added.unreviewed
    assert session.document.findings[-1] is added and session.dirty
    assert session.document.draft_sentence(added.id).heatmap is not None  # its heatmap stays reachable
    assert session.add_described_region(Sentence("   ", "heart")) is None
    session.sign(reviewed_flags=session.check_before_sign())
    with pytest.raises(ReportSignedError):
        session.add_described_region(Sentence("more", "heart"))


def test_recovery_after_a_crash_is_reported_once(db_path):
    db = Database.open(db_path)
    session = Session(db, AppSettings(user_name="Dr Ada"))
    uid = _uid(session)
    session.open_study(uid)
    session.edit("findings", "Unsaved thoughts.")
    session.autosave()
    db.close()  # killed: no clean shutdown
    db = Database.open(db_path)
    restarted = Session(db, AppSettings(user_name="Dr Ada"))
    assert restarted.pending_recoveries() == [uid]
    opened = restarted.open_study(uid)
    assert opened.recovered and "Recovered" in opened.message
    assert restarted.document.findings_text() == "Unsaved thoughts."
    assert restarted.db.audit_log(uid)[-1].action == "recovered"
    assert not restarted.open_study(uid).recovered
    db.close()


def test_sign_requires_every_flag_reviewed_and_logs_the_decision(session):
    uid = _uid(session)
    session.open_study(uid)
    session.apply_draft(make_draft(uid))
    session.accept_all()
    session.edit("findings", "The heart is enlarged. Small left pleural effusion. The lungs are clear.")
    flags = session.check_before_sign()
    assert [(f.kind, f.finding) for f in flags] == [(ASSERTED_BELOW, "Pleural Effusion")]
    with pytest.raises(UnreviewedFlagsError) as caught:
        session.sign(reviewed_flags=[])
    assert caught.value.flags == flags
    report = session.sign(reviewed_flags=flags)
    assert report.signer == "Dr Ada" and "pleural effusion" in report.findings_text
    assert session.is_signed and session.record.status == "signed"
    reviewed = [e for e in session.db.audit_log(uid) if e.action == "flags_reviewed"][0]
    assert reviewed.detail["flags"][0]["finding"] == "Pleural Effusion"


def test_signed_report_cannot_be_edited_only_amended(session):
    uid = _uid(session)
    session.open_study(uid)
    session.apply_draft(make_draft(uid))
    session.accept_all()
    session.sign(reviewed_flags=[])
    for change in (lambda: session.edit("findings", "Changed."), lambda: session.accept_all(),
                   lambda: session.sign(reviewed_flags=[])):
        with pytest.raises(ReportSignedError):
            change()
    session.add_addendum("Also a rib fracture.")
    assert session.record.status == "amended"
    reopened = session.open_study(uid)
    assert reopened.signed and "addendum" in reopened.message
    assert session.document.findings_text() == "The heart is enlarged. The lungs are clear."


def test_unreviewed_model_text_blocks_signing(session):
    uid = _uid(session)
    session.open_study(uid)
    session.apply_draft(make_draft(uid))
    flags = session.check_before_sign()
    assert {f.kind for f in flags} == {UNREVIEWED}
    with pytest.raises(UnreviewedFlagsError):
        session.sign()


def test_export_every_core_format_for_a_draft_and_a_signed_report(session, tmp_path):
    uid = _uid(session)
    session.open_study(uid)
    session.apply_draft(make_draft(uid))
    draft_files = session.export(["txt", "json", "fhir", "sr", "png"], tmp_path)
    assert all(p.exists() and "DRAFT" in p.name for p in draft_files.values())
    assert json.loads(draft_files["fhir"].read_text())["status"] == "preliminary"
    session.accept_all()
    session.sign(reviewed_flags=[])
    signed = session.export(["txt", "json", "fhir", "sr", "png"], tmp_path, anonymise=True, include_key_image=True)
    assert all("DRAFT" not in p.name for p in signed.values())
    text = signed["txt"].read_text()
    # PS3.15 treats the signer as identifying too: the anonymised copy names no one
    assert "SAMPLE-0001" not in text and "SAMPLE, ONE" not in text and "Dr Ada" not in text
    assert "Signed by ANONYMOUS" in text
    fhir = json.loads(signed["fhir"].read_text())
    assert fhir["status"] == "final" and [f["contentType"] for f in fhir["presentedForm"]][1] == "image/png"
    sr = pydicom.dcmread(signed["sr"])
    assert sr.VerificationFlag == "VERIFIED" and str(sr.PatientName) == "ANONYMOUS"
    exported = [e for e in session.db.audit_log(uid) if e.action == "exported"]
    assert len(exported) == 2 and exported[-1].detail["anonymise"] is True
    with pytest.raises(ValueError, match="pdf_export"):
        session.export(["pdf"], tmp_path)


def test_next_study_skips_signed_and_wraps(session):
    order = [r.study_uid for r in session.db.list_studies()]
    assert session.next_study_uid() == order[0]
    session.open_study(order[0])
    assert session.next_study_uid() == order[1]
    session.db.set_status(order[1], "signed")
    assert session.next_study_uid() == order[2]
    session.open_study(order[-1])
    assert session.next_study_uid() == order[0]


def test_editing_without_a_study_is_refused(session):
    with pytest.raises(SessionError):
        session.edit("findings", "x")


def test_a_draft_arriving_after_signing_changes_only_the_overlays(session):
    uid = _uid(session)
    session.open_study(uid)
    session.edit("findings", "The lungs are clear.")
    session.sign(reviewed_flags=session.check_before_sign())
    late = make_draft(uid)
    assert session.apply_draft(late)
    assert session.document.findings_text() == "The lungs are clear." and session.document.draft is late
