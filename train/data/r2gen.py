"""R2Gen layout: `annotation.json` {train, val, test: [{id, report, image_path: [...]}]} and
`images/<image_path>`. IU X-ray (two views per study), MIMIC-CXR (R2Gen's release) and
covid_cxr share it; point `root` at the folder holding both."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

from rrg_desk.models.card import Preprocessing
from train.data.preprocess import load_image_tensor

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class MissingImagesError(FileNotFoundError):
    """Studies reference images that are not on disk; `missing` lists (study id, path)."""

    def __init__(self, root: Path, missing: list[tuple[str, Path]], total: int) -> None:
        self.missing = missing
        examples = "; ".join(f"{sid}: {path}" for sid, path in missing[:3])
        super().__init__(
            f"{len(missing)} of {total} image files referenced by {root / 'annotation.json'} are missing "
            f"under {root / 'images'} (e.g. {examples}). Point the dataset at the folder that holds "
            f"both annotation.json and images/, or pass missing='skip' to drop those studies.")


def read_annotation(path: Path, split: str) -> list[dict]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    with open(path, encoding="utf-8") as handle:
        annotation = json.load(handle)
    if split not in annotation:
        raise KeyError(f"{path} has no {split!r} split (it has {sorted(annotation)})")
    return list(annotation[split])


class R2GenDataset(Dataset):
    """One item per study: {"id", "report", "images": (K, C, S, S), "image_paths", "views"}.

    missing="error" raises MissingImagesError listing what is absent; "skip" drops studies
    with any missing image (logged); "ignore" keeps studies with at least one image.
    `report_transform` (e.g. clean_report_r2gen) is applied to the report text.
    """

    def __init__(self, root: str | Path, split: str, spec: Preprocessing, *, missing: str = "error",
                 report_transform: Callable[[str], str] | None = None, max_images: int | None = None) -> None:
        if missing not in ("error", "skip", "ignore"):
            raise ValueError("missing must be 'error', 'skip' or 'ignore'")
        self.root = Path(root)
        self.split = split
        self.spec = spec
        self.report_transform = report_transform
        self.max_images = max_images
        entries = read_annotation(self.root / "annotation.json", split)
        total = sum(len(e["image_path"]) for e in entries)
        absent = [(e["id"], self.root / "images" / p) for e in entries for p in e["image_path"]
                  if not (self.root / "images" / p).is_file()]
        if absent and missing == "error":
            raise MissingImagesError(self.root, absent, total)
        absent_paths = {path for _, path in absent}
        kept = []
        for entry in entries:
            present = [p for p in entry["image_path"] if self.root / "images" / p not in absent_paths]
            if (missing == "skip" and len(present) < len(entry["image_path"])) or not present:
                continue
            kept.append({**entry, "image_path": present})
        if absent:
            logger.warning("%s/%s: %d image files missing; kept %d of %d studies",
                           self.root, split, len(absent), len(kept), len(entries))
        self.entries = kept

    def __len__(self) -> int:
        return len(self.entries)

    def view_of(self, entry: dict, index: int) -> str:
        """IU X-ray / MIMIC in R2Gen order: the first image is frontal, others lateral-ish."""
        return "frontal" if index == 0 else "lateral"

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        paths = entry["image_path"][: self.max_images] if self.max_images else entry["image_path"]
        images = [load_image_tensor(self.root / "images" / p, self.spec)[0] for p in paths]
        report = entry["report"]
        if self.report_transform is not None:
            report = self.report_transform(report)
        return {
            "id": entry["id"],
            "report": report,
            "images": torch.stack(images),
            "image_paths": [str(self.root / "images" / p) for p in paths],
            "views": [self.view_of(entry, k) for k in range(len(paths))],
        }


_FRONTAL = {"PA", "AP", "AP SUPINE", "AP ERECT", "AP SEMI ERECT", "PA ERECT"}
_LATERAL = {"L", "LL", "LATERAL", "LAT", "RL"}


def covid_view(view_field: str) -> str:
    """covid_cxr `view` -> "frontal" / "lateral" / "unknown" ("PA", "AP Supine" -> frontal; "L" -> lateral)."""
    key = " ".join(view_field.upper().replace("-", " ").split())
    if key in _FRONTAL:
        return "frontal"
    if key in _LATERAL:
        return "lateral"
    return "unknown"


class CovidCxrDataset(R2GenDataset):
    """covid_cxr: the R2Gen layout, one image per entry, plus its `view` field.

    Adds "finding" (the COVID collection's diagnosis) and "license" to each item; by default
    the report is the clinical note cleaned with `clean_clinical_note`.
    """

    def __init__(self, root: str | Path, split: str, spec: Preprocessing, *, missing: str = "error",
                 report_transform: Callable[[str], str] | None = None, views: tuple[str, ...] | None = None) -> None:
        if report_transform is None:
            from rrg_desk.reports.text import clean_clinical_note
            report_transform = clean_clinical_note
        super().__init__(root, split, spec, missing=missing, report_transform=report_transform)
        if views is not None:
            self.entries = [e for e in self.entries if covid_view(e.get("view", "")) in views]

    def view_of(self, entry: dict, index: int) -> str:
        return covid_view(entry.get("view", ""))

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        entry = self.entries[index]
        item["finding"] = entry.get("finding", "")
        item["license"] = entry.get("license", "")
        return item
