"""How a FINE-TUNING recipe might do on NIH patients outside the DarkCovidNet subset, using
train+val only (the fine-tuned sibling of tools/probe_heldout_cv.py).

The train+val NIH images outside DarkCovidNet (that subset was chosen by label and flatters
any model) are split into folds by patient. For each fold the classifier is fine-tuned with
the config's recipe on everything else (its epoch chosen on the validation split minus the
fold, as `python -m train clip` does) and scores the fold's images with the head, the
zero-shot prompts and their mean (each also with "not normal" blended in at several weights,
the card's classification.abnormality_weight). The out-of-fold scores of all folds give one AUC per goal
finding on about 190 images, six times the validation split's 29. The test split is never read.

Each fold is a full classifier fine-tune (about 14 minutes at 256 px on 2 idle cores); folds
can run as separate processes (`--fold K`) and `--report` pools whatever folds have finished.
The run folder needs a tokenizer: `python -m train unpack --set out_dir=FOLDER` provides the
shipped one.

    python tools/finetune_heldout_cv.py --name shipped --fold 0 --set out_dir=runs/cv
    python tools/finetune_heldout_cv.py --name dark01 --fold 0 --set out_dir=runs/cv \
        --set 'clip.source_weights={"nih:muhammedtalo/COVID-19": 0.1}'
    python tools/finetune_heldout_cv.py --name shipped --report --set out_dir=runs/cv
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rrg_desk.models.findings import FINDING_NAMES  # noqa: E402
from train.classifier_evaluation import DARKCOVIDNET, GOAL_FINDINGS  # noqa: E402
from train.config import load_config  # noqa: E402
from train.metrics import binary_auc, bootstrap_auc_interval  # noqa: E402

MODES = ("head", "zero_shot", "ensemble")


def fold_of(patient: str, folds: int) -> int:
    return zlib.crc32(patient.encode()) % folds


def held_out(item, fold: int, folds: int) -> bool:
    """Is this image in the fold's held-out part (NIH outside DarkCovidNet, the fold's patients)?"""
    return (item.source.startswith("nih:") and item.source != DARKCOVIDNET
            and fold_of(item.patient, folds) == fold)


def run_fold(config: dict, name: str, fold: int, folds: int) -> Path:
    from rrg_desk.models.classify import prompt_token_ids
    from train.distributed import init_distributed
    from train.engine import fit
    from train.tasks.clip_task import ClipTask, LabelledImageSet, validation_scores
    from train.tasks.common import loop_config

    task = ClipTask(config)
    train_items = [i for i in task.train_set.items if not held_out(i, fold, folds)]
    val_items = [i for i in task.val_set.items if not held_out(i, fold, folds)]
    fold_items = [i for i in task.train_set.items + task.val_set.items if held_out(i, fold, folds)]
    task.train_set = LabelledImageSet(train_items, task.spec, task.train_set.notes)
    task.val_set = LabelledImageSet(val_items, task.spec, task.val_set.notes)
    logging.info("fold %d/%d: %d training, %d validation, %d held-out images", fold, folds,
                 len(train_items), len(val_items), len(fold_items))
    folder = Path(config["out_dir"]) / "cv" / name / f"fold{fold}"
    info = init_distributed(config.get("device", "auto"))
    device = info.device
    result = fit(task, loop_config(config, config["clip"]), folder, info, resume=(folder / "last.safetensors").exists())
    from safetensors.torch import load_model

    model = task.build_model()
    load_model(model, str(folder / "best.safetensors"))
    classifier = model.classifier.to(device).eval()
    prompts = classifier.prompt_embeddings(*prompt_token_ids(classifier, task.tokenizer, device))
    fold_set = LabelledImageSet(fold_items, task.spec)
    scores = validation_scores(classifier, fold_set, prompts, device)
    np.savez(folder / "held_out_scores.npz", **scores,
             labels=np.array([i.labels for i in fold_items]), mask=np.array([i.mask for i in fold_items]),
             path=np.array([str(i.path) for i in fold_items]))
    (folder / "fold.json").write_text(json.dumps({"best_epoch": result.best_epoch,
                                                  "best_metric": result.best_metric}))
    return folder


def report(config: dict, name: str, abnormality_weights: list[float]) -> dict:
    """Out-of-fold AUCs per mode and abnormality weight (rrg_desk.models.classify.blend_abnormality)."""
    from rrg_desk.models.classify import blend_abnormality

    parts = [np.load(p) for p in sorted((Path(config["out_dir"]) / "cv" / name).glob("fold*/held_out_scores.npz"))]
    if not parts:
        raise SystemExit(f"no finished fold under {config['out_dir']}/cv/{name}")
    labels = np.concatenate([p["labels"] for p in parts])
    mask = np.concatenate([p["mask"] for p in parts])
    out = {"folds_finished": len(parts), "images": int(len(labels))}
    for mode, weight in ((m, w) for m in MODES for w in abnormality_weights):
        scores = blend_abnormality(torch.as_tensor(np.concatenate([p[mode] for p in parts]), dtype=torch.float64),
                                   list(FINDING_NAMES), weight).numpy()
        per = {}
        for finding in GOAL_FINDINGS + ("No Finding",):
            k = FINDING_NAMES.index(finding)
            rows = mask[:, k] > 0
            truth = labels[rows, k]
            if 0 < truth.sum() < len(truth):
                low, high = bootstrap_auc_interval(truth, scores[rows, k], 1000)
                per[finding] = {"auc": round(binary_auc(truth, scores[rows, k]), 3), "ci95": [round(low, 2), round(high, 2)],
                                "positives": int(truth.sum())}
        goal = [v["auc"] for k, v in per.items() if k in GOAL_FINDINGS]
        out[f"{mode} abnormality {weight:g}"] = {"goal_mean_auc": round(float(np.mean(goal)), 3), "per_finding": per}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append", default=[], help="config override, as in python -m train")
    parser.add_argument("--name", required=True, help="the recipe's name (its folder under OUT_DIR/cv)")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--fold", type=int, action="append", help="run this fold (repeatable; default all)")
    parser.add_argument("--report", action="store_true", help="only pool the finished folds")
    parser.add_argument("--abnormality-weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = load_config(args.config, args.set)
    if not args.report:
        for fold in args.fold if args.fold is not None else range(args.folds):
            run_fold(config, args.name, fold, args.folds)
    result = report(config, args.name, args.abnormality_weights)
    (Path(config["out_dir"]) / "cv" / args.name / "report.json").write_text(json.dumps(result, indent=1))
    for key in (k for k in result if k.startswith(MODES)):
        per = result[key]["per_finding"]
        print(f"{args.name} {key}: goal mean {result[key]['goal_mean_auc']:.3f} on {result['images']} images "
              f"({result['folds_finished']} folds) | " + " ".join(f"{k}={v['auc']:.2f}/{v['positives']}" for k, v in per.items()))


if __name__ == "__main__":
    main()
