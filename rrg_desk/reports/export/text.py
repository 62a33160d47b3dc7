"""Plain-text and JSON exports of a report."""
from __future__ import annotations

import json
from pathlib import Path

from rrg_desk.imaging.dicom_values import display_date, display_name
from rrg_desk.reports.deid import prepare
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export.common import DRAFT_BANNER, SOFTWARE_NAME, ReportMeta, utc_now, write_atomic

JSON_FORMAT = "rrg-desk-report"
JSON_FORMAT_VERSION = 1


def report_text(document: ReportDocument, meta: ReportMeta) -> str:
    """The report as a radiologist reads it (also the FHIR presentedForm and the SR fallback)."""
    lines = []
    if not meta.signed:
        lines += [f"*** {DRAFT_BANNER} ***", ""]
    lines += [
        f"Patient: {display_name(meta.patient.name) or '-'}",
        f"Patient ID: {meta.patient.patient_id or '-'}",
        f"Birth date: {display_date(meta.patient.birth_date) or '-'}",
        f"Study date: {display_date(meta.study_date) or '-'}",
        f"Accession: {meta.accession_number or '-'}",
        f"Examination: {meta.description or 'Chest radiograph'}",
        "",
        "FINDINGS:",
        document.findings_text() or "-",
        "",
        "IMPRESSION:",
        document.impression_text() or "-",
        "",
    ]
    if meta.signed:
        lines.append(f"Signed by {meta.signer} on {meta.signed_at.isoformat(timespec='seconds')}")
    else:
        lines.append(f"{DRAFT_BANNER}. Drafted with the help of {SOFTWARE_NAME}.")
    for number, addendum in enumerate(meta.addenda, start=1):
        lines += ["", f"ADDENDUM {number}:", addendum.text,
                  f"Signed by {addendum.signer} on {addendum.signed_at.isoformat(timespec='seconds')}"]
    return "\n".join(lines) + "\n"


def export_txt(document: ReportDocument, meta: ReportMeta, out: str | Path, anonymise: bool = False) -> Path:
    document, meta = prepare(document, meta, anonymise)
    return write_atomic(Path(out), report_text(document, meta).encode("utf-8"))


def report_json(document: ReportDocument, meta: ReportMeta) -> dict:
    draft = document.draft
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "status": "final" if meta.signed else "draft",
        "status_text": "signed" if meta.signed else DRAFT_BANNER,
        "anonymised": meta.anonymised,
        "patient": {"name": meta.patient.name, "id": meta.patient.patient_id,
                    "birth_date": meta.patient.birth_date, "sex": meta.patient.sex},
        "study": {"study_instance_uid": meta.study_uid, "date": meta.study_date,
                  "accession_number": meta.accession_number, "description": meta.description,
                  "modality": meta.modality},
        "findings": document.findings_text(),
        "impression": document.impression_text(),
        "sentences": {section: [{"text": s.text, "origin": s.origin, "edited": s.edited,
                                 "accepted": s.accepted, "region": s.region}
                                for s in document.section(section)]
                      for section in ("findings", "impression")},
        "signature": ({"signer": meta.signer, "signed_at": meta.signed_at.isoformat(),
                       "report_id": meta.report_id} if meta.signed else None),
        "addenda": [{"text": a.text, "signer": a.signer, "signed_at": a.signed_at.isoformat()}
                    for a in meta.addenda],
        "model": ({"bundle_id": draft.bundle_id,
                   "findings": [f.to_dict() for f in draft.findings]} if draft is not None else None),
        "exported_at": utc_now().isoformat(),
    }


def export_json(document: ReportDocument, meta: ReportMeta, out: str | Path, anonymise: bool = False) -> Path:
    document, meta = prepare(document, meta, anonymise)
    payload = report_json(document, meta)
    return write_atomic(Path(out), json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8"))
