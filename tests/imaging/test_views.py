"""View hints from free text: whole words only, contradictions and obliques stay UNKNOWN."""
from __future__ import annotations

import pytest

from rrg_desk.imaging import ViewPosition
from rrg_desk.imaging.views import view_from_codes, view_from_position_value, view_from_text


@pytest.mark.parametrize(
    ("text", "view"),
    [
        ("CHEST PA", ViewPosition.PA),
        ("chest_ap_portable", ViewPosition.AP),
        ("Thorax lateral", ViewPosition.LATERAL),
        ("postero-anterior", ViewPosition.PA),
        ("LAT", ViewPosition.LATERAL),
        ("PATIENT", ViewPosition.UNKNOWN),
        ("lapa", ViewPosition.UNKNOWN),
        ("PA oblique", ViewPosition.UNKNOWN),
        ("left lateral decubitus", ViewPosition.UNKNOWN),
        ("", ViewPosition.UNKNOWN),
    ],
)
def test_view_from_text(text, view):
    assert view_from_text(text) is view


def test_first_text_with_a_hint_wins():
    assert view_from_text("", "chest", "AP") is ViewPosition.AP
    assert view_from_text("PA", "LAT") is ViewPosition.PA


def test_position_values_are_case_and_space_tolerant():
    assert view_from_position_value(" pa ") is ViewPosition.PA
    assert view_from_position_value("RLD") is ViewPosition.UNKNOWN


def test_codes_by_value_then_meaning():
    assert view_from_codes([("399348003", "whatever")]) is ViewPosition.AP
    assert view_from_codes([("X", "Lateral")]) is ViewPosition.LATERAL
    assert view_from_codes([]) is ViewPosition.UNKNOWN
