"""The workstation half of the main window: its panels, and the reporting commands that
need the window (status bar, progress, dialogs). Wiring only; the work happens in
ReportingController, SignOffFlow, DraftWorker and the Qt-free Session.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QApplication, QLabel, QMenu, QMessageBox, QProgressBar, QPushButton, QVBoxLayout,
                               QWidget)

from rrg_desk.app.bundles import bundle_problem
from rrg_desk.app.settings import AppSettings
from rrg_desk.errors import UserFacingError
from rrg_desk.reports.templates import NORMAL_CHEST_TEMPLATE, MacroStore
from rrg_desk.ui.clinical_fields import ClinicalFields
from rrg_desk.ui.findings_panel import FindingsPanel
from rrg_desk.ui.identity_dialog import IdentityDialog
from rrg_desk.ui.overlay_panel import OverlayPanel
from rrg_desk.ui.refusal_banner import RefusalBanner
from rrg_desk.ui.report_editor import ReportEditor
from rrg_desk.ui.settings_dialog import SettingsDialog
from rrg_desk.ui.theme import apply_theme
from rrg_desk.ui.worklist_panel import WorklistPanel


class WorkstationWindowMixin:
    """Mixed into MainWindow (a QMainWindow with add_panel, session, worker, reporting)."""

    def _build_panels(self) -> None:
        self._build_pacs()
        if self.database is not None:  # queried on the worklist's thread, with the PACS column
            self.worklist = WorklistPanel(self.database.worklist_reader, self.pacs_delivery.statuses, self)
        else:
            self.worklist = WorklistPanel(parent=self)
        self.editor = ReportEditor(self.session, self)
        self.findings = FindingsPanel(self)
        self.overlay_panel = OverlayPanel(self)
        self.editor.template = (NORMAL_CHEST_TEMPLATE.findings, NORMAL_CHEST_TEMPLATE.impression)
        self.editor.macros = MacroStore().items()
        self.worklist_dock = self.add_panel("Worklist", self.worklist, Qt.DockWidgetArea.LeftDockWidgetArea)
        if self.pacs_panel is not None:
            self.pacs_panel.studyRetrieved.connect(lambda _uid: self.worklist.refresh())
            self.pacs_dock = self.add_panel("PACS", self.pacs_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
            self.tabifyDockWidget(self.worklist_dock, self.pacs_dock)
            self.worklist_dock.raise_()
        self.report_dock = self.add_panel("Report", self._report_panel())
        self.findings_dock = self.add_panel("Findings", self.findings)
        self.overlay_dock = self.add_panel("Overlays", self.overlay_panel)
        self.tabifyDockWidget(self.findings_dock, self.overlay_dock)
        self.findings_dock.raise_()
        self.resizeDocks([self.worklist_dock], [260], Qt.Orientation.Horizontal)
        self.resizeDocks([self.report_dock], [440], Qt.Orientation.Horizontal)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%p% %v")
        self.cancel_button = QPushButton("Cancel", self)
        self.models_status = QLabel(self)  # discreet: "Models loading…" / "Models ready"
        self.models_status.setObjectName("models-status")
        self.models_status.setEnabled(False)  # drawn dimmed
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.statusBar().addPermanentWidget(self.models_status)
        self.progress.hide()
        self.cancel_button.hide()
        self.worker.modelsStateChanged.connect(self._on_models_state)
        self._on_models_state(self.worker.models_state, self.worker.models_text)
        # Model bundles and the audit log (admin), who am I: listed under Edit beside Settings.
        for menu in self.commands["settings"].associatedObjects():
            if isinstance(menu, QMenu):
                menu.addActions([self.commands["identity"], self.commands["bundles"], self.commands["audit_log"]])
        self.commands["bundles"].triggered.connect(self.open_bundles_dialog)
        self.commands["audit_log"].triggered.connect(self.open_audit_dialog)
        self.commands["identity"].triggered.connect(lambda: self.confirm_identity(force=True))
        self.commands["audit_log"].setEnabled(self.database is not None)
        self.commands["identity"].setEnabled(self.session is not None)

    def _build_pacs(self) -> None:
        """The PACS panel and the delivery of signed reports (ui/pacs_delivery.py): only with a store."""
        self.pacs_panel = self.pacs_delivery = None
        if self.session is None:
            return
        from rrg_desk.ui.pacs_delivery import PacsDelivery  # dicomweb-client: only when a store exists
        from rrg_desk.ui.pacs_panel import PacsPanel

        self.pacs_panel = PacsPanel(self.database, self, user=lambda: self.session.settings.user_name)
        # one network job at a time: the delivery runs in the panel's pool, with its passwords
        self.pacs_delivery = PacsDelivery(self.session, self.pacs_panel.credentials, self.pacs_panel.jobs, self)

    def _report_panel(self) -> QWidget:
        """The report editor under the input check's refusal banner (hidden until a refusal)."""
        panel = QWidget(self)
        self.refusal_banner = RefusalBanner(panel)
        self.clinical_fields = ClinicalFields(panel)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.refusal_banner)
        layout.addWidget(self.clinical_fields)
        layout.addWidget(self.editor)
        return panel

    # ----- reporting ----------------------------------------------------------------
    def _connect_clinical(self) -> None:
        """Indication/technique/comparison: shown with every report, edits go to the session."""
        self.reporting.reportShown.connect(self._show_clinical)
        self.clinical_fields.edited.connect(self._on_clinical_edited)

    def _show_clinical(self) -> None:
        from rrg_desk.reports.clinical import clinical_defaults

        session = self.session
        if session is None or session.record is None:
            self.clinical_fields.set_values(None, read_only=True)
            return
        document = session.document  # none yet (no draft, nothing typed): the header's values
        values = document.clinical if document is not None else clinical_defaults(session.study)
        self.clinical_fields.set_values(values, read_only=session.is_signed)

    def _on_clinical_edited(self, name: str, text: str) -> None:
        if self.session is None or self.session.record is None:
            return
        try:
            self.session.set_clinical(name, text)
        except UserFacingError as exc:  # signed meanwhile: the text stays on screen
            self.statusBar().showMessage(exc.user_message)
            return
        self.reporting.autosave_timer.start(int(self.app_settings.autosave_seconds * 1000))

    def _on_study_opened(self, opened) -> None:
        self._show_study(opened.study, opened.message)
        self.worklist.refresh()
        self.worklist.select_uid(opened.record.study_uid)
        if opened.recovered:
            self._show_message("Draft recovered", opened.message)
        if (self.auto_draft_enabled and self.session.needs_draft()
                and not bundle_problem(self.app_settings.bundle_dir)):
            self.reporting.request_draft()

    def _restore_unsaved_work(self) -> None:
        """After a crash or kill: reopen the study whose draft was not cleanly saved, and say so."""
        dialog = getattr(self, "identity_dialog", None)
        if dialog is not None and dialog.isVisible():  # recover under the confirmed name
            dialog.finished.connect(lambda _result: self._restore_unsaved_work())
            return
        pending = self.session.pending_recoveries() if self.session is not None else []
        if pending and self.viewer.study is None:
            self.reporting.open_study(pending[0])

    def open_next_study(self) -> None:
        if self.session is None:
            return
        uid = self.session.next_study_uid(self.worklist.search.text().strip())
        if uid is None:
            self.statusBar().showMessage("No other study waits for a report.")
        else:
            self.reporting.open_study(uid)

    def warm_models(self) -> None:
        """Load torch and the active bundle in the background (once the window is shown)."""
        if self.warm_start_enabled and not self._closed:
            self.worker.warm_up()

    def _on_models_state(self, state: str, text: str) -> None:
        self.models_status.setText(text)
        self.models_status.setToolTip(self.worker.models_tooltip)

    def cancel_draft(self) -> None:
        if self.worker.is_busy():
            self.worker.cancel()
            self.statusBar().showMessage("Drafting cancelled.")

    def _on_draft_progress(self, _request_id: int, stage: str, index: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(index)
        self.progress.setFormat(f"{stage.replace('_', ' ')} %v/%m")

    def _on_worker_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)  # until the first stage reports

    def open_settings_dialog(self) -> SettingsDialog:
        dialog = SettingsDialog(self.app_settings, self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.edited_settings()))
        dialog.open()
        return dialog

    def open_bundles_dialog(self):
        from rrg_desk.ui.bundles_dialog import BundlesDialog

        dialog = BundlesDialog(self.app_settings, study_provider=lambda: self.viewer.study,
                               db_path=self.database.path if self.database is not None else None, parent=self)
        dialog.activeBundleRequested.connect(self.apply_settings)  # configures the worker: next draft uses it
        dialog.open()
        return dialog

    def open_audit_dialog(self):
        from rrg_desk.ui.audit_dialog import AuditDialog

        if self.database is None:
            self.statusBar().showMessage("No worklist database: there is no audit log to show.")
            return None
        dialog = AuditDialog(self.database, self)
        dialog.open()
        return dialog

    def confirm_identity(self, force: bool = False):
        """Ask once (prefilled with the current name: the OS login until confirmed) who is working;
        every later audit entry and signature carries the answer. Window-modal, not blocking."""
        if self.session is None or (self.session.identity_confirmed and not force):
            return None
        dialog = IdentityDialog(self.session.user, self)
        dialog.accepted.connect(lambda: self._identity_confirmed(dialog.name()))
        self.identity_dialog = dialog
        dialog.open()
        return dialog

    def _identity_confirmed(self, name: str) -> None:
        try:
            self.session.confirm_identity(name)
        except UserFacingError as exc:
            self._show_message("Identity not confirmed", exc.user_message)
            return
        self._save_settings()
        self.statusBar().showMessage(f"Working as {self.session.user}.")

    def _save_settings(self) -> None:
        for name, value in self.app_settings.to_dict().items():
            self._settings.setValue(f"workstation/{name}", value)
        try:
            self.app_settings.save()
        except OSError as exc:
            self._show_message("Settings not saved", f"The settings file could not be written ({exc}).")

    def apply_settings(self, new: AppSettings) -> None:
        if self.session is not None and new.user_name.strip() and new.user_name.strip() != self.session.user:
            self._identity_confirmed(new.user_name)  # a new name is a new identity: audited
            new.user_name, new.identity_confirmed = self.app_settings.user_name, self.app_settings.identity_confirmed
        for name, value in new.to_dict().items():  # in place: the session holds this object
            setattr(self.app_settings, name, value)
            self._settings.setValue(f"workstation/{name}", value)
        try:
            self.app_settings.save()
        except OSError as exc:
            self._show_message("Settings not saved", f"The settings file could not be written ({exc}).")
        self.worker.configure(self.app_settings.bundle_dir, self.app_settings.device)
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, self.app_settings.theme)
        self.statusBar().showMessage("Settings saved.")

    def _show_message(self, title: str, text: str) -> None:
        self._show_error_box(QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self))
