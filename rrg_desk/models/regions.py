"""The anatomical region vocabulary (fixed order = detector class order).

Patient's right is image left. The five SCR organs come first; the derived regions
follow Chest ImaGenome / RGRG in spirit; `whole_image` is the full frame, for
sentences that name no region ("No pneumothorax.").
"""
from __future__ import annotations

SCR_ORGANS: tuple[str, ...] = ("right_lung", "left_lung", "heart", "right_clavicle", "left_clavicle")

DERIVED_REGIONS: tuple[str, ...] = (
    "right_upper_zone",
    "right_mid_zone",
    "right_lower_zone",
    "left_upper_zone",
    "left_mid_zone",
    "left_lower_zone",
    "right_apical_zone",
    "left_apical_zone",
    "right_costophrenic_angle",
    "left_costophrenic_angle",
    "right_hemidiaphragm",
    "left_hemidiaphragm",
    "mediastinum",
    "upper_mediastinum",  # includes the trachea
)

WHOLE_IMAGE = "whole_image"

REGION_NAMES: tuple[str, ...] = SCR_ORGANS + DERIVED_REGIONS + (WHOLE_IMAGE,)

REGION_LABELS: dict[str, str] = {name: name.replace("_", " ") for name in REGION_NAMES}
REGION_LABELS.update(heart="cardiac silhouette", upper_mediastinum="upper mediastinum / trachea",
                     whole_image="whole image")
