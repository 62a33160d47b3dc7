"""Measurements off the detector's boxes (rrg_desk.models.measurements) and the card section
that scores findings from them."""
from __future__ import annotations

import json
import math
import shutil

import pytest

from rrg_desk.models.card import CARD_FILE, BundleCorruptError, BundleIncompatibleError, card_digest, read_card
from rrg_desk.models.measurements import (CARDIOTHORACIC_RATIO, cardiothoracic_ratio, measure,
                                          measured_probability)
from rrg_desk.paths import default_bundle_dir

# a frontal view in pixels: lungs from x=100 to x=500, a heart 220 px wide
BOXES = {"right_lung": (100, 80, 290, 420), "left_lung": (310, 80, 500, 430), "heart": (230, 250, 450, 400)}


def test_the_cardiothoracic_ratio_is_heart_width_over_the_outer_lung_edges():
    assert cardiothoracic_ratio(BOXES) == pytest.approx(220 / 400)


def test_the_ratio_does_not_depend_on_the_frame():
    scaled = {name: (x0 * 0.25, y0 * 0.5, x1 * 0.25, y1 * 0.5) for name, (x0, y0, x1, y1) in BOXES.items()}
    assert cardiothoracic_ratio(scaled) == pytest.approx(cardiothoracic_ratio(BOXES))


def test_nothing_is_measured_without_the_heart_or_a_lung():
    for missing in BOXES:
        boxes = {k: v for k, v in BOXES.items() if k != missing}
        assert cardiothoracic_ratio(boxes) is None
        assert measure(boxes) == {}
    assert measure(BOXES) == {CARDIOTHORACIC_RATIO: pytest.approx(0.55)}


def test_measured_probability_is_a_logistic_map_stable_at_the_extremes():
    assert measured_probability(0.5, 20.0, -10.0) == pytest.approx(0.5)
    assert measured_probability(0.6, 20.0, -10.0) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert measured_probability(100.0, 20.0, -10.0) == pytest.approx(1.0)
    assert measured_probability(-100.0, 20.0, -10.0) == pytest.approx(0.0)


@pytest.fixture
def card_folder(tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    shutil.copy(default_bundle_dir() / CARD_FILE, folder / CARD_FILE)
    return folder


def _write_measurements(folder, measurements) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    card["classification"]["measurements"] = measurements
    card["integrity"] = {"sha256": card_digest(card)}
    (folder / CARD_FILE).write_text(json.dumps(card))


def test_the_card_carries_measured_findings(card_folder):
    fit = {"measure": CARDIOTHORACIC_RATIO, "scale": 18.0, "bias": -9.5}
    _write_measurements(card_folder, {"Cardiomegaly": fit})
    card = read_card(card_folder)
    assert card.classification.measurements == {"Cardiomegaly": fit}
    assert card.to_dict()["classification"]["measurements"] == {"Cardiomegaly": fit}


@pytest.mark.parametrize(("measurements", "error", "words"), [
    ({"Cardiomegaly": {"measure": "heart_volume", "scale": 1.0, "bias": 0.0}}, BundleCorruptError, "measure"),
    ({"Cardiomegaly": {"measure": CARDIOTHORACIC_RATIO, "scale": 1.0}}, BundleCorruptError, "bias"),
    ({"Enlarged Heart": {"measure": CARDIOTHORACIC_RATIO, "scale": 1.0, "bias": 0.0}}, BundleIncompatibleError,
     "unknown findings"),
])
def test_a_bad_measurement_entry_is_refused(card_folder, measurements, error, words):
    _write_measurements(card_folder, measurements)
    with pytest.raises(error) as info:
        read_card(card_folder)
    assert words in str(info.value) + getattr(info.value, "detail", "")
