"""One default decision threshold, read by the input check, the model card and the trainer."""
from __future__ import annotations

import numpy as np

from rrg_desk.imaging.input_check import LearnedThresholds
from rrg_desk.models import card
from rrg_desk.thresholds import DEFAULT_THRESHOLD
from train.calibration import _rule_used, choose_threshold


def test_the_default_is_even_odds_everywhere():
    assert DEFAULT_THRESHOLD == 0.5
    assert LearnedThresholds() == LearnedThresholds(p_chest=DEFAULT_THRESHOLD, p_lateral=DEFAULT_THRESHOLD)
    assert card.DEFAULT_THRESHOLD is DEFAULT_THRESHOLD


def test_the_calibration_records_keep_their_wording():
    assert _rule_used(True, 1, "f1") == "max(f1, 0.5)"  # written into card.json as before
    assert choose_threshold(np.array([]), np.array([])) == DEFAULT_THRESHOLD  # no cut to choose
