from __future__ import annotations

import base64
import dataclasses
import errno
import json
from datetime import datetime, timezone

import numpy as np
import pydicom
import pytest
from PIL import Image

from rrg_desk.imaging import PatientInfo, load_studies
from rrg_desk.paths import samples_dir
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export import (
    ANONYMOUS_NAME, DRAFT_BANNER, Addendum, ExportError, ReportMeta, export_annotated_png, export_dicom_sr,
    export_fhir, export_json, export_txt, pseudo_id,
)
from rrg_desk.reports.export.image import SELECTED_COLOUR
from tests.pacs.helpers import sr_texts
from tests.reports.synthetic import make_draft

SIGNED_AT = datetime(2024, 1, 6, 9, 30, tzinfo=timezone.utc)
IDENTIFIERS = ("DOE", "JANE", "PID-123", "19700101", "1970-01-01")


@pytest.fixture(scope="module")
def study():
    studies, errors = load_studies([samples_dir() / "study1"])
    assert not errors and len(studies) == 1
    return studies[0]


@pytest.fixture
def document(study):
    document = ReportDocument.from_draft(make_draft(study.study_uid))
    document.accept_all()
    return document


def _meta(study, signed=True, **kwargs):
    meta = ReportMeta.from_study(study, signer="Dr Ada Lovelace" if signed else "",
                                 signed_at=SIGNED_AT if signed else None, report_id="7" if signed else "",
                                 pseudonym_salt="secret", **kwargs)
    return dataclasses.replace(meta, patient=PatientInfo("DOE^JANE", "PID-123", "19700101", "F"))


def _export_all(document, meta, study, folder, anonymise):
    frontal = study.frontal
    return {
        "txt": export_txt(document, meta, folder / "r.txt", anonymise),
        "json": export_json(document, meta, folder / "r.json", anonymise),
        "fhir": export_fhir(document, meta, folder / "r.fhir.json", anonymise),
        "sr": export_dicom_sr(document, meta, study.images, folder / "r.sr.dcm", anonymise),
        "png": export_annotated_png(frontal, document.draft.regions, folder / "r.png", anonymise, meta),
    }


def _readable_text(path) -> str:
    """Everything an export holds that a person could read, decoded (base64 included)."""
    if path.suffix == ".dcm":
        return str(pydicom.dcmread(path))
    if path.suffix == ".png":
        return json.dumps(Image.open(path).text)
    text = path.read_text(encoding="utf-8")
    if path.name.endswith(".fhir.json"):
        data = json.loads(text)
        text += "".join(base64.b64decode(form["data"]).decode("latin-1") for form in data["presentedForm"])
    return text


def test_txt_signed_and_draft(study, document, tmp_path):
    signed = export_txt(document, _meta(study), tmp_path / "s.txt").read_text()
    assert "FINDINGS:\nThe heart is enlarged. The lungs are clear." in signed
    assert "IMPRESSION:\nCardiomegaly." in signed
    assert "Signed by Dr Ada Lovelace on 2024-01-06T09:30:00+00:00" in signed
    assert "Patient: DOE, JANE" in signed and DRAFT_BANNER not in signed
    draft = export_txt(document, _meta(study, signed=False), tmp_path / "d.txt").read_text()
    assert draft.startswith(f"*** {DRAFT_BANNER} ***") and "Signed by" not in draft


def test_txt_lists_addenda(study, document, tmp_path):
    meta = _meta(study, addenda=(Addendum("Also a rib fracture.", "Dr B", SIGNED_AT),))
    text = export_txt(document, meta, tmp_path / "a.txt").read_text()
    assert "ADDENDUM 1:\nAlso a rib fracture.\nSigned by Dr B" in text


def test_json_holds_text_provenance_and_model_findings(study, document, tmp_path):
    data = json.loads(export_json(document, _meta(study), tmp_path / "r.json").read_text())
    assert data["status"] == "final" and data["signature"]["signer"] == "Dr Ada Lovelace"
    assert data["findings"] == document.findings_text() and data["impression"] == "Cardiomegaly."
    assert data["study"]["study_instance_uid"] == study.study_uid
    assert [s["origin"] for s in data["sentences"]["findings"]] == ["model", "model"]
    assert {f["name"] for f in data["model"]["findings"]} >= {"Cardiomegaly", "No Finding"}
    draft = json.loads(export_json(document, _meta(study, signed=False), tmp_path / "d.json").read_text())
    assert draft["status"] == "draft" and draft["signature"] is None and draft["status_text"] == DRAFT_BANNER


def test_fhir_diagnostic_report_validates_and_has_the_required_parts(study, document, tmp_path):
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    path = export_fhir(document, _meta(study), tmp_path / "r.fhir.json", key_image_png=b"\x89PNG fake")
    data = json.loads(path.read_text())
    DiagnosticReport.model_validate(data)  # reads back as a valid R4 DiagnosticReport
    assert data["resourceType"] == "DiagnosticReport" and data["status"] == "final"
    assert data["code"]["coding"][0] == {"system": "http://loinc.org", "code": "18748-4",
                                         "display": "Diagnostic imaging study"}
    assert data["conclusion"] == "Cardiomegaly."
    assert data["effectiveDateTime"] == "2024-01-05"
    assert data["issued"].startswith("2024-01-06T09:30:00")
    assert data["imagingStudy"][0]["identifier"] == {"system": "urn:dicom:uid", "value": f"urn:oid:{study.study_uid}"}
    assert data["resultsInterpreter"][0]["display"] == "Dr Ada Lovelace"
    text_form, image_form = data["presentedForm"]
    assert text_form["contentType"].startswith("text/plain")
    assert "The heart is enlarged." in base64.b64decode(text_form["data"]).decode("utf-8")
    assert image_form["contentType"] == "image/png"
    patient = data["contained"][0]
    assert patient["birthDate"] == "1970-01-01" and patient["gender"] == "female"
    draft = json.loads(export_fhir(document, _meta(study, signed=False), tmp_path / "d.json").read_text())
    assert draft["status"] == "preliminary" and "resultsInterpreter" not in draft
    appended = _meta(study, addenda=(Addendum("More.", "Dr B", SIGNED_AT),))
    assert json.loads(export_fhir(document, appended, tmp_path / "a.json").read_text())["status"] == "appended"


def test_dicom_sr_reads_back_with_pydicom_and_references_the_images(study, document, tmp_path):
    ds = pydicom.dcmread(export_dicom_sr(document, _meta(study), study.images, tmp_path / "r.sr.dcm"))
    assert ds.SOPClassUID == pydicom.uid.ComprehensiveSRStorage
    assert ds.Modality == "SR" and ds.StudyInstanceUID == study.study_uid
    assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag == "VERIFIED"
    assert str(ds.VerifyingObserverSequence[0].VerifyingObserverName) == "Lovelace^Ada^^Dr"
    assert ds.VerifyingObserverSequence[0].VerificationDateTime.startswith("20240106093000")  # signed, not exported
    assert sr_texts(ds) == {"Finding": document.findings_text(), "Impression": "Cardiomegaly."}
    referenced = {(ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID)
                  for study_ref in ds.CurrentRequestedProcedureEvidenceSequence
                  for series in study_ref.ReferencedSeriesSequence for ref in series.ReferencedSOPSequence}
    expected = {(pydicom.dcmread(im.source_path, stop_before_pixels=True).SOPClassUID, im.sop_instance_uid)
                for im in study.images}
    assert referenced == expected and len(expected) == 2
    assert str(ds.PatientName) == "DOE^JANE" and ds.PatientBirthDate == "19700101"


def test_dicom_sr_of_a_draft_is_partial_and_unverified(study, document, tmp_path):
    ds = pydicom.dcmread(export_dicom_sr(document, _meta(study, signed=False), study.images, tmp_path / "d.dcm"))
    assert ds.CompletionFlag == "PARTIAL" and ds.VerificationFlag == "UNVERIFIED"
    assert sr_texts(ds)["Comment"] == DRAFT_BANNER


def test_dicom_sr_of_a_png_study_references_the_study(tmp_path, document):
    folder = tmp_path / "png-study"
    folder.mkdir()
    Image.fromarray(np.full((64, 48), 100, np.uint8)).save(folder / "frontal.png")
    (png_study,), _ = load_studies([folder])
    meta = ReportMeta.from_study(png_study)
    ds = pydicom.dcmread(export_dicom_sr(document, meta, png_study.images, tmp_path / "p.dcm"))
    assert ds.StudyInstanceUID == png_study.study_uid
    ref = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    with pytest.raises(ExportError):
        export_dicom_sr(document, meta, [], tmp_path / "none.dcm")


def test_annotated_png_draws_boxes(study, document, tmp_path):
    frontal = study.frontal
    path = export_annotated_png(frontal, document.draft.regions, tmp_path / "plain.png")
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert picture.shape == (frontal.height, frontal.width, 3)
    x0, y0, x1, y1 = (int(v) for v in document.draft.regions[0].box)  # heart, selected
    assert tuple(picture[(y0 + y1) // 2, x0]) == SELECTED_COLOUR


def test_anonymise_removes_patient_identity_from_every_format(study, document, tmp_path):
    meta = _meta(study)
    plain_dir, anon_dir = tmp_path / "plain", tmp_path / "anon"
    plain_dir.mkdir()
    anon_dir.mkdir()
    plain = _export_all(document, meta, study, plain_dir, anonymise=False)
    anonymised = _export_all(document, meta, study, anon_dir, anonymise=True)
    expected_pseudonym = pseudo_id("PID-123", "secret")
    for fmt, path in anonymised.items():
        text = _readable_text(path)
        leaked = [ident for ident in IDENTIFIERS if ident in text]
        assert leaked == [], f"{fmt} export leaks {leaked}"
        assert ANONYMOUS_NAME in text and expected_pseudonym in text, fmt
        assert "SAMPLE0001" not in text, fmt  # the accession number leads back to the patient too
    for fmt, path in plain.items():  # the check above is meaningful: without it they are there
        assert "PID-123" in _readable_text(path), fmt
    assert pydicom.dcmread(anonymised["sr"]).PatientIdentityRemoved == "YES"


def test_pseudonyms_are_stable_and_keyed():
    assert pseudo_id("PID-1", "a") == pseudo_id("PID-1", "a")
    assert pseudo_id("PID-1", "a") != pseudo_id("PID-1", "b") != pseudo_id("PID-2", "b")
    assert pseudo_id("PID-1").startswith("ANON-")


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                         (errno.EACCES, "read-only")])
def test_write_failures_become_export_errors(study, document, tmp_path, monkeypatch, code, words):
    import rrg_desk.fileio as fileio

    def failing_replace(src, dst):
        raise OSError(code, "simulated")

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(ExportError) as caught:
        export_txt(document, _meta(study), tmp_path / "r.txt")
    assert words in caught.value.user_message
    assert list(tmp_path.iterdir()) == []  # no half-written file left behind


def test_missing_folder_is_an_export_error(study, document, tmp_path):
    with pytest.raises(ExportError) as caught:
        export_json(document, _meta(study), tmp_path / "missing" / "r.json")
    assert "does not exist" in caught.value.user_message
