"""DICOM Comprehensive SR of the report as TID 2000 (Basic Diagnostic Imaging Report), via highdicom.

Content tree (what `dsrdump` prints):

    CONTAINER (18748-4, LN, "Diagnostic Imaging Report")            root, TID 2000
      HAS CONCEPT MOD  CODE Language of Content Item and Descendants  (TID 1204: en-US)
      HAS OBS CONTEXT  Observer Type = Person, Person Observer Name (Family^Given),
                       Person Observer's Organization Name          (TID 1001/1002/1003)
      HAS OBS CONTEXT  Observer Type = Device, Device Observer UID/Name ("RRG Desk", the drafting aid)
      CONTAINS CONTAINER (121070, DCM, "Findings")
        CONTAINS TEXT (121071, DCM, "Finding")
          INFERRED FROM IMAGE (121080, DCM, "Best illustration of finding") per source image
      CONTAINS CONTAINER (121072, DCM, "Impressions")
        CONTAINS TEXT (121073, DCM, "Impression")
      CONTAINS CONTAINER (121078, DCM, "Addendum")                   one per signed addendum
        HAS OBS CONTEXT  the addendum's signer
        CONTAINS TEXT (121106, DCM, "Comment")

Versions: a signed report is version 1; each signed addendum makes a new version (a new SR
instance holding the report and every addendum so far) whose Predecessor Documents Sequence
references all earlier versions. The Series and SOP Instance UIDs of a signed version are
derived from the signed rows (installation secret, study, report id, signature times), so
exporting or re-sending the same version always gives the same SOP Instance UID. A draft gets
new UIDs every time. VerificationDateTime is the signature time; ContentDate/Time the newest.

Anonymised (rrg_desk.reports.deid): every UID (study, series, images, the SR's own and its
predecessors') is replaced consistently, dates are shifted, and PS3.15's PatientIdentityRemoved,
DeidentificationMethod (+ code sequence) and LongitudinalTemporalInformationModified are set;
no attribute of the source headers is copied except the images' SOP Class UIDs.
"""
from __future__ import annotations

import hashlib
import io
import logging
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from rrg_desk.imaging.types import XrayImage
from rrg_desk.reports.deid import Deidentifier, deidentify, dicom_deidentification_attributes
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export.common import DRAFT_BANNER, SOFTWARE_NAME, ExportError, ReportMeta, write_atomic

log = logging.getLogger(__name__)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SR_SERIES_NUMBER = 999
DEFAULT_ORGANISATION = "Radiology"
# the drafting aid as a device observer (fixed, so every SR names the same device)
DEVICE_OBSERVER_UID = "2.25." + str(int.from_bytes(hashlib.sha256(b"RRG Desk device").digest()[:16], "big"))
_NAME_PREFIXES = {"dr", "dr.", "prof", "prof.", "mr", "mr.", "mrs", "mrs.", "ms", "ms."}


def _uid_from(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def person_name(text: str) -> str:
    """A free-text name as a DICOM PN, Family^Given^Middle^Prefix: 'Dr Jane Q Doe' ->
    'Doe^Jane^Q^Dr'; 'Doe, Jane' -> 'Doe^Jane'; a PN stays as it is."""
    text = " ".join(text.split())
    if not text or "^" in text:
        return text
    if "," in text:
        family, _, given = text.partition(",")
        return "^".join(p for p in (family.strip(), " ".join(given.split())) if p) or text
    words = text.split(" ")
    prefix = words.pop(0) if len(words) > 1 and words[0].lower() in _NAME_PREFIXES else ""
    if len(words) == 1:
        return words[0] + (f"^^^{prefix}" if prefix else "")
    components = [words[-1], words[0], " ".join(words[1:-1]), prefix]
    return "^".join(components).rstrip("^")


def _dt(moment: datetime) -> str:
    """DICOM DT with its UTC offset (the store keeps UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.strftime("%Y%m%d%H%M%S.%f%z")


# --- versions and their UIDs -------------------------------------------------------------
def _signatures(meta: ReportMeta) -> list[datetime]:
    return [meta.signed_at, *(a.signed_at for a in meta.addenda)] if meta.signed else []


def version_uids(meta: ReportMeta) -> list[str]:
    """SOP Instance UIDs of the signed versions of `meta`'s report, oldest first (one per
    signature: the report, then each addendum). Stable: derived from the signed rows."""
    base = f"{meta.pseudonym_salt}|{meta.study_uid}|{meta.report_id}"
    moments = [m.isoformat() for m in _signatures(meta)]
    return [_uid_from("sr-instance|" + base + "|" + "|".join(moments[:n + 1])) for n in range(len(moments))]


def report_series_uid(meta: ReportMeta) -> str:
    return _uid_from(f"sr-series|{meta.pseudonym_salt}|{meta.study_uid}|{meta.report_id}")


# --- evidence ------------------------------------------------------------------------------
def _read_header(image: XrayImage) -> Dataset | None:
    if image.source_format == "DICOM" and image.source_path is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a vendor's non-conformance is not ours to raise
                return pydicom.dcmread(image.source_path, stop_before_pixels=True, force=True)
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            log.warning("cannot re-read %s for the SR (%s); using the loaded metadata", image.source_path, exc)
    return None


def _evidence(image: XrayImage, meta: ReportMeta, source_meta: ReportMeta) -> Dataset:
    """A minimal header of one source image: what highdicom needs to reference it and to fill
    the patient and study modules (from `meta`, de-identified when anonymising)."""
    source = _read_header(image)
    header = Dataset()
    fallback = str(image.source_path or id(image))
    sop_uid = str(getattr(source, "SOPInstanceUID", "") or image.sop_instance_uid or _uid_from("instance:" + fallback))
    series_uid = str(getattr(source, "SeriesInstanceUID", "") or image.series_uid
                     or _uid_from("series:" + source_meta.study_uid))
    header.SOPClassUID = str(getattr(source, "SOPClassUID", "") or SECONDARY_CAPTURE)
    if meta.anonymised:
        deid = Deidentifier(source_meta.pseudonym_salt)
        sop_uid, series_uid = deid.uid(sop_uid), deid.uid(series_uid)
    header.SOPInstanceUID, header.SeriesInstanceUID = sop_uid, series_uid
    header.StudyInstanceUID = meta.study_uid
    header.Modality = image.modality or meta.modality or "OT"
    header.PatientName = meta.patient.name
    header.PatientID = meta.patient.patient_id
    header.PatientBirthDate = meta.patient.birth_date
    header.PatientSex = meta.patient.sex if meta.patient.sex in ("M", "F", "O") else ""
    header.StudyDate = meta.study_date
    header.AccessionNumber = meta.accession_number
    if meta.anonymised or source is None:
        header.StudyTime = header.StudyID = header.ReferringPhysicianName = ""
    else:
        header.StudyTime = str(source.get("StudyTime", "") or "")
        header.StudyID = str(source.get("StudyID", "") or "")
        header.ReferringPhysicianName = source.get("ReferringPhysicianName", "") or ""
    return header


# --- content tree --------------------------------------------------------------------------
def _observer_items(name: str, organisation: str):
    from highdicom.sr import ObserverContext, PersonObserverIdentifyingAttributes
    from pydicom.sr.codedict import codes

    person = PersonObserverIdentifyingAttributes(name=person_name(name), organization_name=organisation or None)
    return list(ObserverContext(observer_type=codes.DCM.Person, observer_identifying_attributes=person))


def _device_items():
    from highdicom.sr import DeviceObserverIdentifyingAttributes, ObserverContext
    from pydicom.sr.codedict import codes

    device = DeviceObserverIdentifyingAttributes(uid=DEVICE_OBSERVER_UID, name=SOFTWARE_NAME,
                                                 manufacturer_name=SOFTWARE_NAME)
    return list(ObserverContext(observer_type=codes.cid270.Device, observer_identifying_attributes=device))


def _content(document: ReportDocument, meta: ReportMeta, evidence: list[Dataset]):
    from highdicom.sr import (CodedConcept, ContainerContentItem, ImageContentItem,
                              LanguageOfContentItemAndDescendants, RelationshipTypeValues, TextContentItem)
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    contains = RelationshipTypeValues.CONTAINS

    def text(code, value: str):
        return TextContentItem(name=code, value=value or "-", relationship_type=contains)

    def container(code, children):
        item = ContainerContentItem(name=code, relationship_type=contains)
        item.ContentSequence = children
        return item

    finding = text(codes.DCM.Finding, document.findings_text())
    finding.ContentSequence = [
        ImageContentItem(name=codes.DCM.BestIllustrationOfFinding, referenced_sop_class_uid=header.SOPClassUID,
                         referenced_sop_instance_uid=header.SOPInstanceUID,
                         relationship_type=RelationshipTypeValues.INFERRED_FROM)
        for header in evidence]
    findings = [finding]
    impression = [text(codes.DCM.Impression, document.impression_text())]
    if not meta.signed:
        impression.append(text(codes.DCM.Comment, DRAFT_BANNER))
    items = list(LanguageOfContentItemAndDescendants(
        language=CodedConcept("en-US", "RFC5646", "English (United States)")))
    if meta.signed:
        items += _observer_items(meta.signer, meta.organisation or DEFAULT_ORGANISATION)
    items += _device_items()
    items += [container(codes.DCM.Findings, findings), container(codes.DCM.Impressions, impression)]
    for addendum in meta.addenda:
        addendum_item = container(Code("121078", "DCM", "Addendum"),
                                  [*_observer_items(addendum.signer, meta.organisation or DEFAULT_ORGANISATION),
                                   text(codes.DCM.Comment, addendum.text)])
        items.append(addendum_item)
    root = ContainerContentItem(name=Code("18748-4", "LN", "Diagnostic Imaging Report"), template_id="2000")
    root.ContentSequence = items
    return root


def _predecessors(meta: ReportMeta, source_meta: ReportMeta, series_uid: str) -> list[Dataset]:
    """Earlier versions of this signed report (the report before these addenda)."""
    uids = version_uids(source_meta)[:-1]
    deid = Deidentifier(source_meta.pseudonym_salt) if meta.anonymised else None
    previous = []
    for uid in uids:
        item = Dataset()
        item.SOPClassUID, item.SOPInstanceUID = COMPREHENSIVE_SR, deid.uid(uid) if deid else uid
        item.StudyInstanceUID, item.SeriesInstanceUID = meta.study_uid, series_uid
        previous.append(item)
    return previous


def dicom_sr(document: ReportDocument, meta: ReportMeta, images: list[XrayImage], anonymise: bool = False) -> Dataset:
    """The SR dataset (not yet written); `anonymise` de-identifies it (rrg_desk.reports.deid).
    A `meta` already de-identified is refused: the SR needs the source to map its UIDs."""
    from highdicom.sr import ComprehensiveSR

    if not images:
        raise ExportError("The DICOM SR needs the study's images to reference; none are loaded.")
    if meta.anonymised:
        raise ExportError("The DICOM SR is de-identified from the source report: pass anonymise=True, "
                          "not an anonymised ReportMeta.")
    source_meta = meta
    if anonymise:
        document, meta = deidentify(document, meta)
    evidence = [_evidence(image, meta, source_meta) for image in images]
    signatures = _signatures(meta)
    if meta.signed:
        deid = Deidentifier(source_meta.pseudonym_salt) if anonymise else None
        series_uid, sop_uid = report_series_uid(source_meta), version_uids(source_meta)[-1]
        if deid is not None:
            series_uid, sop_uid = deid.uid(series_uid), deid.uid(sop_uid)
        predecessors = _predecessors(meta, source_meta, series_uid) or None
    else:
        from highdicom import UID

        series_uid, sop_uid, predecessors = str(UID()), str(UID()), None
    organisation = meta.organisation or DEFAULT_ORGANISATION
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sr = ComprehensiveSR(
                evidence=evidence, content=_content(document, meta, evidence),
                series_instance_uid=series_uid, series_number=SR_SERIES_NUMBER, sop_instance_uid=sop_uid,
                instance_number=max(1, len(signatures)), manufacturer=SOFTWARE_NAME,
                is_complete=meta.signed, is_final=meta.signed, is_verified=meta.signed,
                verifying_observer_name=person_name(meta.signer) if meta.signed else None,
                verifying_organization=organisation if meta.signed else None,
                institution_name=meta.organisation or None, previous_versions=predecessors,
                series_description="Radiology report" if meta.signed else "Radiology report (DRAFT)",
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(f"The DICOM SR could not be built: {exc}") from exc
    _set_times(sr, meta, signatures)
    if meta.signed:
        observers = []
        signers = [meta.signer, *(a.signer for a in meta.addenda)]
        for signer, moment in zip(signers, signatures):
            item = Dataset()
            item.VerifyingObserverName = person_name(signer)
            item.VerifyingObserverIdentificationCodeSequence = []
            item.VerifyingOrganization = organisation
            item.VerificationDateTime = _dt(moment)
            observers.append(item)
        sr.VerifyingObserverSequence = observers
    if meta.anonymised:
        dicom_deidentification_attributes(sr)
    # UTF-8: report text holds characters Latin-1 lacks (an em dash, "×", accented names)
    sr.SpecificCharacterSet = "ISO_IR 192"
    return sr


def _set_times(sr: Dataset, meta: ReportMeta, signatures: list[datetime]) -> None:
    """ContentDate/Time = the newest signature (export time for a draft); an anonymised SR
    keeps no real date: creation and series times are dropped, the rest shifted."""
    if signatures:
        content = signatures[-1]
    else:
        content = datetime.now(timezone.utc)
        if meta.anonymised:  # a draft's export time, shifted like the other dates
            content -= timedelta(days=meta.date_shift_days)
    sr.ContentDate, sr.ContentTime = content.strftime("%Y%m%d"), content.strftime("%H%M%S")
    if meta.anonymised:
        for keyword in ("InstanceCreationDate", "InstanceCreationTime", "SeriesDate", "SeriesTime"):
            if keyword in sr:
                delattr(sr, keyword)
    else:
        sr.SeriesDate, sr.SeriesTime = sr.ContentDate, sr.ContentTime


def sr_bytes(sr: Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, sr, enforce_file_format=True)
    return buffer.getvalue()


def export_dicom_sr(document: ReportDocument, meta: ReportMeta, images: list[XrayImage], out: str | Path,
                    anonymise: bool = False) -> Path:
    return write_atomic(Path(out), sr_bytes(dicom_sr(document, meta, images, anonymise)))


__all__ = ["dicom_sr", "export_dicom_sr", "person_name", "report_series_uid", "sr_bytes", "version_uids"]
