from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from rrg_desk.paths import samples_dir
from rrg_desk.store import ReportSignedError, StoreError, StudyNotFoundError


def test_import_stores_patient_and_study_metadata(db, imported):
    record = db.get_study(imported["SAMPLE^ONE"])
    assert record.patient_id == "SAMPLE-0001" and record.study_date == "20240105"
    assert record.accession == "SAMPLE0001" and record.modality == "DX"
    assert record.description == "XR CHEST PA (SAMPLE, 2 IMAGES)"
    assert record.status == "new" and len(record.file_paths) == 2
    assert record.patient.patient_id == "SAMPLE-0001"
    assert [e.action for e in db.audit_log(record.study_uid)] == ["imported"]


def test_reimport_is_idempotent(db, imported):
    before = db.list_studies()
    db.set_status(imported["SAMPLE^TWO"], "in_progress")
    records, errors = db.import_studies([samples_dir(), samples_dir() / "study1"])
    assert errors == [] and len(records) == 4
    after = db.list_studies()
    assert [r.study_uid for r in after] == [r.study_uid for r in before]
    assert [r.file_paths for r in after] == [r.file_paths for r in before]
    assert db.get_study(imported["SAMPLE^TWO"]).status == "in_progress"  # status survives
    assert len(db.audit_log(action="imported")) == 4


def test_unreadable_files_are_returned_not_raised(db, tmp_path):
    (tmp_path / "junk.dcm").write_bytes(b"not an image")
    records, errors = db.import_studies([tmp_path / "junk.dcm", tmp_path / "missing.dcm"])
    assert records == [] and len(errors) == 2 and all(e.user_message for e in errors)


def test_search_and_filters(db, imported):
    assert [r.patient_name for r in db.list_studies("two")] == ["SAMPLE^TWO"]
    assert [r.patient_name for r in db.list_studies("SAMPLE-0003")] == ["SAMPLE^THREE"]
    assert {r.patient_name for r in db.list_studies("sample chest")} == set(imported)  # words AND-ed
    assert db.list_studies("nobody") == []
    assert db.list_studies("%") == [] and db.list_studies("_") == []  # wildcards are literal
    db.set_status(imported["SAMPLE^FOUR"], "in_progress")
    assert [r.patient_name for r in db.list_studies(status="in_progress")] == ["SAMPLE^FOUR"]
    with pytest.raises(ValueError):
        db.list_studies(status="done")


def test_sorting(db, imported):
    names = [r.patient_name for r in db.list_studies(order_by="patient_name", descending=False)]
    assert names == sorted(names)
    dates = [r.study_date for r in db.list_studies(order_by="study_date")]
    assert dates == sorted(dates, reverse=True)
    with pytest.raises(ValueError):
        db.list_studies(order_by="1; DROP TABLE studies")


def test_load_study_rereads_the_files(db, imported):
    study = db.load_study(imported["SAMPLE^ONE"])
    assert study.study_uid == imported["SAMPLE^ONE"] and len(study.images) == 2
    with pytest.raises(StudyNotFoundError):
        db.load_study("9.9.9")


def test_moved_files_give_a_store_error(db, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(samples_dir() / "study2", folder)
    (record,), _ = db.import_studies([folder])
    shutil.rmtree(folder)
    with pytest.raises(StoreError) as caught:
        db.load_study(record.study_uid)
    assert "no longer at" in caught.value.user_message


def test_png_folder_study(db, tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(folder / "a.png")
    (record,), _ = db.import_studies([folder])
    assert db.load_study(record.study_uid).images[0].source_format == "PNG"


def test_set_status_is_logged_and_signed_cannot_go_back(db, imported):
    uid = imported["SAMPLE^ONE"]
    db.set_status(uid, "in_progress", user="dr")
    assert db.audit_log(uid)[-1].detail == {"from": "new", "to": "in_progress"}
    db.set_status(uid, "signed")
    with pytest.raises(ReportSignedError):
        db.set_status(uid, "new")
    with pytest.raises(ValueError):
        db.set_status(uid, "finished")
