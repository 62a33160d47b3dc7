"""Admin view of the installed model bundles: their cards (trained on what, when, metrics,
parent), "Make active" (the next draft uses it), "Compare" (the open study drafted by two
bundles side by side) and "Export signed reports for training" (the store's training export,
rrg_desk.store.export, which `python -m train export-store` runs too).

Listing and details read JSON only (rrg_desk.app.bundles); drafting and exporting run as jobs (ui/jobs.py).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QPlainTextEdit, QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from rrg_desk.app.bundles import (BundleInfo, compare_drafts, draft_summary, is_active, list_bundles,
                                  with_active_bundle)
from rrg_desk.store.export import export_store
from rrg_desk.ui.jobs import Job, JobRunner

COLUMNS = ("Bundle", "Active", "Source", "Created", "Trained on", "Parent", "BLEU-4", "CE micro F1",
           "Detector IoU")


class BundlesDialog(QDialog):
    activeBundleRequested = Signal(object)  # AppSettings with the new bundle_dir
    compared = Signal(object)  # list[Draft], after the side-by-side view shows them
    compareFailed = Signal(str)
    exportFinished = Signal(object)  # ExportSummary, after the status line shows it
    exportFailed = Signal(str)

    def __init__(self, settings, study_provider=None, db_path: Path | None = None,
                 parent: QWidget | None = None, roots=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model bundles")
        self.settings = settings
        self.study_provider = study_provider or (lambda: None)
        self.db_path = Path(db_path) if db_path else None
        self.roots = roots
        self.bundles: list[BundleInfo] = []
        self.jobs = JobRunner(self, max_threads=1)
        self._compare: Job | None = None
        self._export: Job | None = None
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.details = QPlainTextEdit(self)
        self.details.setReadOnly(True)
        self.left_draft, self.right_draft = QPlainTextEdit(self), QPlainTextEdit(self)
        for view in (self.left_draft, self.right_draft):
            view.setReadOnly(True)
            view.setPlaceholderText("Select two bundles (or one: it is compared with the active bundle) "
                                    "and press Compare to draft the open study with both.")
        side_by_side = QSplitter(Qt.Orientation.Horizontal, self)
        side_by_side.addWidget(self.left_draft)
        side_by_side.addWidget(self.right_draft)
        self.activate_button = QPushButton("Make active", self)
        self.compare_button = QPushButton("Compare", self)
        self.export_button = QPushButton("Export signed reports for training…", self)
        self.deidentify = QCheckBox("De-identify", self)
        self.deidentify.setChecked(True)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.activate_button.clicked.connect(self.make_selected_active)
        self.compare_button.clicked.connect(self.compare_selected)
        self.export_button.clicked.connect(self._choose_export_folder)
        buttons = QHBoxLayout()
        for widget in (self.activate_button, self.compare_button, self.export_button, self.deidentify):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.addWidget(side_by_side)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self.resize(1100, 760)
        self.refresh()

    # --- the table ------------------------------------------------------------------
    def refresh(self) -> None:
        self.bundles = list_bundles(self.roots)
        self.table.setRowCount(len(self.bundles))
        for row, info in enumerate(self.bundles):
            metrics = info.metrics()
            parent = info.parent.bundle_id if info.parent else ""
            cells = (info.bundle_id, "✔" if is_active(info, self.settings) else "", info.source,
                     info.created, info.trained_on, parent, _fmt(metrics["BLEU-4"]),
                     _fmt(metrics["CE micro F1"]), _fmt(metrics["detector mean IoU"]))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(info.describe())
                self.table.setItem(row, column, item)
        self._on_selection()

    def selected(self) -> list[BundleInfo]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.bundles[row] for row in rows]

    def select(self, *bundles: BundleInfo) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for info in bundles:
            self.table.selectRow(self.bundles.index(info))
        self.table.setSelectionMode(mode)

    def _on_selection(self) -> None:
        chosen = self.selected()
        self.details.setPlainText("\n\n".join(info.describe() for info in chosen) if chosen else
                                  f"{len(self.bundles)} bundle(s) installed. Select one to see its card.")
        self.activate_button.setEnabled(len(chosen) == 1 and not chosen[0].problem)
        self.compare_button.setEnabled(1 <= len(chosen) <= 2 and not self.comparing)

    # --- make active ----------------------------------------------------------------
    def make_selected_active(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            return
        try:
            new_settings = with_active_bundle(self.settings, chosen[0])
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        self.activeBundleRequested.emit(new_settings)
        self.settings = new_settings
        self.status.setText(f"Active bundle: {chosen[0].bundle_id}. The next draft uses it.")
        self.refresh()

    # --- compare ----------------------------------------------------------------------
    def compare_pair(self) -> list[Path] | None:
        chosen = self.selected()
        if len(chosen) == 2:
            return [chosen[0].folder, chosen[1].folder]
        if len(chosen) == 1 and self.settings.bundle_dir:
            return [Path(self.settings.bundle_dir), chosen[0].folder]
        return None

    def compare_selected(self) -> None:
        study, pair = self.study_provider(), self.compare_pair()
        if study is None:
            self.status.setText("Open a study first: Compare drafts the open study with both bundles.")
            return
        if pair is None:
            self.status.setText("Select two bundles, or one to compare with the active bundle.")
            return
        self.status.setText("Drafting with both bundles…")
        for view in (self.left_draft, self.right_draft):
            view.setPlainText("…")
        device = getattr(self.settings, "device", "auto")
        self._compare = self.jobs.start(lambda _job: compare_drafts(study, pair, device),
                                        self._on_compared, self._on_compare_failed)
        self._on_selection()

    @property
    def comparing(self) -> bool:
        return self.jobs.is_running(self._compare)

    def _on_compared(self, drafts: list) -> None:
        self._on_selection()
        self.left_draft.setPlainText(draft_summary(drafts[0]))
        self.right_draft.setPlainText(draft_summary(drafts[1]))
        self.status.setText("Left: first bundle; right: second bundle.")
        self.compared.emit(drafts)

    def _on_compare_failed(self, message: str) -> None:
        self._on_selection()
        self.status.setText(f"Compare failed: {message}")
        self.compareFailed.emit(message)

    # --- export signed reports --------------------------------------------------------
    def _choose_export_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the exported training data")
        if folder:
            self.start_export(Path(folder) / "signed-reports", self.deidentify.isChecked())

    def start_export(self, out: Path, deidentify: bool = True) -> bool:
        """Export the signed reports as a job; exportFinished or exportFailed reports."""
        if self.db_path is None:
            self.status.setText("There is no worklist database to export from.")
            return False
        if self.jobs.is_running(self._export):
            return False
        db_path = self.db_path
        self._export = self.jobs.start(lambda _job: export_store(db_path, Path(out), deidentify=deidentify),
                                       self._on_exported, self._on_export_failed)
        self.export_button.setEnabled(False)
        self.status.setText(f"Exporting signed reports to {out}…")
        return True

    def _on_exported(self, summary) -> None:
        self.export_button.setEnabled(True)
        self.status.setText("Exported. " + " ".join(summary.lines()[-3:]))
        self.exportFinished.emit(summary)

    def _on_export_failed(self, message: str) -> None:
        self.export_button.setEnabled(True)
        self.status.setText(f"Export failed. {message}")
        self.exportFailed.emit(message)

    def done(self, result: int) -> None:
        self.jobs.wait()  # a compare or export in flight finishes (neither can stop midway)
        super().done(result)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else ""
