"""Sign-off, addenda and exports: dialogs in front of the session's rules.

Signing uses the identity confirmed at start (settings; the OS login name until then), runs the truthfulness check,
and signs only after every flag is ticked in the review dialog. Dialogs are opened
non-modally (open()), so the window, and tests, keep running while they are up.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from rrg_desk.errors import UserFacingError
from rrg_desk.ui.addendum_dialog import AddendumDialog
from rrg_desk.ui.export_dialog import ExportDialog
from rrg_desk.ui.review_dialog import ReviewDialog

log = logging.getLogger(__name__)


class SignOffFlow(QObject):
    signed = Signal(object)  # SignedReport
    addendumSigned = Signal(object)
    exported = Signal(object)  # {format: Path}
    pacsSendRequested = Signal(str)  # study uid: the export dialog's "Send to PACS" (ui/pacs_delivery.py)

    def __init__(self, controller, window: QWidget, pacs_target: Callable[[], str | None] | None = None) -> None:
        """`pacs_target`: the name of the PACS signed reports go to (PacsDelivery.server_name;
        None: no PACS), for the export dialog's "Send to PACS"."""
        super().__init__(window)
        self.controller, self.window = controller, window
        self.pacs_target = pacs_target or (lambda: None)
        self.review_dialog: ReviewDialog | None = None
        self.addendum_dialog: AddendumDialog | None = None
        self.export_dialog: ExportDialog | None = None
        self.export_folder = Path.home()

    @property
    def session(self):
        return self.controller.session

    def _say(self, title: str, text: str) -> None:
        self.controller.message.emit(title, text)

    def _signer(self) -> str:
        """Who signs: the identity confirmed at start (the OS login name until then)."""
        return self.session.user

    # ----- sign ---------------------------------------------------------------------------
    def start_sign(self) -> ReviewDialog | None:
        """Check, then sign (no flags) or open the review dialog (flags to tick)."""
        session = self.session
        if session is None or session.record is None or session.document is None:
            self.controller.status("There is no report to sign.")
            return None
        if session.is_signed:
            self.controller.status("Already signed; use an addendum for changes.")
            return None
        if session.document.is_empty():
            self.controller.status("The report is empty: nothing to sign.")
            return None
        signer = self._signer()
        if not signer:
            self.controller.status("Signing needs your name (Edit ▸ Settings).")
            return None
        flags = session.check_before_sign()
        if not flags:
            self.finish_sign(signer, [])
            return None
        dialog = ReviewDialog(flags, signer, self.window)
        dialog.sentenceRequested.connect(self.controller.editor.scroll_to_sentence)
        dialog.accepted.connect(lambda: self.finish_sign(signer, dialog.reviewed_flags()))
        self.review_dialog = dialog
        dialog.open()
        return dialog

    def finish_sign(self, signer: str, reviewed: list) -> object | None:
        try:
            report = self.session.sign(signer, reviewed)
        except UserFacingError as exc:
            self._say("Not signed", exc.user_message)
            return None
        self.controller.autosave_timer.stop()
        self.controller.show_report()  # read-only, with the signature banner
        self.controller.status(f"Signed by {report.signer}.")
        self.signed.emit(report)
        return report

    # ----- addendum -------------------------------------------------------------------------
    def start_addendum(self) -> AddendumDialog | None:
        session = self.session
        if session is None or session.record is None or not session.is_signed:
            self.controller.status("An addendum is for a signed report; this one can still be edited.")
            return None
        signer = self._signer()
        if not signer:
            return None
        original = session.signed_history().original
        summary = (f"Report signed by {original.signer} on {datetime.fromisoformat(original.signed_at):%Y-%m-%d}."
                   if original else "")
        dialog = AddendumDialog(summary, signer, self.window)
        dialog.accepted.connect(lambda: self.finish_addendum(dialog.addendum_text(), signer))
        self.addendum_dialog = dialog
        dialog.open()
        return dialog

    def finish_addendum(self, text: str, signer: str):
        try:
            addendum = self.session.add_addendum(text, signer)
        except UserFacingError as exc:
            self._say("Addendum not signed", exc.user_message)
            return None
        self.controller.show_report()
        self.controller.status("Addendum signed.")
        self.addendumSigned.emit(addendum)
        return addendum

    # ----- export ----------------------------------------------------------------------------
    def start_export(self) -> ExportDialog | None:
        session = self.session
        if session is None or session.document is None or session.study is None:
            self.controller.status("There is no report to export.")
            return None
        signed = session.is_signed
        dialog = ExportDialog(self.export_folder, signed, self.window,
                              pacs_server=self.pacs_target() if signed else None)
        dialog.accepted.connect(lambda: self._export_chosen(dialog))
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def _export_chosen(self, dialog: ExportDialog) -> None:
        if dialog.formats():
            self.export(dialog.formats(), Path(dialog.folder.text()), dialog.anonymise.isChecked(),
                        dialog.key_image.isChecked())
        if dialog.send_to_pacs.isChecked() and self.session.record is not None:
            self.pacsSendRequested.emit(self.session.record.study_uid)

    def export(self, formats: list[str], folder: Path, anonymise: bool, key_image: bool) -> dict:
        """Write the chosen formats (the session audits them all, PDF included, in one entry);
        errors become one message, the report stays on screen."""
        self.export_folder = folder
        session = self.session
        if session.dirty:
            self.controller.autosave()
        written: dict = {}
        try:
            written = session.export(formats, folder, anonymise, include_key_image=key_image)
        except UserFacingError as exc:
            self._say("Export failed", exc.user_message)
            return written
        self.controller.status(f"Exported {', '.join(sorted(written))} to {folder}.")
        self.exported.emit(written)
        return written
