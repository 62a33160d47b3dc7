"""What every exporter shares: report metadata, anonymisation, safe writing, ExportError."""
from __future__ import annotations

import errno
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rrg_desk.fileio import write_bytes_atomic
from rrg_desk.errors import UserFacingError
from rrg_desk.imaging.types import PatientInfo, Study

ANONYMOUS_NAME = "ANONYMOUS"
DRAFT_BANNER = "DRAFT \u2014 not signed"
SOFTWARE_NAME = "RRG Desk"


class ExportError(UserFacingError):
    """An export failed; `user_message` says why in words a radiologist can act on."""


@dataclass(frozen=True)
class Addendum:
    text: str
    signer: str
    signed_at: datetime


@dataclass(frozen=True)
class ReportMeta:
    """Who and what a report is about, and whether (and by whom) it was signed."""

    study_uid: str
    patient: PatientInfo = field(default_factory=PatientInfo)
    study_date: str = ""  # DICOM DA (YYYYMMDD)
    accession_number: str = ""
    description: str = ""
    modality: str = "DX"
    signer: str = ""
    signed_at: datetime | None = None
    report_id: str = ""  # the store's signed report id, when signed
    addenda: tuple[Addendum, ...] = ()
    pseudonym_salt: str = ""  # per-installation secret so pseudo-ids cannot be brute-forced
    organisation: str = ""  # the signer's organisation (settings), for the SR's observer context
    anonymised: bool = False
    date_shift_days: int = 0  # anonymised: how far every date was moved back (rrg_desk.reports.deid)
    source_files: tuple[str, ...] = ()  # the study's DICOM files: de-identification reads what they identify

    @property
    def signed(self) -> bool:
        return self.signed_at is not None

    @classmethod
    def from_study(cls, study: Study, **kwargs) -> "ReportMeta":
        modality = next((im.modality for im in study.images if im.modality), "DX")
        sources = tuple(str(im.source_path) for im in study.images if im.source_format == "DICOM" and im.source_path)
        return cls(study_uid=study.study_uid, patient=study.patient, study_date=study.study_date,
                   accession_number=study.accession_number, description=study.description,
                   modality=modality, source_files=sources, **kwargs)

    def anonymised_copy(self) -> "ReportMeta":
        """The de-identified copy (rules: rrg_desk.reports.deid): patient name, ID and birth
        date replaced, UIDs replaced consistently, dates shifted, accession and signers removed."""
        from rrg_desk.reports.deid import deidentify_meta

        return deidentify_meta(self)

    def for_export(self, anonymise: bool) -> "ReportMeta":
        return self.anonymised_copy() if anonymise and not self.anonymised else self


def pseudo_id(identifier: str, salt: str = "") -> str:
    """A stable pseudonym: the same patient gets the same id in every export of this install."""
    digest = hmac.new(salt.encode(), identifier.encode(), hashlib.sha256).hexdigest()
    return "ANON-" + digest[:12].upper()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def base_name(meta: ReportMeta) -> str:
    """File name stem that never contains the patient's name."""
    ident = meta.report_id or meta.study_uid.rsplit(".", 1)[-1][-12:] or "study"
    stem = f"report-{ident}"
    return stem if meta.signed else stem + "-DRAFT"


def _describe_os_error(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC or exc.errno == getattr(errno, "EDQUOT", -1):
        return f"The disk is full: {path.name} could not be written to {path.parent}. Free some space and export again."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"The folder {path.parent} is read-only or not yours: choose another folder for the export."
    if exc.errno == errno.ENOENT:
        return f"The folder {path.parent} does not exist."
    return f"{path.name} could not be written to {path.parent} ({exc.strerror or exc})."


def write_atomic(path: Path, data: bytes) -> Path:
    """Write the export whole or not at all; a failure is an ExportError worded for the reader."""
    path = Path(path)
    try:
        return write_bytes_atomic(path, data)
    except OSError as exc:
        raise ExportError(_describe_os_error(exc, path)) from exc
