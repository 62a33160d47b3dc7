"""The classifier's findings: one row each, a probability bar with the card's threshold marked.

Click a row (or use the arrow keys) to select a finding; the window then shows its heatmap.
Findings at or above their threshold are drawn in the warning colour.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QKeyEvent, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from rrg_desk.models.findings import NO_FINDING
from rrg_desk.models.measurements import MEASURE_LABELS
from rrg_desk.reports.draft import called_present

ROW_HEIGHT = 22
NAME_WIDTH = 170
VALUE_WIDTH = 44
POSITIVE_COLOR = QColor(235, 120, 60)
NEGATIVE_COLOR = QColor(70, 130, 180)
THRESHOLD_COLOR = QColor(250, 250, 250)
EMPTY_TEXT = "No draft yet: the findings appear here after drafting (Ctrl+D)."


class FindingBars(QWidget):
    findingSelected = Signal(str)  # "" when the selection is cleared

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._findings: list = []  # FindingResult-like: name, probability, threshold, positive
        self._present: set[str] = set()
        self._selected = -1
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)

    def set_findings(self, findings) -> None:
        selected = self.selected_finding()
        self._findings = list(findings or [])
        self._present = called_present(self._findings)
        names = [f.name for f in self._findings]
        self._selected = names.index(selected) if selected in names else -1
        self.setMinimumHeight(max(len(self._findings), 1) * ROW_HEIGHT)  # the scroll area sizes by it
        self.update()

    def findings(self) -> list:
        return list(self._findings)

    def selected_finding(self) -> str:
        return self._findings[self._selected].name if 0 <= self._selected < len(self._findings) else ""

    def select(self, name: str) -> None:
        names = [f.name for f in self._findings]
        index = names.index(name) if name in names else -1
        if index != self._selected:
            self._selected = index
            self.update()
            self.findingSelected.emit(self.selected_finding())

    def row_at(self, y: float) -> int:
        row = int(y // ROW_HEIGHT)
        return row if 0 <= row < len(self._findings) else -1

    def bar_rect(self, row: int) -> QRectF:
        left = NAME_WIDTH
        width = max(self.width() - NAME_WIDTH - VALUE_WIDTH - 8, 20)
        return QRectF(left, row * ROW_HEIGHT + 5, width, ROW_HEIGHT - 10)

    def sizeHint(self) -> QSize:
        return QSize(NAME_WIDTH + 200 + VALUE_WIDTH, max(len(self._findings), 1) * ROW_HEIGHT)

    def minimumSizeHint(self) -> QSize:
        return QSize(NAME_WIDTH + 60 + VALUE_WIDTH, max(len(self._findings), 1) * ROW_HEIGHT)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        palette = self.palette()
        metrics = QFontMetrics(self.font())
        for row, finding in enumerate(self._findings):
            top = row * ROW_HEIGHT
            if row == self._selected:
                painter.fillRect(QRectF(0, top, self.width(), ROW_HEIGHT), palette.highlight())
            painter.setPen(palette.highlightedText().color() if row == self._selected else palette.windowText().color())
            name = metrics.elidedText(finding.name, Qt.TextElideMode.ElideRight, NAME_WIDTH - 8)
            painter.drawText(QRectF(4, top, NAME_WIDTH - 8, ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
            bar = self.bar_rect(row)
            painter.fillRect(bar, palette.base())
            assessed = finding.threshold < 1.0  # 1.0 is the card's mark for "no validated skill"
            if assessed:  # an unassessed finding's score means nothing: no bar, no tick, no number
                filled = QRectF(bar.left(), bar.top(), bar.width() * min(max(finding.probability, 0.0), 1.0),
                                bar.height())
                painter.fillRect(filled, POSITIVE_COLOR if finding.name in self._present else NEGATIVE_COLOR)
                x = bar.left() + bar.width() * min(max(finding.threshold, 0.0), 1.0)
                painter.setPen(QPen(THRESHOLD_COLOR, 2))
                painter.drawLine(int(round(x)), int(bar.top()) - 3, int(round(x)), int(bar.bottom()) + 3)
            painter.setPen(palette.windowText().color() if row != self._selected else palette.highlightedText().color())
            painter.drawText(QRectF(bar.right() + 4, top, VALUE_WIDTH, ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             f"{finding.probability * 100:.0f}%" if assessed else "n/a")
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        row = self.row_at(event.position().y())
        if row >= 0:
            name = self._findings[row].name
            self.select("" if name == self.selected_finding() else name)  # a second click clears
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        row = self.row_at(event.position().y())
        if row >= 0:
            f = self._findings[row]
            if f.threshold >= 1.0:  # the card's mark for a finding without validated skill
                self.setToolTip(f"{f.name}: not assessed by this model (no validated skill); never asserted")
                return
            verdict = "above" if f.positive else "below"
            text = f"{f.name}: {f.probability:.1%} ({verdict} the threshold {f.threshold:.0%})"
            if f.measurement is not None:
                measure_name, value = f.measurement
                text += f", from the {MEASURE_LABELS.get(measure_name, measure_name)} {value:.2f} on the frontal view"
            if f.positive and f.name not in self._present:
                text += "; not called: a finding is above its threshold"
            self.setToolTip(text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1}.get(event.key())
        if step and self._findings:
            row = min(max(self._selected + step, 0), len(self._findings) - 1)
            self.select(self._findings[row].name)
        elif event.key() == Qt.Key.Key_Escape:
            self.select("")
        else:
            super().keyPressEvent(event)


class FindingsPanel(QWidget):
    findingSelected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bars = FindingBars(self)
        self.summary = QLabel(EMPTY_TEXT, self)
        self.summary.setWordWrap(True)
        scroll = QScrollArea(self)
        scroll.setWidget(self.bars)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(scroll, 1)
        self.bars.findingSelected.connect(self.findingSelected)

    def set_findings(self, findings) -> None:
        self.bars.set_findings(findings)
        if not findings:
            self.summary.setText(EMPTY_TEXT)
            return
        positive = sorted(called_present(findings) - {NO_FINDING})
        self.summary.setText("Above threshold: " + (", ".join(positive) if positive else "none") +
                             ". White tick = the model card's threshold; click a finding for its heatmap.")

    def selected_finding(self) -> str:
        return self.bars.selected_finding()

    def select(self, name: str) -> None:
        self.bars.select(name)
