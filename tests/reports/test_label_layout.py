"""Label placement: inside the picture, off every box outline, never on another label."""
from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrg_desk.reports.label_layout import (EDGE_CLEARANCE, Rect, bottom_right_spot, crosses_outline, place_labels,
                                           side_marker_spots)

IMAGE = Rect(0, 0, 400, 300)
LABEL = (72.0, 14.0)

# Overlapping boxes crowded against the image edges, as a detector draws a chest.
CROWDED = {
    "right_lung": Rect(0, 0, 190, 290),  # touches the top-left corner
    "right_upper_zone": Rect(0, 0, 190, 100),  # shares that corner with the lung
    "right_clavicle": Rect(30, 2, 150, 12),  # thinner than a label
    "left_lung": Rect(210, 3, 400, 290),  # touches the right edge
    "left_upper_zone": Rect(210, 3, 400, 100),
    "heart": Rect(120, 150, 280, 260),  # overlaps both lungs
    "left_costophrenic_angle": Rect(370, 270, 400, 300),  # tiny, in the bottom-right corner
    "mediastinum": Rect(150, 20, 250, 280),
}


def assert_readable(boxes: list[Rect], labels: list[Rect | None], bounds: Rect, obstacles=()) -> None:
    for box, label in zip(boxes, labels):
        if label is None:
            continue
        assert bounds.contains(label), f"{label} leaves {bounds}"
        assert not crosses_outline(label, box), f"{label} sits on the outline of {box}"
        assert not any(label.overlaps(obstacle) for obstacle in obstacles)
    for first, second in combinations([label for label in labels if label is not None], 2):
        assert not first.overlaps(second), f"{first} overlaps {second}"


def test_crowded_boxes_near_the_edges_all_get_a_readable_label():
    boxes = list(CROWDED.values())
    labels = place_labels(boxes, [LABEL] * len(boxes), IMAGE)
    assert_readable(boxes, labels, IMAGE)
    assert all(label is not None for label in labels)


def test_a_roomy_box_names_itself_in_its_top_left_corner():
    box = Rect(50, 40, 300, 250)
    (label,) = place_labels([box], [LABEL], IMAGE)
    assert label == Rect.from_size(50 + EDGE_CLEARANCE, 40 + EDGE_CLEARANCE, *LABEL)


def test_a_box_too_thin_for_its_name_is_named_above_or_below_it():
    box = CROWDED["right_clavicle"]
    (label,) = place_labels([box], [LABEL], IMAGE)
    assert label.top >= box.bottom + EDGE_CLEARANCE or label.bottom <= box.top - EDGE_CLEARANCE


def test_labels_stay_inside_a_zoomed_in_viewport():
    viewport = Rect(100, 100, 300, 220)  # the box is bigger than what is visible of it
    box = Rect(40, 60, 500, 400)
    (label,) = place_labels([box], [LABEL], viewport)
    assert viewport.contains(label) and not crosses_outline(label, box)


def test_labels_avoid_obstacles_and_skip_boxes_out_of_sight():
    marker = Rect(3, 3, 80, 30)
    boxes = [Rect(0, 0, 200, 200), Rect(500, 500, 600, 600)]
    labels = place_labels(boxes, [LABEL] * 2, IMAGE, obstacles=[marker])
    assert labels[0] is not None and not labels[0].overlaps(marker)
    assert labels[1] is None


def test_a_label_with_nowhere_to_go_is_left_out_rather_than_stacked():
    box = Rect(0, 0, 80, 20)  # fills the picture: room for one name inside, none above or below
    first, second = place_labels([box, box], [LABEL, LABEL], Rect(0, 0, 80, 20))
    assert first is not None and second is None


def test_sizes_must_match_boxes():
    with pytest.raises(ValueError):
        place_labels([Rect(0, 0, 10, 10)], [], IMAGE)


def test_markers_sit_at_the_left_and_right_edges_and_the_legend_bottom_right():
    right_marker, left_marker = side_marker_spots(IMAGE, [(20, 24), (20, 24)], margin=4)
    assert right_marker.left == 4 and left_marker.right == 396
    assert IMAGE.contains(right_marker) and IMAGE.contains(left_marker)
    legend = bottom_right_spot(IMAGE, (150, 30), margin=4)
    assert (legend.right, legend.bottom) == (396, 296)


coordinate = st.floats(min_value=-50, max_value=450, allow_nan=False)


@st.composite
def boxes(draw):
    x0, x1 = sorted((draw(coordinate), draw(coordinate)))
    y0, y1 = sorted((draw(coordinate), draw(coordinate)))
    return Rect(x0, y0, x1 + 1, y1 + 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(boxes(), min_size=1, max_size=20),
       st.lists(st.tuples(st.floats(8, 120), st.floats(8, 24)), min_size=20, max_size=20))
def test_any_layout_keeps_every_placed_label_readable(layout, sizes):
    labels = place_labels(layout, sizes[:len(layout)], IMAGE)
    assert_readable(layout, labels, IMAGE)
