"""The region-guided generator, in two stages, and the region selector/abnormality heads.

Stage 1 (`GeneratorPretrainTask`): language-model pre-training on report sentences alone.
Stage 2 (`GeneratorTask`): one sentence per region, conditioned on that region's detector
features, global image tokens and disease clues (TRRG): in training the findings the report
states (labeler), at inference the classifier's thresholded decisions, so the text follows
the classifier. Region features come from the trained, frozen detector and are computed once
(`build_feature_cache`). `HeadsTask` trains the selector/abnormality heads
on the same cache: a region is "selected" when the report has a sentence about it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rrg_desk.models.generator import GeneratorConfig, RegionSentenceGenerator, make_labels
from rrg_desk.models.findings import FINDING_NAMES, NO_FINDING
from rrg_desk.models.regions import REGION_NAMES
from rrg_desk.reports.labeler import POSITIVE, label_report
from rrg_desk.reports.text import clean_report_r2gen, split_sentences
from rrg_desk.thresholds import DEFAULT_THRESHOLD
from train.data.r2gen import read_annotation
from train.data.text_corpus import region_sentence_pairs
from train.tasks.common import (generator_texts, image_report_datasets, limit, radiological_sentences, spec_of,
                                tokenizer_for)

log = logging.getLogger(__name__)


def build_generator(config: dict, tokenizer, detector) -> RegionSentenceGenerator:
    dims = dict(vocab_size=tokenizer.vocab_size, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id,
                pad_id=tokenizer.pad_id, region_feature_dim=detector.config.feature_dim,
                image_token_dim=detector.config.image_token_dim,
                max_image_tokens=detector.config.num_image_tokens)
    base = (GeneratorConfig.tiny(**dims) if config.get("tiny") else GeneratorConfig(**dims)).to_dict()
    base.update(config["generator"].get("model", {}))
    base.update(dims)
    return RegionSentenceGenerator(GeneratorConfig.from_dict(base))


class _Sentences(torch.utils.data.Dataset):
    def __init__(self, sentences: list[list[int]]) -> None:
        self.sentences = sentences

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, i: int) -> list[int]:
        return self.sentences[i]


class GeneratorPretrainTask:
    name = "generator_pretrain"

    def __init__(self, config: dict, detector) -> None:
        self.config, self.detector = config, detector
        self.tokenizer = tokenizer_for(config)
        self.max_len = int(config["generator"]["max_len"])
        encode = lambda texts: [self.tokenizer.encode(s, max_len=self.max_len)  # noqa: E731
                                for t in texts for s in split_sentences(t)]
        train, val = encode(generator_texts(config, "train")), encode(generator_texts(config, "val"))
        n = limit(config)
        self.train_set, self.val_set = _Sentences(train[: n * 8] if n else train), _Sentences(val[: n * 8] if n else val)

    def build_model(self) -> nn.Module:
        return build_generator(self.config, self.tokenizer, self.detector)

    def datasets(self):
        return self.train_set, self.val_set

    def collate(self, batch):
        ids, mask = self.tokenizer.pad(batch)
        return torch.tensor(ids), torch.tensor(mask)

    def loss(self, model, batch, device):
        ids, mask = (t.to(device) for t in batch)
        out = model(ids, mask, labels=make_labels(ids, mask))
        return out.loss, {}

    def validate(self, model, dataset, device):
        losses = []
        for start in range(0, len(dataset), 256):
            ids, mask = (t.to(device) for t in self.collate([dataset[i] for i in range(start, min(len(dataset), start + 256))]))
            losses.append(float(model(ids, mask, labels=make_labels(ids, mask)).loss) * len(ids))
        return {"val_loss": sum(losses) / max(1, len(dataset))}


# --- the frozen-feature cache ----------------------------------------------------------------
def report_clues(report: str) -> torch.Tensor:
    """[F] the disease clues a report teaches: 1 for each finding the labeler reads as positive.
    The generator learns clue -> wording from them (TRRG); at inference the classifier's
    thresholded decisions take their place (bundle card generation.clues = "thresholded")."""
    from rrg_desk.reports.labeler import to_binary

    return torch.tensor(list(to_binary(label_report(report)).values()), dtype=torch.float32)


def study_pairs(report: str, tokenizer, max_len: int) -> list[list]:
    """The report's (region index, sentence ids, abnormal) triples."""
    return [[REGION_NAMES.index(region), tokenizer.encode(sentence, max_len=max_len),
             int(any(v == POSITIVE for k, v in label_report(sentence).items() if k != NO_FINDING))]
            for region, sentence in region_sentence_pairs(report, "all")]


@torch.no_grad()
def encode_studies(studies, detector, tokenizer, max_len: int, device) -> dict | None:
    """(frontal image [1, C, S, S], report) pairs -> the cache layout: region features [N, R, D],
    image tokens [N, G, C], the reports' clues [N, F] and (region, sentence ids, abnormal)
    triples per study. None when there is no study."""
    detector.eval()
    features, tokens, clues, pairs = [], [], [], []
    for image, report in studies:
        detections = detector.detect(image.to(device))
        features.append(detections.features[0].cpu())
        tokens.append(detections.image_tokens[0].cpu())
        clues.append(report_clues(report))
        pairs.append(study_pairs(report, tokenizer, max_len))
    if not pairs:
        return None
    return {"features": torch.stack(features), "image_tokens": torch.stack(tokens), "clues": torch.stack(clues),
            "pairs": pairs}


def read_cache(path: Path) -> dict | None:
    """A saved cache, or None when missing or older (caches before report clues held the
    classifier's probabilities)."""
    import json

    meta_path = path.with_suffix(".pairs.json")
    if not (path.exists() and meta_path.exists()):
        return None
    tensors = load_file(str(path))
    return {**tensors, "pairs": json.loads(meta_path.read_text())} if "clues" in tensors else None


def write_cache(path: Path, cache: dict) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v for k, v in cache.items() if k != "pairs"}, str(path))
    path.with_suffix(".pairs.json").write_text(json.dumps(cache["pairs"]))


@torch.no_grad()
def build_feature_cache(config: dict, detector, tokenizer, split: str, device) -> dict:
    """The covid studies of `split` encoded by encode_studies (the frontal image drives the
    regions; the clues are the note's). Saved once per run folder."""
    path = Path(config["out_dir"]) / "features" / f"{split}.safetensors"
    cache = read_cache(path)
    if cache is not None:
        return cache

    def studies():
        count = 0
        for dataset in image_report_datasets(config, split):
            for index in range(len(dataset)):
                if limit(config) and count >= limit(config):
                    return
                item = dataset[index]
                count += 1
                yield item["images"][:1], " ".join(radiological_sentences(item["report"]))

    cache = encode_studies(studies(), detector, tokenizer, int(config["generator"]["max_len"]), device)
    if cache is None:
        raise FileNotFoundError(f"no image-report study in the {split} split of {config['data']['covid']}")
    write_cache(path, cache)
    log.info("feature cache %s: %d images, %d sentences", split, len(cache["pairs"]),
             sum(len(p) for p in cache["pairs"]))
    return cache


def stated_findings(report: str) -> frozenset[str]:
    """The pathologies a report states (labeler positive)."""
    return frozenset(n for n, v in zip(FINDING_NAMES, report_clues(report).tolist()) if v and n != NO_FINDING)


def agreeing_report(item, reports: list[tuple[frozenset, str]], rng) -> str | None:
    """A report whose findings agree with the image's labels: it states exactly the image's
    positive findings among those the image's source labels, and nothing the source does not
    label. None when no report agrees."""
    labelled = {n for n, m in zip(FINDING_NAMES, item.mask) if m and n != NO_FINDING}
    positive = frozenset(n for n, l, m in zip(FINDING_NAMES, item.labels, item.mask) if m and l and n != NO_FINDING)
    matches = [text for stated, text in reports if stated <= labelled and stated == positive]
    return matches[int(rng.integers(len(matches)))] if matches else None


@torch.no_grad()
def build_label_matched_cache(config: dict, detector, tokenizer, split: str, device) -> dict | None:
    """Real radiographs with finding labels (NIH, JSRT, TB) paired with IU report sentences whose
    labels agree (generator.label_matched_pairs): the covid notes alone teach "a real image means
    bilateral ground-glass opacities", since every covid image is abnormal; these pairs show
    normal and other abnormal chests with radiology wording, so the words follow the clues.
    Same layout as build_feature_cache; saved once per run folder; None when switched off."""
    import numpy as np

    from train.data.finding_labels import labelled_images
    from train.data.preprocess import load_image_tensor

    section = config["generator"].get("label_matched_pairs") or {}
    sources = {k: v for k, v in (config["data"].get("labelled") or {}).items() if k in section.get("sources", [])}
    if not sources or not config["data"].get("text_corpora"):
        return None
    path = Path(config["out_dir"]) / "features" / f"label_matched_{split}.safetensors"
    cache = read_cache(path)
    if cache is not None:
        return cache
    reports = [(stated_findings(text), text) for corpus in config["data"]["text_corpora"]
               for text in (clean_report_r2gen(e["report"]) for e in read_annotation(Path(corpus), split))]
    rng = np.random.default_rng(int(config.get("seed", 0)))
    items = labelled_images(sources, split)
    rng.shuffle(items)
    cap = limit(config) or int(section.get("max_images", 0) or 0) or len(items)
    spec = spec_of(config)

    def studies():
        count = 0
        for item in items:
            if count >= cap:
                return
            report = agreeing_report(item, reports, rng)
            if report is not None:
                count += 1
                yield load_image_tensor(item.path, spec)[0][None], report

    cache = encode_studies(studies(), detector, tokenizer, int(config["generator"]["max_len"]), device)
    if cache is None:
        return None
    write_cache(path, cache)
    log.info("label-matched pairs %s: %d images, %d sentences", split, len(cache["pairs"]),
             sum(len(p) for p in cache["pairs"]))
    return cache


class _RegionSentences(torch.utils.data.Dataset):
    def __init__(self, cache: dict) -> None:
        self.cache = cache
        self.index = [(i, region, ids) for i, study in enumerate(cache["pairs"]) for region, ids, _ in study]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int):
        i, region, ids = self.index[k]
        return self.cache["features"][i, region], region, self.cache["image_tokens"][i], self.cache["clues"][i], ids


class _TextRegionSentences(torch.utils.data.Dataset):
    """Region-sentence pairs from report text without images (IU X-ray's reports): the visual
    inputs are zeros and the disease clues are the labeler's reading of the whole report. They
    teach what each region's sentence sounds like and how clues turn into words (TRRG); the
    image-paired samples teach the visual part."""

    def __init__(self, config: dict, tokenizer, split: str, feature_dim: int, token_shape: tuple[int, int],
                 num_findings: int) -> None:
        max_len = int(config["generator"]["max_len"])
        self.items = []
        for path in config["data"].get("text_corpora", []):
            for entry in read_annotation(Path(path), split):
                report = clean_report_r2gen(entry["report"])
                clues = report_clues(report)
                for region, sentence in region_sentence_pairs(report, "all"):
                    self.items.append((REGION_NAMES.index(region), clues, tokenizer.encode(sentence, max_len=max_len)))
        n = limit(config)
        if n:
            self.items = self.items[: n * 8]
        self.zero_features = torch.zeros(feature_dim)
        self.zero_tokens = torch.zeros(token_shape)
        assert not self.items or len(self.items[0][1]) == num_findings

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int):
        region, clues, ids = self.items[k]
        return self.zero_features, region, self.zero_tokens, clues, ids


class GeneratorTask:
    name = "generator"

    def __init__(self, config: dict, detector, tokenizer, device) -> None:
        self.config, self.detector, self.tokenizer = config, detector, tokenizer
        train_cache = build_feature_cache(config, detector, tokenizer, "train", device)
        self.train_set = _RegionSentences(train_cache)
        self.val_set = _RegionSentences(build_feature_cache(config, detector, tokenizer, "val", device))
        matched = {split: build_label_matched_cache(config, detector, tokenizer, split, device)
                   for split in ("train", "val")}
        if matched["train"] is not None:
            self.train_set = torch.utils.data.ConcatDataset([self.train_set, _RegionSentences(matched["train"])])
        if matched["val"] is not None:
            self.val_set = torch.utils.data.ConcatDataset([self.val_set, _RegionSentences(matched["val"])])
        if config["generator"].get("text_region_pairs", False):
            text = _TextRegionSentences(config, tokenizer, "train", detector.config.feature_dim,
                                        tuple(train_cache["image_tokens"].shape[1:]), train_cache["clues"].shape[1])
            self.train_set = torch.utils.data.ConcatDataset([self.train_set, text])

    def build_model(self) -> nn.Module:
        return build_generator(self.config, self.tokenizer, self.detector)

    def datasets(self):
        return self.train_set, self.val_set

    def collate(self, batch):
        features, regions, tokens, clues, ids = zip(*batch)
        padded, mask = self.tokenizer.pad(ids)
        return (torch.stack(features), torch.tensor(regions), torch.stack(tokens), torch.stack(clues),
                torch.tensor(padded), torch.tensor(mask))

    def loss(self, model, batch, device):
        features, regions, tokens, clues, ids, mask = (t.to(device) for t in batch)
        out = model(ids, mask, region_features=features, region_ids=regions, image_tokens=tokens,
                    finding_probs=clues, labels=make_labels(ids, mask))
        return out.loss, {}

    def validate(self, model, dataset, device):
        total, count = 0.0, 0
        for start in range(0, len(dataset), 128):
            batch = self.collate([dataset[i] for i in range(start, min(len(dataset), start + 128))])
            loss, _ = self.loss(model, batch, device)
            total += float(loss) * len(batch[0])
            count += len(batch[0])
        return {"val_loss": total / max(1, count)}


# --- selector / abnormality heads ------------------------------------------------------------
class HeadsTrainModule(nn.Module):
    def __init__(self, heads: nn.Module) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, features, selected, abnormal):
        parts = self.heads.loss(features, selected, abnormal)
        return sum(parts.values()), parts


class _HeadTargets(torch.utils.data.Dataset):
    def __init__(self, cache: dict) -> None:
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache["pairs"])

    def __getitem__(self, i: int):
        selected = torch.zeros(len(REGION_NAMES))
        abnormal = torch.zeros(len(REGION_NAMES))
        for region, _ids, is_abnormal in self.cache["pairs"][i]:
            selected[region] = 1.0
            abnormal[region] = max(float(abnormal[region]), float(is_abnormal))
        return self.cache["features"][i], selected, abnormal


class HeadsTask:
    name = "region_heads"

    def __init__(self, config: dict, detector, tokenizer, device) -> None:
        self.detector = detector
        self.train_set = _HeadTargets(build_feature_cache(config, detector, tokenizer, "train", device))
        self.val_set = _HeadTargets(build_feature_cache(config, detector, tokenizer, "val", device))

    def build_model(self) -> nn.Module:
        return HeadsTrainModule(self.detector.heads)

    def datasets(self):
        return self.train_set, self.val_set

    def collate(self, batch):
        return tuple(torch.stack(t) for t in zip(*batch))

    def loss(self, model, batch, device):
        total, parts = model(*(t.to(device) for t in batch))
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def validate(self, model, dataset, device):
        features, selected, abnormal = (t.to(device) for t in self.collate([dataset[i] for i in range(len(dataset))]))
        total, parts = model(features, selected, abnormal)
        logits, _ = model.heads(features)
        accuracy = float(((logits > 0).float() == selected).float().mean())
        return {"val_loss": float(total), "val_selector_accuracy": accuracy}


@torch.no_grad()
def calibrate_selector_threshold(config: dict, heads: nn.Module, tokenizer, detector, device) -> dict:
    """The selector's threshold such that a draft covers as many regions as a typical report
    does (mean distinct regions per training report, IU text included): RGRG-style selection
    without letting the commonest region (whole_image) crowd out the rest."""
    import numpy as np

    per_report = []
    for path in config["data"].get("text_corpora", []):
        for entry in read_annotation(Path(path), "train"):
            per_report.append(len({r for r, _ in region_sentence_pairs(clean_report_r2gen(entry["report"]), "all")}))
    cache = build_feature_cache(config, detector, tokenizer, "train", device)
    per_report += [len({region for region, _ids, _abn in study}) for study in cache["pairs"] if study]
    target = float(np.mean(per_report)) if per_report else 4.0
    val = build_feature_cache(config, detector, tokenizer, "val", device)
    selector_logits, _ = heads(val["features"].to(device))
    probs = torch.sigmoid(selector_logits).cpu().numpy()  # [N, R]
    candidates = np.unique(np.round(probs, 4))
    counts = {float(t): float((probs >= t).sum(axis=1).mean()) for t in candidates}
    threshold = min(counts, key=lambda t: (abs(counts[t] - target), -t)) if counts else DEFAULT_THRESHOLD
    return {"threshold": threshold, "target_regions_per_report": target,
            "mean_selected_on_val": counts.get(threshold)}
