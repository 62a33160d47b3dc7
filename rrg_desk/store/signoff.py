"""Sign-off: immutable signed reports and addenda (the SQL triggers refuse UPDATE/DELETE)."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING

from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.truthfulness import Flag
from rrg_desk.store.errors import ReportSignedError, StoreError, StudyNotFoundError
from rrg_desk.store.records import (
    AuditAction, SignedHistory, SignedReport, StudyStatus, content_sha256, utc_now_iso,
)

if TYPE_CHECKING:
    from rrg_desk.imaging.types import Study
    from rrg_desk.reports.export.common import ReportMeta

_SIGNED_COLUMNS = ("id, study_uid, kind, parent_id, findings_text, impression_text, addendum_text, "
                   "document_json, signer, signed_at, sha256, flags_json")


def _signed_from_row(row: tuple) -> SignedReport:
    return SignedReport(id=row[0], study_uid=row[1], kind=row[2], parent_id=row[3], findings_text=row[4],
                        impression_text=row[5], addendum_text=row[6],
                        document=json.loads(row[7]) if row[7] else None, signer=row[8], signed_at=row[9],
                        sha256=row[10], flags_reviewed=json.loads(row[11]))


def all_signed_reports(conn: sqlite3.Connection) -> list[SignedReport]:
    """Every signed report and addendum in the store, study by study, each study's oldest first."""
    return [_signed_from_row(row) for row in
            conn.execute(f"SELECT {_SIGNED_COLUMNS} FROM signed_reports ORDER BY study_uid, id")]


class SignOffMixin:
    """Mixed into Database (store/database.py): uses its _transaction/_reading/_audit."""

    def _insert_signed(self, conn: sqlite3.Connection, study_uid: str, kind: str, parent_id: int | None,
                       findings: str, impression: str, addendum: str, document_json: str | None,
                       signer: str, flags: list[dict]) -> SignedReport:
        signed_at = utc_now_iso()
        digest = content_sha256(study_uid, kind, parent_id, findings, impression, addendum, signer, signed_at)
        cursor = conn.execute(
            f"INSERT INTO signed_reports ({_SIGNED_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (study_uid, kind, parent_id, findings, impression, addendum, document_json, signer, signed_at,
             digest, json.dumps(flags, ensure_ascii=False)))
        row = conn.execute(f"SELECT {_SIGNED_COLUMNS} FROM signed_reports WHERE id = ?",
                           (cursor.lastrowid,)).fetchone()
        return _signed_from_row(row)

    def sign(self, study_uid: str, document: ReportDocument, user: str, flags_reviewed: list[Flag]) -> SignedReport:
        """Sign the report: an immutable row, the reviewed flags and the signature in the audit
        log, status "signed", and the working draft removed (it became the signed report)."""
        if not user.strip():
            raise StoreError("Enter your name (Settings) before signing: a signed report needs a signer.")
        if document.is_empty():
            raise StoreError("The report is empty: write findings or an impression before signing.")
        flags = [flag.to_dict() for flag in flags_reviewed]
        with self._transaction("signing the report") as conn:
            if conn.execute("SELECT 1 FROM studies WHERE study_uid = ?", (study_uid,)).fetchone() is None:
                raise StudyNotFoundError(study_uid)
            if self._original(conn, study_uid) is not None:
                raise ReportSignedError(study_uid)
            self._audit(conn, study_uid, user, AuditAction.FLAGS_REVIEWED, {"count": len(flags), "flags": flags})
            report = self._insert_signed(conn, study_uid, "report", None, document.findings_text(),
                                         document.impression_text(), "", json.dumps(document.to_dict()),
                                         user, flags)
            self._audit(conn, study_uid, user, AuditAction.SIGNED, {"report_id": report.id, "sha256": report.sha256,
                                                                    "words": document.word_count()})
            conn.execute("UPDATE studies SET status = ?, updated_at = ? WHERE study_uid = ?",
                         (StudyStatus.SIGNED, report.signed_at, study_uid))
            conn.execute("DELETE FROM drafts WHERE study_uid = ?", (study_uid,))
        return report

    def add_addendum(self, study_uid: str, text: str, user: str) -> SignedReport:
        """A signed addendum to a signed report (the only way to change it)."""
        if not user.strip():
            raise StoreError("Enter your name (Settings) before signing an addendum.")
        if not text.strip():
            raise StoreError("The addendum is empty.")
        with self._transaction("signing the addendum") as conn:
            original = self._original(conn, study_uid)
            if original is None:
                raise StoreError("Only a signed report can receive an addendum; sign the report first.")
            addendum = self._insert_signed(conn, study_uid, "addendum", original, "", "", text.strip(), None,
                                           user, [])
            self._audit(conn, study_uid, user, AuditAction.ADDENDUM, {"report_id": addendum.id, "parent_id": original,
                                                                      "sha256": addendum.sha256})
            conn.execute("UPDATE studies SET status = ?, updated_at = ? WHERE study_uid = ?",
                         (StudyStatus.AMENDED, addendum.signed_at, study_uid))
        return addendum

    @staticmethod
    def _original(conn: sqlite3.Connection, study_uid: str) -> int | None:
        row = conn.execute("SELECT id FROM signed_reports WHERE study_uid = ? AND kind = 'report'",
                           (study_uid,)).fetchone()
        return row[0] if row else None

    def signed_reports(self, study_uid: str) -> list[SignedReport]:
        """The signed report then its addenda, oldest first."""
        with self._reading("reading signed reports") as conn:
            rows = conn.execute(f"SELECT {_SIGNED_COLUMNS} FROM signed_reports WHERE study_uid = ? ORDER BY id",
                                (study_uid,)).fetchall()
        return [_signed_from_row(row) for row in rows]

    def signed_history(self, study_uid: str) -> SignedHistory:
        return SignedHistory.from_rows(self.signed_reports(study_uid))

    def is_signed(self, study_uid: str) -> bool:
        with self._reading("reading signed reports") as conn:
            return self._original(conn, study_uid) is not None


def signed_report_meta(study: Study, history: SignedHistory, pseudonym_salt: str,
                       organisation: str = "") -> ReportMeta:
    """The exporters' ReportMeta of `study`: signer, time and id of the signed report and its
    addenda (an unsigned study's meta carries none, and exports as a draft)."""
    from rrg_desk.reports.export.common import Addendum, ReportMeta  # the exporters load when exporting

    original = history.original
    addenda = tuple(Addendum(text=r.addendum_text, signer=r.signer, signed_at=datetime.fromisoformat(r.signed_at))
                    for r in history.addenda)
    return ReportMeta.from_study(
        study, signer=original.signer if original else "",
        signed_at=datetime.fromisoformat(original.signed_at) if original else None,
        report_id=str(original.id) if original else "", addenda=addenda,
        pseudonym_salt=pseudonym_salt, organisation=organisation)
