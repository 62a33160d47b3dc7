"""Indication, technique and comparison of a report, prefilled from the DICOM header.

What the header holds is a starting point the radiologist edits (Report panel ▸ Clinical
details): the indication from the request (Reason for Study, Reason for the Requested
Procedure, Admitting Diagnoses, Additional Patient History), the technique from the views
acquired (and the exposure when recorded). A comparison is never in an image header, so it
starts empty. PNG/JPEG studies carry no header: indication empty, technique from the views.
"""
from __future__ import annotations

from rrg_desk.imaging.types import Study, ViewPosition

INDICATION_KEYWORDS = ("ReasonForStudy", "ReasonForTheRequestedProcedure", "AdmittingDiagnosesDescription",
                       "AdditionalPatientHistory")
_VIEW_WORDS = {ViewPosition.PA: "PA", ViewPosition.AP: "AP", ViewPosition.LATERAL: "lateral"}


def _first_header_text(study: Study, keywords: tuple[str, ...]) -> str:
    for keyword in keywords:
        for image in study.images:
            value = " ".join(str(image.metadata.get(keyword, "")).split())
            if value:
                return value
    return ""


def technique_text(study: Study) -> str:
    """'Chest radiograph, PA and lateral views.' from the images' view positions."""
    views: list[str] = []
    for image in study.images:
        word = _VIEW_WORDS.get(image.view)
        if word and word not in views:
            views.append(word)
    count = len(study.images)
    if views:
        joined = " and ".join([", ".join(views[:-1]), views[-1]] if len(views) > 1 else views)
        text = f"Chest radiograph, {joined} view{'s' if len(views) > 1 else ''}"
    else:
        text = f"Chest radiograph, {count} image{'s' if count != 1 else ''}"
    kvp = _first_header_text(study, ("KVP",))
    try:
        kvp_value = float(kvp) if kvp else 0.0
    except ValueError:
        kvp_value = 0.0
    if kvp_value > 0:
        text += f" ({kvp_value:g} kVp)"
    return text + "."


def clinical_defaults(study: Study | None) -> dict[str, str]:
    """indication / technique / comparison as the header states them ("" when it does not)."""
    if study is None or not study.images:
        return {"indication": "", "technique": "", "comparison": ""}
    return {"indication": _first_header_text(study, INDICATION_KEYWORDS), "technique": technique_text(study),
            "comparison": ""}
