"""The DICOM SR as TID 2000: tree, stable UIDs per signed version, addenda as new versions with
predecessors, de-identification, and the external validators (dciodvfy, dsrdump) when installed."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from datetime import datetime, timezone

import pydicom
import pytest

from rrg_desk.imaging import PatientInfo, load_studies
from rrg_desk.paths import samples_dir
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export import Addendum, ReportMeta, export_dicom_sr
from rrg_desk.reports.export.dicom_sr import person_name
from tests.pacs.helpers import sr_texts
from tests.reports.synthetic import make_draft

SIGNED_AT = datetime(2024, 1, 6, 9, 30, tzinfo=timezone.utc)
ADDENDUM_AT = datetime(2024, 1, 7, 11, 15, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def study():
    (study,), errors = load_studies([samples_dir() / "study1"])
    assert not errors
    return study


@pytest.fixture
def document(study):
    document = ReportDocument.from_draft(make_draft(study.study_uid))
    document.accept_all()
    return document


def _meta(study, **kwargs) -> ReportMeta:
    meta = ReportMeta.from_study(study, signer="Dr Ada Lovelace", signed_at=SIGNED_AT, report_id="7",
                                 pseudonym_salt="install-secret", organisation="St Elsewhere Hospital", **kwargs)
    return dataclasses.replace(meta, patient=PatientInfo("DOE^JANE", "PID-123", "19700101", "F"))


def _with_addendum(meta: ReportMeta) -> ReportMeta:
    return dataclasses.replace(meta, addenda=(Addendum("Small left effusion also seen.", "Grace Hopper", ADDENDUM_AT),))


def _items(dataset, relationship: str | None = None):
    return [i for i in dataset.get("ContentSequence", []) if relationship is None or i.RelationshipType == relationship]


def _concept(item) -> str:
    return item.ConceptNameCodeSequence[0].CodeMeaning


def _source_sops(study) -> set[tuple[str, str]]:
    return {(str(h.SOPClassUID), str(h.SOPInstanceUID))
            for h in (pydicom.dcmread(im.source_path, stop_before_pixels=True) for im in study.images)}


def test_tree_is_tid_2000_with_observer_containers_and_image_references(study, document, tmp_path):
    ds = pydicom.dcmread(export_dicom_sr(document, _meta(study), study.images, tmp_path / "r.dcm"))
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    context = {_concept(i): i for i in _items(ds, "HAS OBS CONTEXT")}
    assert str(context["Person Observer Name"].PersonName) == "Lovelace^Ada^^Dr"
    assert context["Person Observer's Organization Name"].TextValue == "St Elsewhere Hospital"
    assert context["Device Observer Name"].TextValue == "RRG Desk"
    assert [_concept(i) for i in _items(ds, "HAS CONCEPT MOD")] == ["Language of Content Item and Descendants"]
    containers = {_concept(i): i for i in _items(ds, "CONTAINS")}
    assert list(containers) == ["Findings", "Impressions"]
    (finding,) = _items(containers["Findings"])
    assert finding.TextValue == document.findings_text()
    images = {(i.ReferencedSOPSequence[0].ReferencedSOPClassUID, i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
              for i in _items(finding, "INFERRED FROM")}
    assert images == _source_sops(study) and len(images) == 2
    assert _items(containers["Impressions"])[0].TextValue == "Cardiomegaly."
    # verification = the signature (not the export), signer in Family^Given form
    observer = ds.VerifyingObserverSequence[0]
    assert observer.VerificationDateTime.startswith("20240106093000") and observer.VerifyingObserverName == "Lovelace^Ada^^Dr"
    assert (ds.ContentDate, ds.ContentTime) == ("20240106", "093000")
    assert "PredecessorDocumentsSequence" not in ds


def test_the_same_signed_version_keeps_its_uid_and_an_addendum_is_a_new_version(study, document, tmp_path):
    meta = _meta(study)
    first = pydicom.dcmread(export_dicom_sr(document, meta, study.images, tmp_path / "a.dcm"))
    again = pydicom.dcmread(export_dicom_sr(document, meta, study.images, tmp_path / "b.dcm"))
    assert first.SOPInstanceUID == again.SOPInstanceUID and first.SeriesInstanceUID == again.SeriesInstanceUID
    amended = pydicom.dcmread(export_dicom_sr(document, _with_addendum(meta), study.images, tmp_path / "c.dcm"))
    assert amended.SOPInstanceUID != first.SOPInstanceUID
    assert amended.SeriesInstanceUID == first.SeriesInstanceUID and amended.InstanceNumber == 2
    (predecessor_study,) = amended.PredecessorDocumentsSequence
    assert predecessor_study.StudyInstanceUID == study.study_uid
    reference = predecessor_study.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert reference.ReferencedSOPInstanceUID == first.SOPInstanceUID
    addendum = [i for i in _items(amended, "CONTAINS") if _concept(i) == "Addendum"]
    assert [t.TextValue for t in _items(addendum[0], "CONTAINS")] == ["Small left effusion also seen."]
    names = [str(o.VerifyingObserverName) for o in amended.VerifyingObserverSequence]
    assert names == ["Lovelace^Ada^^Dr", "Hopper^Grace"]
    assert amended.VerifyingObserverSequence[1].VerificationDateTime.startswith("20240107111500")
    # a draft is never the signed report: a new UID each time
    draft = dataclasses.replace(meta, signer="", signed_at=None, report_id="")
    uids = {pydicom.dcmread(export_dicom_sr(document, draft, study.images, tmp_path / f"d{n}.dcm")).SOPInstanceUID
            for n in range(2)}
    assert len(uids) == 2


def test_anonymised_sr_replaces_uids_consistently_and_says_how(study, document, tmp_path):
    meta = _with_addendum(_meta(study))
    plain = pydicom.dcmread(export_dicom_sr(document, meta, study.images, tmp_path / "p.dcm"))
    anon = pydicom.dcmread(export_dicom_sr(document, meta, study.images, tmp_path / "a.dcm", anonymise=True))
    anon_again = pydicom.dcmread(export_dicom_sr(document, meta, study.images, tmp_path / "b.dcm", anonymise=True))
    anon_v1 = pydicom.dcmread(export_dicom_sr(document, _meta(study), study.images, tmp_path / "v1.dcm", anonymise=True))
    source_uids = {study.study_uid, plain.SOPInstanceUID, plain.SeriesInstanceUID,
                   *(uid for _, uid in _source_sops(study)),
                   *(im.series_uid for im in study.images)}
    raw = (tmp_path / "a.dcm").read_bytes()
    assert [uid for uid in source_uids if uid.encode() in raw] == []
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert anon[keyword].value == anon_again[keyword].value  # consistent
    # the anonymised addendum version references the anonymised first version
    reference = anon.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert reference.ReferencedSOPInstanceUID == anon_v1.SOPInstanceUID
    referenced = {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                  for c in _items(anon, "CONTAINS") for t in _items(c) for i in _items(t, "INFERRED FROM")}
    evidence = {s.ReferencedSOPInstanceUID for st in anon.CurrentRequestedProcedureEvidenceSequence
                for se in st.ReferencedSeriesSequence for s in se.ReferencedSOPSequence}
    assert referenced == evidence and len(evidence) == 2
    assert anon.PatientIdentityRemoved == "YES" and anon.LongitudinalTemporalInformationModified == "MODIFIED"
    assert anon.DeidentificationMethod
    assert {c.CodeValue for c in anon.DeidentificationMethodCodeSequence} >= {"113100", "113107"}
    assert anon.StudyDate < plain.StudyDate and anon.StudyID == "" and anon.AccessionNumber == ""
    assert anon.ContentDate < plain.ContentDate and anon.ContentTime == plain.ContentTime  # shifted by whole days
    assert "InstanceCreationDate" not in anon
    assert sr_texts(anon)["Finding"] == document.findings_text()


@pytest.mark.parametrize("text, expected", [("Dr Jane Q Doe", "Doe^Jane^Q^Dr"), ("Doe, Jane", "Doe^Jane"),
                                            ("DOE^JANE", "DOE^JANE"), ("radiologist", "radiologist"),
                                            ("  Grace   Hopper ", "Hopper^Grace")])
def test_free_text_names_become_person_names(text, expected):
    assert person_name(text) == expected


def _exports(study, document, folder):
    meta = _meta(study)
    return {
        "normal": export_dicom_sr(document, meta, study.images, folder / "normal.dcm"),
        "anonymised": export_dicom_sr(document, meta, study.images, folder / "anonymised.dcm", anonymise=True),
        "addendum": export_dicom_sr(document, _with_addendum(meta), study.images, folder / "addendum.dcm"),
        "addendum-anonymised": export_dicom_sr(document, _with_addendum(meta), study.images,
                                               folder / "addendum-anon.dcm", anonymise=True),
        "draft": export_dicom_sr(document, dataclasses.replace(meta, signer="", signed_at=None), study.images,
                                 folder / "draft.dcm"),
    }


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy missing (apt-get install dicom3tools)")
def test_dciodvfy_finds_no_error(study, document, tmp_path):
    for name, path in _exports(study, document, tmp_path).items():
        run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        output = run.stdout + run.stderr
        assert "ComprehensiveSR" in output, output
        errors = [line for line in output.splitlines() if line.startswith("Error")]
        assert errors == [], f"{name}: {errors}"


@pytest.mark.skipif(shutil.which("dsrdump") is None, reason="dsrdump missing (apt-get install dcmtk)")
def test_dsrdump_parses_the_tree(study, document, tmp_path):
    for name, path in _exports(study, document, tmp_path).items():
        run = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert "E:" not in run.stderr, f"{name}: {run.stderr}"
        assert '<CONTAINER:(,,"Diagnostic Imaging Report")' in run.stdout
        assert '<contains CONTAINER:(,,"Findings")' in run.stdout
        assert ('<inferred from IMAGE:(,,"Best illustration of finding")' in run.stdout), name
        assert ("Predecessor Docs" in run.stdout) == name.startswith("addendum"), name
