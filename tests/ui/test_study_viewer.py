"""StudyViewer: panes are built with the viewer and reused, each study shows exactly its images."""
from __future__ import annotations

import numpy as np

from rrg_desk.imaging import Study, ViewPosition, Window, XrayImage
from rrg_desk.ui.study_viewer import PANES_BUILT_AHEAD, ImagePane, StudyViewer
from tests.ui.conftest import show_widget


def _image(view: ViewPosition, width: int) -> XrayImage:
    pixels = np.tile(np.linspace(0, 4095, width, dtype=np.float32), (200, 1))
    return XrayImage(pixels=pixels, view=view, pixel_spacing_mm=(0.2, 0.2),
                     default_window=Window(center=2048.0, width=4096.0))


def _study(uid: str, *images: XrayImage) -> Study:
    return Study(study_uid=uid, images=list(images))


def test_panes_are_built_ahead_and_reused_across_studies(qtbot):
    viewer = show_widget(qtbot, StudyViewer(), (900, 500))
    assert viewer.panes == []  # nothing shown yet ...
    assert len(viewer.findChildren(ImagePane)) == PANES_BUILT_AHEAD  # ... but the frontal and lateral panes exist

    frontal, lateral = _image(ViewPosition.PA, 150), _image(ViewPosition.LATERAL, 120)
    viewer.set_study(_study("1.2.3", frontal, lateral))
    first_panes = viewer.panes
    assert [pane.view.image for pane in first_panes] == [frontal, lateral]
    assert all(pane.isVisible() for pane in first_panes)
    first_panes[0].view.toggle_invert()

    single = _image(ViewPosition.AP, 180)
    viewer.set_study(_study("1.2.4", single))
    assert viewer.panes == first_panes[:1]  # the same widget, not a new one
    assert viewer.panes[0].view.image is single and not viewer.panes[0].view.is_inverted()
    assert not first_panes[1].isVisible() and first_panes[1].view.image is None

    three = [_image(ViewPosition.PA, 100), _image(ViewPosition.LATERAL, 110), _image(ViewPosition.AP, 130)]
    viewer.set_study(_study("1.2.5", *three))
    assert viewer.panes[:2] == first_panes and len(viewer.panes) == 3  # a third pane only when needed
    assert all(pane.isVisible() for pane in viewer.panes)
    assert len(viewer.findChildren(ImagePane)) == 3

    viewer.set_study(None)
    assert viewer.panes == [] and viewer.study is None
