"""DICOM person names (PN) and dates (DA) as people read them, on pydicom's PersonName and DA.

One reading for the viewer, the worklist, the PACS search and every export: 'DOE^JANE^Q'
shows as 'DOE, JANE Q' and '20240105' as '2024-01-05'. A value that is not a valid DA is
shown as stored, never guessed into a date.
"""
from __future__ import annotations

from datetime import date

from pydicom.valuerep import DA, PersonName


def display_name(dicom_name: str) -> str:
    """'DOE^JANE^Q^DR' -> 'DOE, JANE Q DR'; a lone component stays as it is; '' -> ''.

    Only the alphabetic group of a multi-group name ('Yamada^Tarou=山田^太郎') is shown."""
    name = PersonName(dicom_name.strip())
    parts = [part.strip() for part in (name.family_name, name.given_name, name.middle_name,
                                        name.name_prefix, name.name_suffix) if part.strip()]
    if len(parts) <= 1:
        return "".join(parts)
    return f"{parts[0]}, {' '.join(parts[1:])}"


def parse_date(dicom_date: str) -> date | None:
    """The date of a DICOM DA ('20240105'); None when it is empty or not a valid date."""
    try:
        day = DA(dicom_date.strip())  # DA('') is None
    except ValueError:
        return None
    return None if day is None else date(day.year, day.month, day.day)  # a plain date: str() is ISO


def display_date(dicom_date: str) -> str:
    """'20240105' -> '2024-01-05'; anything that is not a valid DA is returned unchanged."""
    day = parse_date(dicom_date)
    return day.isoformat() if day is not None else dicom_date
