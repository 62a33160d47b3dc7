"""A hand-made Draft for report, store and session tests (no model needed)."""
from __future__ import annotations

import numpy as np

from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.reports.draft import Draft, FindingResult, RegionResult, Sentence


def make_draft(study_uid: str, probabilities: dict[str, float] | None = None) -> Draft:
    """Cardiomegaly seen by the classifier (0.8), everything else low, thresholds 0.5."""
    probs = {name: 0.1 for name in FINDING_NAMES}
    probs.update({"Cardiomegaly": 0.8, "No Finding": 0.2})
    probs.update(probabilities or {})
    heat = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    return Draft(
        study_uid=study_uid,
        regions=[RegionResult("heart", (150.0, 250.0, 300.0, 400.0), 0.9, True, 0.7),
                 RegionResult("right_lung", (40.0, 60.0, 200.0, 420.0), 0.95, True, 0.2),
                 RegionResult("left_costophrenic_angle", (300.0, 380.0, 400.0, 470.0), 0.6, False, 0.1)],
        findings=[FindingResult(name, probs[name], 0.5) for name in FINDING_NAMES],
        sentences=[Sentence("the heart is enlarged", "heart", heat),
                   Sentence("The lungs are clear.", "right_lung", heat[::-1].copy())],
        findings_text="The heart is enlarged. The lungs are clear.",
        impression_text="Cardiomegaly.",
        bundle_id="test-bundle",
        finding_heatmaps={"Cardiomegaly": heat},
    )
