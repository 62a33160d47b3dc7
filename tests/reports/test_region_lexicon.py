"""Sentence -> regions on real IU X-ray sentences."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rrg_desk.models.regions import REGION_NAMES
from rrg_desk.reports.region_lexicon import primary_region, regions_for_sentence
from rrg_desk.reports.text import split_sentences

IU_ANNOTATION = Path("/work/shared/data/iu_xray_reports/annotation.json")

CASES = [  # real IU X-ray sentences
    ("No pneumothorax.", ["whole_image"]),
    ("No acute bony abnormality.", ["whole_image"]),
    ("The lungs are clear.", ["right_lung", "left_lung"]),
    ("Heart size normal.", ["heart"]),
    ("The cardiomediastinal silhouette is normal in size and contour.", ["heart", "mediastinum"]),
    ("The mediastinum is unremarkable.", ["mediastinum"]),
    ("The trachea is midline.", ["upper_mediastinum"]),
    ("No pneumothorax or pleural effusion.", ["right_costophrenic_angle", "left_costophrenic_angle"]),
    ("Small left pleural effusion.", ["left_costophrenic_angle"]),
    ("There is a small right pleural effusion with associated atelectasis of the right lower lobe.",
     ["right_costophrenic_angle", "right_lower_zone"]),
    ("Subsegmental atelectasis in the left lower lung.", ["left_lower_zone"]),
    ("Bibasilar opacity, left greater than right is appreciated.", ["right_lower_zone", "left_lower_zone"]),
    ("Streaky opacities in the lung bases may represent atelectasis or scarring.", ["right_lower_zone", "left_lower_zone"]),
    ("There is a focal area of scarring or XXXX atelectasis identified in the lingula.", ["left_mid_zone", "left_lower_zone"]),
    ("Right hilar calcifications suggest a previous granulomatous process.", ["right_mid_zone"]),
    ("Mild biapical scarring is identified.", ["right_apical_zone", "left_apical_zone"]),
    ("There is asymmetric right apical smooth pleural thickening.", ["right_apical_zone"]),
    ("There is a right lower lobe pneumonia.", ["right_lower_zone"]),
    ("Lungs demonstrate left upper lobe airspace disease most XXXX pneumonia.", ["left_upper_zone"]),
    ("There is blunting of the right costophrenic XXXX which may represent small amount of pleural effusion or pleural reaction.",
     ["right_costophrenic_angle"]),
    ("There is fracture of distal right clavicle, better seen on the right shoulder radiographs dated XXXX.", ["right_clavicle"]),
    ("There is a right-sided pneumothorax with 10 mm in maximal thickness.", ["right_lung"]),
    ("There is right middle lobe airspace disease, may reflect atelectasis or pneumonia.", ["right_mid_zone"]),
    ("There is XXXX dense consolidation within the retrocardiac left lower lobe.", ["left_lower_zone"]),
    ("The heart size and pulmonary vascularity appear within normal limits.", ["heart", "right_lung", "left_lung"]),
    ("Opacities are present in both lower lobes.", ["right_lower_zone", "left_lower_zone"]),
]


@pytest.mark.parametrize(("sentence", "expected"), CASES)
def test_regions_of_real_sentences(sentence, expected):
    assert regions_for_sentence(sentence) == expected


@pytest.mark.parametrize(("sentence", "expected"), [
    ("The cardiomediastinal silhouette is within normal limits.", "heart"),
    ("The lungs are clear.", "right_lung"),
    ("No pneumothorax.", "whole_image"),
    ("There is a small right pleural effusion with associated atelectasis of the right lower lobe.",
     "right_costophrenic_angle"),
    ("Elevation of the left hemidiaphragm.", "left_hemidiaphragm"),
])
def test_primary_region(sentence, expected):
    assert primary_region(sentence) == expected


@pytest.mark.skipif(not IU_ANNOTATION.exists(), reason="shared IU X-ray reports not present")
def test_every_iu_sentence_maps_to_known_regions():
    annotation = json.loads(IU_ANNOTATION.read_text())
    sentences = [s for split in annotation.values() for e in split for s in split_sentences(e["report"])]
    whole = 0
    for sentence in sentences:
        regions = regions_for_sentence(sentence)
        assert regions and set(regions) <= set(REGION_NAMES)
        assert primary_region(sentence) in regions
        whole += regions == ["whole_image"]
    # most IU sentences are about lungs, heart, pleura; "No pneumothorax." and bone/other remarks are not
    assert 0.15 < whole / len(sentences) < 0.40
