"""Fine-tune an installed bundle on local data into a NEW bundle; the parent is only read.

    python -m train finetune --from BUNDLE_DIR --data DATA [--layout r2gen|csv]
                             [--train generator|classifier+generator|all] [--config FILE] [--out DIR]

The parent card rebuilds the models and its tokenizer is reused as is (never retrained:
words it does not know become unk). The chosen parts train with the fine-tune schedule of
train/configs/finetune.yaml through train.engine.fit, so --resume and torchrun work as for
training. Order: detector (on the config's JSRT region boxes: local data has none), classifier,
then the region selector heads and the generator on features of the (fine-tuned) detector
and classifier. Parent and child are then evaluated on the same local validation split and
both evaluations are printed side by side and recorded in the child's card.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from rrg_desk.imaging import read_image
from rrg_desk.imaging.types import Study
from rrg_desk.models.bundle import load_bundle, save_bundle, sha256_file
from rrg_desk.models.card import CARD_FILE, BundleError, Preprocessing, update_records
from rrg_desk.models.regions import WHOLE_IMAGE
from rrg_desk.reports.text import clean_clinical_note
from train.config import CONFIG_DIR, deep_merge, load_config, parse_override
from train.data.csv_reports import CsvReportDataset
from train.data.r2gen import R2GenDataset
from train.engine import LoopConfig, fit
from train.tasks.clip_task import ClipTask, ClipTrainModule, ReportImageSet, positive_weights
from train.tasks.generator_task import (GeneratorTask, HeadsTask, HeadsTrainModule, _HeadTargets, _RegionSentences,
                                        encode_studies, read_cache, write_cache)

log = logging.getLogger(__name__)

FINETUNE_CONFIG = CONFIG_DIR / "finetune.yaml"
PARTS = {"generator": ("generator",), "classifier+generator": ("classifier", "generator"),
         "all": ("detector", "classifier", "heads", "generator")}


def finetune_config(user_config: Path | None = None, overrides: list[str] | None = None) -> dict:
    """default.yaml <- finetune.yaml <- the user's file <- --set overrides."""
    config = load_config(FINETUNE_CONFIG)
    if user_config is not None:
        config = deep_merge(config, yaml.safe_load(Path(user_config).read_text()) or {})
    for text in overrides or []:
        config = deep_merge(config, parse_override(text))
    return config


# --- local data ------------------------------------------------------------------------------
class _CsvStudies(torch.utils.data.Dataset):
    """CsvReportDataset rows as the trainer's study items ({"id", "report", "images"})."""

    def __init__(self, rows: CsvReportDataset) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        item = self.rows[index]
        return {"id": item["id"], "report": item["report"], "images": item["image"][None]}


def local_dataset(layout: str, data: Path, split: str, spec: Preprocessing):
    if layout == "csv":
        return _CsvStudies(CsvReportDataset(data, spec, split=split, report_transform=clean_clinical_note))
    return R2GenDataset(data, split, spec, missing="skip", report_transform=clean_clinical_note)


def evaluation_studies(layout: str, data: Path, split: str, limit: int = 0) -> list[tuple[str, Study, str]]:
    """(id, Study, reference text) of a local split: what both bundles are drafted on."""
    if layout == "csv":
        rows = CsvReportDataset(data, Preprocessing(8, 0.5, 0.25), split=split).rows
        items = [(r["id"], [r["image_path"]], r["report"]) for r in rows]
    else:
        entries = R2GenDataset(data, split, Preprocessing(8, 0.5, 0.25), missing="skip").entries
        items = [(e["id"], [data / "images" / p for p in e["image_path"]], e["report"]) for e in entries]
    items = items[:limit] if limit else items
    return [(sid, Study(study_uid=sid, images=[read_image(p) for p in paths]), clean_clinical_note(text))
            for sid, paths, text in items]


@torch.no_grad()
def feature_cache(dataset, bundle, max_len: int, device, limit: int = 0) -> dict:
    """The local studies encoded as build_feature_cache encodes the covid ones (frozen detector,
    report clues)."""
    count = min(len(dataset), limit) if limit else len(dataset)
    studies = ((item["images"][:1], item["report"]) for item in (dataset[i] for i in range(count)))
    cache = encode_studies(studies, bundle.detector, bundle.tokenizer, max_len, device)
    if cache is None:
        raise FileNotFoundError("the local data has no usable study in this split")
    log.info("feature cache: %d studies, %d sentences", len(cache["pairs"]), sum(len(p) for p in cache["pairs"]))
    return cache


def _cached(path: Path, build, info) -> dict:
    """Rank 0 builds and saves; the other ranks wait and read (no two writers of one file)."""
    from train.distributed import barrier

    if info.is_main and read_cache(path) is None:
        write_cache(path, build())
    barrier(info)
    return read_cache(path)


# --- tasks: the training tasks, on local data and the parent's models --------------------------
class LocalClipTask(ClipTask):
    """The classifier on local studies, labelled by the labeler from their reports."""

    def __init__(self, config: dict, bundle, train_set, val_set, spec: Preprocessing) -> None:
        self.config, self.tokenizer, self.spec = config, bundle.tokenizer, spec
        self.classifier_config = bundle.classifier.config
        self.context_length = self.classifier_config.context_length
        limit = int(config.get("limit", 0) or 0)
        self.train_set, self.val_set = ReportImageSet(train_set, limit), ReportImageSet(val_set, limit)


class LocalHeadsTask(HeadsTask):
    def __init__(self, bundle, caches: dict) -> None:
        self.detector = bundle.detector
        self.train_set, self.val_set = _HeadTargets(caches["train"]), _HeadTargets(caches["val"])


class LocalGeneratorTask(GeneratorTask):
    def __init__(self, config: dict, bundle, caches: dict) -> None:
        self.config, self.detector, self.tokenizer = config, bundle.detector, bundle.tokenizer
        self.train_set, self.val_set = _RegionSentences(caches["train"]), _RegionSentences(caches["val"])


def _fit_best(task, module: nn.Module, loop: dict, run: Path, info, resume: bool) -> dict:
    """Train `module` in place and leave it with the best validation weights."""
    cfg = LoopConfig.from_dict(loop)
    result = fit(task, cfg, run, info, resume=resume, model=module)
    best = run / "best.safetensors"
    if best.exists():
        module.load_state_dict(load_file(str(best), device=str(info.device)))
    module.eval()
    return {"epochs": result.epochs_run, "steps": result.steps, "best_epoch": result.best_epoch,
            cfg.monitor: result.best_metric, "stopped_early": result.stopped_early}


def train_parts(config: dict, bundle, parts: tuple[str, ...], layout: str, data: Path, run_root: Path,
                info, resume: bool) -> dict:
    """Fine-tune `parts` of the loaded bundle in place; returns each run's summary."""
    from train.tasks.detector_task import DetectorTask

    section, spec = config["finetune"], bundle.preprocessing
    summaries = {}
    if "detector" in parts:
        summaries["detector"] = _fit_best(DetectorTask(config), bundle.detector, section["detector_loop"],
                                          run_root / "detector", info, resume)
    local = {split: local_dataset(layout, data, split, spec) for split in ("train", "val")}
    if "classifier" in parts:
        task = LocalClipTask(config, bundle, local["train"], local["val"], spec)
        module = ClipTrainModule(bundle.classifier, float(config["clip"].get("head_weight", 1.0)),
                                 float(config["clip"].get("contrastive_weight", 1.0)),
                                 positive_weights(task.train_set.items))
        summaries["classifier"] = _fit_best(task, module, section["clip_loop"], run_root / "clip", info, resume)
    max_len = int(bundle.card.records.training.get("config", {}).get("generator", {}).get("max_len")
                  or bundle.generation.max_len)
    limit = int(config.get("limit", 0) or 0)
    caches = {split: _cached(run_root / "features" / f"{split}.safetensors",
                             lambda s=split: feature_cache(local[s], bundle, max_len, info.device, limit), info)
              for split in ("train", "val")}
    if "heads" in parts:
        summaries["region_heads"] = _fit_best(LocalHeadsTask(bundle, caches), HeadsTrainModule(bundle.detector.heads),
                                              section["heads_loop"], run_root / "region_heads", info, resume)
    summaries["generator"] = _fit_best(LocalGeneratorTask(config, bundle, caches), bundle.generator,
                                       section["generator_loop"], run_root / "generator", info, resume)
    return summaries


# --- before / after ---------------------------------------------------------------------------
def evaluate_on_studies(bundle_dir: Path, rows: list[tuple[str, Study, str]], device: str = "cpu",
                        meteor: bool = True, jsrt_dataset=None) -> dict:
    """NLG, CE and classifier AUC of a bundle's drafts against the references of `rows`
    (the shape of train.evaluate.evaluate_bundle's "model" entry); detector IoU when a
    dataset with region boxes is given, else None."""
    from rrg_desk.inference.pipeline import DraftPipeline
    from train.evaluate import classifier_auc, draft_references, score_system
    from train.tasks.detector_task import evaluate_detector

    pipeline = DraftPipeline(bundle_dir, device=device)
    references, hypotheses, probs = draft_references(pipeline, rows)
    aucs = classifier_auc(pipeline, references, probs)
    defined = [v for v in aucs.values() if v is not None]
    result = {"studies": len(rows), "bundle_id": pipeline.bundle.bundle_id,
              "model": score_system(references, hypotheses, meteor),
              "classifier_auc": aucs, "classifier_mean_auc": float(np.mean(defined)) if defined else None,
              "detector": None}
    if jsrt_dataset is not None:
        with torch.inference_mode():
            result["detector"] = evaluate_detector(pipeline.bundle.detector, jsrt_dataset, pipeline.device)
    return json.loads(json.dumps(result, default=float))


def comparison_rows(parent: dict, child: dict) -> list[tuple[str, float | None, float | None]]:
    rows = [(k, parent["model"]["nlg"].get(k), child["model"]["nlg"].get(k))
            for k in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")]
    rows += [(f"CE {k.replace('_', ' ')}", parent["model"]["ce"][k], child["model"]["ce"][k])
             for k in ("micro_f1", "macro_f1")]
    rows.append(("classifier mean AUC", parent["classifier_mean_auc"], child["classifier_mean_auc"]))
    rows.append(("detector mean IoU", (parent["detector"] or {}).get("mean_iou"),
                 (child["detector"] or {}).get("mean_iou")))
    return rows


def side_by_side(parent: dict, child: dict) -> str:
    cell = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["| metric | parent | fine-tuned | change |", "|---|---|---|---|"]
    for name, before, after in comparison_rows(parent, child):
        change = "" if before is None or after is None else f"{after - before:+.3f}"
        lines.append(f"| {name} | {cell(before)} | {cell(after)} | {change} |")
    return "\n".join(lines)


# --- the command ------------------------------------------------------------------------------
def _default_out(parent: Path) -> Path:
    from rrg_desk.paths import user_data_dir

    return user_data_dir() / "bundles" / f"{parent.name}-ft-{datetime.now():%Y%m%d-%H%M%S}"


def _check_out(parent: Path, out: Path) -> None:
    parent, resolved = parent.resolve(), out.resolve()
    if resolved == parent or parent in resolved.parents:
        raise ValueError(f"--out {out} is the parent bundle or inside it; a fine-tune never writes there")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out} already exists; choose a new folder (bundles are never overwritten)")


def run_finetune(args, config: dict, info) -> Path | None:
    parts = PARTS[args.train or config["finetune"].get("train", "generator")]
    layout = args.layout or ("csv" if args.data.suffix.lower() == ".csv" else "r2gen")
    parent = Path(args.parent)
    if args.out is None and info.distributed:
        raise ValueError("with torchrun, pass --out so every process writes the same run")
    out = Path(args.out) if args.out is not None else _default_out(parent)
    _check_out(parent, out)
    parent_card_sha = sha256_file(parent / CARD_FILE)
    bundle = load_bundle(parent, device=info.device)  # verifies every hash; the folder is only read
    config["preprocessing"] = bundle.preprocessing.to_dict()  # the models' input is the parent's
    run_root = Path(config["out_dir"]) / out.name
    log.info("fine-tuning %s (%s) on %s [%s]: %s", bundle.bundle_id, parent, args.data, layout, ", ".join(parts))
    summaries = train_parts(config, bundle, parts, layout, Path(args.data), run_root, info, args.resume)
    if not info.is_main:
        return None
    card = bundle.card
    extra = {
        "thresholds": card.thresholds, "classification": card.classification.to_dict(),
        "region_selection": card.region_selection.to_dict(), "preprocessing": card.preprocessing.to_dict(),
        # the generator is always retrained here, on report-label clues (build_feature_cache's convention)
        "generation": card.generation.to_dict() | {"clues": "thresholded"},
        "parent": {"bundle_id": card.bundle_id, "folder": str(parent.resolve()), "card_sha256": parent_card_sha},
        "training": {"kind": "finetune", "trained": list(parts), "config": config, "validation": summaries,
                     "data": {"local": str(Path(args.data).resolve()), "layout": layout},
                     "parent_data": card.records.training.get("data"), "commit": _commit(),
                     "exported": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }
    models = {name: getattr(bundle, name).cpu() for name in ("detector", "classifier", "generator")}
    save_bundle(out, tokenizer=bundle.tokenizer, card_extra=extra, **models)
    evaluation = config["finetune"].get("evaluate", {})
    rows = evaluation_studies(layout, Path(args.data), evaluation.get("split", "val"),
                              int(evaluation.get("max_studies", 0) or 0))
    jsrt = _jsrt_val(config, card) if "detector" in parts else None
    device = str(info.device)
    before = evaluate_on_studies(parent, rows, device, bool(evaluation.get("meteor", True)), jsrt)
    after = evaluate_on_studies(out, rows, device, bool(evaluation.get("meteor", True)), jsrt)
    split = {"split": f"local {evaluation.get('split', 'val')}", "data": str(Path(args.data).resolve())}
    child = update_records(out, metrics={**split, **after},
                           finetune_evaluation={**split, "parent": before, "child": after})
    print(f"parent {card.bundle_id} vs fine-tuned {child.bundle_id} "
          f"on {len(rows)} {split['split']} studies:")
    print(side_by_side(before, after))
    print(f"new bundle: {out}")
    return out


def _jsrt_val(config: dict, card: dict):
    """Boxes for the detector's before/after: the config's JSRT val split (local data has none)."""
    from train.data.jsrt import JsrtRegionDataset
    from train.tasks.common import spec_of

    root = Path(config["data"]["jsrt"])
    if not (root / "split.json").exists():
        return None
    dataset = JsrtRegionDataset(root, "val", spec_of(config),
                                regions=tuple(r for r in card.region_names if r != WHOLE_IMAGE))
    limit = int(config["finetune"].get("evaluate", {}).get("max_studies", 0) or 0)
    dataset.ids = dataset.ids[:limit] if limit else dataset.ids
    return dataset


def _commit() -> str:
    from train.export import git_commit

    return git_commit()


def main_finetune(args) -> int:
    from train.distributed import cleanup, init_distributed

    config = finetune_config(args.config, args.set)
    if args.device:
        config["device"] = args.device
    info = init_distributed(config.get("device", "auto"))
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        run_finetune(args, config, info)
    except (FileNotFoundError, ValueError, BundleError) as exc:
        print(f"python -m train finetune: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup(info)
    return 0
