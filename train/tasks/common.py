"""What every task shares: run folders, the tokenizer, the preprocessing spec, caching."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from torch.utils.data import Dataset

from rrg_desk.fileio import write_text_atomic
from rrg_desk.models.card import Preprocessing
from rrg_desk.models.tokenizer import ReportTokenizer
from rrg_desk.models.findings import DEFAULT_PROMPTS, NO_FINDING
from rrg_desk.models.regions import WHOLE_IMAGE
from rrg_desk.reports.text import clean_clinical_note, clean_report_r2gen
from train.data.r2gen import read_annotation
from train.engine import LoopConfig

log = logging.getLogger(__name__)


def run_dir(config: dict, component: str) -> Path:
    return Path(config["out_dir"]) / component


def spec_of(config: dict) -> Preprocessing:
    return Preprocessing.from_card(config["preprocessing"])


def loop_config(config: dict, section: dict, key: str = "loop") -> LoopConfig:
    values = dict(section.get(key, {}))
    values.setdefault("seed", int(config.get("seed", 0)))
    return LoopConfig.from_dict(values)


def limit(config: dict) -> int:
    return int(config.get("limit", 0) or 0)


def report_texts(config: dict, split: str = "train") -> list[str]:
    """Cleaned report text: IU-style corpora (R2Gen cleaning) + the covid notes."""
    texts = []
    for path in config["data"].get("text_corpora", []):
        texts += [clean_report_r2gen(e["report"]) for e in read_annotation(Path(path), split)]
    for root in [config["data"]["covid"], *config["data"].get("extra_r2gen", [])]:
        texts += [clean_clinical_note(e["report"]) for e in read_annotation(Path(root) / "annotation.json", split)]
    return [t for t in texts if t.strip()]


def radiological_sentences(report: str) -> list[str]:
    """The sentences of a report or clinical note that describe the image: the labeler finds
    an observation in them, or they name an anatomical region. Clinical history ("admitted to
    the intensive care unit") is dropped, so the generator learns radiology, not case notes."""
    from rrg_desk.reports.labeler import label_report
    from rrg_desk.reports.region_lexicon import regions_for_sentence
    from rrg_desk.reports.text import split_sentences

    kept = []
    for sentence in split_sentences(report):
        mentions = any(v is not None for k, v in label_report(sentence).items() if k != NO_FINDING)
        if not (mentions or regions_for_sentence(sentence) != [WHOLE_IMAGE]):
            continue
        if _HISTORY.search(sentence) and not _IMAGING.search(sentence):
            continue  # "a 65-year-old man with a history of lung cancer was admitted ..."
        kept.append(sentence)
    return kept


_HISTORY = re.compile(r"year[- ]old|history of|admitted|presented|hospital|fever|cough|dyspn|treated|"
                      r"received|intubat|oxygen|saturation|mm ?hg|\bdays?\b|\bon (jan|feb|mar|apr|may|jun|jul|"
                      r"aug|sep|oct|nov|dec)|travel|symptom|diagnos|swab|pcr|test(ed)? positive", re.I)
_IMAGING = re.compile(r"radiograph|x-?ray|\bcxr\b|\bfilm\b|imaging|\bct\b|shows?|showed|demonstrat|reveal|"
                      r"observed on|seen on|noted on", re.I)


def generator_texts(config: dict, split: str) -> list[str]:
    """Text for language-model pre-training: the radiology corpora whole, image-describing
    sentences of the clinical notes."""
    texts = []
    for path in config["data"].get("text_corpora", []):
        texts += [clean_report_r2gen(e["report"]) for e in read_annotation(Path(path), split)]
    for root in [config["data"]["covid"], *config["data"].get("extra_r2gen", [])]:
        for entry in read_annotation(Path(root) / "annotation.json", split):
            texts.append(" ".join(radiological_sentences(clean_clinical_note(entry["report"]))))
    return [t for t in texts if t.strip()]


def image_report_datasets(config: dict, split: str) -> list:
    """The image-report pairs for the generator: covid_cxr plus any extra R2Gen folders."""
    from train.data.r2gen import CovidCxrDataset, R2GenDataset

    spec = spec_of(config)
    sets = [CovidCxrDataset(config["data"]["covid"], split, spec)]
    for root in config["data"].get("extra_r2gen", []):
        sets.append(R2GenDataset(root, split, spec, missing="skip"))
    return sets


def tokenizer_for(config: dict) -> ReportTokenizer:
    """Train the tokenizer once per run folder (on training text only) and reuse it."""
    path = Path(config["out_dir"]) / "tokenizer.json"
    if path.exists():
        return ReportTokenizer.from_json(path.read_text(encoding="utf-8"))
    texts = report_texts(config, "train")
    texts += [p for pair in DEFAULT_PROMPTS.values() for p in pair]  # prompts must tokenize
    tok = ReportTokenizer.train_from_texts(texts, vocab_size=int(config["tokenizer"]["vocab_size"]),
                                           min_frequency=int(config["tokenizer"]["min_frequency"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, tok.to_json(), shared=True)
    log.info("tokenizer: %d tokens from %d texts", tok.vocab_size, len(texts))
    return tok


class CachedDataset(Dataset):
    """Keeps decoded items in memory: every epoch re-reads nothing (a few hundred images)."""

    def __init__(self, base: Dataset, max_items: int = 0) -> None:
        self.base = base
        self.length = min(len(base), max_items) if max_items else len(base)
        self._cache: dict[int, object] = {}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if index not in self._cache:
            self._cache[index] = self.base[index]
        return self._cache[index]
