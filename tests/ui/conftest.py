"""Viewer test fixtures: synthetic DICOM studies and a main window with isolated settings."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from rrg_desk.imaging import ViewPosition, Window, XrayImage
from rrg_desk.ui.image_view import ImageView
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.settings import open_settings
from tests.ui.dicom_factory import ramp_pixels, write_test_study


@pytest.fixture
def study_dir(tmp_path) -> Path:
    folder = tmp_path / "study1"
    write_test_study(folder)
    return folder


@pytest.fixture
def ramp_image() -> XrayImage:
    pixels = ramp_pixels(300, 400).astype(np.float32)
    return XrayImage(pixels=pixels, view=ViewPosition.PA, pixel_spacing_mm=(0.2, 0.2),
                     default_window=Window(center=2048.0, width=4096.0))


def show_widget(qtbot, widget, size: tuple[int, int] | None = None):
    """`widget` handed to qtbot (closed after the test), resized to `size` if given, shown and exposed."""
    qtbot.addWidget(widget)
    if size is not None:
        widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown_image_view(qtbot, image: XrayImage, size: tuple[int, int] = (400, 500)) -> ImageView:
    view = show_widget(qtbot, ImageView(), size)
    view.set_image(image)
    return view


@pytest.fixture
def window(qtbot):
    from rrg_desk.app.settings import AppSettings

    # settings.ini and the database under the tmp RRG_DESK_DATA_DIR; no drafting behind the viewer tests
    main = show_widget(qtbot, MainWindow(settings=open_settings(),
                                         app_settings=AppSettings(auto_draft=False, bundle_dir="")), (1200, 800))
    yield main
    main.loader.wait_for_done(5_000)


def open_and_wait(qtbot, main: MainWindow, paths) -> int:
    with qtbot.waitSignal(main.loadHandled, timeout=10_000) as blocker:
        request_id = main.open_paths(paths)
    assert blocker.args == [request_id]
    return request_id


def send_mouse(widget, event_type: QEvent.Type, pos: QPoint, button: Qt.MouseButton,
               buttons: Qt.MouseButton) -> None:
    """Deliver a mouse event with an explicit button state (QTest's move carries none)."""
    local = QPointF(pos)
    global_pos = QPointF(widget.mapToGlobal(pos))
    event = QMouseEvent(event_type, local, global_pos, button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(widget, start: QPoint, end: QPoint, button: Qt.MouseButton, steps: int = 4) -> None:
    send_mouse(widget, QEvent.Type.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        point = start + (end - start) * (i / steps)
        send_mouse(widget, QEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, button)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A randomly initialised tiny bundle (plumbing, not quality); seed 1 writes a sentence."""
    from rrg_desk.models.bundle import build_random_bundle

    return build_random_bundle(tmp_path_factory.mktemp("bundles") / "tiny", size="tiny", seed=1)


@pytest.fixture(scope="session")
def sample_study_dir() -> Path:
    from rrg_desk.paths import samples_dir

    return samples_dir() / "study1"
