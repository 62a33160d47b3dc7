"""The report editor: provenance marks, accept/reject, linking, macros, templates, undo, read-only."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCharFormat, QTextCursor
from PySide6.QtTest import QTest

from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.templates import NORMAL_CHEST_TEMPLATE
from rrg_desk.ui.report_editor import ReportEditor
from rrg_desk.ui.section_edit import UNREVIEWED_BACKGROUND
from tests.ui.conftest import show_widget
from tests.ui.workstation_fixtures import make_draft


@pytest.fixture
def editor(qtbot):
    widget = show_widget(qtbot, ReportEditor(), (500, 400))
    widget.set_document(ReportDocument.from_draft(make_draft("1.2.3")))
    return widget


def formats_at(edit, position: int):
    block = edit.document().findBlock(position)
    offset = position - block.position()
    ranges = block.layout().formats()  # keep the list alive while reading its formats
    return [QTextCharFormat(r.format) for r in ranges if r.start <= offset < r.start + r.length]


def is_marked(edit, position: int) -> bool:
    return any(f.background().color() == UNREVIEWED_BACKGROUND for f in formats_at(edit, position))


def put_cursor(edit, position: int) -> None:
    cursor = edit.textCursor()
    cursor.setPosition(position)
    edit.setTextCursor(cursor)


def test_model_text_is_marked_until_accepted(editor):
    findings = editor.edits["findings"]
    assert findings.toPlainText() == "The heart is enlarged. The right lung is clear."
    assert is_marked(findings, 2) and is_marked(findings, 30)
    assert "3 model sentences to review" in editor.unreviewed_label.text()
    put_cursor(findings, 2)
    findings.setFocus()
    editor.accept_current()
    assert not is_marked(findings, 2) and is_marked(findings, 30)
    editor.accept_all()
    assert not is_marked(findings, 30) and not editor.document.unreviewed_model_sentences()


def test_editing_a_model_sentence_unmarks_it_and_keeps_its_region(editor, qtbot):
    findings = editor.edits["findings"]
    end_of_first = findings.toPlainText().index(".")
    put_cursor(findings, end_of_first)
    findings.setFocus()
    with qtbot.waitSignal(editor.textEdited):
        QTest.keyClicks(findings, ", mildly")
    first = editor.document.findings[0]
    assert first.text == "The heart is enlarged, mildly." and first.edited and first.region == "heart"
    assert not is_marked(findings, 2)
    assert editor.word_count.text() == f"{editor.document.word_count()} words"


def test_reject_removes_the_sentence_and_undo_brings_the_text_back(editor):
    findings = editor.edits["findings"]
    put_cursor(findings, 30)
    findings.setFocus()
    editor.reject_current()
    assert findings.toPlainText() == "The heart is enlarged."
    assert [s.region for s in editor.document.findings] == ["heart"]
    editor.undo()
    assert findings.toPlainText() == "The heart is enlarged. The right lung is clear."


def test_cursor_and_hover_report_sentence_ids(editor, qtbot):
    findings = editor.edits["findings"]
    second = editor.document.findings[1]
    with qtbot.waitSignal(editor.sentenceActivated) as blocker:
        put_cursor(findings, 30)
    assert blocker.args == [second.id]
    rect = findings.cursorRect(findings.textCursor())
    put_cursor(findings, 0)
    with qtbot.waitSignal(editor.sentenceHovered) as blocker:
        QTest.mouseMove(findings.viewport(), rect.center())
    assert blocker.args == [second.id]


def test_loading_a_document_activates_no_sentence(editor, qtbot):
    activated = []
    editor.sentenceActivated.connect(activated.append)
    editor.set_document(ReportDocument.from_draft(make_draft("1.2.4")))  # moves each section's cursor
    assert activated == []  # the workstation sets the link once after loading
    put_cursor(editor.edits["findings"], 30)
    assert activated == [editor.document.findings[1].id]


def test_scroll_to_region_selects_its_sentence(editor):
    assert editor.scroll_to_region("right_lung") == editor.document.findings[1].id
    assert editor.edits["findings"].textCursor().selectedText() == "The right lung is clear."
    assert editor.scroll_to_region("left_lung") == ""  # no sentence about it


def test_tab_expands_a_macro(editor):
    editor.macros = {"nfd": "No acute cardiopulmonary abnormality."}
    impression = editor.edits["impression"]
    impression.setFocus()
    impression.moveCursor(QTextCursor.MoveOperation.End)
    QTest.keyClicks(impression, " nfd")
    QTest.keyClick(impression, Qt.Key.Key_Tab)
    assert impression.toPlainText() == "Cardiomegaly. No acute cardiopulmonary abnormality."
    assert editor.document.impression[-1].origin == "radiologist"


def test_template_replaces_both_sections_as_radiologist_text(editor):
    editor.template = (NORMAL_CHEST_TEMPLATE.findings, NORMAL_CHEST_TEMPLATE.impression)
    editor.apply_template()
    assert editor.document.findings_text() == NORMAL_CHEST_TEMPLATE.findings
    assert editor.document.impression_text() == NORMAL_CHEST_TEMPLATE.impression
    assert not editor.document.unreviewed_model_sentences()


def test_read_only_editor_refuses_typing(editor):
    editor.set_read_only(True, "Signed by Dr A")
    findings = editor.edits["findings"]
    before = findings.toPlainText()
    QTest.keyClicks(findings, "more text")
    assert findings.toPlainText() == before
    assert not editor.accept_all_button.isEnabled() and editor.banner.text() == "Signed by Dr A"


class SigningSession:
    """The editor's session: keeps edits in its document until the report is signed."""

    def __init__(self) -> None:
        self.record = object()
        self.document = None
        self.signed = False

    def edit(self, section: str, text: str) -> None:
        from rrg_desk.store.errors import ReportSignedError

        if self.signed:
            raise ReportSignedError("1.2.3")
        if self.document is None:  # the first word creates it, as the Session does
            self.document = ReportDocument(study_uid="1.2.3")
        self.document.replace_section_text(section, text)


def test_edits_go_through_the_session_until_it_refuses(qtbot):
    session = SigningSession()
    editor = ReportEditor(session)
    qtbot.addWidget(editor)
    QTest.keyClicks(editor.edits["findings"], "Clear lungs.")
    assert editor.document is session.document and session.document.findings_text() == "Clear lungs."
    session.signed = True
    with qtbot.waitSignal(editor.editRefused, timeout=1_000) as refused:
        QTest.keyClicks(editor.edits["findings"], " More")
    assert "signed" in refused.args[0]
    assert editor.section_text("findings") == "Clear lungs. More"  # the text stays on screen
    assert session.document.findings_text() == "Clear lungs."
