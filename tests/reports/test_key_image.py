"""The exported key image reads like the workstation: names on dark plates inside the image and
off their outline, no whole-image box, R on the viewer's left."""
from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pytest

from rrg_desk.imaging import ViewPosition, apply_window, load_studies
from rrg_desk.paths import samples_dir
from rrg_desk.reports.draft import RegionResult
from rrg_desk.reports.export import image as key_image
from rrg_desk.reports.export.image import SELECTED_COLOUR, render_annotated_image
from rrg_desk.reports.label_layout import Rect, crosses_outline


@pytest.fixture(scope="module")
def frontal():
    studies, errors = load_studies([samples_dir() / "study1"])
    assert not errors
    return studies[0].frontal


def crowded(width: int, height: int) -> list[RegionResult]:
    """Selected boxes hugging the corners and edges, one thinner than a name."""
    boxes = {"right_lung": (0, 0, 0.48, 0.95), "right_upper_zone": (0, 0, 0.48, 0.35),
             "right_clavicle": (0.1, 0.005, 0.45, 0.03), "left_lung": (0.52, 0.01, 1.0, 0.95),
             "heart": (0.3, 0.5, 0.7, 0.85), "left_costophrenic_angle": (0.9, 0.9, 1.0, 1.0)}
    return [RegionResult(name, (x0 * width, y0 * height, x1 * width, y1 * height), 0.9, True, 0.5)
            for name, (x0, y0, x1, y1) in boxes.items()]


def test_key_image_names_stay_inside_off_their_outline_and_apart(frontal, monkeypatch):
    placed, place_labels = {}, key_image.place_labels

    def recording(boxes, sizes, bounds, obstacles=(), **kwargs):  # what the renderer asked and got
        spots = place_labels(boxes, sizes, bounds, obstacles, **kwargs)
        placed.update(boxes=boxes, spots=spots, bounds=bounds, obstacles=list(obstacles), **kwargs)
        return spots

    monkeypatch.setattr(key_image, "place_labels", recording)
    render_annotated_image(frontal, crowded(frontal.width, frontal.height))
    assert placed["bounds"] == Rect(0, 0, frontal.width, frontal.height)
    assert len(placed["obstacles"]) == 2  # R and L
    spots = [spot for spot in placed["spots"] if spot is not None]
    assert len(spots) >= 5
    for box, spot in zip(placed["boxes"], placed["spots"]):
        if spot is not None:
            assert placed["bounds"].contains(spot) and not crosses_outline(spot, box, placed["clearance"])
    for first, second in combinations(spots + placed["obstacles"], 2):
        assert not first.overlaps(second)


def test_key_image_names_sit_on_a_dark_plate(frontal):
    box = (0.3 * frontal.width, 0.5 * frontal.height, 0.7 * frontal.width, 0.85 * frontal.height)  # bright
    plain = np.asarray(render_annotated_image(frontal, [])).astype(int)
    named = np.asarray(render_annotated_image(frontal, [RegionResult("heart", box, 0.9, True, 0.5)])).astype(int)
    x0, y0 = (int(v) for v in box[:2])
    corner = (slice(y0 + 6, y0 + 18), slice(x0 + 6, x0 + 40))  # the name's plate, inside the box corner
    assert named[corner].mean() < 0.6 * plain[corner].mean()  # much darker than the image there
    assert (np.abs(named[corner] - np.array(SELECTED_COLOUR)).sum(axis=2) < 60).any()  # the name, in colour


def test_key_image_never_draws_the_whole_image_box(frontal):
    whole = RegionResult("whole_image", (0, 0, frontal.width, frontal.height), 1.0, True, 1.0)
    picture = np.asarray(render_annotated_image(frontal, [whole]))
    assert not (np.abs(picture[0].astype(int) - np.array(SELECTED_COLOUR)).sum(axis=1) < 30).any()
    assert (picture == np.asarray(render_annotated_image(frontal, []))).all()


def test_key_image_marks_r_on_the_viewers_left_of_a_frontal_view(frontal):
    picture = np.asarray(render_annotated_image(frontal, [])).astype(int)
    middle = frontal.height // 2
    for band in (picture[middle - 20: middle + 20, :40], picture[middle - 20: middle + 20, -40:]):
        assert band.min() < 60 and (band.min(axis=2) > 240).any()  # a white letter on a dark plate
    lateral = np.asarray(render_annotated_image(replace(frontal, view=ViewPosition.LATERAL), []))
    grey = apply_window(frontal.pixels, frontal.display_window())
    assert (lateral == grey[:, :, None]).all()  # nothing drawn: R/L would mislead on a lateral


def test_key_image_draws_an_organ_as_its_tinted_contour(frontal):
    w, h = frontal.width, frontal.height
    x0, y0, x1, y1 = 0.3 * w, 0.3 * h, 0.7 * w, 0.7 * h
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    diamond = ((centre[0], y0), (x1, centre[1]), (centre[0], y1), (x0, centre[1]), (centre[0], y0))
    heart = RegionResult("heart", (x0, y0, x1, y1), 0.9, True, 0.5, outline=diamond)
    plain = np.asarray(render_annotated_image(frontal, [])).astype(int)
    drawn = np.asarray(render_annotated_image(frontal, [heart])).astype(int)
    changed = np.abs(drawn - plain).sum(axis=2) > 0
    cx, cy = int(centre[0]), int(centre[1])
    assert changed[cy, cx]  # tinted inside the contour
    corner = (slice(int(y1) - 12, int(y1) - 4), slice(int(x1) - 12, int(x1) - 4))
    assert not changed[corner].any()  # the box corner outside the diamond stays untouched
    edge_row = drawn[cy, int(x1) - 3:int(x1) + 3]
    assert (np.abs(edge_row - np.array(SELECTED_COLOUR)).sum(axis=1) < 60).any()  # the contour, in colour
