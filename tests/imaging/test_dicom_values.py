"""DICOM person names and dates as every screen and export shows them (pydicom PN and DA)."""
from __future__ import annotations

from datetime import date

import pytest

from rrg_desk.imaging.dicom_values import display_date, display_name, parse_date


@pytest.mark.parametrize("stored, shown", [
    ("DOE^JANE", "DOE, JANE"),
    ("DOE^JANE^^^", "DOE, JANE"),  # empty trailing components, as PACS often pad them
    ("DOE^JANE^Q^DR^JR", "DOE, JANE Q DR JR"),  # family, given, middle, prefix, suffix
    ("DOE^^Q", "DOE, Q"),
    ("DOE", "DOE"),
    ("^JANE", "JANE"),
    (" ^JANE ", "JANE"),
    ("", ""),
    ("Yamada^Tarou=山田^太郎=やまだ^たろう", "Yamada, Tarou"),  # the alphabetic group only
])
def test_person_names_read_family_name_first(stored, shown):
    assert display_name(stored) == shown


@pytest.mark.parametrize("stored, day", [
    ("20240105", date(2024, 1, 5)),
    (" 20240105 ", date(2024, 1, 5)),  # DICOM pads odd-length values with a space
    ("", None),
    ("2024", None),
    ("20241399", None),  # not a date: never guessed
    ("2024-01-05x", None),
])
def test_dates_parse_only_when_valid(stored, day):
    parsed = parse_date(stored)
    assert parsed == day and (parsed is None or type(parsed) is date)


def test_dates_show_as_iso_or_as_stored():
    assert display_date("20240105") == "2024-01-05"
    assert display_date("20241399") == "20241399" and display_date("") == "" and display_date("n/a") == "n/a"
