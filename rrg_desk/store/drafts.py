"""Working drafts (autosaved on every pause in typing) and the model's drafts, per study."""
from __future__ import annotations

import json
import time

from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.draft import Draft
from rrg_desk.store.errors import ReportSignedError, StudyNotFoundError
from rrg_desk.store.records import SIGNED_STATUSES, AuditAction, StudyStatus, utc_now_iso

# "edited" is audited once per study per this many seconds, not on every autosave
EDIT_AUDIT_INTERVAL_S = 300


class DraftsMixin:
    """Mixed into Database (store/database.py): uses its _transaction/_reading/_audit."""

    def save_draft(self, study_uid: str, document: ReportDocument, user: str) -> None:
        """Upsert the working copy in one transaction (about a millisecond).

        Raises ReportSignedError once the study is signed: changes go through addenda."""
        payload = json.dumps(document.to_dict(), ensure_ascii=False, separators=(",", ":"))
        status = StudyStatus.IN_PROGRESS if document.reviewed_by_radiologist() else StudyStatus.DRAFTED
        now_ns = time.time_ns()
        with self._transaction("saving the draft") as conn:
            row = conn.execute("SELECT status FROM studies WHERE study_uid = ?", (study_uid,)).fetchone()
            if row is None:
                raise StudyNotFoundError(study_uid)
            if row[0] in SIGNED_STATUSES or conn.execute(
                    "SELECT 1 FROM signed_reports WHERE study_uid = ? AND kind = 'report'", (study_uid,)).fetchone():
                raise ReportSignedError(study_uid)
            now = utc_now_iso()
            conn.execute("INSERT INTO drafts (study_uid, document_json, saved_by, saved_at, saved_at_ns) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT(study_uid) DO UPDATE SET "
                         "document_json = excluded.document_json, saved_by = excluded.saved_by, "
                         "saved_at = excluded.saved_at, saved_at_ns = excluded.saved_at_ns",
                         (study_uid, payload, user, now, now_ns))
            if row[0] != status:
                conn.execute("UPDATE studies SET status = ?, updated_at = ? WHERE study_uid = ?",
                             (status, now, study_uid))
            last = self._last_edit_audit_ns.get(study_uid, 0)
            if status == StudyStatus.IN_PROGRESS and now_ns - last > EDIT_AUDIT_INTERVAL_S * 1_000_000_000:
                self._audit(conn, study_uid, user, AuditAction.EDITED, {"words": document.word_count()})
                self._last_edit_audit_ns[study_uid] = now_ns

    def load_draft(self, study_uid: str, with_model_draft: bool = True) -> ReportDocument | None:
        """The working copy, with the model's draft (regions, heatmaps) re-attached if stored;
        `with_model_draft=False` when the caller has already read it (and attaches its own)."""
        with self._reading("reading the draft") as conn:
            row = conn.execute("SELECT document_json FROM drafts WHERE study_uid = ?", (study_uid,)).fetchone()
        if row is None:
            return None
        draft = self.load_model_draft(study_uid) if with_model_draft else None
        return ReportDocument.from_dict(json.loads(row[0]), draft=draft)

    def draft_saved_at(self, study_uid: str) -> str | None:
        with self._reading("reading the draft") as conn:
            row = conn.execute("SELECT saved_at FROM drafts WHERE study_uid = ?", (study_uid,)).fetchone()
        return row[0] if row else None

    def save_model_draft(self, study_uid: str, draft: Draft, user: str = "") -> None:
        """Keep what the model produced (regions, findings, heatmaps) for overlays and review."""
        payload = json.dumps(draft.to_dict(), separators=(",", ":"))
        with self._transaction("saving the model draft") as conn:
            row = conn.execute("SELECT status FROM studies WHERE study_uid = ?", (study_uid,)).fetchone()
            if row is None:
                raise StudyNotFoundError(study_uid)
            now = utc_now_iso()
            conn.execute("INSERT INTO model_drafts (study_uid, draft_json, bundle_id, created_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(study_uid) DO UPDATE SET draft_json = excluded.draft_json, "
                         "bundle_id = excluded.bundle_id, created_at = excluded.created_at",
                         (study_uid, payload, draft.bundle_id, now))
            if row[0] == StudyStatus.NEW:
                conn.execute("UPDATE studies SET status = ?, updated_at = ? WHERE study_uid = ?",
                             (StudyStatus.DRAFTED, now, study_uid))
            self._audit(conn, study_uid, user, AuditAction.DRAFTED,
                        {"bundle_id": draft.bundle_id, "device": draft.device,
                         "sentences": len(draft.sentences), "total_ms": draft.timings_ms.get("total"),
                         "draft_anyway": bool(draft.settings.get("draft_anyway")),
                         "refused_inputs": list(draft.settings.get("refused_inputs", []))})

    def load_model_draft(self, study_uid: str) -> Draft | None:
        with self._reading("reading the model draft") as conn:
            row = conn.execute("SELECT draft_json FROM model_drafts WHERE study_uid = ?", (study_uid,)).fetchone()
        return Draft.from_dict(json.loads(row[0])) if row else None
