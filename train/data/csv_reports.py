"""A generic CSV of image-report pairs: columns `image_path`, `report` and optionally `split`.

Relative image paths are resolved against `image_root` (default: the CSV's folder).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from rrg_desk.models.card import Preprocessing
from train.data.preprocess import load_image_tensor

REQUIRED_COLUMNS = ("image_path", "report")


class CsvReportDataset(Dataset):
    """Items: {"id", "image": (C, S, S), "report", "image_path"}; one row per image."""

    def __init__(self, csv_path: str | Path, spec: Preprocessing, *, split: str | None = None,
                 image_root: str | Path | None = None,
                 report_transform: Callable[[str], str] | None = None) -> None:
        self.csv_path = Path(csv_path)
        self.spec = spec
        self.report_transform = report_transform
        root = Path(image_root) if image_root is not None else self.csv_path.parent
        with open(self.csv_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            absent = [c for c in REQUIRED_COLUMNS if c not in columns]
            if absent:
                raise ValueError(f"{self.csv_path}: missing column(s) {absent}; found {columns}")
            if split is not None and "split" not in columns:
                raise ValueError(f"{self.csv_path}: no 'split' column to select {split!r}")
            rows = [row for row in reader if split is None or row["split"].strip() == split]
        self.rows = []
        missing = []
        for number, row in enumerate(rows):
            path = Path(row["image_path"])
            path = path if path.is_absolute() else root / path
            if not path.is_file():
                missing.append(str(path))
            self.rows.append({"id": row.get("id") or f"row{number}", "image_path": path, "report": row["report"]})
        if missing:
            raise FileNotFoundError(f"{len(missing)} image(s) listed in {self.csv_path} are missing, e.g. {missing[:3]}")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        report = self.report_transform(row["report"]) if self.report_transform else row["report"]
        image, _ = load_image_tensor(row["image_path"], self.spec)
        return {"id": row["id"], "image": image, "report": report, "image_path": str(row["image_path"])}
