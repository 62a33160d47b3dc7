"""Reporting wiring: the Qt-free Session on one side, the panels and the model worker on the other.

Every rule lives in rrg_desk.app.session; this class only moves data between widgets and the
session, starts worker requests, and turns errors into messages (the text on screen is
always kept). The main window creates it and connects its actions to it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from rrg_desk.app.audit import readable_time
from rrg_desk.errors import UserFacingError
from rrg_desk.models.regions import region_label
from rrg_desk.ui.box_tool import BoxTool
from rrg_desk.ui.overlays import RegionOverlay, frontal_view

log = logging.getLogger(__name__)


class ReportingController(QObject):
    studyOpened = Signal(object)  # OpenedStudy
    draftApplied = Signal(object)  # Draft
    draftFailed = Signal(str)
    draftRefused = Signal(str)  # why the input check refused; the window shows it with "Draft anyway"
    autosaved = Signal()
    signed = Signal(object)  # SignedReport
    reportShown = Signal()  # the session's document is on screen (opened, drafted, signed)
    message = Signal(str, str)  # title, text: the window shows a non-blocking box

    def __init__(self, session, worker, viewer, editor, findings, overlay_panel,
                 status: Callable[[str], None] | None = None, parent: QObject | None = None) -> None:
        """`status` shows one line (the window's status bar); the editor edits through `session`."""
        super().__init__(parent)
        self.session, self.worker, self.viewer = session, worker, viewer
        self.editor, self.findings, self.overlay_panel = editor, findings, overlay_panel
        self.overlay: RegionOverlay | None = None
        self.box_tool: BoxTool | None = None
        self._selected_sentence = self._hovered_sentence = ""
        self._finding_heatmap: tuple[str, object] | None = None
        self.status = status or (lambda _text: None)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.timeout.connect(self.autosave)
        editor.editRefused.connect(self.status)
        editor.textEdited.connect(self._on_text_edited)
        editor.sentenceActivated.connect(self._on_sentence_activated)
        editor.sentenceHovered.connect(self._on_sentence_hovered)
        findings.findingSelected.connect(self._on_finding_selected)
        overlay_panel.regionsToggled.connect(lambda on: self.overlay and self.overlay.set_regions_visible(on))
        overlay_panel.allRegionsToggled.connect(lambda on: self.overlay and self.overlay.set_unselected_visible(on))
        overlay_panel.regionToggled.connect(lambda name, on: self.overlay and self.overlay.set_region_visible(name, on))
        overlay_panel.regionActivated.connect(self.show_region_sentence)
        overlay_panel.opacityChanged.connect(lambda value: self.overlay and self.overlay.set_heatmap_opacity(value))
        overlay_panel.describeRequested.connect(self.arm_describe_tool)
        worker.finished.connect(self._on_draft_finished)
        worker.failed.connect(self._on_draft_failed)
        worker.refused.connect(self._on_draft_refused)
        worker.regionDescribed.connect(self._on_region_described)
        worker.describeFailed.connect(lambda _rid, text: self.message.emit("Describe region", text))
        worker.heatmapReady.connect(self._on_heatmap_ready)

    # ----- studies ------------------------------------------------------------------------
    def open_study(self, study_uid: str, study=None):
        """Open a worklist study in the session and show it; None (and a message) on failure.
        `study`: the images if the caller has just read them (spares reading them again here)."""
        from rrg_desk.store import StoreError

        self.autosave_timer.stop()
        self.worker.cancel()  # a draft for the previous study is no longer wanted
        try:
            opened = self.session.open_study(study_uid, study)
        except StoreError as exc:
            self.message.emit("Cannot open the study", exc.user_message)
            return None
        self.viewer.set_study(opened.study)
        self.attach_overlays()
        self.show_report()
        self.studyOpened.emit(opened)
        return opened

    def attach_overlays(self) -> None:
        for helper in (self.overlay, self.box_tool):
            if helper is not None:
                helper.detach()
        self.overlay = self.box_tool = None
        view = frontal_view(self.viewer.views, self.viewer.study)
        if view is None:
            return
        self.overlay = RegionOverlay(view, self)
        self.overlay.set_heatmap_opacity(self.overlay_panel.opacity.value() / 100.0)
        self.overlay.set_unselected_visible(self.overlay_panel.show_all_regions.isChecked())
        self.overlay.regionClicked.connect(self.show_region_sentence)
        self.box_tool = BoxTool(view, self)
        self.box_tool.boxDrawn.connect(self.describe_box)

    def show_report(self) -> None:
        """Put the session's document, findings and regions on screen."""
        session = self.session
        draft = session.draft
        signed = session.is_signed
        self.editor.set_document(session.document, read_only=signed, banner=self._signed_banner() if signed else "")
        self.findings.set_findings(draft.findings if draft is not None else [])
        regions = [r for r in draft.regions if r.image_index == 0] if draft is not None else []
        if self.overlay is not None:
            self.overlay.set_regions(regions)
            self.overlay.set_regions_visible(self.overlay_panel.show_regions.isChecked())
        self.overlay_panel.set_regions(regions)
        self._selected_sentence = self._hovered_sentence = ""
        self._finding_heatmap = None
        self._update_link()
        self.reportShown.emit()

    def _signed_banner(self) -> str:
        history = self.session.signed_history()
        original = history.original
        if original is None:
            return ""
        lines = [f"Signed by {original.signer} on {readable_time(original.signed_at)} UTC — read-only."]
        for number, addendum in enumerate(history.addenda, start=1):
            lines.append(f"Addendum {number} ({addendum.signer}): {addendum.addendum_text}")
        lines.append("Use Report ▸ Addendum (Ctrl+Alt+A) to add to it.")
        return "\n".join(lines)

    # ----- drafting -------------------------------------------------------------------------
    def request_draft(self) -> int | None:
        if self.session is None or self.session.study is None:
            self.status("Open a study before drafting.")
            return None
        if self.session.is_signed:
            self.status("This report is signed; use an addendum for changes.")
            return None
        self.worker.configure(self.session.settings.bundle_dir, self.session.settings.device)
        request_id = self.worker.request_draft(self.session.study, self.session.draft_request_settings())
        self.status("Drafting…" if self.worker.models_ready() else
                    "Draft queued: the models are still loading; it starts as soon as they are ready.")
        return request_id

    def draft_anyway(self) -> int | None:
        """Re-run a refused draft with the input check overridden; the session audits the choice."""
        try:
            settings = self.session.draft_anyway()
        except UserFacingError as exc:  # nothing logged, so nothing drafted
            self.message.emit("Draft anyway", exc.user_message)
            return None
        self.worker.configure(self.session.settings.bundle_dir, self.session.settings.device)
        request_id = self.worker.request_draft(self.session.study, settings)
        self.status("Drafting anyway (your choice is logged)…")
        return request_id

    def _on_draft_finished(self, _request_id: int, draft) -> None:
        if not self.session.apply_draft(draft):
            return  # for a study that is no longer open
        self.show_report()
        self.autosave_timer.start(self._autosave_ms())
        total = draft.timings_ms.get("total")
        no_regions = "" if draft.regions else " No frontal view: no regions or region sentences were drafted."
        self.status(f"Draft ready{f' in {total / 1000:.1f} s' if total else ''} ({draft.device}). "
                    f"Model text is tinted until you accept or edit it.{no_regions}")
        self.draftApplied.emit(draft)

    def _on_draft_failed(self, _request_id: int, text: str) -> None:
        self.status("Drafting failed.")
        self.message.emit("Drafting failed", text)
        self.draftFailed.emit(text)

    def _on_draft_refused(self, _request_id: int, text: str) -> None:
        from rrg_desk.store import StoreError

        try:
            if not self.session.note_refusal(text):
                return  # the study was closed meanwhile
        except StoreError as exc:  # the reason is still kept and shown; the audit log is unavailable
            log.warning("input refusal not logged: %s", exc.user_message)
        self.status("Not drafted: the input check refused the image (see the Report panel).")
        self.draftRefused.emit(text)
        self.draftFailed.emit(text)  # headless callers (screenshot, selftest) wait for an outcome

    # ----- describe a region (RGRG's region-selection mode) -----------------------------------
    def arm_describe_tool(self) -> None:
        if self.box_tool is None:
            self.status("Open a study first.")
            return
        self.box_tool.set_armed(True)
        self.status("Draw a box on the frontal image; the model will describe it (Shift+drag works any time).")

    def describe_box(self, box) -> int | None:
        if self.session.study is None or self.editor.is_read_only():
            return None
        self.worker.configure(self.session.settings.bundle_dir, self.session.settings.device)
        self.status("Describing the region…")
        return self.worker.request_describe(self.session.study, box, self.session.draft_request_settings())

    def _on_region_described(self, _request_id: int, sentence) -> None:
        added = self.session.add_described_region(sentence) if self.session.study is not None else None
        if added is None:
            self.status("The model had nothing to say about that region.")
            return
        if self.editor.document is not self.session.document:
            self.editor.set_document(self.session.document)
        self.editor.insert_sentence("findings", added.text)
        self.status(f"Added a model sentence about the {region_label(sentence.region)}: review it.")

    # ----- linking text, regions and heatmaps ------------------------------------------------
    def _on_sentence_activated(self, sentence_id: str) -> None:
        self._selected_sentence = sentence_id
        self._update_link()

    def _on_sentence_hovered(self, sentence_id: str) -> None:
        self._hovered_sentence = sentence_id
        self._update_link()

    def show_region_sentence(self, region: str) -> None:
        sentence_id = self.editor.scroll_to_region(region)
        if not sentence_id:
            if self.overlay is not None:
                self.overlay.set_highlighted(region)
            self.status(f"No sentence describes the {region_label(region)}.")

    def _update_link(self) -> None:
        document = self.session.document if self.session is not None else None
        active = self._hovered_sentence or self._selected_sentence
        sentence = draft_sentence = None
        if document is not None and active:
            try:
                sentence = document.sentence(active)
                draft_sentence = document.draft_sentence(active)
            except ValueError:
                sentence = None
        self.editor.set_linked(sentence.id if sentence is not None and sentence.region else "")
        if self.overlay is None:
            return
        self.overlay.set_highlighted(sentence.region if sentence is not None else None)
        if draft_sentence is not None and draft_sentence.heatmap is not None:
            self.overlay.set_heatmap(draft_sentence.heatmap)
            self.overlay_panel.set_heatmap_caption(f"sentence “{sentence.text[:60]}”")
        elif self._finding_heatmap is not None:
            name, heatmap = self._finding_heatmap
            self.overlay.set_heatmap(heatmap)
            self.overlay_panel.set_heatmap_caption(f"finding {name}")
        else:
            self.overlay.set_heatmap(None)
            self.overlay_panel.set_heatmap_caption("")

    def _on_finding_selected(self, name: str) -> None:
        draft = self.session.draft if self.session is not None else None
        self._finding_heatmap = None
        if name and draft is not None:
            heatmap = draft.finding_heatmaps.get(name)
            if heatmap is not None:
                self._finding_heatmap = (name, heatmap)
            elif self.session.study is not None:  # below threshold: computed on demand
                self.worker.configure(self.session.settings.bundle_dir, self.session.settings.device)
                self.worker.request_heatmap(self.session.study.primary_image, name)
                self.status(f"Computing the heatmap of {name}…")
        self._selected_sentence = self._hovered_sentence = ""  # the finding takes over the overlay
        self._update_link()

    def _on_heatmap_ready(self, _request_id: int, name: str, heatmap) -> None:
        if name == self.findings.selected_finding():
            self._finding_heatmap = (name, heatmap)
            self._update_link()
            self.status(f"Heatmap of {name}.")

    # ----- autosave -----------------------------------------------------------------------
    def _autosave_ms(self) -> int:
        return int(self.session.settings.autosave_seconds * 1000)

    def _on_text_edited(self, _section: str) -> None:
        if self.session is not None and self.session.record is not None:
            self.autosave_timer.start(self._autosave_ms())  # restarted by every keystroke

    def autosave(self) -> bool:
        from rrg_desk.store import StoreError

        try:
            saved = self.session.autosave()
        except StoreError as exc:
            self.status(f"Not saved: {exc.user_message}")
            self.message.emit("The draft could not be saved", exc.user_message)
            return False
        if saved:
            self.status("Draft saved.")
            self.autosaved.emit()
        return saved
