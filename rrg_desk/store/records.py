"""Rows of the store as plain, immutable records, and the names their columns hold."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum

from rrg_desk.imaging.types import PatientInfo


class StudyStatus(StrEnum):
    """Where a study is in its reporting (studies.status; the values are stored)."""

    NEW = "new"
    DRAFTED = "drafted"  # the model drafted it, nobody has reviewed it yet
    IN_PROGRESS = "in_progress"  # the radiologist has accepted, edited or written something
    SIGNED = "signed"
    AMENDED = "amended"  # signed, then an addendum


# a tuple, not a set: its order is written into SQL (schema.DONE_EXPR, an index expression)
SIGNED_STATUSES = (StudyStatus.SIGNED, StudyStatus.AMENDED)


class AuditAction(StrEnum):
    """What an audit log entry records (audit_log.action; the values are stored)."""

    IMPORTED = "imported"
    OPENED = "opened"
    DRAFTED = "drafted"
    EDITED = "edited"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ACCEPTED_ALL = "accepted_all"
    FLAGS_REVIEWED = "flags_reviewed"
    SIGNED = "signed"
    ADDENDUM = "addendum"
    EXPORTED = "exported"
    RECOVERED = "recovered"
    STATUS_CHANGED = "status_changed"
    INPUT_REFUSED = "input_refused"
    DRAFT_ANYWAY = "draft_anyway"
    IDENTITY_CONFIRMED = "identity_confirmed"


@dataclass(frozen=True)
class StudyRecord:
    study_uid: str
    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    accession: str = ""
    description: str = ""
    modality: str = ""
    status: StudyStatus = StudyStatus.NEW
    imported_at: str = ""
    updated_at: str = ""
    file_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", StudyStatus(self.status))  # rows hold the plain value

    @property
    def patient(self) -> PatientInfo:
        return PatientInfo(name=self.patient_name, patient_id=self.patient_id,
                           birth_date=self.birth_date, sex=self.sex)


@dataclass(frozen=True)
class SignedReport:
    id: int
    study_uid: str
    kind: str  # "report" | "addendum"
    parent_id: int | None
    findings_text: str
    impression_text: str
    addendum_text: str
    document: dict | None  # ReportDocument.to_dict() at signing (reports only)
    signer: str
    signed_at: str  # ISO 8601, UTC
    sha256: str
    flags_reviewed: list[dict] = field(default_factory=list)

    @property
    def text(self) -> str:
        if self.kind == "addendum":
            return self.addendum_text
        return f"FINDINGS:\n{self.findings_text}\n\nIMPRESSION:\n{self.impression_text}"

    def verify(self) -> bool:
        """True when the stored content still matches its checksum."""
        return content_sha256(self.study_uid, self.kind, self.parent_id, self.findings_text,
                              self.impression_text, self.addendum_text, self.signer,
                              self.signed_at) == self.sha256


@dataclass(frozen=True)
class SignedHistory:
    """A study's signed report and the addenda that amend it, oldest first (no original: unsigned)."""

    original: SignedReport | None = None
    addenda: tuple[SignedReport, ...] = ()

    @classmethod
    def from_rows(cls, rows: Iterable[SignedReport]) -> "SignedHistory":
        rows = list(rows)
        return cls(original=next((r for r in rows if r.kind == "report"), None),
                   addenda=tuple(r for r in rows if r.kind == "addendum"))

    @property
    def versions(self) -> tuple[SignedReport, ...]:
        """The report then each addendum: every signed version, in the order they were signed."""
        return ((self.original,) if self.original else ()) + self.addenda


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str  # ISO 8601, UTC
    study_uid: str | None
    user: str
    action: str  # an AuditAction value, as stored
    detail: dict


def content_sha256(study_uid: str, kind: str, parent_id: int | None, findings_text: str,
                   impression_text: str, addendum_text: str, signer: str, signed_at: str) -> str:
    """Checksum of what was signed, by whom and when (canonical JSON, so it is reproducible)."""
    canonical = json.dumps({"study_uid": study_uid, "kind": kind, "parent_id": parent_id,
                            "findings": findings_text, "impression": impression_text,
                            "addendum": addendum_text, "signer": signer, "signed_at": signed_at},
                           sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
