"""Labelled radiographs from every source at hand, as (image, finding labels, label mask).

Each source labels only what it can speak to; the mask says which findings are labelled
(1) and which are unknown (0) for that image, so the loss never teaches "absent" for a
finding a source is silent about.
- NIH ChestX-ray14 (`labels.csv`): the 14 NIH labels mapped onto the app's findings
  (NIH_TO_APP); findings NIH does not label are masked.
- covid_cxr: the case's `finding` field (an infection -> Pneumonia, "No Finding" -> normal)
  and the CheXpert-style labeler on the clinical note (positive / negative mentions only).
- JSRT: `JPCLN*` has a lung nodule (Lung Lesion), `JPCNN*` are nodule-free normal chests.
- NLM TB sets: normal readings are normal chests; TB cases are not normal, plus whatever
  the labeler finds in the Shenzhen reading.
"""
from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rrg_desk.models.findings import FINDING_NAMES, NO_FINDING

log = logging.getLogger(__name__)

# NIH label -> app finding (None: the app has no such finding; it still rules out No Finding)
NIH_TO_APP: dict[str, str | None] = {
    "Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly", "Effusion": "Pleural Effusion",
    "Infiltration": "Lung Opacity", "Mass": "Lung Lesion", "Nodule": "Lung Lesion", "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax", "Consolidation": "Consolidation", "Edema": "Edema",
    "Pleural_Thickening": "Pleural Other", "Emphysema": None, "Fibrosis": None, "Hernia": None,
}
NIH_LABELLED = {NO_FINDING} | {v for v in NIH_TO_APP.values() if v}
NIH_NORMAL = "No Finding"  # NIH's own label for a normal image (NIH's word, mapped to NO_FINDING)

# covid_cxr `finding` values that are pneumonias (infections, lipoid, aspiration)
_COVID_PNEUMONIA = ("covid", "sars", "pneumocystis", "streptococcus", "pneumonia", "klebsiella", "mycoplasma",
                    "lipoid", "varicella", "e.coli", "legionella", "bacterial", "influenza", "chlamydophila",
                    "aspergillosis", "nocardia", "mers", "herpes", "aspiration")


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    labels: tuple[float, ...]   # in FINDING_NAMES order, 0/1
    mask: tuple[float, ...]     # > 0 = labelled, and the label's weight in the loss (1 unless down-weighted)
    source: str                 # e.g. "nih:muhammedtalo/COVID-19", "covid_cxr", "jsrt", "tb:shenzhen"
    split: str
    patient: str
    view: str                   # PA / AP / LATERAL / "" (unknown)


def label_vector(known: dict[str, int]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    labels = tuple(float(known.get(name, 0)) for name in FINDING_NAMES)
    mask = tuple(float(name in known) for name in FINDING_NAMES)
    return labels, mask


def nih_labels(finding_labels: str) -> dict[str, int]:
    """NIH "Finding Labels" (pipe-separated or "No Finding") -> {app finding: 0/1} for what NIH labels."""
    names = [n.strip() for n in finding_labels.split("|") if n.strip()]
    unknown = [n for n in names if n != NIH_NORMAL and n not in NIH_TO_APP]
    if unknown:
        raise ValueError(f"unknown NIH label(s) {unknown}")
    positives = {NIH_TO_APP[n] for n in names if n != NIH_NORMAL and NIH_TO_APP[n]}
    known = {name: int(name in positives) for name in NIH_LABELLED}
    known[NO_FINDING] = int(names == [NIH_NORMAL])
    return known


def labeler_labels(text: str) -> dict[str, int]:
    """Positive and negative mentions the labeler finds (uncertain and unmentioned stay unknown)."""
    from rrg_desk.reports.labeler import NEGATIVE, POSITIVE, label_report

    out = {}
    for name, value in label_report(text).items():
        if value == POSITIVE:
            out[name] = 1
        elif value == NEGATIVE:
            out[name] = 0
    if NO_FINDING in out and any(v for k, v in out.items() if k != NO_FINDING):
        out[NO_FINDING] = 0
    if any(v for k, v in out.items() if k not in (NO_FINDING, "Support Devices")):
        out[NO_FINDING] = 0
    return out


def normal_chest() -> dict[str, int]:
    """A chest read as normal: No Finding, and every finding a normal reading rules out."""
    return {name: int(name == NO_FINDING) for name in FINDING_NAMES if name not in ("Support Devices", "Fracture")}


def read_nih(root: Path) -> list[LabelledImage]:
    out = []
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            labels, mask = label_vector(nih_labels(row["labels"]))
            out.append(LabelledImage(root / "images" / f"{row['image']}.jpg", labels, mask,
                                     f"nih:{row['source_repo']}", row["split"], f"nih:{row['patient_id']}",
                                     row["view"]))
    return out


def covid_labels(finding: str, note: str) -> dict[str, int]:
    from rrg_desk.reports.text import clean_clinical_note

    known = labeler_labels(clean_clinical_note(note))
    low = finding.lower()
    if low == "no finding":
        return normal_chest()
    if any(word in low for word in _COVID_PNEUMONIA):
        known.update({"Pneumonia": 1, NO_FINDING: 0})
    if "ards" in low:
        known.update({"Lung Opacity": 1, NO_FINDING: 0})
    return known


def read_covid(root: Path) -> list[LabelledImage]:
    annotation = json.loads((root / "annotation.json").read_text(encoding="utf-8"))
    out = []
    for split, entries in annotation.items():
        for entry in entries:
            labels, mask = label_vector(covid_labels(entry.get("finding", ""), entry["report"]))
            view = "LATERAL" if entry.get("view", "").strip().upper() in ("L", "LATERAL") else entry.get("view", "")
            for image_path in entry["image_path"]:
                out.append(LabelledImage(root / "images" / image_path, labels, mask, "covid_cxr", split,
                                         f"covid:{entry.get('patientid', entry['id'])}", view))
    return out


def read_jsrt(root: Path) -> list[LabelledImage]:
    splits = json.loads((root / "split.json").read_text(encoding="utf-8"))
    out = []
    for split, ids in splits.items():
        for image_id in ids:
            known = {"Lung Lesion": 1, NO_FINDING: 0} if image_id.startswith("JPCLN") else normal_chest()
            labels, mask = label_vector(known)
            out.append(LabelledImage(root / "images" / f"{image_id}.png", labels, mask, "jsrt", split,
                                     f"jsrt:{image_id}", "PA"))
    return out


def read_tb(root: Path) -> list[LabelledImage]:
    out = []
    with open(root / "readings.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["tb_label"] == "0":
                known = normal_chest()
            else:
                known = {k: v for k, v in labeler_labels(row.get("reading", "")).items() if v} | {NO_FINDING: 0}
            labels, mask = label_vector(known)
            out.append(LabelledImage(root / "images" / f"{row['image']}.jpg", labels, mask, f"tb:{row['set']}",
                                     row["split"], f"tb:{row['source_id']}", "PA"))
    return out


READERS = {"nih": read_nih, "covid": read_covid, "jsrt": read_jsrt, "tb": read_tb}


def labelled_images(sources: dict[str, str], split: str) -> list[LabelledImage]:
    """Every labelled image of `split` from the configured sources ({kind: folder}); a missing
    folder is an error (the admin named it), an empty mapping gives nothing."""
    out = []
    for kind, folder in sources.items():
        if kind not in READERS:
            raise ValueError(f"unknown labelled source {kind!r}; expected one of {sorted(READERS)}")
        out += [item for item in READERS[kind](Path(folder)) if item.split == split]
    return out


def label_arrays(items: list[LabelledImage]) -> tuple[np.ndarray, np.ndarray]:
    """[N, F] labels and masks."""
    return (np.array([i.labels for i in items], dtype=np.float32).reshape(-1, len(FINDING_NAMES)),
            np.array([i.mask for i in items], dtype=np.float32).reshape(-1, len(FINDING_NAMES)))


def source_family(item: LabelledImage) -> str:
    """nih / covid_cxr / jsrt / tb: sources that share one labelling process."""
    return item.source.split(":")[0]


def mask_source_constant_labels(items: list[LabelledImage], min_cases: int = 5, max_positive_share: float = 0.9
                                ) -> list[LabelledImage]:
    """Unlabel a finding in a source family where it (almost) never varies: a label that is
    (nearly) always positive in one source (covid_cxr is all pneumonia) or never positive (the
    TB sets' normal chests never show cardiomegaly) teaches the network which hospital an image
    comes from, not the finding. Kept where the family has `min_cases` on each side and at most
    `max_positive_share` positives (rare findings stay: NIH's 2% pneumothorax is real contrast)."""
    from collections import defaultdict
    from dataclasses import replace

    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        for k, (value, labelled) in enumerate(zip(item.labels, item.mask)):
            if labelled:
                counts[(source_family(item), k)][int(value)] += 1
    informative = {key for key, (negatives, positives) in counts.items()
                   if min(negatives, positives) >= min_cases and positives <= max_positive_share * (negatives + positives)}
    return [replace(item, mask=tuple(m if (source_family(item), k) in informative else 0.0
                                     for k, m in enumerate(item.mask))) for item in items]


def weight_sources(items: list[LabelledImage], weights: dict[str, float]) -> list[LabelledImage]:
    """Scale the loss weight (mask) of the images of each named source ("nih:muhammedtalo/COVID-19")
    or source family ("tb"). A subset whose images were chosen by their label (DarkCovidNet's
    500 pneumonia / 500 no-finding NIH images) teaches that selection as much as the findings;
    a lower weight keeps its labels without letting it dominate. A named source with no image
    here (an admin's data without that subset) is reported in the log and skipped."""
    from dataclasses import replace

    if not weights:
        return items
    unknown = set(weights) - {i.source for i in items} - {source_family(i) for i in items}
    if unknown:
        log.warning("clip.source_weights names sources with no image here, skipped: %s", sorted(unknown))
    out = []
    for item in items:
        weight = float(weights.get(item.source, weights.get(source_family(item), 1.0)))
        out.append(item if weight == 1.0 else replace(item, mask=tuple(m * weight for m in item.mask)))
    return out
