"""Qt-free application state of the workstation: the open study, its draft and report.

The UI calls these methods and redraws; every rule (what a recovery is, that flags are
reviewed before signing, that a signed report is read-only, that every export is audited once)
lives here, so it is tested without a window.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from rrg_desk.app.settings import AppSettings, os_login_name
from rrg_desk.errors import UserFacingError
from rrg_desk.imaging.types import Study
from rrg_desk.inference.request import DraftSettings
from rrg_desk.reports.clinical import clinical_defaults
from rrg_desk.reports.document import (
    CLINICAL_SECTIONS, ReportDocument, ReportSentence, normalise_model_sentence,
)
from rrg_desk.reports.draft import Draft, Sentence, SentenceOrigin
from rrg_desk.reports.export import ReportMeta, base_name
from rrg_desk.reports.export.printable import PrintHeader
from rrg_desk.reports.export.registry import Exporter, ExporterRegistry, ExportJob, key_image_png
from rrg_desk.reports.truthfulness import Flag, check_report, unreviewed_flags
from rrg_desk.store import AuditAction, Database, ReportSignedError, SignedReport, StoreError, StudyRecord
from rrg_desk.store.records import SignedHistory
from rrg_desk.store.signoff import signed_report_meta

log = logging.getLogger(__name__)


class SessionError(UserFacingError):
    """A request that does not fit the session's state; `user_message` is for the UI."""


class UnreviewedFlagsError(SessionError):
    def __init__(self, flags: list[Flag]) -> None:
        super().__init__(f"{len(flags)} truthfulness flag(s) must be reviewed before signing.")
        self.flags = flags


@dataclass(frozen=True)
class OpenedStudy:
    record: StudyRecord
    study: Study
    restored_draft: bool  # a working draft was loaded from the database
    recovered: bool  # ... and it was unsaved work from a session that crashed or was killed
    signed: bool

    @property
    def message(self) -> str:
        if self.recovered:
            return "Recovered the unsaved draft of this study from the last session (the app did not close normally)."
        if self.signed:
            return "This report is signed; changes need an addendum."
        return "Restored your working draft." if self.restored_draft else ""


class Session:
    def __init__(self, db: Database, settings: AppSettings) -> None:
        self.db = db
        self.settings = settings
        self.record: StudyRecord | None = None
        self.study: Study | None = None
        self.draft: Draft | None = None
        self.document: ReportDocument | None = None
        self.refusal: str | None = None  # why the input check refused to draft the open study
        self.exporters = ExporterRegistry.with_core_formats()  # the UI registers PDF (register_exporter)
        self._pending_recovery = set(db.unsaved_recovery())
        self._dirty_since: float | None = None  # monotonic time of the first unsaved edit

    # --- properties ---------------------------------------------------------------------
    @property
    def user(self) -> str:
        """Who acts: the settings' name (the OS login name until confirmed); never empty."""
        return self.settings.user_name.strip() or os_login_name()

    @property
    def identity_confirmed(self) -> bool:
        return bool(self.settings.identity_confirmed)

    def confirm_identity(self, name: str) -> str:
        """The radiologist confirms (or changes) who they are, once: every later audit entry
        and signature carries this name. Audited, with the name used before."""
        name = " ".join(name.split())
        if not name:
            raise SessionError("Enter your name: every audit entry and signature carries it.")
        previous = self.user
        self.settings.user_name, self.settings.identity_confirmed = name, True
        self.db.audit(None, name, AuditAction.IDENTITY_CONFIRMED, {"previous": previous} if previous != name else {})
        return name

    @property
    def study_uid(self) -> str | None:
        return self.record.study_uid if self.record else None

    @property
    def is_signed(self) -> bool:
        return self.record is not None and self.db.is_signed(self.record.study_uid)

    @property
    def dirty(self) -> bool:
        return self._dirty_since is not None

    def pending_recoveries(self) -> list[str]:
        """Studies with recovered drafts not opened yet (the UI may offer to open them)."""
        return sorted(self._pending_recovery)

    # --- opening ------------------------------------------------------------------------
    def open_study(self, study_uid: str, study: Study | None = None) -> OpenedStudy:
        """Load the study's images (unless the caller just read them) and its working draft (or
        signed report), log "opened"."""
        if self.dirty:
            self.autosave()
        already_open = self.record is not None and self.record.study_uid == study_uid
        record = self.db.get_study(study_uid)
        if study is None or study.study_uid != study_uid:
            study = self.db.load_study(study_uid)
        self.record, self.study = record, study
        self.refusal = None
        self.draft = self.db.load_model_draft(study_uid)  # once: the documents below share it
        original = self.db.signed_history(study_uid).original
        document = None
        if original is not None and original.document is not None:
            document = ReportDocument.from_dict(original.document, draft=self.draft)
        restored = False
        if document is None:
            document = self.db.load_draft(study_uid, with_model_draft=False)
            restored = document is not None
            if restored:
                document.draft = self.draft
        if document is None and self.draft is not None:
            document = ReportDocument.from_draft(self.draft)
        self.document = document
        if original is None:
            self._prefill_clinical()
        self._dirty_since = None
        recovered = restored and study_uid in self._pending_recovery
        self._pending_recovery.discard(study_uid)
        if not already_open:  # showing the open study again (worklist, loader, recovery) is no new action
            self.db.audit(study_uid, self.user, AuditAction.OPENED, {"restored_draft": restored})
        if recovered:
            self.db.audit(study_uid, self.user, AuditAction.RECOVERED, {"saved_at": self.db.draft_saved_at(study_uid)})
        return OpenedStudy(record, study, restored, recovered, original is not None)

    def needs_draft(self) -> bool:
        """Auto-draft rule: a study with no model draft, not signed, when auto_draft is on."""
        return (self.settings.auto_draft and self.record is not None and self.draft is None
                and not self.is_signed)

    # --- the model's draft --------------------------------------------------------------
    def apply_draft(self, draft: Draft) -> bool:
        """Take a finished draft. False (dropped) when it is for a study no longer open.

        The radiologist's text wins: if they already wrote or reviewed something, their
        document is kept and only the overlays and findings (the Draft) are updated."""
        if self.record is None or draft.study_uid != self.record.study_uid:
            log.info("dropped a draft for study %s (not the open study)", draft.study_uid)
            return False
        self.db.save_model_draft(draft.study_uid, draft, self.user)
        self.draft = draft
        self.refusal = None
        if self.is_signed:  # the signed text never changes; only the overlays follow the draft
            if self.document is not None:
                self.document.draft = draft
            return True
        keep_text = (self.document is not None and not self.document.is_empty()
                     and self.document.reviewed_by_radiologist())
        if keep_text:
            self.document.draft = draft
        else:
            clinical = dict(self.document.clinical) if self.document is not None else {}
            self.document = ReportDocument.from_draft(draft)
            self.document.clinical.update(clinical)  # what the radiologist typed there stays
            self._prefill_clinical()
            self._mark_dirty()
        return True

    # --- the input check ("is this a chest radiograph?") -----------------------------------
    def draft_request_settings(self, draft_anyway: bool = False) -> DraftSettings:
        """The settings a draft (or describe-a-region) request carries; torch-free, so the GUI
        thread builds it."""
        return self.settings.draft_settings(draft_anyway=draft_anyway)

    def note_refusal(self, message: str) -> bool:
        """The input check refused to draft the open study: keep the reason (the UI offers
        "Draft anyway") and audit that the radiologist was told. False if no study is open."""
        if self.record is None:
            return False
        self.refusal = message
        self.db.audit(self.record.study_uid, self.user, AuditAction.INPUT_REFUSED, {"reason": message})
        return True

    def draft_anyway(self) -> DraftSettings:
        """The radiologist overrides the refusal: audited with the reason they overrode; returns
        the request settings. The report text is untouched (apply_draft keeps typed text)."""
        if self.record is None or self.refusal is None:
            raise SessionError("There is no refused draft to override.")
        if self.is_signed:
            raise ReportSignedError(self.record.study_uid)
        self.db.audit(self.record.study_uid, self.user, AuditAction.DRAFT_ANYWAY, {"reason": self.refusal})
        return self.draft_request_settings(draft_anyway=True)

    # --- editing ------------------------------------------------------------------------
    def _editable_document(self) -> ReportDocument:
        if self.record is None:
            raise SessionError("Open a study first.")
        if self.is_signed:
            raise ReportSignedError(self.record.study_uid)
        if self.document is None:
            self.document = ReportDocument(study_uid=self.record.study_uid, draft=self.draft,
                                           bundle_id=self.draft.bundle_id if self.draft else "")
            self._prefill_clinical()
        return self.document

    def _prefill_clinical(self) -> None:
        """Indication/technique/comparison the document does not hold yet come from the header."""
        if self.document is None:
            return
        for name, text in clinical_defaults(self.study).items():
            self.document.clinical.setdefault(name, text)

    def set_clinical(self, name: str, text: str) -> None:
        """The radiologist edits the indication, technique or comparison (autosaved like the text)."""
        if name not in CLINICAL_SECTIONS:
            raise SessionError(f"Unknown section {name!r}.")
        self._editable_document().set_clinical_text(name, text)
        self._mark_dirty()

    def _mark_dirty(self) -> None:
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()

    def edit(self, section: str, text: str) -> None:
        self._editable_document().replace_section_text(section, text)
        self._mark_dirty()

    def accept(self, sentence_id: str) -> None:
        self._review_sentence(sentence_id, accepted=True)

    def reject(self, sentence_id: str) -> None:
        self._review_sentence(sentence_id, accepted=False)

    def _review_sentence(self, sentence_id: str, accepted: bool) -> None:
        """The radiologist keeps or deletes one model sentence; the audit entry carries its text."""
        document = self._editable_document()
        sentence = document.sentence(sentence_id)  # read first: rejecting removes it
        (document.accept if accepted else document.reject)(sentence_id)
        self.db.audit(self.record.study_uid, self.user, AuditAction.ACCEPTED if accepted else AuditAction.REJECTED,
                      {"region": sentence.region, "text": sentence.text})
        self._mark_dirty()

    def accept_all(self) -> list[str]:
        accepted = self._editable_document().accept_all()
        if accepted:
            self.db.audit(self.record.study_uid, self.user, AuditAction.ACCEPTED_ALL, {"sentences": len(accepted)})
            self._mark_dirty()
        return accepted

    def add_described_region(self, sentence: Sentence) -> ReportSentence | None:
        """The model's sentence about a box the radiologist drew joins the findings as unreviewed
        model text; the draft keeps the Sentence so its heatmap stays reachable. None (nothing
        added) when the model said nothing."""
        text = normalise_model_sentence(sentence.text)
        if not text:
            return None
        document = self._editable_document()
        draft_index = None
        if self.draft is not None:
            self.draft.sentences.append(sentence)
            draft_index = len(self.draft.sentences) - 1
        added = ReportSentence(text=text, origin=SentenceOrigin.MODEL, region=sentence.region, model_text=text,
                               draft_index=draft_index)
        document.add_sentence("findings", added)
        self._mark_dirty()
        return added

    # --- autosave (the UI's timer calls autosave after a pause in typing) --------------------
    def autosave(self) -> bool:
        """Save the working copy if there are unsaved edits. StoreError leaves it dirty (the
        text stays on screen and the next autosave retries)."""
        if not self.dirty or self.document is None or self.record is None:
            return False
        self.db.save_draft(self.record.study_uid, self.document, self.user)
        self._dirty_since = None
        return True

    # --- truthfulness and sign-off ------------------------------------------------------
    def check_before_sign(self) -> list[Flag]:
        if self.document is None:
            raise SessionError("There is no report to sign.")
        findings = self.draft.findings if self.draft is not None else []
        return check_report(self.document, findings)

    def sign(self, user: str | None = None, reviewed_flags: list[Flag] | None = None) -> SignedReport:
        """Sign after the truthfulness review: every current flag must be in `reviewed_flags`."""
        document = self._editable_document()
        signer = (user or self.user).strip()
        reviewed = list(reviewed_flags or [])
        missing = unreviewed_flags(self.check_before_sign(), reviewed)
        if missing:
            raise UnreviewedFlagsError(missing)
        report = self.db.sign(self.record.study_uid, document, signer, reviewed)
        self._dirty_since = None
        self.record = self.db.get_study(self.record.study_uid)
        return report

    def add_addendum(self, text: str, user: str | None = None) -> SignedReport:
        if self.record is None:
            raise SessionError("Open a study first.")
        addendum = self.db.add_addendum(self.record.study_uid, text, (user or self.user).strip())
        self.record = self.db.get_study(self.record.study_uid)
        return addendum

    def signed_history(self) -> SignedHistory:
        return self.db.signed_history(self.record.study_uid) if self.record else SignedHistory()

    # --- exports ------------------------------------------------------------------------
    def report_meta(self) -> ReportMeta:
        """Patient, study and signature of the open report, for the exporters (and the PDF)."""
        if self.record is None or self.study is None:
            raise SessionError("Open a study first.")
        return signed_report_meta(self.study, self.signed_history(), pseudonym_salt=self.db.installation_secret())

    def register_exporter(self, name: str, suffix: str, write: Exporter) -> None:
        """Add an export format (how the UI adds the PDF, which Qt renders, without the core
        importing Qt); it is then written and audited like the core's formats."""
        self.exporters.register(name, suffix, write)

    def export(self, formats: list[str], folder: str | Path, anonymise: bool = False,
               include_key_image: bool = False) -> dict[str, Path]:
        """Write the report (signed, or the draft marked as such) in `formats` (registered names)
        and log ONE "exported" audit entry naming every file written (path and format), also when
        a later format fails (then ExportError is raised after the entry is written)."""
        self.exporters.check(formats)
        if self.document is None or self.study is None:
            raise SessionError("There is no report to export.")
        meta = self.report_meta()
        folder = Path(folder)
        stem = base_name(meta.for_export(anonymise))
        key_png: list[bytes | None] = []  # rendered once, shared by FHIR and PDF

        def key_image() -> bytes | None:
            if not key_png:
                key_png.append(key_image_png(self.study, self.draft, meta, anonymise) if include_key_image else None)
            return key_png[0]

        job = ExportJob(self.document, meta, self.study, self.draft, anonymise,
                        PrintHeader(self.settings.institution_name, self.settings.institution_address), key_image)
        written: dict[str, Path] = {}
        try:
            for fmt in formats:
                exporter = self.exporters[fmt]
                written[fmt] = Path(exporter.write(job, folder / (stem + exporter.suffix)))
        finally:
            if written:
                self._audit_export(written, formats, anonymise, meta.signed)
        return written

    def _audit_export(self, written: dict[str, Path], requested: list[str], anonymise: bool, signed: bool) -> None:
        detail = {"formats": list(written), "files": [{"format": fmt, "path": str(Path(path).resolve())} for fmt, path in written.items()],
                  "anonymise": anonymise, "signed": signed}
        failed = [fmt for fmt in requested if fmt not in written]
        if failed:
            detail["not_written"] = failed
        try:
            self.db.audit(self.record.study_uid, self.user, AuditAction.EXPORTED, detail)
        except StoreError:
            log.warning("export written but not logged (database unavailable)")

    # --- navigation ---------------------------------------------------------------------
    def next_study_uid(self, search: str = "") -> str | None:
        """The next study to report (not signed) after the open one, in the worklist's order
        (still to report first, newest first), wrapping round; one indexed query."""
        return self.db.next_unsigned_uid(self.record.study_uid if self.record is not None else None, search)
