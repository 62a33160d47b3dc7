"""The finding classifier on every labelled source: the finding head's masked BCE on the
image labels plus a CLIP contrastive loss between images and report text (CRRG-CLIP, TRRG).

Text per image: the covid_cxr note's image-describing sentences where there is a note,
otherwise a report written from the image's labels with the classifier's own prompt pairs
(positive prompts for present findings, negative prompts for a few absent ones), so the
text tower learns exactly the sentences the zero-shot prompts use. (Identical texts in a
batch have identical embeddings, so InfoNCE cannot push them apart: no match mask needed.)
"""
from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rrg_desk.models.clip_classifier import ClipClassifier, ClipClassifierConfig
from rrg_desk.models.findings import FINDING_NAMES, NO_FINDING
from train.data.finding_labels import (LabelledImage, label_vector, labelled_images, labeler_labels,
                                      mask_source_constant_labels, source_family, weight_sources)
from train.data.preprocess import load_image_tensor
from train.metrics import masked_auc_per_finding, within_source_mean_auc
from train.tasks.common import limit, spec_of, tokenizer_for

log = logging.getLogger(__name__)
FROZEN_PREFIXES_DEFAULT = ("conv_stem", "bn1", "blocks.0", "blocks.1")


def build_classifier(config: dict, tokenizer) -> ClipClassifier:
    special = dict(vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
    base = (ClipClassifierConfig.tiny(**special) if config.get("tiny") else ClipClassifierConfig(**special)).to_dict()
    base.update(config["clip"].get("model", {}))
    base.update(special)
    return ClipClassifier(ClipClassifierConfig.from_dict(base))


def labelled_sources(config: dict) -> dict[str, str]:
    """{kind: folder} of the labelled image sources (config data.labelled, default: covid only)."""
    return dict(config["data"].get("labelled") or {"covid": config["data"]["covid"]})


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                     logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the batch: embeddings [B,D] normalised, pairs on the diagonal. It is
    open_clip's ClipLoss() as it was used (world_size 1: under DDP each rank scores its own batch)."""
    logits_per_image = logit_scale * image_embeds @ text_embeds.T
    logits_per_text = logit_scale * text_embeds @ image_embeds.T
    labels = torch.arange(logits_per_image.shape[0], device=image_embeds.device, dtype=torch.long)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


class ClipTrainModule(nn.Module):
    """forward() computes the whole loss, so DDP sees every parameter used in one call."""

    def __init__(self, classifier: ClipClassifier, head_weight: float, contrastive_weight: float = 1.0,
                 pos_weight: torch.Tensor | None = None, contrastive_trains_backbone: bool = True) -> None:
        super().__init__()
        self.classifier = classifier
        self.head_weight, self.contrastive_weight = head_weight, contrastive_weight
        self.contrastive_trains_backbone = contrastive_trains_backbone
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None
                             else torch.ones(len(classifier.config.finding_names)))

    def forward(self, images, token_ids, labels, mask=None):
        features = self.classifier.image_features(images)
        parts = {}
        total = features.new_zeros(())
        if self.contrastive_weight:
            # detached: the alignment learns on the backbone's features without steering them
            aligned = features if self.contrastive_trains_backbone else features.detach()
            image_embeds = self.classifier.embed_features(aligned)
            text_embeds = self.classifier.encode_text(token_ids)
            parts["contrastive"] = contrastive_loss(image_embeds, text_embeds, self.classifier.logit_scale)
            total = total + self.contrastive_weight * parts["contrastive"]
        if self.classifier.finding_head is not None and self.head_weight:
            logits = self.classifier.head_logits(features)
            parts["head"] = self.classifier.head_loss(logits, labels, mask, self.pos_weight)
            total = total + self.head_weight * parts["head"]
        return total, parts


def label_text(labels, mask, prompts: list[list[str]], rng: random.Random, negatives: int = 2) -> str:
    """A short report from labels: positive prompts of present findings, a few negative prompts
    of absent ones, in random order; a normal chest reads as the No Finding prompt."""
    present = [k for k, name in enumerate(FINDING_NAMES) if mask[k] and labels[k] and name != NO_FINDING]
    absent = [k for k, name in enumerate(FINDING_NAMES) if mask[k] and not labels[k] and name != NO_FINDING]
    sentences = [prompts[k][0] for k in present]
    sentences += [prompts[k][1] for k in rng.sample(absent, min(negatives, len(absent)))]
    rng.shuffle(sentences)
    if not present and labels[FINDING_NAMES.index(NO_FINDING)]:
        sentences.insert(0, prompts[FINDING_NAMES.index(NO_FINDING)][0])
    return " ".join(sentences)


class LabelledImageSet(torch.utils.data.Dataset):
    """(image [1,S,S] normalised as the app does, labels [F], mask [F], note text) per image;
    images decoded once and kept as float16."""

    def __init__(self, items: list[LabelledImage], spec, notes: dict[str, str] | None = None) -> None:
        self.items, self.spec, self.notes = items, spec, notes or {}
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.items)

    def image(self, i: int) -> torch.Tensor:
        if i not in self._cache:
            self._cache[i] = load_image_tensor(self.items[i].path, self.spec)[0].half()
        return self._cache[i]

    def __getitem__(self, i: int):
        item = self.items[i]
        return (self.image(i), torch.tensor(item.labels), torch.tensor(item.mask), self.notes.get(str(item.path), ""))


class ReportImageSet(LabelledImageSet):
    """The first image of each study of an image-report dataset ({"images", "report", ...}
    items, e.g. local R2Gen folders for fine-tuning), labelled by the labeler from its report."""

    def __init__(self, dataset, max_items: int = 0) -> None:
        count = min(len(dataset), max_items) if max_items else len(dataset)
        items, notes = [], {}
        self._cache = {}
        for index in range(count):
            study = dataset[index]
            path = Path(study.get("image_paths", [f"study-{index}"])[0])
            labels, mask = label_vector(labeler_labels(study["report"]))
            items.append(LabelledImage(path, labels, mask, "local", "", str(study.get("id", index)), ""))
            notes[str(path)] = study["report"]
            self._cache[index] = study["images"][0].half()
        self.items, self.spec, self.notes = items, None, notes


def covid_notes(config: dict) -> dict[str, str]:
    """image path -> the image-describing sentences of its covid_cxr note."""
    import json

    from rrg_desk.reports.text import clean_clinical_note
    from train.tasks.common import radiological_sentences

    root = config["data"].get("labelled", {}).get("covid")
    if not root:
        return {}
    annotation = json.loads((Path(root) / "annotation.json").read_text(encoding="utf-8"))
    return {str(Path(root) / "images" / p): " ".join(radiological_sentences(clean_clinical_note(e["report"])))
            for entries in annotation.values() for e in entries for p in e["image_path"]}


def augment(images: torch.Tensor, out_size: int, spec, generator: torch.Generator | None = None) -> torch.Tensor:
    """Anatomy-preserving augmentation of a normalised batch [B,1,H,W] -> [B,1,S,S]: small
    rotation, scale and shift (no flips: the heart stays on the patient's left), then
    gamma, contrast and brightness in display space, and faint noise."""
    batch = images.shape[0]
    images = F.interpolate(images.float(), size=(round(out_size * 1.125),) * 2, mode="bilinear",
                           align_corners=False, antialias=True)

    def uniform(low, high):
        return low + (high - low) * torch.rand(batch, generator=generator)

    angle = uniform(-8, 8) * math.pi / 180
    scale = uniform(0.88, 1.0)  # < 1 zooms in (the cache has a 12.5% margin)
    shift_x, shift_y = uniform(-0.06, 0.06), uniform(-0.06, 0.06)
    theta = torch.stack([torch.stack([scale * torch.cos(angle), -scale * torch.sin(angle), shift_x], 1),
                         torch.stack([scale * torch.sin(angle), scale * torch.cos(angle), shift_y], 1)], 1)
    grid = F.affine_grid(theta, (batch, 1, out_size, out_size), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean, std = spec.mean, spec.std
    unit = (out * std + mean).clamp(0, 1)
    gamma = uniform(0.7, 1.4).view(-1, 1, 1, 1)
    contrast = uniform(0.8, 1.2).view(-1, 1, 1, 1)
    brightness = uniform(-0.08, 0.08).view(-1, 1, 1, 1)
    unit = ((unit ** gamma - 0.5) * contrast + 0.5 + brightness).clamp(0, 1)
    unit = unit + 0.01 * torch.randn(unit.shape, generator=generator)
    return (unit - mean) / std


def positive_weights(items: list[LabelledImage], cap: float = 8.0) -> torch.Tensor:
    """Per finding sqrt(negatives / positives) among labelled images, in [1, cap]."""
    labels = torch.tensor([i.labels for i in items])
    mask = torch.tensor([i.mask for i in items])
    positives = (labels * mask).sum(0)
    negatives = ((1 - labels) * mask).sum(0)
    return (negatives / positives.clamp(min=1)).sqrt().clamp(1.0, cap)


class ClipTask:
    name = "clip"

    def __init__(self, config: dict) -> None:
        self.config = config
        self.tokenizer = tokenizer_for(config)
        self.classifier_config = build_classifier(config, self.tokenizer).config
        self.context_length = self.classifier_config.context_length
        sources, spec = labelled_sources(config), spec_of(config)
        notes = covid_notes(config)
        cap = limit(config)
        train_items, val_items = labelled_images(sources, "train"), labelled_images(sources, "val")
        if cap:
            train_items, val_items = spread(train_items, cap), spread(val_items, cap)
        if config["clip"].get("mask_source_constant_labels", True):
            train_items = mask_source_constant_labels(train_items)
        train_items = weight_sources(train_items, config["clip"].get("source_weights") or {})
        self.train_set = LabelledImageSet(train_items, spec, notes)
        self.val_set = LabelledImageSet(val_items, spec, notes)
        self.spec = spec
        log.info("classifier: %d training and %d validation images from %s", len(train_items), len(val_items),
                 ", ".join(sources))

    def build_model(self) -> nn.Module:
        section = self.config["clip"]
        classifier = build_classifier(self.config, self.tokenizer)
        pretrained = section.get("pretrained", False)
        if pretrained:
            from train.pretrained import load_imagenet_backbone

            self.pretrained_provenance = load_imagenet_backbone(classifier.backbone, classifier.config.backbone)
        frozen = tuple(section.get("frozen_prefixes", FROZEN_PREFIXES_DEFAULT if pretrained else ()))
        for name, param in classifier.backbone.named_parameters():
            if name.startswith(frozen):
                param.requires_grad = False
        return ClipTrainModule(classifier, float(section.get("head_weight", 1.0)),
                               float(section.get("contrastive_weight", 1.0)),
                               positive_weights(self.train_set.items),
                               bool(section.get("contrastive_trains_backbone", True)))

    def datasets(self):
        return self.train_set, self.val_set

    def _texts(self, batch) -> list[str]:
        prompts = self.classifier_config.prompts
        # drawn from torch's generator, which checkpoints save, so --resume replays the same texts
        rng = random.Random(int(torch.randint(0, 2**31 - 1, (1,))))
        return [note or label_text(labels.tolist(), mask.tolist(), prompts, rng)
                for _image, labels, mask, note in batch]

    def collate(self, batch):
        images = augment(torch.stack([b[0] for b in batch]), self.classifier_config.image_size, self.spec)
        texts = self._texts(batch)
        ids = torch.tensor(self.tokenizer.pad([self.tokenizer.encode(t, max_len=self.context_length)
                                               for t in texts], self.context_length)[0])
        return images, ids, torch.stack([b[1] for b in batch]), torch.stack([b[2] for b in batch])

    def loss(self, model, batch, device):
        images, ids, labels, mask = (t.to(device) for t in batch)
        total, parts = model(images, ids, labels, mask)
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def validate(self, model, dataset, device):
        from rrg_desk.models.classify import prompt_token_ids

        classifier = model.classifier
        prompts = classifier.prompt_embeddings(*prompt_token_ids(classifier, self.tokenizer, device))
        scores = validation_scores(classifier, dataset, prompts, device)
        labels, mask = (np.stack([np.asarray(i.labels) for i in dataset.items]),
                        np.stack([np.asarray(i.mask) for i in dataset.items]))
        sources = [source_family(i) for i in dataset.items]
        out = {}
        for mode, probs in scores.items():
            aucs = [a for a in masked_auc_per_finding(labels, mask, probs, FINDING_NAMES, min_cases=3).values()
                    if a is not None]
            out[f"val_{mode}_pooled_mean_auc"] = float(np.mean(aucs)) if aucs else None
            out[f"val_{mode}_mean_auc"] = within_source_mean_auc(labels, mask, probs, sources)
        # model selection: AUC within each source, so telling hospitals apart earns nothing
        out["val_mean_auc"] = out.get("val_head_mean_auc") or out.get("val_zero_shot_mean_auc")
        main = np.clip(scores.get("head", scores["zero_shot"]), 1e-6, 1 - 1e-6)
        bce = -(labels * np.log(main) + (1 - labels) * np.log(1 - main))
        out["val_loss"] = float((bce * mask).sum() / max(1.0, mask.sum()))  # masked BCE: defined on any split
        return out


def validation_scores(classifier, dataset, prompts, device, batch_size: int = 32) -> dict[str, np.ndarray]:
    """[N, F] probabilities of the head, zero-shot and their mean on every image of `dataset`."""
    head, zero = [], []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            images = torch.stack([dataset.image(i) for i in range(start, min(len(dataset), start + batch_size))])
            features = classifier.image_features(images.float().to(device))
            zero.append(classifier.zero_shot_probabilities(classifier.embed_features(features), *prompts).cpu())
            if classifier.finding_head is not None:
                head.append(torch.sigmoid(classifier.head_logits(features)).cpu())
    out = {"zero_shot": torch.cat(zero).numpy()}
    if head:
        out["head"] = torch.cat(head).numpy()
        out["ensemble"] = 0.5 * (out["head"] + out["zero_shot"])
    return out


def spread(items: list, count: int) -> list:
    """`count` items spread over the list (every source represented in tiny runs)."""
    if len(items) <= count:
        return items
    step = len(items) / count
    return [items[int(k * step)] for k in range(count)]
