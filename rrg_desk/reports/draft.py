"""The Draft contract: what inference hands the editor, the store autosaves and exporters read.

Plain dataclasses with a JSON-safe round trip (`to_dict()` / `from_dict()`); heatmaps travel
as nested lists of float32 values (exact round trip). Provenance is kept per sentence:
`origin` says who wrote it ("model" or "radiologist"), `accepted` whether the radiologist
kept a model sentence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from rrg_desk.models.findings import NO_FINDING

DRAFT_FORMAT_VERSION = 1


class SentenceOrigin(StrEnum):
    """Who wrote a sentence (the values are stored with drafts and documents, and exported)."""

    MODEL = "model"
    RADIOLOGIST = "radiologist"


Box = tuple[float, float, float, float]


class DraftFormatError(ValueError):
    """A serialised draft is malformed (missing field, wrong type, unknown version)."""


def _box(value: Any) -> Box:
    box = tuple(float(v) for v in value)
    if len(box) != 4:
        raise DraftFormatError(f"a box needs 4 numbers, got {len(box)}")
    return box  # type: ignore[return-value]


def _outline(value: Any) -> tuple[tuple[float, float], ...]:
    points = tuple(tuple(float(v) for v in point) for point in value)
    if any(len(point) != 2 for point in points):
        raise DraftFormatError("an outline point needs 2 numbers")
    return points  # type: ignore[return-value]


@dataclass
class RegionResult:
    name: str
    box: Box  # x0, y0, x1, y1 in the pixels of image `image_index`
    score: float  # detector confidence; 0 when the box is the prior (region not found)
    selected: bool  # the selector chose this region for a sentence
    abnormal_score: float  # probability the region is abnormal
    image_index: int = 0  # which image of the study (0 = frontal)
    # organ outline: closed polygon (x, y) in the same pixels; () for regions without one
    outline: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict:
        return {"name": self.name, "box": list(self.box), "score": self.score, "selected": self.selected,
                "abnormal_score": self.abnormal_score, "image_index": self.image_index,
                "outline": [list(point) for point in self.outline]}

    @classmethod
    def from_dict(cls, d: dict) -> "RegionResult":
        return cls(name=str(d["name"]), box=_box(d["box"]), score=float(d["score"]),
                   selected=bool(d["selected"]), abnormal_score=float(d["abnormal_score"]),
                   image_index=int(d.get("image_index", 0)), outline=_outline(d.get("outline", ())))


def called_present(findings: list["FindingResult"]) -> set[str]:
    """The names of the findings the classifier calls present: every pathology at or above its
    threshold, and No Finding only when it is at or above its own and no pathology is (a
    study is never both normal and abnormal)."""
    pathologies = {f.name for f in findings if f.positive and f.name != NO_FINDING}
    return pathologies or {f.name for f in findings if f.positive and f.name == NO_FINDING}


@dataclass
class FindingResult:
    name: str
    probability: float
    threshold: float
    # (measure name, value) when the probability comes from a measurement, e.g. the
    # cardiothoracic ratio for Cardiomegaly (rrg_desk.models.measurements)
    measurement: tuple[str, float] | None = None

    @property
    def positive(self) -> bool:
        return self.probability >= self.threshold

    def to_dict(self) -> dict:
        out = {"name": self.name, "probability": self.probability, "threshold": self.threshold}
        if self.measurement is not None:
            out["measurement"] = {"name": self.measurement[0], "value": self.measurement[1]}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "FindingResult":
        measured = d.get("measurement")
        measurement = (str(measured["name"]), float(measured["value"])) if measured else None
        return cls(name=str(d["name"]), probability=float(d["probability"]), threshold=float(d["threshold"]),
                   measurement=measurement)


@dataclass
class Sentence:
    text: str
    region: str  # a REGION_NAMES entry ("whole_image" for sentences naming no region)
    heatmap: np.ndarray | None = None  # [h, w] float32 in [0, 1] on a coarse grid; the UI resizes
    image_index: int = 0
    origin: SentenceOrigin = SentenceOrigin.MODEL
    accepted: bool = False

    def __post_init__(self) -> None:
        try:
            self.origin = SentenceOrigin(self.origin)
        except ValueError:
            raise DraftFormatError(f"origin must be one of {', '.join(SentenceOrigin)}, "
                                   f"got {self.origin!r}") from None
        if self.heatmap is not None:
            heatmap = np.asarray(self.heatmap, dtype=np.float32)
            if heatmap.ndim != 2:
                raise DraftFormatError(f"a heatmap is 2-D, got shape {heatmap.shape}")
            self.heatmap = heatmap

    def to_dict(self) -> dict:
        return {"text": self.text, "region": self.region,
                "heatmap": None if self.heatmap is None else self.heatmap.tolist(),
                "image_index": self.image_index, "origin": self.origin, "accepted": self.accepted}

    @classmethod
    def from_dict(cls, d: dict) -> "Sentence":
        heatmap = d.get("heatmap")
        return cls(text=str(d["text"]), region=str(d["region"]),
                   heatmap=None if heatmap is None else np.asarray(heatmap, dtype=np.float32),
                   image_index=int(d.get("image_index", 0)), origin=str(d.get("origin", SentenceOrigin.MODEL)),
                   accepted=bool(d.get("accepted", False)))

    def __eq__(self, other: object) -> bool:  # ndarray fields defeat the generated __eq__
        if not isinstance(other, Sentence):
            return NotImplemented
        same_heatmap = (self.heatmap is None and other.heatmap is None) or (
            self.heatmap is not None and other.heatmap is not None
            and np.array_equal(self.heatmap, other.heatmap))
        return same_heatmap and (self.text, self.region, self.image_index, self.origin, self.accepted) == \
            (other.text, other.region, other.image_index, other.origin, other.accepted)


@dataclass
class Draft:
    study_uid: str
    regions: list[RegionResult] = field(default_factory=list)
    findings: list[FindingResult] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    findings_text: str = ""
    impression_text: str = ""
    bundle_id: str = ""
    device: str = "cpu"
    settings: dict = field(default_factory=dict)  # generation settings (beam size, max_len, ...)
    timings_ms: dict = field(default_factory=dict)  # stage name -> milliseconds
    # finding name -> [h, w] float32 heatmap in [0, 1] (Grad-CAM), for findings above threshold
    finding_heatmaps: dict[str, np.ndarray] = field(default_factory=dict)

    def sentences_for_region(self, name: str) -> list[Sentence]:
        return [s for s in self.sentences if s.region == name]

    def region(self, name: str, image_index: int = 0) -> RegionResult | None:
        return next((r for r in self.regions if r.name == name and r.image_index == image_index), None)

    def positive_findings(self) -> list[FindingResult]:
        """The findings this draft calls present (see called_present)."""
        present = called_present(self.findings)
        return [f for f in self.findings if f.name in present]

    def to_dict(self) -> dict:
        return {"format_version": DRAFT_FORMAT_VERSION, "study_uid": self.study_uid,
                "regions": [r.to_dict() for r in self.regions],
                "findings": [f.to_dict() for f in self.findings],
                "sentences": [s.to_dict() for s in self.sentences],
                "findings_text": self.findings_text, "impression_text": self.impression_text,
                "bundle_id": self.bundle_id, "device": self.device,
                "settings": dict(self.settings), "timings_ms": dict(self.timings_ms),
                "finding_heatmaps": {k: np.asarray(v, dtype=np.float32).tolist()
                                     for k, v in self.finding_heatmaps.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Draft":
        version = d.get("format_version", DRAFT_FORMAT_VERSION)
        if version != DRAFT_FORMAT_VERSION:
            raise DraftFormatError(f"unknown draft format_version {version!r}")
        try:
            return cls(study_uid=str(d["study_uid"]),
                       regions=[RegionResult.from_dict(r) for r in d.get("regions", [])],
                       findings=[FindingResult.from_dict(f) for f in d.get("findings", [])],
                       sentences=[Sentence.from_dict(s) for s in d.get("sentences", [])],
                       findings_text=str(d.get("findings_text", "")),
                       impression_text=str(d.get("impression_text", "")),
                       bundle_id=str(d.get("bundle_id", "")), device=str(d.get("device", "cpu")),
                       settings=dict(d.get("settings", {})),
                       timings_ms={str(k): float(v) for k, v in d.get("timings_ms", {}).items()},
                       finding_heatmaps={str(k): np.asarray(v, dtype=np.float32)
                                         for k, v in d.get("finding_heatmaps", {}).items()})
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, DraftFormatError):
                raise
            raise DraftFormatError(f"malformed draft: {exc!r}") from exc
