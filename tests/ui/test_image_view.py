"""ImageView: what the pixmap shows follows window/level, invert, presets; zoom and pan."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QGraphicsRectItem

from rrg_desk.imaging import PRESETS, Window, apply_window, preset_window
from rrg_desk.ui.image_view import ImageView
from rrg_desk.ui.qt_image import gray_to_qimage, qimage_to_gray
from tests.ui.conftest import drag, shown_image_view


@pytest.fixture
def view(qtbot, ramp_image):
    return shown_image_view(qtbot, ramp_image, (500, 400))


def shown(view: ImageView) -> np.ndarray:
    return qimage_to_gray(view.displayed_qimage())


def test_gray_to_qimage_shares_the_buffer_and_round_trips():
    gray = (np.arange(7 * 5, dtype=np.uint8) * 7).reshape(7, 5)  # odd width: padded scanlines
    qimage, buffer = gray_to_qimage(gray)
    assert (qimage.width(), qimage.height()) == (5, 7)
    np.testing.assert_array_equal(qimage_to_gray(qimage), gray)
    assert buffer.flags.c_contiguous


def test_displayed_pixels_are_the_file_window_at_first(view, ramp_image):
    expected = apply_window(ramp_image.pixels, ramp_image.default_window)
    np.testing.assert_array_equal(shown(view), expected)
    row = shown(view)[-1]  # bottom row is a pure left-to-right ramp
    assert row[0] < 5 and row[-1] > 250 and np.all(np.diff(row.astype(int)) >= 0)


def test_window_level_api_changes_displayed_pixels(view, ramp_image, qtbot):
    before = shown(view)
    with qtbot.waitSignal(view.windowLevelChanged) as blocker:
        view.set_display_window(Window(center=1000.0, width=500.0))
    assert blocker.args == [1000.0, 500.0]
    after = shown(view)
    low_col = int(750 / 4095 * (ramp_image.width - 1)) - 2  # just below center - width/2
    high_col = int(1250 / 4095 * (ramp_image.width - 1)) + 2  # just above center + width/2
    assert after[-1, low_col] == 0 and after[-1, high_col] == 255
    assert 0 < before[-1, low_col] < 255  # the wide file window had shown them grey
    assert (after == 255).mean() > (before == 255).mean()  # narrower window: more saturated


def test_right_drag_right_widens_and_down_raises_level(view):
    start = view.display_window()
    centre = view.viewport().rect().center()
    drag(view.viewport(), centre, centre + QPoint(100, 0), Qt.MouseButton.RightButton)
    widened = view.display_window()
    assert widened.width > start.width and widened.center == pytest.approx(start.center)
    before = shown(view)
    drag(view.viewport(), centre, centre + QPoint(0, 80), Qt.MouseButton.RightButton)
    lowered = view.display_window()
    assert lowered.center > widened.center and lowered.width == pytest.approx(widened.width)
    assert shown(view).mean() < before.mean()  # higher level -> darker image


def test_right_drag_left_narrows_but_never_to_zero(view):
    centre = view.viewport().rect().center()
    drag(view.viewport(), centre, centre + QPoint(-5000, 0), Qt.MouseButton.RightButton)
    assert 0 < view.display_window().width < 10


def test_invert_flips_pixel_values(view, qtbot):
    before = shown(view)
    with qtbot.waitSignal(view.inversionChanged) as blocker:
        view.toggle_invert()
    assert blocker.args == [True]
    np.testing.assert_array_equal(shown(view), 255 - before)
    view.toggle_invert()
    np.testing.assert_array_equal(shown(view), before)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_apply_the_imaging_window(view, ramp_image, name):
    view.set_display_window(Window(center=10.0, width=20.0))
    view.apply_preset(name)
    expected_window = preset_window(ramp_image, name)
    assert view.display_window() == expected_window
    np.testing.assert_array_equal(shown(view), apply_window(ramp_image.pixels, expected_window))


def test_full_and_lung_presets_look_different(view):
    view.apply_preset("full")
    full = shown(view)
    view.apply_preset("lung")
    assert shown(view).mean() > full.mean()  # lung spreads the dark half: brighter overall


def test_fit_shows_the_whole_image(view, ramp_image):
    view.zoom_by(4.0)
    view.fit_to_window()
    assert view.is_fit_mode()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(view.image_item.boundingRect())
    expected = min(view.viewport().width() / ramp_image.width, view.viewport().height() / ramp_image.height)
    assert view.zoom_factor() == pytest.approx(expected, rel=0.03)


def test_fit_follows_resize(view):
    view.fit_to_window()
    before = view.zoom_factor()
    view.resize(1000, 800)
    assert view.zoom_factor() > before * 1.5


def test_one_to_one(view):
    view.one_to_one()
    assert view.zoom_factor() == pytest.approx(1.0)
    assert not view.is_fit_mode()


def test_wheel_zoom_in_and_out_changes_the_transform(view, qtbot):
    view.fit_to_window()
    start = view.zoom_factor()
    anchor = QPoint(150, 120)
    with qtbot.waitSignal(view.zoomChanged):
        _wheel(view, anchor, 120)
    assert view.zoom_factor() == pytest.approx(start * 1.25)
    _wheel(view, anchor, -240)
    assert view.zoom_factor() == pytest.approx(start / 1.25)


def test_wheel_zoom_keeps_the_point_under_the_mouse(view):
    view.one_to_one()
    view.zoom_by(2.0)  # image now larger than the viewport: room to anchor anywhere
    anchor = QPoint(120, 90)
    under_mouse = view.mapToScene(anchor)
    _wheel(view, anchor, 120)
    after = view.mapToScene(anchor)
    assert abs(after.x() - under_mouse.x()) <= 1.0 and abs(after.y() - under_mouse.y()) <= 1.0


def test_zoom_is_clamped(view):
    for _ in range(40):
        view.zoom_by(2.0)
    assert view.zoom_factor() == pytest.approx(32.0)


@pytest.mark.parametrize("button", [Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton])
def test_drag_pans_when_zoomed(view, button):
    view.one_to_one()
    view.zoom_by(3.0)
    centre = view.viewport().rect().center()
    before = view.mapToScene(centre)
    drag(view.viewport(), centre, centre + QPoint(60, 40), button)
    after = view.mapToScene(centre)
    # content follows the hand: the scene point now under the centre lies up-left
    assert after.x() == pytest.approx(before.x() - 60 / 3.0, abs=1.0)
    assert after.y() == pytest.approx(before.y() - 40 / 3.0, abs=1.0)
    assert view.display_window() == view.image.default_window  # panning leaves W/L alone


def test_reset_restores_window_inversion_and_fit(view, ramp_image):
    baseline = shown(view)
    view.set_display_window(Window(center=100.0, width=50.0))
    view.set_inverted(True)
    view.zoom_by(5.0)
    view.reset()
    assert view.display_window() == ramp_image.default_window
    assert not view.is_inverted() and view.is_fit_mode()
    np.testing.assert_array_equal(shown(view), baseline)


def test_overlays_live_in_image_coordinates_and_clear_with_a_new_image(view, ramp_image):
    box = view.add_overlay(QGraphicsRectItem(10, 20, 30, 40))
    assert box.parentItem() is view.image_item and view.overlays() == [box]
    view.zoom_by(2.0)
    assert box.mapToScene(QPointF(10, 20)) == QPointF(10, 20)  # image px == scene px
    view.set_image(ramp_image)
    assert view.overlays() == []


def test_empty_view_ignores_commands(qtbot):
    empty = ImageView()
    qtbot.addWidget(empty)
    empty.fit_to_window()
    empty.zoom_by(2.0)
    empty.apply_preset("lung")
    empty.reset()
    assert empty.display_window() is None and empty.image is None


def _wheel(view: ImageView, pos: QPoint, delta: int) -> None:
    event = QWheelEvent(QPointF(pos), QPointF(view.viewport().mapToGlobal(pos)), QPoint(0, 0), QPoint(0, delta),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)
