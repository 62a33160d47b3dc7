"""De-identification that holds: one signed study with an addendum is exported anonymised in
every format (SR, FHIR, JSON, TXT, PNG, PDF) and every export is scanned for every identifying
value of the source study (header attributes, UIDs, dates in their usual spellings), including
values the radiologist typed into the report. The PDF is rendered by the UI (Qt), read back with
pdftotext."""
from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image

from rrg_desk.app.session import Session
from rrg_desk.app.settings import AppSettings
from rrg_desk.imaging import load_studies
from rrg_desk.reports.deid import Deidentifier, identifying_values, scrub_text
from rrg_desk.reports.export import ReportMeta
from rrg_desk.store import Database
from tests.fixtures_dicom import write_dicom
from tests.reports.synthetic import make_draft

# what the source headers hold, each value distinctive so a leak cannot be a coincidence
SOURCE = {
    "PatientName": "QUIXOTE^ZEBULON^MARIA", "PatientID": "PX-771234", "PatientBirthDate": "19610314",
    "OtherPatientIDs": "MRN-88123", "AccessionNumber": "ACC99123", "StudyID": "STUDY4711",
    "StudyDate": "20230815", "SeriesDate": "20230816", "AcquisitionDate": "20230817", "ContentDate": "20230818",
    "StudyTime": "143217.125", "ReferringPhysicianName": "HOUSE^GREGORY", "InstitutionName": "Mercy Vale Clinic",
    "OperatorsName": "TECHNICIAN^TINA", "StationName": "XRAYROOM7", "DeviceSerialNumber": "SN-55512",
}
STUDY_UID = "1.2.826.0.1.3680043.8.498.4711"
PLANTED = ["QUIXOTE", "ZEBULON", "PX-771234", "19610314", "1961-03-14", "MRN-88123", "ACC99123", "STUDY4711",
           "20230815", "2023-08-15", "15/08/2023", "HOUSE", "GREGORY", "Mercy Vale Clinic", "TECHNICIAN",
           "XRAYROOM7", "SN-55512", "143217.125", STUDY_UID]


@pytest.fixture
def source_study(tmp_path):
    folder = tmp_path / "source"
    folder.mkdir()
    pixels = (np.linspace(0, 4000, 256 * 200).reshape(256, 200)).astype(np.uint16)
    for index, view in enumerate(("PA", "LL")):
        write_dicom(folder / f"{view}.dcm", pixels, bits_stored=12, view=view, study_uid=STUDY_UID,
                    sop_uid=f"{STUDY_UID}.1.{index + 1}", patient_name=SOURCE["PatientName"], modality="DX",
                    extra={**{k: v for k, v in SOURCE.items() if k != "PatientName"},
                           "SeriesInstanceUID": f"{STUDY_UID}.1", "StudyDescription": "CHEST 2 VIEWS"})
    return folder


def _readable(path) -> str:
    """All text an export holds, decoded: raw bytes, DICOM dump, PNG chunks, base64 payloads,
    PDF text."""
    data = path.read_bytes()
    parts = [data.decode("latin-1")]
    if path.suffix == ".dcm":
        parts.append(str(pydicom.dcmread(path)))
    if path.suffix == ".png":
        parts.append(json.dumps(Image.open(path).text))
    if path.suffix == ".pdf":
        parts.append(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                                    check=True).stdout)
    if path.name.endswith(".fhir.json"):
        for form in json.loads(data)["presentedForm"]:
            payload = base64.b64decode(form["data"])
            parts.append(payload.decode("latin-1"))
            if form["contentType"] == "image/png":
                parts.append(json.dumps(Image.open(io.BytesIO(payload)).text))
    return "\n".join(parts)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext missing (apt-get install poppler-utils)")
def test_every_anonymised_export_is_free_of_every_identifying_value(qtbot, source_study, tmp_path):
    from rrg_desk.ui.pdf_export import register_pdf_export

    studies, errors = load_studies([source_study])
    assert not errors and len(studies) == 1 and studies[0].study_uid == STUDY_UID
    db = Database.open(tmp_path / "desk.sqlite3")
    settings = AppSettings(user_name="Dr Ada Lovelace", institution_name="St Elsewhere Hospital")
    session = Session(db, settings)
    register_pdf_export(session)
    db.add_studies(studies, session.user)
    session.open_study(STUDY_UID, studies[0])
    session.apply_draft(make_draft(STUDY_UID))
    session.accept_all()
    # the radiologist types identifying values into the report itself
    session.edit("findings", session.document.findings_text() +
                 " Compared with the film of 15/08/2023 for Zebulon Quixote (PX-771234), accession ACC99123.")
    if hasattr(session.document, "set_clinical_text"):
        session.document.set_clinical_text("indication", "Cough. Referred by Dr House, Mercy Vale Clinic.")
    session.sign(reviewed_flags=session.check_before_sign())
    session.add_addendum("Discussed with Dr Gregory House on 2023-08-15 (STUDY4711).")
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(source_study.glob("*.dcm"))]
    values = identifying_values(session.report_meta(), headers)
    assert set(PLANTED) <= set(values)  # the module knows every planted value ...
    assert {h.SOPInstanceUID for h in headers} <= set(values)

    plain_dir, anon_dir = tmp_path / "plain", tmp_path / "anon"
    plain_dir.mkdir()
    anon_dir.mkdir()
    formats = ["sr", "fhir", "json", "txt", "png", "pdf"]
    anonymised = session.export(formats, anon_dir, anonymise=True, include_key_image=True)
    plain = session.export(formats, plain_dir, anonymise=False, include_key_image=True)
    assert sorted(anonymised) == sorted(formats)
    leaks = {fmt: [v for v in values if v.lower() in _readable(path).lower()] for fmt, path in anonymised.items()}
    assert leaks == {fmt: [] for fmt in formats}
    assert [p.name for p in anon_dir.iterdir() if any(v.lower() in p.name.lower() for v in values)] == []
    # ... and the scan is meaningful: the same exports without anonymise do hold them
    for fmt, path in plain.items():
        assert "PX-771234" in _readable(path), fmt
    text = anonymised["txt"].read_text()
    assert "Compared with the film of [removed] for [removed] [removed] ([removed])" in text
    assert "Signed by ANONYMOUS" in text
    sr = pydicom.dcmread(anonymised["sr"])
    assert sr.PatientIdentityRemoved == "YES" and sr.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    deid = Deidentifier(db.installation_secret())
    assert sr.StudyInstanceUID == deid.uid(STUDY_UID)  # consistent across formats:
    fhir = json.loads(anonymised["fhir"].read_text())
    assert fhir["imagingStudy"][0]["identifier"]["value"] == f"urn:oid:{deid.uid(STUDY_UID)}"
    assert json.loads(anonymised["json"].read_text())["study"]["study_instance_uid"] == deid.uid(STUDY_UID)
    assert Image.open(anonymised["png"]).text["StudyInstanceUID"] == deid.uid(STUDY_UID)
    db.close()


def test_dates_shift_by_one_keyed_offset_per_patient():
    a, b = Deidentifier("secret", "PID-1"), Deidentifier("secret", "PID-1")
    assert a.shift_days == b.shift_days and 30 <= a.shift_days < 30 + 3650
    assert a.date("20240105") == b.date("20240105") != "20240105"
    assert a.date("not a date") == ""
    assert a.uid("1.2.3") == b.uid("1.2.3") != Deidentifier("other", "PID-1").uid("1.2.3")
    assert a.uid("1.2.3").startswith("2.25.") and len(a.uid("1.2.3")) <= 64


def test_scrubbing_takes_whole_words_case_insensitively():
    meta = ReportMeta(study_uid="1.2.3")
    values = identifying_values(meta, [pydicom.Dataset.from_json({"00100010": {"vr": "PN", "Value": [
        {"Alphabetic": "HART^ANN"}]}})])
    assert "HART" in values and "ANN" in values
    assert scrub_text("Ann Hart: heart normal, Hartley sign absent.", values) == \
        "[removed] [removed]: heart normal, Hartley sign absent."
