"""What a draft request carries and how it ends, without torch: the GUI process, the app and the
CLI build requests with these, and the inference child (rrg_desk.inference.service) answers
them with rrg_desk.inference.pipeline.

A request is frozen when made (DraftSettings is immutable and pickles across the process
boundary as it is), can be cancelled between stages (CancelToken), and fails with a DraftError
worded for the radiologist, or stops with DraftCancelled.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from rrg_desk.errors import UserFacingError


class DraftError(UserFacingError):
    """The study cannot be drafted (no image, no frontal view for a described region)."""


class DraftCancelled(Exception):
    """The request was cancelled between two stages.

    Not a UserFacingError: the person who cancelled is not told of a failure; the UI drops the
    request quietly (the name of the stage it stopped at is the message, for the log)."""


class CancelToken:
    """Cancellation of one request between stages; thread-safe, so the GUI thread can hold it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class DraftSettings:
    beam_size: int | None = None  # None (or 0): the card's generation settings
    max_len: int | None = None
    selector_threshold: float | None = None  # None: the card's region_selection threshold
    finding_heatmaps: bool = True  # Grad-CAM for findings above threshold
    draft_anyway: bool = False  # draft even when the input check refuses an image (the app audits it)
    bind_to_findings: bool = True  # hold the text to the classifier (off only to measure the generator alone)
    ground_heatmaps: bool = True  # weight each sentence heatmap to its region (off only to measure the raw map)

    def to_dict(self) -> dict:
        """Plain values, recorded in Draft.settings."""
        return dataclasses.asdict(self)
