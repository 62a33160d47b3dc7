"""Report text without images: a corpus for language pre-training, and the sentence-to-region
pairing that trains the one-sentence-per-region generator."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

from rrg_desk.models.regions import WHOLE_IMAGE
from rrg_desk.reports.region_lexicon import primary_region, regions_for_sentence
from rrg_desk.reports.text import split_sentences
from train.data.r2gen import SPLITS, read_annotation


def report_corpus(annotation_path: str | Path, splits: Iterable[str] = ("train",),
                  transform: Callable[[str], str] | None = None, unique: bool = False) -> list[str]:
    """Reports of an R2Gen annotation.json (no images needed), optionally cleaned/deduplicated.

    Use splits=("train",) for anything that is later evaluated on val/test.
    """
    reports: list[str] = []
    for split in splits:
        for entry in read_annotation(Path(annotation_path), split):
            text = entry["report"].strip()
            if text:
                reports.append(transform(text) if transform else text)
    if unique:
        reports = list(dict.fromkeys(reports))
    return reports


def region_sentence_pairs(report: str, mode: str = "primary") -> list[tuple[str, str]]:
    """(region, sentence) pairs of one report, in report order.

    mode="primary": one pair per sentence (primary_region); mode="all": one pair per region
    the sentence names (RGRG-style: a region's target is every sentence about it). Sentences
    naming no region pair with "whole_image".
    """
    if mode not in ("primary", "all"):
        raise ValueError("mode must be 'primary' or 'all'")
    pairs: list[tuple[str, str]] = []
    for sentence in split_sentences(report):
        regions = [primary_region(sentence)] if mode == "primary" else regions_for_sentence(sentence)
        pairs.extend((region, sentence) for region in regions)
    return pairs


def study_region_pairs(annotation_path: str | Path, splits: Iterable[str] = SPLITS,
                       mode: str = "primary") -> dict[str, list[tuple[str, str]]]:
    """study id -> its (region, sentence) pairs, for every study of the given splits."""
    result: dict[str, list[tuple[str, str]]] = {}
    for split in splits:
        for entry in read_annotation(Path(annotation_path), split):
            result[entry["id"]] = region_sentence_pairs(entry["report"], mode)
    return result


def pairing_statistics(pairs_by_study: dict[str, list[tuple[str, str]]]) -> dict:
    """How many sentences go to each region, and the whole_image fraction."""
    counts = Counter(region for pairs in pairs_by_study.values() for region, _ in pairs)
    total = sum(counts.values())
    return {
        "pairs": total,
        "per_region": dict(counts.most_common()),
        "whole_image_fraction": counts[WHOLE_IMAGE] / total if total else 0.0,
    }
