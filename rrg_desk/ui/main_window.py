"""The workstation window: wiring only. Each piece lives in its own module.

Around the StudyViewer: the worklist (left), the report editor, findings and overlay
controls (right), all docks added with add_panel(). Reporting state lives in the Qt-free
Session (rrg_desk.app.session); ReportingController and SignOffFlow connect it to the
widgets; DraftWorker runs the models off the GUI thread.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMessageBox, QWidget

from rrg_desk.app.session import Session
from rrg_desk.app.settings import AppSettings
from rrg_desk.imaging import ImageReadError, Study
from rrg_desk.imaging.dicom_values import display_date, display_name
from rrg_desk.store import Database, StoreError
from rrg_desk.ui.actions import create_actions, preset_name
from rrg_desk.ui.draft_worker import DraftWorker
from rrg_desk.ui.error_dialog import create_error_box
from rrg_desk.ui.loader import Importer, LoadResult, StudyLoader
from rrg_desk.ui.pdf_export import register_pdf_export
from rrg_desk.ui.recent_files import RecentFiles, RecentFilesMenu
from rrg_desk.ui.reporting import ReportingController
from rrg_desk.ui.settings import open_settings
from rrg_desk.ui.shortcuts_dialog import ShortcutsDialog
from rrg_desk.ui.signoff import SignOffFlow
from rrg_desk.ui.study_viewer import StudyViewer
from rrg_desk.ui.workstation_window import WorkstationWindowMixin

log = logging.getLogger(__name__)

APP_TITLE = "RRG Desk"
IMAGE_FILTER = "Images (*.dcm *.dicom *.DCM *.png *.jpg *.jpeg *.PNG *.JPG *.JPEG);;All files (*)"
ZOOM_STEP = 1.25


def local_paths_from_urls(urls) -> list[str]:
    return [url.toLocalFile() for url in urls if url.isLocalFile()]


class MainWindow(WorkstationWindowMixin, QMainWindow):
    studyShown = Signal(object)  # Study
    loadHandled = Signal(int)  # request id, after the study or the errors were shown

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None,
                 app_settings: AppSettings | None = None, database: Database | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self._settings = settings or open_settings()
        self.app_settings = app_settings or AppSettings.load()
        self.auto_draft_enabled = True  # off for --benchmark-startup
        self.warm_start_enabled = True  # load the models as soon as the window shows (before any study)
        self._warm_started = False
        self._closed = False
        self.recent = RecentFiles(self._settings, parent=self)
        self.viewer = StudyViewer(self)
        self.setCentralWidget(self.viewer)
        self.commands = create_actions(self)
        self.addActions(list(self.commands.values()))  # shortcuts work whatever menus show
        self.last_error_box: QMessageBox | None = None
        self._shortcuts_dialog: ShortcutsDialog | None = None
        self._build_menus()
        self._build_toolbar()
        self.database, self.session = self._open_store(database)
        self.loader = StudyLoader(self._worklist_importer(), parent=self)
        self.worker = DraftWorker(self)
        self.worker.configure(self.app_settings.bundle_dir, self.app_settings.device)
        self._build_panels()
        self.reporting = ReportingController(self.session, self.worker, self.viewer, self.editor, self.findings,
                                             self.overlay_panel, self.statusBar().showMessage, self)
        pacs_target = self.pacs_delivery.server_name if self.pacs_delivery is not None else None
        self.signoff = SignOffFlow(self.reporting, self, pacs_target)
        self._connect()
        self._connect_reporting()
        self._connect_clinical()
        self._connect_pacs_delivery()
        self._update_enabled()
        self.statusBar().showMessage("Open a study to begin (Ctrl+O), or pick one in the worklist.")
        if self.session is not None:
            self.worklist.refresh()
            QTimer.singleShot(0, self._restore_unsaved_work)

    # ----- construction -------------------------------------------------------------
    def _build_menus(self) -> None:
        a = self.commands
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([a["open_file"], a["open_folder"], a["import_files"]])
        self.recent_menu = RecentFilesMenu(self.recent, file_menu)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addActions([a["undo"], a["redo"]])
        edit_menu.addSeparator()
        edit_menu.addAction(a["settings"])
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions([a["fit"], a["one_to_one"], a["zoom_in"], a["zoom_out"]])
        view_menu.addSeparator()
        view_menu.addActions([a["invert"], a["reset"], a["toggle_regions"], a["toggle_all_regions"]])
        a["toggle_regions"].setCheckable(True)
        a["toggle_regions"].setChecked(True)
        a["toggle_all_regions"].setCheckable(True)  # off: only the regions with a sentence show
        window_menu = view_menu.addMenu("&Window presets")
        window_menu.addActions([action for key, action in a.items() if preset_name(key)])
        view_menu.addSeparator()
        self.panels_menu = view_menu.addMenu("&Panels")
        self.panels_menu.setEnabled(False)
        report_menu = self.menuBar().addMenu("Re&port")
        report_menu.addActions([a["draft"], a["cancel_draft"]])
        report_menu.addSeparator()
        report_menu.addActions([a["accept_sentence"], a["reject_sentence"], a["accept_all"], a["template"],
                                a["describe_region"]])
        report_menu.addSeparator()
        report_menu.addActions([a["sign"], a["addendum"], a["export"]])
        report_menu.addSeparator()
        report_menu.addAction(a["next_study"])
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(a["shortcuts"])

    def _build_toolbar(self) -> None:
        a = self.commands
        toolbar = self.addToolBar("Viewer")
        toolbar.setObjectName("viewer-toolbar")  # saveState() needs names
        toolbar.setMovable(False)
        toolbar.addActions([a["open_file"], a["open_folder"]])
        toolbar.addSeparator()
        toolbar.addActions([a["fit"], a["one_to_one"], a["invert"], a["reset"]])
        toolbar.addSeparator()
        toolbar.addActions([action for key, action in a.items() if preset_name(key)])
        toolbar.addSeparator()
        toolbar.addActions([a["draft"], a["accept_all"], a["sign"], a["export"], a["next_study"]])

    def _open_store(self, database: Database | None) -> tuple[Database | None, Session | None]:
        """The worklist database; without it the window still views images (and says why)."""
        try:
            database = database or Database.open()
        except StoreError as exc:
            # bound now: Python unbinds `exc` when the except block ends, before the timer fires
            message = f"{exc.user_message}\nImages can be viewed, not reported."
            QTimer.singleShot(0, lambda: self._show_error_box(QMessageBox(
                QMessageBox.Icon.Warning, "No worklist", message, QMessageBox.StandardButton.Ok, self)))
            return None, None
        session = Session(database, self.app_settings)
        register_pdf_export(session)  # Qt paints the PDF; the session writes and audits it like the rest
        return database, session

    def _worklist_importer(self) -> Importer | None:
        """Files opened also join the worklist, under the user of the moment (None: no store)."""
        if self.session is None:
            return None
        return lambda studies: self.database.add_studies(studies, self.session.user)

    def _connect_pacs_delivery(self) -> None:
        """Signed reports to the PACS (ui/pacs_delivery.py); only with a worklist store."""
        if self.pacs_delivery is None:
            return
        from rrg_desk.ui.pacs_delivery import connect_pacs_delivery  # dicomweb-client: only with a store

        connect_pacs_delivery(self.pacs_delivery, self)

    def _connect(self) -> None:
        a = self.commands
        a["open_file"].triggered.connect(self.open_file_dialog)
        a["open_folder"].triggered.connect(self.open_folder_dialog)
        a["quit"].triggered.connect(self.close)
        a["fit"].triggered.connect(self.viewer.fit)
        a["one_to_one"].triggered.connect(self.viewer.one_to_one)
        a["zoom_in"].triggered.connect(lambda: self.viewer.zoom_by(ZOOM_STEP))
        a["zoom_out"].triggered.connect(lambda: self.viewer.zoom_by(1 / ZOOM_STEP))
        a["invert"].triggered.connect(self.viewer.toggle_invert)
        a["reset"].triggered.connect(self.viewer.reset)
        a["shortcuts"].triggered.connect(self.show_shortcuts)
        for key, action in a.items():
            name = preset_name(key)
            if name:
                action.triggered.connect(lambda _checked=False, n=name: self.viewer.apply_preset(n))
        self.recent_menu.pathChosen.connect(lambda path: self.open_paths([path]))
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.busyChanged.connect(self._on_busy_changed)

    def _connect_reporting(self) -> None:
        a, r, s = self.commands, self.reporting, self.signoff
        a["import_files"].triggered.connect(self.open_file_dialog)
        a["undo"].triggered.connect(self.editor.undo)
        a["redo"].triggered.connect(self.editor.redo)
        a["settings"].triggered.connect(self.open_settings_dialog)
        a["toggle_regions"].toggled.connect(self.overlay_panel.show_regions.setChecked)
        self.overlay_panel.show_regions.toggled.connect(a["toggle_regions"].setChecked)
        a["toggle_all_regions"].toggled.connect(self.overlay_panel.show_all_regions.setChecked)
        self.overlay_panel.show_all_regions.toggled.connect(a["toggle_all_regions"].setChecked)
        a["draft"].triggered.connect(r.request_draft)
        a["cancel_draft"].triggered.connect(self.cancel_draft)
        a["accept_sentence"].triggered.connect(self.editor.accept_current)
        a["reject_sentence"].triggered.connect(self.editor.reject_current)
        a["accept_all"].triggered.connect(self.editor.accept_all)
        a["template"].triggered.connect(self.editor.apply_template)
        a["describe_region"].triggered.connect(r.arm_describe_tool)
        a["sign"].triggered.connect(s.start_sign)
        a["addendum"].triggered.connect(s.start_addendum)
        a["export"].triggered.connect(s.start_export)
        a["next_study"].triggered.connect(self.open_next_study)
        self.cancel_button.clicked.connect(self.cancel_draft)
        self.worker.progressed.connect(self._on_draft_progress)
        self.worker.busyChanged.connect(self._on_worker_busy)
        r.studyOpened.connect(self._on_study_opened)
        r.message.connect(self._show_message)
        r.autosaved.connect(self.worklist.refresh)
        r.draftApplied.connect(lambda _draft: self.worklist.refresh())
        r.draftRefused.connect(self.refusal_banner.show_refusal)
        r.draftApplied.connect(lambda _draft: self.refusal_banner.hide())
        r.studyOpened.connect(lambda _opened: self.refusal_banner.hide())
        self.refusal_banner.draftAnywayRequested.connect(r.draft_anyway)
        s.signed.connect(lambda _report: self.worklist.refresh())
        s.addendumSigned.connect(lambda _report: self.worklist.refresh())
        self.worklist.studyActivated.connect(r.open_study)
        self.worklist.importFilesRequested.connect(self.open_file_dialog)
        self.worklist.importFolderRequested.connect(self.open_folder_dialog)

    def _update_enabled(self) -> None:
        has_study = self.viewer.study is not None
        for key in ("fit", "one_to_one", "zoom_in", "zoom_out", "invert", "reset"):
            self.commands[key].setEnabled(has_study)
        reporting = has_study and self.session is not None and self.session.record is not None
        for key in ("draft", "accept_sentence", "reject_sentence", "accept_all", "template", "describe_region",
                    "sign", "addendum", "export"):
            self.commands[key].setEnabled(reporting)
        for key, action in self.commands.items():
            if preset_name(key):
                action.setEnabled(has_study)

    # ----- extension point ----------------------------------------------------------
    def add_panel(self, title: str, widget: QWidget,
                  area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        """Dock a panel (findings, report editor, worklist); View ▸ Panels toggles it."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.panels_menu.addAction(dock.toggleViewAction())
        self.panels_menu.setEnabled(True)
        return dock

    # ----- opening ------------------------------------------------------------------
    @property
    def current_study(self) -> Study | None:
        return self.viewer.study

    def open_paths(self, paths: list[str | Path]) -> int:
        """Start reading files/folders in the background; returns the request id."""
        paths = [Path(p) for p in paths]
        self.statusBar().showMessage(f"Opening {', '.join(p.name or str(p) for p in paths)}…")
        return self.loader.request(paths)

    def open_file_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open image files", self._last_dir(), IMAGE_FILTER)
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a study folder", self._last_dir())
        if folder:
            self.open_paths([folder])

    def _last_dir(self) -> str:
        recent = self.recent.paths()
        if not recent:
            return str(Path.home())
        path = Path(recent[0])
        return str(path if path.is_dir() else path.parent)

    def show_shortcuts(self) -> ShortcutsDialog:
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self)
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()
        return self._shortcuts_dialog

    # ----- drag and drop ------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths_from_urls(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if local_paths_from_urls(event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths_from_urls(event.mimeData().urls())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)
        else:
            event.ignore()

    # ----- results ------------------------------------------------------------------
    def _on_loaded(self, result: LoadResult) -> None:
        if result.studies:
            first = result.studies[0]
            record = next((r for r in result.records if r.study_uid == first.study_uid), None)
            if record is None or self.reporting.open_study(record.study_uid, first) is None:
                self._show_study(first)  # viewing only: the worklist is unavailable
                if result.import_error:
                    self.statusBar().showMessage(f"Not added to the worklist: {result.import_error}")
            self._note_others(len(result.studies) - 1)
            self._remember(result.paths, result.errors)
        if result.errors:
            self._show_error_box(create_error_box(self, result.errors, opened_something=bool(result.studies)))
        elif not result.studies:
            names = ", ".join(str(p) for p in result.paths)
            self._show_error_box(QMessageBox(QMessageBox.Icon.Information, "Nothing to open",
                                             f"No images were found in {names}.",
                                             QMessageBox.StandardButton.Ok, self))
        self.loadHandled.emit(result.request_id)

    def _on_load_failed(self, request_id: int, message: str) -> None:
        self.statusBar().showMessage("Opening failed.")
        self._show_error_box(QMessageBox(QMessageBox.Icon.Critical, "Opening failed",
                                         f"An unexpected error stopped the reading:\n{message}",
                                         QMessageBox.StandardButton.Ok, self))
        self.loadHandled.emit(request_id)

    def _show_study(self, study: Study, message: str = "") -> None:
        if self.viewer.study is not study:
            self.viewer.set_study(study)
        self._update_enabled()
        name = display_name(study.patient.name) or "Unnamed patient"
        parts = [APP_TITLE, name, display_date(study.study_date), study.description]
        self.setWindowTitle(" — ".join(part for part in parts if part))
        self.statusBar().showMessage(message or f"Opened {len(study.images)} image(s) of {name}.")
        self.studyShown.emit(study)

    def _note_others(self, others: int) -> None:
        if others:
            self.statusBar().showMessage(f"{self.statusBar().currentMessage()} {others} more "
                                         f"stud{'ies' if others > 1 else 'y'} found; showing the first "
                                         "(all are in the worklist).")

    def _remember(self, paths: list[Path], errors: list[ImageReadError]) -> None:
        failed = {error.path.resolve() for error in errors if error.path is not None}
        for path in reversed(paths):  # the first path ends up on top
            if path.resolve() not in failed:
                self.recent.add(path)

    def _show_error_box(self, box: QMessageBox) -> None:
        if self.last_error_box is not None:
            self.last_error_box.close()
            self.last_error_box.deleteLater()
        self.last_error_box = box
        box.open()  # non-blocking: the viewer keeps working behind it

    def _on_busy_changed(self, busy: bool) -> None:
        if busy:
            self.setCursor(Qt.CursorShape.BusyCursor)
        else:
            self.unsetCursor()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._warm_started:  # the window is up: now the models, in the background
            self._warm_started = True
            QTimer.singleShot(0, self.warm_models)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closed:
            self._closed = True
            if self.session is not None:
                self.reporting.autosave()
            self.worker.shutdown()
            self.worklist.shutdown()  # its reader closes before the database
            if self.pacs_delivery is not None:  # a send in flight finishes before the database closes
                self.pacs_delivery.close()
            if self.database is not None:
                try:
                    self.database.mark_clean_shutdown()
                except StoreError as exc:
                    log.warning("clean shutdown not recorded: %s", exc.user_message)
                self.database.close()
            self._settings.sync()
        super().closeEvent(event)
