"""The printed report's words (Qt-free): human dates, page furniture, the clinical sections
prefilled from the DICOM header and kept through edits and autosave."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np

from rrg_desk.imaging import read_image
from rrg_desk.imaging.types import PatientInfo, Study, ViewPosition, XrayImage
from rrg_desk.reports.clinical import clinical_defaults, technique_text
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export.common import Addendum, ReportMeta
from rrg_desk.reports.export.printable import NOT_STATED, PrintHeader, human_date, human_datetime, printable_report
from tests.fixtures_dicom import ramp, write_dicom


def _image(view=ViewPosition.PA, **metadata) -> XrayImage:
    return XrayImage(pixels=np.zeros((8, 8), np.float32), view=view, metadata=dict(metadata))


def test_dates_read_like_dates(monkeypatch):
    assert human_date("20240105") == "5 Jan 2024" and human_date("") == "" and human_date("2024") == "2024"
    assert human_date("20241399") == "20241399"  # not a date: shown as stored, never guessed
    moment = datetime(2026, 3, 4, 9, 5, tzinfo=timezone.utc)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    assert human_datetime(moment) == "4 Mar 2026, 09:05 UTC"  # the workstation's zone, named
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    assert human_datetime(moment) == "4 Mar 2026, 10:05 CET"
    monkeypatch.undo()
    time.tzset()
    assert human_datetime(None) == ""


def test_technique_and_indication_from_the_header():
    study = Study("1.2", [_image(ViewPosition.PA, ReasonForStudy="  Cough,   fever ", KVP="125"),
                          _image(ViewPosition.LATERAL)])
    assert clinical_defaults(study) == {"indication": "Cough, fever",
                                        "technique": "Chest radiograph, PA and lateral views (125 kVp).",
                                        "comparison": ""}
    assert technique_text(Study("1.3", [_image(ViewPosition.UNKNOWN)])) == "Chest radiograph, 1 image."
    later = Study("1.4", [_image(AdditionalPatientHistory="Smoker"), _image(ReasonForTheRequestedProcedure="SOB")])
    assert clinical_defaults(later)["indication"] == "SOB"  # reason for the request before the history
    assert clinical_defaults(None)["technique"] == ""


def test_reader_keeps_the_request_fields(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", ramp(64, 64, 4000), extra={"ReasonForStudy": "Chest pain",
                                                                     "AdditionalPatientHistory": "Asthma"})
    image = read_image(path)
    assert image.metadata["ReasonForStudy"] == "Chest pain" and image.metadata["AdditionalPatientHistory"] == "Asthma"


def test_printable_report_signed_draft_and_anonymised():
    document = ReportDocument(study_uid="1.2.3")
    document.replace_section_text("findings", "The lungs are clear.")
    document.replace_section_text("impression", "Normal chest.")
    document.set_clinical_text("indication", " Cough \n for a week ")
    meta = ReportMeta(study_uid="1.2.3", patient=PatientInfo("DOE^JANE", "PID-7", "19600105", "F"),
                      study_date="20240105", accession_number="ACC9", description="XR CHEST PA",
                      signer="Dr Ada", signed_at=datetime(2024, 1, 6, 10, 0, tzinfo=timezone.utc),
                      addenda=(Addendum("Unchanged.", "Dr Bob", datetime(2024, 1, 7, 8, 0, tzinfo=timezone.utc)),))
    report = printable_report(document, meta, PrintHeader("St Elsewhere", "1 Road"))
    page = report.page
    assert (page.institution, page.address) == ("St Elsewhere", "1 Road")
    assert "DOE, JANE" in page.patient_line and "PID-7" in page.patient_line and "5 Jan 1960" in page.patient_line
    assert "5 Jan 2024" in page.study_line and "ACC9" in page.study_line and "20240105" not in page.study_line
    assert page.footer(2, 3) == "Page 2 of 3" and page.status_line.startswith("Signed by Dr Ada on 6 Jan 2024")
    assert [(s.title, s.text) for s in report.sections] == [
        ("Indication", "Cough for a week"), ("Technique", NOT_STATED), ("Comparison", NOT_STATED),
        ("Findings", "The lungs are clear."), ("Impression", "Normal chest.")]
    assert report.addenda[0].title.startswith("Addendum 1 — signed by Dr Bob on 7 Jan 2024")
    assert not report.draft and "Dr Ada" in report.signature
    anonymous = printable_report(document, meta.for_export(True)).page
    assert "DOE" not in anonymous.patient_line and "PID-7" not in anonymous.patient_line
    assert "1960" not in anonymous.patient_line and "ACC9" not in anonymous.study_line
    draft = printable_report(document, ReportMeta(study_uid="1.2.3"))
    assert draft.draft and "DRAFT" in draft.page.status_line and "not valid" in draft.signature


def test_clinical_text_survives_serialisation_even_when_cleared():
    document = ReportDocument(study_uid="1")
    document.set_clinical_text("comparison", "")
    document.set_clinical_text("indication", "Fever")
    again = ReportDocument.from_dict(document.to_dict())
    assert again.clinical == {"indication": "Fever", "comparison": ""}  # cleared stays cleared
    assert ReportDocument.from_dict({"study_uid": "1"}).clinical == {}  # documents saved before
