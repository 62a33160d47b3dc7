"""Region boxes, heatmaps, the colour LUT, the findings bars and the describe-region box tool."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QApplication

from rrg_desk.ui.box_tool import BoxTool
from rrg_desk.ui.colormap import colormap_lut, heatmap_to_qimage, normalised
from rrg_desk.ui.findings_panel import FindingsPanel
from rrg_desk.ui.overlays import HIGHLIGHT_COLOR, SELECTED_COLOR, RegionOverlay
from tests.ui.conftest import drag, shown_image_view
from tests.ui.workstation_fixtures import make_draft, peaked_heatmap


def viewport_point(view, x: float, y: float) -> QPoint:
    return view.mapFromScene(view.image_item.mapToScene(QPointF(x, y)))


def test_lut_is_opaque_at_the_top_and_transparent_at_the_bottom():
    lut = colormap_lut()
    assert lut.shape == (256, 4) and lut.dtype == np.uint8
    assert lut[0, 3] == 0 and lut[255, 3] == 255
    assert np.all(np.diff(lut[:, 3].astype(int)) >= 0)  # alpha never decreases


def test_lut_is_matplotlibs_turbo_without_importing_matplotlib():
    code = ("import sys, numpy as np\n"
            "from rrg_desk.ui.colormap import colormap_lut, heatmap_to_qimage\n"
            "heatmap_to_qimage(np.eye(8), size=(64, 64))\n"
            "print('matplotlib' in sys.modules, colormap_lut()[:, :3].tobytes().hex())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr
    imported, table = proc.stdout.split()
    assert imported == "False"  # the first heatmap costs no matplotlib import on the GUI thread
    from matplotlib import colormaps

    turbo = (colormaps["turbo"](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0).round().astype(np.uint8)
    assert table == turbo.tobytes().hex()


def test_heatmap_renders_its_peak_where_it_is():
    qimage = heatmap_to_qimage(peaked_heatmap(1, 6), size=(80, 80))
    assert (qimage.width(), qimage.height()) == (80, 80)
    alpha = np.array([[qimage.pixelColor(x, y).alpha() for x in range(0, 80, 10)] for y in range(0, 80, 10)])
    peak_row, peak_col = np.unravel_index(alpha.argmax(), alpha.shape)
    assert (peak_row, peak_col) == (1, 6)
    assert alpha[7, 0] == 0  # far from the peak: fully transparent


def test_normalised_survives_nan_and_flat_maps():
    assert normalised(np.full((3, 3), np.nan)).max() == 0.0
    assert normalised(np.ones((2, 2)) * 7).max() == 0.0  # no "where": nothing highlighted
    ramp = normalised(np.array([[0.2, 0.3], [0.4, 0.6]]))
    assert ramp.min() == 0.0 and ramp.max() == 1.0


def test_region_boxes_are_styled_by_selection_and_follow_highlight(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    draft = make_draft("1.2.3", ramp_image.width, ramp_image.height)
    overlay.set_regions(draft.regions)
    heart, left = overlay.item("heart"), overlay.item("left_lung")
    assert heart.pen().color() == SELECTED_COLOR and heart.pen().style() == Qt.PenStyle.SolidLine
    assert left.pen().style() == Qt.PenStyle.DashLine and not left.label.isVisible()
    assert heart.label.text() == "heart" and heart.label.isVisible()
    # the box sits where the draft put it, in image pixels
    assert heart.rect().left() == draft.regions[0].box[0] and heart.parentItem() is view.image_item
    overlay.set_highlighted("left_lung")
    assert left.pen().color() == HIGHLIGHT_COLOR and left.label.isVisible()
    assert heart.pen().color() == SELECTED_COLOR


def test_regions_toggle_all_and_one_by_one(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    overlay.set_regions(make_draft("1", ramp_image.width, ramp_image.height).regions)
    overlay.set_region_visible("heart", False)
    assert not overlay.is_region_shown("heart") and overlay.is_region_shown("right_lung")
    overlay.set_regions_visible(False)
    assert not any(overlay.is_region_shown(n) for n in overlay.region_names())
    overlay.set_highlighted("heart")  # a linked region shows even when boxes are off
    assert overlay.is_region_shown("heart")
    overlay.set_highlighted(None)
    overlay.set_regions_visible(True)
    assert overlay.is_region_shown("right_lung") and not overlay.is_region_shown("heart")


def test_clicking_a_box_reports_the_smallest_region_under_the_mouse(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    draft = make_draft("1", ramp_image.width, ramp_image.height)
    overlay.set_regions(draft.regions)
    x0, y0, x1, y1 = draft.regions[0].box  # heart overlaps the right lung; heart is smaller
    inside_both = viewport_point(view, x0 + 5, (y0 + y1) / 2)
    with qtbot.waitSignal(overlay.regionClicked) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=inside_both)
    assert blocker.args == ["heart"]


def test_hovering_a_box_highlights_it(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    draft = make_draft("1", ramp_image.width, ramp_image.height)
    overlay.set_regions(draft.regions)
    overlay.set_unselected_visible(True)  # the left lung has no sentence: hidden until asked for
    x0, y0, x1, y1 = draft.regions[2].box
    with qtbot.waitSignal(overlay.regionHovered) as blocker:
        qtbot.mouseMove(view.viewport(), viewport_point(view, x1 - 3, (y0 + y1) / 2))
    assert blocker.args == ["left_lung"]
    assert overlay.item("left_lung").pen().color() == HIGHLIGHT_COLOR


def test_heatmap_overlay_covers_the_image_and_takes_opacity(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    overlay.set_heatmap(peaked_heatmap(0, 0))
    assert overlay.heatmap_shown()
    rect = overlay.heatmap.mapRectToParent(overlay.heatmap.boundingRect())
    assert abs(rect.width() - ramp_image.width) < 1 and abs(rect.height() - ramp_image.height) < 1
    overlay.set_heatmap_opacity(0.3)
    assert abs(overlay.heatmap.opacity() - 0.3) < 1e-6
    before = view.grab().toImage()
    overlay.set_heatmap(None)
    assert not overlay.heatmap_shown()
    after = view.grab().toImage()
    corner = viewport_point(view, 5, 5)
    assert before.pixelColor(corner) != after.pixelColor(corner)  # the heatmap was drawn there


def test_shift_drag_draws_a_box_in_image_pixels(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    tool = BoxTool(view)
    start, end = viewport_point(view, 20, 30), viewport_point(view, 120, 150)
    press = QMouseEvent(QEvent.Type.MouseButtonPress, QPointF(start), QPointF(view.viewport().mapToGlobal(start)),
                        Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier)
    with qtbot.waitSignal(tool.boxDrawn) as blocker:
        QApplication.sendEvent(view.viewport(), press)
        drag(view.viewport(), start, end, Qt.MouseButton.LeftButton)  # move + release finish it
    x0, y0, x1, y1 = blocker.args[0]
    assert abs(x0 - 20) < 3 and abs(y0 - 30) < 3 and abs(x1 - 120) < 3 and abs(y1 - 150) < 3
    assert len(view.overlays()) == 0  # the rubber band is gone


def test_armed_tool_draws_with_a_plain_drag_once(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    tool = BoxTool(view)
    tool.set_armed(True)
    with qtbot.waitSignal(tool.boxDrawn):
        drag(view.viewport(), viewport_point(view, 10, 10), viewport_point(view, 90, 90), Qt.MouseButton.LeftButton)
    assert not tool.is_armed()
    with qtbot.assertNotEmitted(tool.boxDrawn):  # disarmed: a drag pans again
        drag(view.viewport(), viewport_point(view, 10, 10), viewport_point(view, 90, 90), Qt.MouseButton.LeftButton)


def test_findings_panel_marks_threshold_and_selects(qtbot):
    panel = FindingsPanel()
    qtbot.addWidget(panel)
    panel.resize(420, 300)
    panel.show()
    draft = make_draft("1")
    panel.set_findings(draft.findings)
    assert "Cardiomegaly" in panel.summary.text() and "Pneumothorax" not in panel.summary.text()
    bars = panel.bars
    row = [f.name for f in draft.findings].index("Cardiomegaly")
    with qtbot.waitSignal(panel.findingSelected) as blocker:
        qtbot.mouseClick(bars, Qt.MouseButton.LeftButton, pos=QPoint(20, row * 22 + 11))
    assert blocker.args == ["Cardiomegaly"] and panel.selected_finding() == "Cardiomegaly"
    image = bars.grab().toImage()
    bar = bars.bar_rect(row)
    threshold_x = int(bar.left() + bar.width() * 0.5)
    tick = image.pixelColor(threshold_x, int(bar.center().y()))
    assert tick.lightness() > 200  # the white threshold tick
    with qtbot.waitSignal(panel.findingSelected) as blocker:  # a second click clears
        qtbot.mouseClick(bars, Qt.MouseButton.LeftButton, pos=QPoint(20, row * 22 + 11))
    assert blocker.args == [""]


def _bar_colours(qtbot, findings) -> tuple[object, list[str]]:
    """A shown findings panel and the colour at the left end of each finding's bar."""
    panel = FindingsPanel()
    qtbot.addWidget(panel)
    panel.resize(420, 300)
    panel.show()
    panel.set_findings(findings)
    image = panel.bars.grab().toImage()
    colours = []
    for row in range(len(findings)):
        bar = panel.bars.bar_rect(row)
        colours.append(image.pixelColor(int(bar.left()) + 3, int(bar.center().y())).name())
    return panel, colours


def test_findings_panel_does_not_colour_no_finding_beside_a_called_pathology(qtbot):
    from rrg_desk.reports.draft import FindingResult
    from rrg_desk.ui.findings_panel import NEGATIVE_COLOR, POSITIVE_COLOR

    panel, colours = _bar_colours(qtbot, [FindingResult("No Finding", 0.8, 0.3),
                                          FindingResult("Cardiomegaly", 0.6, 0.2)])
    assert panel.summary.text().startswith("Above threshold: Cardiomegaly.")
    assert colours == [QColor(NEGATIVE_COLOR).name(), QColor(POSITIVE_COLOR).name()]


def test_findings_panel_draws_no_bar_for_a_finding_the_model_does_not_assess(qtbot):
    from rrg_desk.reports.draft import FindingResult
    from rrg_desk.ui.findings_panel import NEGATIVE_COLOR, POSITIVE_COLOR

    _panel, painted = _bar_colours(qtbot, [FindingResult("Support Devices", 0.96, 1.0),
                                           FindingResult("Edema", 0.96, 0.5)])
    assert painted[0] not in (QColor(NEGATIVE_COLOR).name(), QColor(POSITIVE_COLOR).name())
    assert painted[1] == QColor(POSITIVE_COLOR).name()


def test_findings_panel_says_which_measurement_a_finding_comes_from(qtbot):
    from rrg_desk.reports.draft import FindingResult

    panel, _colours = _bar_colours(qtbot, [FindingResult("Edema", 0.2, 0.5),
                                           FindingResult("Cardiomegaly", 0.81, 0.5,
                                                         measurement=("cardiothoracic_ratio", 0.583))])
    tips = []
    for row in range(2):
        position = QPointF(20, row * 22 + 11)
        panel.bars.mouseMoveEvent(QMouseEvent(QEvent.Type.MouseMove, position, panel.bars.mapToGlobal(position),
                                              Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                              Qt.KeyboardModifier.NoModifier))
        tips.append(panel.bars.toolTip())
    assert "ratio" not in tips[0]
    assert tips[1] == ("Cardiomegaly: 81.0% (above the threshold 50%), "
                       "from the cardiothoracic ratio 0.58 on the frontal view")
