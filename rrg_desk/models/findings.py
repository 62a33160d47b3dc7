"""The finding vocabulary: the 14 CheXpert observations, in the classifier's output order.

Each finding has a default zero-shot prompt pair (positive, negative). The wording follows
how IU X-ray reports phrase the observation, so every word is in the report tokenizer's
vocabulary and the CLIP text tower has seen similar sentences in training.
"""
from __future__ import annotations

FINDING_NAMES: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

NO_FINDING = "No Finding"

# finding -> (positive prompt, negative prompt)
DEFAULT_PROMPTS: dict[str, tuple[str, str]] = {
    NO_FINDING: ("no acute cardiopulmonary abnormality.",
                   "there is an acute cardiopulmonary abnormality."),
    "Enlarged Cardiomediastinum": ("the cardiomediastinal silhouette is enlarged.",
                                   "the cardiomediastinal silhouette is within normal limits."),
    "Cardiomegaly": ("the heart is enlarged.", "the heart size is normal."),
    "Lung Lesion": ("there is a pulmonary nodule.", "no pulmonary nodules or masses."),
    "Lung Opacity": ("there is an opacity in the lung.", "the lungs are clear."),
    "Edema": ("there is pulmonary edema.", "no pulmonary edema."),
    "Consolidation": ("there is focal consolidation.", "no focal consolidation."),
    "Pneumonia": ("findings are consistent with pneumonia.", "no evidence of pneumonia."),
    "Atelectasis": ("there is atelectasis.", "no atelectasis."),
    "Pneumothorax": ("there is a pneumothorax.", "no pneumothorax."),
    "Pleural Effusion": ("there is a pleural effusion.", "no pleural effusion."),
    "Pleural Other": ("there is pleural thickening.", "no pleural thickening."),
    "Fracture": ("there is a rib fracture.", "no acute bony abnormality."),
    "Support Devices": ("a catheter is in place.", "no tubes or lines."),
}


def finding_index(name: str) -> int:
    """Position of `name` in FINDING_NAMES (ValueError if unknown)."""
    try:
        return FINDING_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown finding {name!r}; expected one of {FINDING_NAMES}") from None


def default_prompt_pairs(names: tuple[str, ...] = FINDING_NAMES) -> list[tuple[str, str]]:
    """The (positive, negative) prompt pairs in the order of `names`."""
    return [DEFAULT_PROMPTS[name] for name in names]
