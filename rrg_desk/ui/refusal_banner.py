"""The banner shown when the input check refuses to draft: why, and "Draft anyway".

It sits above the report editor and never touches the report text; the choice to draft
anyway is audited by the session (rrg_desk.app.session.Session.draft_anyway).
"""
from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

# amber on dark: readable in both themes, distinct from the red of errors
_STYLE = ("RefusalBanner { background: #4a3a12; border: 1px solid #c8902a; border-radius: 3px; }"
          "RefusalBanner QLabel { color: #f3e2b8; }")
ADVICE = ("The models are trained on chest radiographs only; a draft of this image is likely to be "
          "wrong. Draft anyway only if you are sure it is a chest radiograph (the choice is logged).")


class RefusalBanner(QFrame):
    draftAnywayRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet(_STYLE)
        self.reason = QLabel(self)
        self.reason.setWordWrap(True)
        self.advice = QLabel(ADVICE, self)
        self.advice.setWordWrap(True)
        self.draft_anyway_button = QPushButton("Draft anyway", self)
        self.draft_anyway_button.setToolTip("Draft this study although the input check refused it (audited)")
        self.dismiss_button = QPushButton("Dismiss", self)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.dismiss_button)
        buttons.addWidget(self.draft_anyway_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.reason)
        layout.addWidget(self.advice)
        layout.addLayout(buttons)
        self.draft_anyway_button.clicked.connect(self._on_draft_anyway)
        self.dismiss_button.clicked.connect(self.hide)
        self.hide()

    def _on_draft_anyway(self) -> None:
        self.hide()  # one click, one request; the status bar follows the draft
        self.draftAnywayRequested.emit()

    def show_refusal(self, message: str) -> None:
        self.reason.setText(f"<b>Not drafted:</b> {html.escape(message)}")
        self.show()

