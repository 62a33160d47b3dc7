"""DICOM Comprehensive SR of the report (highdicom), referencing the source images.

The SR is the report a PACS can store next to the images: the findings and impression as
text items, the signer as verifying observer, and the source images' SOP Class/Instance UIDs
as evidence. Source headers are re-read from the DICOM files (no pixels) because the SR
copies patient and study attributes from them. A PNG/JPEG study has no DICOM identity: its
images are then described by Secondary Capture references derived from the file paths.
"""
from __future__ import annotations

import hashlib
import io
import logging
import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from rrg_desk.imaging.types import XrayImage
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export.common import DRAFT_BANNER, SOFTWARE_NAME, ExportError, ReportMeta, write_atomic

log = logging.getLogger(__name__)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_PATIENT_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")


def _uid_from(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _source_header(image: XrayImage, meta: ReportMeta) -> Dataset:
    if image.source_format == "DICOM" and image.source_path is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a vendor's non-conformance is not ours to raise
                return pydicom.dcmread(image.source_path, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            log.warning("cannot re-read %s for the SR (%s); using the loaded metadata", image.source_path, exc)
    header = Dataset()
    source = str(image.source_path or id(image))
    header.SOPClassUID = SECONDARY_CAPTURE
    header.SOPInstanceUID = image.sop_instance_uid or _uid_from("instance:" + source)
    header.SeriesInstanceUID = image.series_uid or _uid_from("series:" + meta.study_uid)
    header.StudyInstanceUID = meta.study_uid
    header.Modality = image.modality or meta.modality or "OT"
    header.StudyDate = meta.study_date
    header.StudyTime = ""
    header.AccessionNumber = meta.accession_number
    header.StudyID = ""
    header.ReferringPhysicianName = ""
    return header


def _set_patient(dataset: Dataset, meta: ReportMeta) -> None:
    dataset.PatientName = meta.patient.name
    dataset.PatientID = meta.patient.patient_id
    dataset.PatientBirthDate = meta.patient.birth_date
    dataset.PatientSex = meta.patient.sex if meta.patient.sex in ("M", "F", "O") else ""
    if meta.anonymised:
        dataset.AccessionNumber = ""
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = f"{SOFTWARE_NAME}: patient name, ID and birth date replaced"


def _content(document: ReportDocument, meta: ReportMeta):
    from highdicom.sr import CodedConcept, ContainerContentItem, RelationshipTypeValues, TextContentItem
    from pydicom.sr.coding import Code

    contains = RelationshipTypeValues.CONTAINS

    def text_item(code: tuple[str, str, str], value: str):
        return TextContentItem(name=CodedConcept(*code), value=value or "-", relationship_type=contains)

    items = [text_item(("121071", "DCM", "Finding"), document.findings_text()),
             text_item(("121073", "DCM", "Impression"), document.impression_text())]
    if not meta.signed:
        items.append(text_item(("121106", "DCM", "Comment"), DRAFT_BANNER))
    for number, addendum in enumerate(meta.addenda, start=1):
        items.append(text_item(("121106", "DCM", "Comment"),
                               f"ADDENDUM {number} ({addendum.signer}, "
                               f"{addendum.signed_at.isoformat(timespec='seconds')}): {addendum.text}"))
    root = ContainerContentItem(name=Code("18748-4", "LN", "Diagnostic Imaging Report"), template_id="2000")
    root.ContentSequence = items
    return root


def dicom_sr(document: ReportDocument, meta: ReportMeta, images: list[XrayImage]) -> Dataset:
    """The SR dataset (not yet written)."""
    from highdicom import UID
    from highdicom.sr import ComprehensiveSR

    if not images:
        raise ExportError("The DICOM SR needs the study's images to reference; none are loaded.")
    evidence = [_source_header(image, meta) for image in images]
    for header in evidence:
        header.StudyInstanceUID = meta.study_uid  # one study: guards against a mixed header
        for keyword in ("AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName"):
            if keyword not in header:  # often absent in real files; highdicom needs the study module
                setattr(header, keyword, "")
        _set_patient(header, meta)
    signer = meta.signer.replace(",", "^") if meta.signed else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sr = ComprehensiveSR(
                evidence=evidence, content=_content(document, meta),
                series_instance_uid=UID(), series_number=999, sop_instance_uid=UID(), instance_number=1,
                manufacturer=SOFTWARE_NAME, is_complete=meta.signed, is_final=meta.signed,
                is_verified=meta.signed, verifying_observer_name=signer,
                verifying_organization="Radiology" if meta.signed else None,
                series_description="Radiology report" if meta.signed else "Radiology report (DRAFT)",
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(f"The DICOM SR could not be built: {exc}") from exc
    _set_patient(sr, meta)
    # UTF-8: report text holds characters Latin-1 lacks (an em dash, "×", accented names)
    sr.SpecificCharacterSet = "ISO_IR 192"
    return sr


def export_dicom_sr(document: ReportDocument, meta: ReportMeta, images: list[XrayImage], out: str | Path,
                    anonymise: bool = False) -> Path:
    sr = dicom_sr(document, meta.for_export(anonymise), images)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, sr, enforce_file_format=True)
    return write_atomic(Path(out), buffer.getvalue())
