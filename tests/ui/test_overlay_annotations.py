"""What a reader sees over the image: names on dark plates that nothing cuts or covers, only the
described regions until asked for all, no whole-image box, the heatmap legend, the R/L marker."""
from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import pytest
from PySide6.QtCore import QRectF

from rrg_desk.imaging import ViewPosition
from rrg_desk.reports.draft import RegionResult
from rrg_desk.reports.label_layout import Rect, crosses_outline
from rrg_desk.ui.overlay_panel import OverlayPanel
from rrg_desk.ui.overlays import RegionOverlay
from tests.ui.conftest import shown_image_view
from tests.ui.workstation_fixtures import make_draft, peaked_heatmap

# 400 x 300 image; overlapping boxes crowded against its edges, as a detector draws a chest.
CROWDED = [
    ("right_lung", (0, 0, 190, 290), True), ("right_upper_zone", (0, 0, 190, 100), True),
    ("right_clavicle", (30, 2, 150, 12), True), ("left_lung", (210, 3, 399, 290), True),
    ("left_upper_zone", (210, 3, 399, 100), False), ("heart", (120, 150, 280, 260), True),
    ("left_costophrenic_angle", (370, 270, 399, 299), False), ("mediastinum", (150, 20, 250, 280), False),
    ("right_lower_zone", (5, 200, 190, 295), False),
]


def regions(layout=CROWDED) -> list[RegionResult]:
    return [RegionResult(name, box, 0.9, selected, 0.5) for name, box, selected in layout]


def on_screen(view, item, rect: QRectF | None = None) -> Rect:
    """Where an item (or `rect` in its coordinates) is drawn, in viewport pixels."""
    rect = item.deviceTransform(view.viewportTransform()).mapRect(rect or item.boundingRect())
    return Rect(rect.left(), rect.top(), rect.right(), rect.bottom())


def visible_picture(view) -> Rect:
    picture = on_screen(view, view.image_item)
    viewport = view.viewport().rect()
    return picture.intersection(Rect(0, 0, viewport.width(), viewport.height()))


def assert_names_readable(view, overlay) -> list[Rect]:
    bounds = visible_picture(view)
    labels = []
    for name in overlay.region_names():
        item = overlay.item(name)
        if not item.label.isVisible():
            continue
        label = on_screen(view, item.label)
        box = on_screen(view, item, item.rect())  # the outline's centre line
        assert bounds.grown(0.5).contains(label), f"{name}: {label} is clipped by {bounds}"
        assert not crosses_outline(label.grown(-0.5), box), f"{name}: {label} sits on its box {box}"
        labels.append(label)
    furniture = [on_screen(view, item) for item in (*overlay.markers, overlay.legend) if item.isVisible()]
    for first, second in combinations(labels + furniture, 2):
        assert not first.grown(-0.5).overlaps(second), f"{first} overlaps {second}"
    return labels


def test_names_on_a_crowded_layout_are_never_clipped_cut_or_stacked(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    overlay.set_regions(regions())
    overlay.set_unselected_visible(True)
    overlay.set_heatmap(peaked_heatmap(7, 7))  # the legend takes a corner too
    labels = assert_names_readable(view, overlay)
    assert len(labels) >= 7  # crowded, yet nearly every region is named
    assert all(overlay.item(name).label.isVisible() for name, _box, chosen in CROWDED if chosen)
    for zoom in (2.5, 6.0):  # zoomed in, boxes run off the viewport: names stay on screen
        view.zoom_by(zoom)
        assert_names_readable(view, overlay)
    view.horizontalScrollBar().setValue(view.horizontalScrollBar().maximum())  # pan
    assert_names_readable(view, overlay)
    view.fit_to_window()
    view.resize(260, 300)
    qtbot.waitUntil(lambda: view.viewport().width() == 260)
    assert_names_readable(view, overlay)


def test_a_name_sits_on_a_dark_plate_over_bright_bone(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    overlay.set_regions(regions([("left_lung", (250, 40, 395, 290), True)]))  # the bright end of the ramp
    label = on_screen(view, overlay.item("left_lung").label)
    grab = view.viewport().grab().toImage()
    corner = grab.pixelColor(round(label.left) + 2, round(label.bottom) - 2)  # plate, not a letter
    beside = grab.pixelColor(round(label.right) + 6, round(label.bottom) - 2)  # the bright image
    assert corner.lightness() < 60 < beside.lightness()


def test_regions_without_a_sentence_are_hidden_until_all_are_asked_for(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    overlay.set_regions(make_draft("1", ramp_image.width, ramp_image.height).regions)
    assert overlay.is_region_shown("heart") and overlay.is_region_shown("right_lung")
    assert not overlay.is_region_shown("left_lung") and not overlay.unselected_visible()
    overlay.set_unselected_visible(True)
    assert overlay.is_region_shown("left_lung") and overlay.item("left_lung").label.isVisible()
    overlay.set_unselected_visible(False)
    assert not overlay.is_region_shown("left_lung")


def test_the_whole_image_region_is_never_drawn(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    whole = RegionResult("whole_image", (0, 0, ramp_image.width, ramp_image.height), 1.0, True, 1.0)
    overlay.set_regions(make_draft("1", ramp_image.width, ramp_image.height).regions + [whole])
    overlay.set_unselected_visible(True)
    assert "whole_image" not in overlay.region_names()
    texts = {item.text() for item in view.overlays() if hasattr(item, "text")}
    assert "whole image" not in texts and {"heart", "R", "L"} <= texts
    frame = QRectF(0, 0, ramp_image.width, ramp_image.height)
    assert not any(getattr(item, "rect", lambda: None)() == frame for item in view.overlays())


def test_the_panel_lists_described_regions_until_all_are_asked_for(qtbot):
    panel = OverlayPanel()
    qtbot.addWidget(panel)
    whole = RegionResult("whole_image", (0, 0, 10, 10), 1.0, True, 1.0)
    panel.set_regions(make_draft("1").regions + [whole])
    assert panel.region_item("whole_image") is None
    assert not panel.region_item("heart").isHidden() and panel.region_item("left_lung").isHidden()
    with qtbot.waitSignal(panel.allRegionsToggled) as blocker:
        panel.show_all_regions.setChecked(True)
    assert blocker.args == [True] and not panel.region_item("left_lung").isHidden()


def test_the_legend_shows_with_a_heatmap_only(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    assert not overlay.legend.isVisible()
    overlay.set_heatmap(peaked_heatmap(0, 0))
    assert overlay.legend.isVisible() and visible_picture(view).contains(on_screen(view, overlay.legend))
    legend = on_screen(view, overlay.legend)
    grab = view.viewport().grab().toImage()
    low = grab.pixelColor(round(legend.left) + 8, round(legend.top) + 9)
    high = grab.pixelColor(round(legend.right) - 8, round(legend.top) + 9)
    assert low.blue() > low.red() and high.red() > high.blue()  # turbo: blue (low) to red (high)
    overlay.set_heatmap(None)
    assert not overlay.legend.isVisible()
    panel = OverlayPanel()
    qtbot.addWidget(panel)
    panel.set_heatmap_caption("finding Cardiomegaly")
    assert not panel.legend.isHidden()
    panel.set_heatmap_caption("")
    assert panel.legend.isHidden()


def test_a_frontal_view_is_marked_r_on_the_viewers_left(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    right, left = overlay.markers
    assert (right.text(), left.text()) == ("R", "L") and right.isVisible() and left.isVisible()
    picture = visible_picture(view)
    r_rect, l_rect = on_screen(view, right), on_screen(view, left)
    assert picture.contains(r_rect) and picture.contains(l_rect)
    assert r_rect.right < picture.left + picture.width / 4 and l_rect.left > picture.right - picture.width / 4
    grab = view.viewport().grab().toImage()
    letter = [grab.pixelColor(x, y) for x in range(round(r_rect.left), round(r_rect.right))
              for y in range(round(r_rect.top), round(r_rect.bottom))]
    assert max(c.lightness() for c in letter) > 200 and min(c.lightness() for c in letter) < 40  # white on dark


@pytest.mark.parametrize("position", [ViewPosition.LATERAL])
def test_a_lateral_view_has_no_r_l_marker(qtbot, ramp_image, position):
    view = shown_image_view(qtbot, replace(ramp_image, view=position))
    overlay = RegionOverlay(view)
    assert not any(marker.isVisible() for marker in overlay.markers)


def test_an_organ_with_an_outline_is_drawn_as_its_contour_inside_its_box(qtbot, ramp_image):
    view = shown_image_view(qtbot, ramp_image)
    overlay = RegionOverlay(view)
    diamond = ((100.0, 40.0), (160.0, 150.0), (100.0, 260.0), (40.0, 150.0), (100.0, 40.0))
    heart = RegionResult("heart", (40, 40, 160, 260), 0.9, True, 0.5, outline=diamond)
    plain = RegionResult("mediastinum", (150, 20, 250, 280), 0.9, True, 0.5)
    overlay.set_regions([heart, plain])
    item = overlay.item("heart")
    assert item.outline is not None and overlay.item("mediastinum").outline is None
    assert item.rect().contains(item.outline.path().boundingRect())
    assert item.outline.isVisible() and item.outline.brush().color().alpha() > 0
    assert item.outline.pen().color() == item.label.color()  # the contour carries the region's colour
    overlay.set_region_visible("heart", False)
    assert not item.outline.isVisible()  # hides with its box
