"""The audit log as an admin reads it: one row per entry, the same in the viewer and the CSV.

Qt-free: the audit viewer (rrg_desk/ui/audit_dialog.py) shows `audit_rows`, and "Export CSV"
writes them with `write_audit_csv` (UTF-8, one header line, the raw detail JSON kept beside a
readable summary so nothing is lost for a later tool).
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from rrg_desk.fileio import write_text_atomic
from rrg_desk.store.records import AuditAction, AuditEntry, StudyRecord

COLUMNS = ("id", "time_utc", "user", "action", "patient", "study_uid", "summary", "detail_json")
HEADERS = ("#", "Time (UTC)", "User", "Action", "Patient", "Study UID", "What", "Detail (JSON)")


def readable_time(iso: str) -> str:
    """'2026-01-05T09:03:04.123456+00:00' -> '2026-01-05 09:03:04' (unparseable text unchanged)."""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def summary(entry: AuditEntry) -> str:
    """One line saying what happened, exported files named with their format and path."""
    detail = entry.detail or {}
    if entry.action == AuditAction.EXPORTED and isinstance(detail.get("files"), list):
        files = []
        for item in detail["files"]:
            if isinstance(item, dict):
                files.append(f"{item.get('format', '?').upper()} {item.get('path', '')}")
            else:  # entries written before the format was recorded per file
                files.append(str(item))
        extra = [word for word, on in (("anonymised", detail.get("anonymise")), ("draft", detail.get("signed") is False))
                 if on]
        failed = detail.get("not_written")
        text = "; ".join(files) + (f" ({', '.join(extra)})" if extra else "")
        return text + (f"; not written: {', '.join(failed)}" if failed else "")
    if entry.action in (AuditAction.ACCEPTED, AuditAction.REJECTED):
        return f"{detail.get('region') or 'no region'}: {detail.get('text', '')}"
    if entry.action == AuditAction.IDENTITY_CONFIRMED:
        return f"was {detail['previous']}" if detail.get("previous") else "confirmed"
    parts = []
    for key, value in detail.items():
        if isinstance(value, (list, dict)):
            value = len(value) if key in ("flags", "refused_inputs") else json.dumps(value, ensure_ascii=False)
        elif isinstance(value, float):
            value = f"{value:.4g}"  # 8191, not 8190.9184160031145 (the JSON column keeps it all)
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def audit_rows(entries: Iterable[AuditEntry], studies: dict[str, StudyRecord] | None = None) -> list[tuple[str, ...]]:
    """Rows of COLUMNS (all text). `studies` (uid -> record) adds the patient's name and ID."""
    studies = studies or {}
    rows = []
    for entry in entries:
        record = studies.get(entry.study_uid or "")
        patient = f"{record.patient_name} ({record.patient_id})" if record is not None else ""
        rows.append((str(entry.id), readable_time(entry.at), entry.user, entry.action, patient,
                     entry.study_uid or "", summary(entry),
                     json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)))
    return rows


def audit_csv_text(rows: Iterable[tuple[str, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue()


def write_audit_csv(rows: Iterable[tuple[str, ...]], out: str | Path) -> Path:
    """Write the rows as CSV atomically; OSError (with the reason) when the folder refuses."""
    return write_text_atomic(out, audit_csv_text(rows), newline="")
