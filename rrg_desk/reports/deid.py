"""De-identification of exports: the ONE place its rules live (Qt-free; every exporter uses it).

    from rrg_desk.reports.deid import deidentify
    document, meta = deidentify(document, meta)   # what an anonymised export may show

`deidentify` is idempotent (a meta already marked `anonymised` comes back unchanged), so an
exporter may call it whether or not its caller already did. Everything it returns is safe to
print, write to a file name, embed in a PDF or put in a DICOM header:

* patient name -> ANONYMOUS; patient ID -> a keyed pseudonym (`pseudo_id`, stable per
  installation); birth date removed; sex kept (PS3.15 Retain Patient Characteristics Option);
* Study Instance UID -> a consistent new UID (`Deidentifier.uid`: the same source UID maps to
  the same new UID in every export of this installation, so an anonymised SR still references
  the anonymised images and its own predecessors); Series/SOP UIDs of the images likewise;
* dates and times shifted back by a whole number of days, the same for every export of one
  patient (PS3.15 Retain Longitudinal Temporal Information with Modified Dates Option): study
  date, signature and addendum times; intervals between them are kept;
* accession number, Study ID, the store's report id and the signers' names removed or
  replaced (the signer becomes ANONYMOUS: PS3.15 treats verifying observers as identifying);
* every identifying value of the source study (name parts, IDs, accession, dates in the usual
  spellings) is replaced by "[removed]" in the free text of the report (findings, impression,
  clinical sections, addenda, description), so a value typed by the radiologist does not leak.

DICOM exporters add `dicom_deidentification_attributes(dataset)` (PatientIdentityRemoved,
DeidentificationMethod and its code sequence, LongitudinalTemporalInformationModified).
`identifying_values(...)` lists what must never appear in an anonymised export (tests scan
every export for it).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import logging
import os
import re
import warnings
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export.common import ANONYMOUS_NAME, Addendum, ReportMeta, pseudo_id

log = logging.getLogger(__name__)

REMOVED = "[removed]"
ANONYMOUS_SIGNER = ANONYMOUS_NAME
MIN_SHIFT_DAYS, SHIFT_RANGE_DAYS = 30, 3650  # dates move back by 30 days .. 10 years
# (0012,0063) is LO (64 characters), multi-valued
DEIDENTIFICATION_METHOD = ("RRG Desk de-identification", "PS3.15 Basic Profile, UIDs replaced consistently",
                           "Dates shifted (Modified Dates Option)", "Sex retained (Patient Characteristics)")
# PS3.16 CID 7050 De-identification Methods
DEIDENTIFICATION_CODES = (("113100", "Basic Application Confidentiality Profile"),
                          ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
                          ("113108", "Retain Patient Characteristics Option"))
# source DICOM attributes whose values identify the patient or the study (PS3.15 Table E.1-1,
# the ones a chest radiograph carries): `identifying_values` collects them from source headers
IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthDate", "PatientBirthTime",
    "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName", "IssuerOfPatientID",
    "AccessionNumber", "StudyID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "FrameOfReferenceUID", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "StudyTime",
    "SeriesTime", "AcquisitionTime", "ContentTime", "AcquisitionDateTime", "ReferringPhysicianName",
    "PerformingPhysicianName", "OperatorsName", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber", "RequestingPhysician",
    "RequestedProcedureID", "PerformedProcedureStepID", "ScheduledProcedureStepID",
)
_PERSON_NAME_KEYWORDS = ("PatientName", "OtherPatientNames", "PatientMotherBirthName", "ReferringPhysicianName",
                         "PerformingPhysicianName", "OperatorsName", "RequestingPhysician")
_MIN_TEXT_LEN = 3  # shorter values ("F", "DX", "1") would wipe ordinary words from the text


def _digest(salt: str, text: str) -> bytes:
    return hmac.new(salt.encode(), text.encode(), hashlib.sha256).digest()


class Deidentifier:
    """Keyed, deterministic replacements: `salt` is the installation secret (so nobody can
    recompute a mapping without it), `patient_key` the source patient (fixes the date shift)."""

    def __init__(self, salt: str, patient_key: str = "") -> None:
        self.salt = salt
        digest = _digest(salt, "date-shift:" + patient_key)
        self.shift_days = MIN_SHIFT_DAYS + int.from_bytes(digest[:4], "big") % SHIFT_RANGE_DAYS

    @classmethod
    def for_meta(cls, meta: ReportMeta) -> "Deidentifier":
        return cls(meta.pseudonym_salt, meta.patient.patient_id or meta.patient.name or meta.study_uid)

    def uid(self, uid: str) -> str:
        """A new UID (2.25 form, PS3.5 B.2) for `uid`, the same every time; '' stays ''."""
        if not uid:
            return ""
        return "2.25." + str(int.from_bytes(_digest(self.salt, "uid:" + uid)[:16], "big"))

    def date(self, dicom_date: str) -> str:
        """'YYYYMMDD' shifted back; anything unparsable is dropped ('')."""
        try:
            day = datetime.strptime(dicom_date.strip(), "%Y%m%d").date()
        except ValueError:
            return ""
        return (day - timedelta(days=self.shift_days)).strftime("%Y%m%d")

    def datetime(self, moment: datetime | None) -> datetime | None:
        return None if moment is None else moment - timedelta(days=self.shift_days)

    def report_id(self, report_id: str) -> str:
        return "" if not report_id else "R" + _digest(self.salt, "report:" + report_id).hex()[:10].upper()


# --- what identifies the study ---------------------------------------------------------------
def _date_spellings(value: str) -> list[str]:
    try:
        day = datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return [value]
    return [value[:8], *_spellings(day)]


def _spellings(day: date) -> list[str]:
    return [day.isoformat(), day.strftime("%d/%m/%Y"), day.strftime("%m/%d/%Y"), day.strftime("%d.%m.%Y"),
            day.strftime("%Y/%m/%d")]


def _name_spellings(value: str) -> list[str]:
    parts = [p for p in re.split(r"[\^\s,]+", value) if p]
    whole = [value, " ".join(parts), ", ".join(parts[:2])] if len(parts) > 1 else [value]
    return whole + parts


@functools.lru_cache(maxsize=64)
def _read_header(path: str, _mtime_ns: int):
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)


def source_headers(meta: ReportMeta) -> list:
    """The headers of `meta.source_files` (no pixels; cached while the files are unchanged).
    A file that cannot be read is skipped: its values are then only those `meta` holds."""
    headers = []
    for path in meta.source_files:
        try:
            headers.append(_read_header(path, os.stat(path).st_mtime_ns))
        except Exception as exc:  # noqa: BLE001 (pydicom raises many kinds on a damaged file)
            log.warning("cannot read %s for de-identification (%s)", path, exc)
    return headers


def identifying_values(meta: ReportMeta | None = None, headers: Iterable | None = None) -> list[str]:
    """Every value an anonymised export must not contain, in the spellings a report may use
    (longest first): from `meta` (patient, study UID, date, accession) and from the source DICOM
    `headers` (pydicom Datasets; default: `meta.source_files` read; the IDENTIFYING_KEYWORDS)."""
    if headers is None:
        headers = source_headers(meta) if meta is not None else []
    raw: list[tuple[str, str]] = []
    if meta is not None:
        raw += [("PatientName", meta.patient.name), ("PatientID", meta.patient.patient_id),
                ("PatientBirthDate", meta.patient.birth_date), ("StudyInstanceUID", meta.study_uid),
                ("StudyDate", meta.study_date), ("AccessionNumber", meta.accession_number)]
    for header in headers:
        for keyword in IDENTIFYING_KEYWORDS:
            value = header.get(keyword)
            if value is None:
                continue
            values = value if isinstance(value, (list, tuple)) or getattr(value, "VM", 1) > 1 else [value]
            raw += [(keyword, str(v)) for v in values]
    found: set[str] = set()
    for keyword, value in raw:
        value = value.strip()
        if not value or value == ANONYMOUS_NAME:
            continue
        if keyword.endswith("Date"):
            found.update(_date_spellings(value))
        elif keyword in _PERSON_NAME_KEYWORDS:
            found.update(_name_spellings(value))
        else:
            found.add(value)
    return sorted((v for v in found if len(v) >= _MIN_TEXT_LEN), key=lambda v: (-len(v), v))


def scrub_text(text: str, values: Iterable[str]) -> str:
    """`text` with every identifying value (case-insensitive, whole words) replaced by [removed]."""
    for value in sorted(set(values), key=len, reverse=True):
        if len(value) < _MIN_TEXT_LEN:
            continue
        pattern = r"(?<![\w.])" + re.escape(value) + r"(?![\w])"
        text = re.sub(pattern, REMOVED, text, flags=re.IGNORECASE)
    return text


# --- the one entry point ---------------------------------------------------------------------
def deidentify_meta(meta: ReportMeta) -> ReportMeta:
    """The de-identified ReportMeta (see the module docstring); unchanged when already done."""
    if meta.anonymised:
        return meta
    deid = Deidentifier.for_meta(meta)
    values = identifying_values(meta)
    from rrg_desk.imaging.types import PatientInfo

    patient = PatientInfo(name=ANONYMOUS_NAME,
                          patient_id=pseudo_id(meta.patient.patient_id or meta.study_uid, meta.pseudonym_salt),
                          birth_date="", sex=meta.patient.sex if meta.patient.sex in ("M", "F", "O") else "")
    addenda = tuple(Addendum(text=scrub_text(a.text, values), signer=ANONYMOUS_SIGNER,
                             signed_at=deid.datetime(a.signed_at)) for a in meta.addenda)
    return dataclasses.replace(
        meta, patient=patient, study_uid=deid.uid(meta.study_uid), study_date=deid.date(meta.study_date),
        accession_number="", description=scrub_text(meta.description, values),
        signer=ANONYMOUS_SIGNER if meta.signer else "", signed_at=deid.datetime(meta.signed_at),
        report_id=deid.report_id(meta.report_id), addenda=addenda, organisation="",
        anonymised=True, date_shift_days=deid.shift_days)


def deidentify_document(document: ReportDocument, meta: ReportMeta) -> ReportDocument:
    """A copy of `document` whose text holds no identifying value of `meta`'s source study."""
    values = identifying_values(meta)
    copy = ReportDocument.from_dict(document.to_dict(), draft=document.draft)
    for sentence in copy.sentences():
        sentence.text = scrub_text(sentence.text, values)
        if sentence.model_text is not None:
            sentence.model_text = scrub_text(sentence.model_text, values)
    clinical = getattr(copy, "clinical", None)  # indication / technique / comparison, when present
    if isinstance(clinical, dict):
        for name, text in list(clinical.items()):
            clinical[name] = scrub_text(str(text), values)
    copy.study_uid = Deidentifier.for_meta(meta).uid(document.study_uid)
    return copy


def deidentify(document: ReportDocument, meta: ReportMeta) -> tuple[ReportDocument, ReportMeta]:
    """What an anonymised export shows: (scrubbed document, de-identified meta). Idempotent:
    with `meta.anonymised` already True both come back unchanged."""
    if meta.anonymised:
        return document, meta
    return deidentify_document(document, meta), deidentify_meta(meta)


def prepare(document: ReportDocument, meta: ReportMeta, anonymise: bool) -> tuple[ReportDocument, ReportMeta]:
    """What every exporter calls first: `deidentify` when `anonymise`, else the inputs."""
    return deidentify(document, meta) if anonymise else (document, meta)


def dicom_deidentification_attributes(dataset) -> None:
    """Mark a de-identified DICOM dataset as PS3.15 requires (SOP Common / Patient modules)."""
    from pydicom.dataset import Dataset

    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = list(DEIDENTIFICATION_METHOD)
    codes = []
    for value, meaning in DEIDENTIFICATION_CODES:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    dataset.DeidentificationMethodCodeSequence = codes
    dataset.LongitudinalTemporalInformationModified = "MODIFIED"
