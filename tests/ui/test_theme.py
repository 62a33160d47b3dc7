"""Check boxes stand out in both themes: the indicator's border contrasts with the window, and a
ticked box looks ticked (the truthfulness review and export dialogs are made of them)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QCheckBox, QStyle, QStyleOptionButton

from rrg_desk.ui.export_dialog import ExportDialog
from rrg_desk.ui.review_dialog import ReviewDialog
from rrg_desk.ui.theme import ClearIndicatorStyle, apply_theme


@pytest.fixture
def themed(qapp):
    style_name, palette = qapp.style().name(), QPalette(qapp.palette())
    yield lambda name: apply_theme(qapp, name)
    qapp.setStyle(style_name)
    qapp.setPalette(palette)


def _luma(color) -> float:
    return 0.299 * color.red() + 0.587 * color.green() + 0.114 * color.blue()


def _indicator_pixels(box: QCheckBox):
    box.resize(box.sizeHint())
    image = box.grab().toImage()
    option = QStyleOptionButton()
    box.initStyleOption(option)
    rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, box)
    return [image.pixelColor(x, y) for x in range(rect.left(), rect.right() + 1)
            for y in range(rect.top(), rect.bottom() + 1)]


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_check_box_border_and_tick_stand_out(qtbot, themed, theme):
    themed(theme)
    assert isinstance(QApplication.instance().style(), ClearIndicatorStyle)
    window = _luma(QApplication.instance().palette().color(QPalette.ColorRole.Window))
    unticked, ticked = QCheckBox("Anonymise"), QCheckBox("Anonymise")
    ticked.setChecked(True)
    for box in (unticked, ticked):
        qtbot.addWidget(box)
    plain = _indicator_pixels(unticked)
    assert max(abs(_luma(c) - window) for c in plain) > 120  # the outline is seen against the window
    marked = _indicator_pixels(ticked)
    highlight = QApplication.instance().palette().color(QPalette.ColorRole.Highlight)
    filled = sum(abs(c.red() - highlight.red()) + abs(c.green() - highlight.green())
                 + abs(c.blue() - highlight.blue()) < 40 for c in marked)
    assert filled > 15  # a ticked box is filled with the highlight colour...
    assert sum(_luma(c) > 200 for c in marked) > 4  # ...and carries a light tick


def test_review_and_export_dialog_ticks_use_the_clear_indicator(qtbot, themed):
    themed("dark")
    export = ExportDialog("/tmp", signed=True)
    qtbot.addWidget(export)
    export.anonymise.setChecked(True)
    assert max(abs(_luma(c) - 37) for c in _indicator_pixels(export.anonymise)) > 120

    class Flag:
        kind, message, sentence_id = "unreviewed_model_text", "Model text not reviewed.", ""

    review = ReviewDialog([Flag()], "Dr Test")
    qtbot.addWidget(review)
    review.show()
    qtbot.waitExposed(review)
    item = review.list.item(0)
    rect = review.list.visualItemRect(item)
    image = review.list.viewport().grab().toImage()
    row = [image.pixelColor(x, y) for x in range(rect.left(), rect.left() + 30)
           for y in range(rect.top(), rect.bottom())]
    base = _luma(review.list.palette().color(QPalette.ColorRole.Base))
    assert max(abs(_luma(c) - base) for c in row) > 120  # the item's check box is visible
    review.set_checked(0, True)
    assert item.checkState() == Qt.CheckState.Checked and review.sign_button.isEnabled()
