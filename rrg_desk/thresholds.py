"""The default decision threshold of a probability: one number for every layer.

It sits below all layers (like rrg_desk/errors.py) because the input check (imaging), the
model card's findings and region selector (models) and the trainer all fall back on it.
"""
from __future__ import annotations

# even odds: a probability calls its event (a finding present, a region worth a sentence, a
# chest radiograph, a lateral view) at or above this, wherever no calibrated threshold is given
DEFAULT_THRESHOLD = 0.5
