"""Hand-built drafts for the workstation tests: deterministic text, boxes and heatmaps."""
from __future__ import annotations

import numpy as np

from rrg_desk.reports.draft import Draft, FindingResult, RegionResult, Sentence

FINDING_NAMES = ("No Finding", "Cardiomegaly", "Pleural Effusion", "Pneumothorax")


def peaked_heatmap(row: int, col: int, size: int = 8) -> np.ndarray:
    heat = np.zeros((size, size), dtype=np.float32)
    heat[row, col] = 1.0
    return heat


def make_draft(study_uid: str, width: int = 200, height: int = 256) -> Draft:
    """Heart (selected, with a sentence), right lung (selected), left lung (not selected)."""
    regions = [
        RegionResult("heart", (width * 0.35, height * 0.45, width * 0.75, height * 0.8), 0.9, True, 0.8),
        RegionResult("right_lung", (width * 0.05, height * 0.1, width * 0.45, height * 0.85), 0.9, True, 0.2),
        RegionResult("left_lung", (width * 0.55, height * 0.1, width * 0.95, height * 0.85), 0.9, False, 0.1),
    ]
    sentences = [
        Sentence("The heart is enlarged.", "heart", heatmap=peaked_heatmap(5, 4)),
        Sentence("The right lung is clear.", "right_lung", heatmap=peaked_heatmap(2, 1)),
    ]
    findings = [FindingResult("No Finding", 0.2, 0.5), FindingResult("Cardiomegaly", 0.9, 0.5),
                FindingResult("Pleural Effusion", 0.7, 0.4), FindingResult("Pneumothorax", 0.05, 0.5)]
    return Draft(study_uid=study_uid, regions=regions, findings=findings, sentences=sentences,
                 findings_text="The heart is enlarged. The right lung is clear.",
                 impression_text="Cardiomegaly.", bundle_id="test-bundle",
                 finding_heatmaps={"Cardiomegaly": peaked_heatmap(6, 4), "Pleural Effusion": peaked_heatmap(7, 7)})
