"""One report section (FINDINGS or IMPRESSION) as a plain-text editor that knows its sentences.

- A QSyntaxHighlighter marks model text the radiologist has not yet accepted or edited
  (tinted, italic). It only paints: the text, its undo stack and the autosave never see it.
- The sentence under the text cursor or the mouse is reported by id, so the window can
  light up its region and heatmap.
- Tab after a macro name expands the macro; otherwise Tab moves to the next section.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QSyntaxHighlighter, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from rrg_desk.reports.text import split_sentence_spans

UNREVIEWED_BACKGROUND = QColor(40, 78, 120)
LINKED_BACKGROUND = QColor(120, 90, 20)


class ProvenanceHighlighter(QSyntaxHighlighter):
    """Formats each sentence span by the provenance of the document sentence at that index."""

    def __init__(self, edit: "SectionEdit") -> None:
        super().__init__(edit.document())
        self._edit = edit
        self.unreviewed = QTextCharFormat()
        self.unreviewed.setBackground(UNREVIEWED_BACKGROUND)
        self.unreviewed.setFontItalic(True)
        self.unreviewed.setToolTip("Model text: accept (Ctrl+Return… see Help) or edit it")
        self.linked = QTextCharFormat()
        self.linked.setBackground(LINKED_BACKGROUND)

    def highlightBlock(self, text: str) -> None:
        block_start = self.currentBlock().position()
        for index, (start, end) in self._edit.sentence_spans():
            if end <= block_start or start >= block_start + len(text) + 1:
                continue
            sentence = self._edit.sentence_at_index(index)
            if sentence is None:
                continue
            fmt = None
            if sentence.id == self._edit.linked_id:
                fmt = QTextCharFormat(self.linked)
                if sentence.unreviewed:
                    fmt.setFontItalic(True)
            elif sentence.unreviewed:
                fmt = self.unreviewed
            if fmt is not None:
                local_start = max(start - block_start, 0)
                self.setFormat(local_start, min(end - block_start, len(text)) - local_start, fmt)


class SectionEdit(QPlainTextEdit):
    sentenceActivated = Signal(str)  # id of the sentence holding the text cursor ("" for none)
    sentenceHovered = Signal(str)  # id of the sentence under the mouse ("" for none)
    # textChanged also fires when the highlighter repaints; this fires only on real text changes
    contentEdited = Signal()

    def __init__(self, section: str, sentences_provider: Callable[[], list] = list,
                 macros_provider: Callable[[], dict[str, str]] = dict, parent: QWidget | None = None) -> None:
        """The providers are asked each time: the document's live sentence list, the macros now."""
        super().__init__(parent)
        self.section = section
        self.sentences_provider = sentences_provider
        self.macros_provider = macros_provider
        self.linked_id = ""
        self._spans_cache: tuple[str, list[tuple[int, tuple[int, int]]]] | None = None
        self._hovered = ""
        self.setTabChangesFocus(False)
        self.setMouseTracking(True)
        self.highlighter = ProvenanceHighlighter(self)
        self._last_text = ""
        self.cursorPositionChanged.connect(self._on_cursor_moved)
        self.textChanged.connect(self._on_text_changed)

    # ----- sentences ----------------------------------------------------------------
    def sentence_spans(self) -> list[tuple[int, tuple[int, int]]]:
        text = self.toPlainText()
        if self._spans_cache is None or self._spans_cache[0] != text:
            self._spans_cache = (text, list(enumerate(split_sentence_spans(text))))
        return self._spans_cache[1]

    def sentence_at_index(self, index: int):
        sentences = self.sentences_provider()
        return sentences[index] if 0 <= index < len(sentences) else None

    def sentence_index_at(self, position: int) -> int:
        """Index of the sentence containing `position`, or the one just before it."""
        best = -1
        for index, (start, end) in self.sentence_spans():
            if start <= position <= end:
                return index
            if start <= position:
                best = index
        return best

    def sentence_id_at(self, position: int) -> str:
        sentence = self.sentence_at_index(self.sentence_index_at(position))
        return sentence.id if sentence is not None else ""

    def current_sentence_id(self) -> str:
        return self.sentence_id_at(self.textCursor().position())

    def select_sentence(self, sentence_id: str) -> bool:
        """Select a sentence's text and scroll to it (the region-click answer)."""
        sentences = self.sentences_provider()
        index = next((i for i, s in enumerate(sentences) if s.id == sentence_id), -1)
        spans = dict(self.sentence_spans())
        if index not in spans:
            return False
        start, end = spans[index]
        cursor = self.textCursor()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)
        self.ensureCursorVisible()
        return True

    def set_linked(self, sentence_id: str) -> None:
        if sentence_id != self.linked_id:
            self.linked_id = sentence_id
            self.highlighter.rehighlight()

    def replace_text(self, text: str) -> None:
        """Replace the whole section as one undoable edit (reject, template, inserted sentence)."""
        cursor = self.textCursor()
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        self.setTextCursor(cursor)

    # ----- events -------------------------------------------------------------------
    def _on_text_changed(self) -> None:
        text = self.toPlainText()
        if text != self._last_text:
            self._last_text = text
            self.contentEdited.emit()

    def _on_cursor_moved(self) -> None:
        self.sentenceActivated.emit(self.current_sentence_id())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        position = self.cursorForPosition(event.position().toPoint()).position()
        spans = self.sentence_spans()
        inside = any(start <= position <= end for _, (start, end) in spans)
        hovered = self.sentence_id_at(position) if inside else ""
        if hovered != self._hovered:
            self._hovered = hovered
            self.sentenceHovered.emit(hovered)
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        if self._hovered:
            self._hovered = ""
            self.sentenceHovered.emit("")
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Tab and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            if not self.expand_macro():
                self.focusNextChild()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Backtab:
            self.focusPreviousChild()
            event.accept()
            return
        super().keyPressEvent(event)

    def expand_macro(self) -> bool:
        """Replace the word before the cursor by its macro text; False if it is no macro."""
        if self.isReadOnly():
            return False
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.StartOfWord, QTextCursor.MoveMode.KeepAnchor)
        word = cursor.selectedText()
        if not word.strip():  # the cursor sits after a space: look at the word before it
            cursor = self.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.PreviousWord, QTextCursor.MoveMode.KeepAnchor)
            word = cursor.selectedText().strip()
        macros = {name.lower(): text for name, text in self.macros_provider().items()}
        expansion = macros.get(word.strip().lower())
        if expansion is None:
            return False
        cursor.insertText(expansion)
        self.setTextCursor(cursor)
        return True
