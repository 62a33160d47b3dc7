"""What every task shares: run folders, the tokenizer, the preprocessing spec, caching."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset

from rrg_desk.models.tokenizer import ReportTokenizer
from rrg_desk.models.findings import DEFAULT_PROMPTS
from rrg_desk.reports.text import clean_clinical_note, clean_report_r2gen
from train.data.preprocess import PreprocessSpec
from train.data.r2gen import read_annotation
from train.engine import LoopConfig

log = logging.getLogger(__name__)


def run_dir(config: dict, component: str) -> Path:
    return Path(config["out_dir"]) / component


def spec_of(config: dict) -> PreprocessSpec:
    p = config["preprocessing"]
    return PreprocessSpec(int(p["image_size"]), (float(p["mean"]),), (float(p["std"]),))


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
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tok.to_json(), encoding="utf-8")
    tmp.replace(path)
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


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
