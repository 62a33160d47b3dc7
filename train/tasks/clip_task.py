"""CLIP classifier on image-report pairs: contrastive loss plus the finding head's BCE on
labels the CheXpert-style labeler reads from each report."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rrg_desk.models.clip_classifier import ClipClassifier, ClipClassifierConfig
from rrg_desk.reports.labeler import label_report, to_binary
from train.data.r2gen import CovidCxrDataset, R2GenDataset
from train.metrics import auc_per_finding
from train.tasks.common import CachedDataset, limit, spec_of, tokenizer_for


def build_classifier(config: dict, tokenizer) -> ClipClassifier:
    special = dict(vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
    base = (ClipClassifierConfig.tiny(**special) if config.get("tiny") else ClipClassifierConfig(**special)).to_dict()
    base.update(config["clip"].get("model", {}))
    base.update(special)
    return ClipClassifier(ClipClassifierConfig.from_dict(base))


class ClipTrainModule(nn.Module):
    """forward() computes the whole loss, so DDP sees every parameter used in one call."""

    def __init__(self, classifier: ClipClassifier, head_weight: float) -> None:
        super().__init__()
        self.classifier = classifier
        self.head_weight = head_weight

    def forward(self, images, token_ids, labels):
        out = self.classifier(images, token_ids)
        contrastive = self.classifier.contrastive_loss(out.image_embeds, out.text_embeds)
        parts = {"contrastive": contrastive}
        if self.classifier.finding_head is not None and self.head_weight:
            logits = self.classifier.finding_head(self.classifier.encode_image(images, normalize=False))
            parts["head"] = self.classifier.head_loss(logits, labels)
        total = contrastive + self.head_weight * parts.get("head", 0.0)
        return total, parts


def image_report_datasets(config: dict, split: str):
    spec = spec_of(config)
    sets = [CovidCxrDataset(config["data"]["covid"], split, spec)]
    for root in config["data"].get("extra_r2gen", []):
        sets.append(R2GenDataset(root, split, spec, missing="skip"))
    return sets


class _PairDataset(torch.utils.data.Dataset):
    """(frontal-or-any image, token ids, binary labels) per image of each study."""

    def __init__(self, sets, tokenizer, context_length: int, max_items: int) -> None:
        self.items = []
        for dataset in sets:
            for index in range(len(dataset)):
                self.items.append((dataset, index))
        if max_items:
            self.items = self.items[:max_items]
        self.tokenizer, self.context_length = tokenizer, context_length
        self._cache: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        if i not in self._cache:
            dataset, index = self.items[i]
            item = dataset[index]
            labels = to_binary(label_report(item["report"]))
            ids = self.tokenizer.encode(item["report"], max_len=self.context_length)
            self._cache[i] = (item["images"][0], ids, torch.tensor(list(labels.values()), dtype=torch.float32),
                              item["report"])
        return self._cache[i]


class ClipTask:
    name = "clip"

    def __init__(self, config: dict) -> None:
        self.config = config
        self.tokenizer = tokenizer_for(config)
        self.context_length = build_classifier(config, self.tokenizer).config.context_length
        self.train_set = _PairDataset(image_report_datasets(config, "train"), self.tokenizer,
                                      self.context_length, limit(config))
        self.val_set = _PairDataset(image_report_datasets(config, "val"), self.tokenizer,
                                    self.context_length, limit(config))

    def build_model(self) -> nn.Module:
        return ClipTrainModule(build_classifier(self.config, self.tokenizer),
                               float(self.config["clip"].get("head_weight", 1.0)))

    def datasets(self):
        return self.train_set, self.val_set

    def collate(self, batch):
        images = torch.stack([b[0] for b in batch])
        ids = torch.tensor(self.tokenizer.pad([b[1] for b in batch], self.context_length)[0])
        labels = torch.stack([b[2] for b in batch])
        return images, ids, labels

    def loss(self, model, batch, device):
        images, ids, labels = (t.to(device) for t in batch)
        total, parts = model(images, ids, labels)
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def validate(self, model, dataset, device):
        batch = self.collate([dataset[i] for i in range(len(dataset))])
        images, ids, labels = (t.to(device) for t in batch)
        total, parts = model(images, ids, labels)
        probs = model.classifier.head_probabilities(images).cpu().numpy() \
            if model.classifier.finding_head is not None else None
        out = {"val_loss": float(total), "val_contrastive": float(parts["contrastive"])}
        if probs is not None:
            aucs = [a for a in auc_per_finding(labels.cpu().numpy(), probs,
                                               model.classifier.config.finding_names).values() if a is not None]
            out["val_head_mean_auc"] = float(sum(aucs) / len(aucs)) if aucs else None
        return out
