"""The report editor: FINDINGS and IMPRESSION with provenance, review buttons, word count.

The editor shows a ReportDocument (rrg_desk.reports.document) and feeds every change back
through the session it was built with (its `edit` re-splits the section and keeps provenance;
its accept/reject are audited); without a session it edits the document it shows. Model text
stays marked until accepted or edited. After sign-off the editor is read-only; changes then
go through an addendum.
"""
from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QMenu, QPushButton, QToolButton, QVBoxLayout, QWidget)

from rrg_desk.reports.document import ReportDocument
from rrg_desk.store import StoreError
from rrg_desk.ui.section_edit import SectionEdit

SECTION_TITLES = {"findings": "FINDINGS", "impression": "IMPRESSION"}
EMPTY_HINT = "Draft a report (Ctrl+D), apply the normal template, or type."


class EditingSession(Protocol):
    """What the editor edits through (rrg_desk.app.session.Session)."""

    @property
    def record(self) -> object | None: ...  # the open study; None: nothing to keep an edit in

    @property
    def document(self) -> ReportDocument | None: ...  # the first word typed may create it

    def edit(self, section: str, text: str) -> None: ...  # StoreError once the report is signed

    def accept(self, sentence_id: str) -> None: ...

    def reject(self, sentence_id: str) -> None: ...

    def accept_all(self) -> list[str]: ...


class ReportEditor(QWidget):
    sentenceActivated = Signal(str)  # sentence id under the text cursor ("" none)
    sentenceHovered = Signal(str)  # sentence id under the mouse ("" none)
    textEdited = Signal(str)  # section; every keystroke (the autosave timer listens)
    reviewChanged = Signal()  # a sentence was accepted/rejected
    editRefused = Signal(str)  # why the session kept no edit (signed meanwhile); the text stays on screen

    def __init__(self, session: EditingSession | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: ReportDocument | None = None
        self.session = session  # edits, accept/reject/accept_all go through it (it audits and autosaves)
        self.macros: dict[str, str] = {}
        self.template: tuple[str, str] | None = None  # (findings, impression)
        self._loading = False
        self.banner = QLabel(EMPTY_HINT, self)
        self.banner.setWordWrap(True)
        self.edits = {name: SectionEdit(name, lambda n=name: self.document.section(n) if self.document is not None
                                        else [], lambda: self.macros, self) for name in SECTION_TITLES}
        for name, edit in self.edits.items():
            edit.setPlaceholderText(f"{SECTION_TITLES[name].title()}…")
            edit.contentEdited.connect(lambda n=name: self._on_text_changed(n))
            edit.sentenceActivated.connect(self._on_sentence_activated)
            edit.sentenceHovered.connect(self.sentenceHovered)
            edit.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            edit.customContextMenuRequested.connect(lambda pos, e=edit: self._context_menu(e, pos))
        self.accept_button = QPushButton("Accept", self)
        self.accept_button.setToolTip("Accept the model sentence at the cursor")
        self.reject_button = QPushButton("Reject", self)
        self.reject_button.setToolTip("Delete the model sentence at the cursor")
        self.accept_all_button = QPushButton("Accept all", self)
        self.template_button = QToolButton(self)
        self.template_button.setText("Template")
        self.template_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.template_menu = QMenu(self.template_button)
        self.template_button.setMenu(self.template_menu)
        self.word_count = QLabel("0 words", self)
        self.unreviewed_label = QLabel("", self)
        buttons = QHBoxLayout()
        for widget in (self.accept_button, self.reject_button, self.accept_all_button, self.template_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.unreviewed_label)
        buttons.addWidget(self.word_count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        for name, edit in self.edits.items():
            title = QLabel(f"<b>{SECTION_TITLES[name]}</b>", self)
            layout.addWidget(title)
            layout.addWidget(edit, 3 if name == "findings" else 2)
        layout.addLayout(buttons)
        self.accept_button.clicked.connect(self.accept_current)
        self.reject_button.clicked.connect(self.reject_current)
        self.accept_all_button.clicked.connect(self.accept_all)
        self.template_menu.aboutToShow.connect(self._fill_template_menu)
        self._update_counts()

    # ----- content --------------------------------------------------------------------
    def set_document(self, document, read_only: bool = False, banner: str = "") -> None:
        """Show a document (None: empty). Loading is not an edit: no autosave, fresh undo."""
        self.document = document
        self._loading = True
        try:
            for name, edit in self.edits.items():
                edit.setPlainText(document.findings_text() if name == "findings" and document is not None
                                  else document.impression_text() if document is not None else "")
        finally:
            self._loading = False
        self.set_read_only(read_only, banner)
        self.refresh()

    def _on_sentence_activated(self, sentence_id: str) -> None:
        if not self._loading:  # loading moves the cursor too; the caller sets the link once afterwards
            self.sentenceActivated.emit(sentence_id)

    def set_read_only(self, read_only: bool, banner: str = "") -> None:
        for edit in self.edits.values():
            edit.setReadOnly(read_only)
        for button in (self.accept_button, self.reject_button, self.accept_all_button):
            button.setEnabled(not read_only and self.document is not None)
        self.template_button.setEnabled(not read_only)
        self.banner.setText(banner or ("" if self.document is not None else EMPTY_HINT))
        self.banner.setVisible(bool(self.banner.text()))

    def is_read_only(self) -> bool:
        return self.edits["findings"].isReadOnly()

    def section_text(self, section: str) -> str:
        return self.edits[section].toPlainText()

    def refresh(self) -> None:
        """Re-mark provenance (after accept/reject or a new draft) and recount."""
        for edit in self.edits.values():
            edit.highlighter.rehighlight()
        self._update_counts()

    def _update_counts(self) -> None:
        if self.document is not None:
            words = self.document.word_count()
            unreviewed = len(self.document.unreviewed_model_sentences())
        else:
            words = sum(len(edit.toPlainText().split()) for edit in self.edits.values())
            unreviewed = 0
        self.word_count.setText(f"{words} word{'s' if words != 1 else ''}")
        self.unreviewed_label.setText(f"{unreviewed} model sentence{'s' if unreviewed != 1 else ''} to review"
                                      if unreviewed else "")

    def _on_text_changed(self, section: str) -> None:
        if self._loading:
            return
        text = self.edits[section].toPlainText()
        if self.session is not None:
            self._edit_in_session(section, text)
        elif self.document is not None:
            self.document.replace_section_text(section, text)
        self.refresh()
        self.textEdited.emit(section)

    def _edit_in_session(self, section: str, text: str) -> None:
        if self.session.record is None:
            return  # typing without a study: nothing to keep it in
        try:
            self.session.edit(section, text)
        except StoreError as exc:  # signed meanwhile
            self.editRefused.emit(exc.user_message)
            return
        self.document = self.session.document  # the first keystroke may have created it

    # ----- review -----------------------------------------------------------------------
    def focused_section(self) -> str:
        for name, edit in self.edits.items():
            if edit.hasFocus():
                return name
        return "findings"

    def current_sentence_id(self) -> str:
        return self.edits[self.focused_section()].current_sentence_id()

    def accept_sentence(self, sentence_id: str) -> None:
        if self.document is None or self.is_read_only() or not sentence_id:
            return
        (self.session or self.document).accept(sentence_id)
        self.refresh()
        self.reviewChanged.emit()
        self.textEdited.emit(self.document.section_of(sentence_id))  # provenance changed: autosave

    def reject_sentence(self, sentence_id: str) -> None:
        if self.document is None or self.is_read_only() or not sentence_id:
            return
        section = self.document.section_of(sentence_id)
        (self.session or self.document).reject(sentence_id)
        self.edits[section].replace_text(self.document.findings_text() if section == "findings"
                                         else self.document.impression_text())
        self.reviewChanged.emit()

    def accept_current(self) -> None:
        self.accept_sentence(self.current_sentence_id())

    def reject_current(self) -> None:
        self.reject_sentence(self.current_sentence_id())

    def accept_all(self) -> None:
        if self.document is None or self.is_read_only():
            return
        if (self.session or self.document).accept_all():
            self.refresh()
            self.reviewChanged.emit()
            self.textEdited.emit("findings")

    # ----- linking ----------------------------------------------------------------------
    def set_linked(self, sentence_id: str) -> None:
        for edit in self.edits.values():
            edit.set_linked(sentence_id)

    def scroll_to_sentence(self, sentence_id: str) -> bool:
        if self.document is None:
            return False
        try:
            section = self.document.section_of(sentence_id)
        except ValueError:
            return False
        return self.edits[section].select_sentence(sentence_id)

    def scroll_to_region(self, region: str) -> str:
        """Select the first sentence about a region; returns its id ("" if none)."""
        if self.document is None:
            return ""
        for sentence in self.document.sentences_for_region(region):
            if self.scroll_to_sentence(sentence.id):
                return sentence.id
        return ""

    def insert_sentence(self, section: str, text: str) -> None:
        """Append text at the end of a section as an undoable edit (describe-region result)."""
        edit = self.edits[section]
        current = edit.toPlainText().rstrip()
        edit.replace_text(f"{current} {text}".strip())

    # ----- templates and macros ---------------------------------------------------------
    def apply_template(self) -> None:
        if self.template is None or self.is_read_only():
            return
        findings, impression = self.template
        self.edits["findings"].replace_text(findings)
        self.edits["impression"].replace_text(impression)

    def _fill_template_menu(self) -> None:
        self.template_menu.clear()
        if self.template is not None:
            self.template_menu.addAction("Normal chest (replaces the text)", self.apply_template)
        for name, text in sorted(self.macros.items()):
            action = QAction(f"Insert macro “{name}”", self.template_menu)
            action.triggered.connect(lambda _=False, t=text: self._insert_at_cursor(t))
            self.template_menu.addAction(action)

    def _insert_at_cursor(self, text: str) -> None:
        edit = self.edits[self.focused_section()]
        if not edit.isReadOnly():
            edit.textCursor().insertText(text)

    def _context_menu(self, edit: SectionEdit, pos) -> None:
        cursor = edit.cursorForPosition(pos)
        if not edit.textCursor().hasSelection():
            edit.setTextCursor(cursor)
        menu = edit.createStandardContextMenu(pos)
        sentence_id = edit.sentence_id_at(cursor.position())
        if self.document is not None and not edit.isReadOnly() and sentence_id:
            menu.addSeparator()
            menu.addAction("Accept this sentence", lambda: self.accept_sentence(sentence_id))
            menu.addAction("Reject this sentence", lambda: self.reject_sentence(sentence_id))
            menu.addAction("Accept all model text", self.accept_all)
        menu.exec(edit.mapToGlobal(pos))
        menu.deleteLater()

    # ----- undo / redo on the section being edited -----------------------------------------
    def undo(self) -> None:
        self.edits[self.focused_section()].undo()

    def redo(self) -> None:
        self.edits[self.focused_section()].redo()
