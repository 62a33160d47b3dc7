"""Offline evaluation of a bundle, always beside two baselines (most frequent training report;
nearest-neighbour retrieval by CLIP image embedding). Drafts come from the app's own
pipeline, so what is measured is what ships."""
from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from rrg_desk.imaging import read_image
from rrg_desk.imaging.types import Study
from rrg_desk.inference.pipeline import DraftPipeline
from rrg_desk.inference.request import DraftSettings
from rrg_desk.models.regions import WHOLE_IMAGE
from rrg_desk.reports.labeler import label_report, to_binary
from rrg_desk.reports.text import clean_clinical_note
from train.data.jsrt import JsrtRegionDataset
from train.data.r2gen import read_annotation
from train.metrics import auc_per_finding, ce_metrics, nlg_metrics
from train.tasks.common import spec_of
from train.tasks.detector_task import evaluate_detector

log = logging.getLogger(__name__)


def _studies(config: dict, split: str) -> list[tuple[str, Study, str]]:
    root = Path(config["data"]["covid"])
    out = []
    for entry in read_annotation(root / "annotation.json", split):
        images = [read_image(root / "images" / p) for p in entry["image_path"]]
        out.append((entry["id"], Study(study_uid=entry["id"], images=images), clean_clinical_note(entry["report"])))
    limit = int(config.get("evaluate", {}).get("max_studies", 0) or 0)
    return out[:limit] if limit else out


def _embed(pipeline: DraftPipeline, study: Study) -> np.ndarray:
    with torch.inference_mode():
        prepared = pipeline._prepare(study.primary_image)
        return pipeline.bundle.classifier.encode_image(prepared.tensor)[0].cpu().numpy()


def draft_references(pipeline: DraftPipeline, rows: list[tuple[str, Study, str]]
                     ) -> tuple[dict[str, str], dict[str, str], np.ndarray]:
    """Draft every study of `rows` (id, Study, reference) with the app's pipeline:
    (references, hypotheses, finding probabilities [N, F]), texts lower-cased for scoring."""
    references, hypotheses, probs = {}, {}, []
    for sid, study, reference in rows:
        draft = pipeline.draft(study, DraftSettings(finding_heatmaps=False, draft_anyway=True))
        references[sid] = reference.lower()
        hypotheses[sid] = f"{draft.findings_text} {draft.impression_text}".strip().lower()
        probs.append([f.probability for f in draft.findings])
    return references, hypotheses, np.array(probs)


def score_system(references: dict[str, str], hypotheses: dict[str, str], meteor: bool = True) -> dict:
    """NLG and clinical-efficacy scores of one system's reports against the references."""
    ids = list(references)
    ce = ce_metrics([references[s] for s in ids], [hypotheses[s] for s in ids])
    return {"nlg": nlg_metrics(references, hypotheses, with_meteor=meteor),
            "ce": {k: v for k, v in ce.items() if k != "per_finding"}}


def classifier_auc(pipeline: DraftPipeline, references: dict[str, str], probs: np.ndarray) -> dict:
    """AUC per finding, labels read from the references by the labeler (None: one class only)."""
    labels = np.array([list(to_binary(label_report(text)).values()) for text in references.values()])
    return auc_per_finding(labels, probs, pipeline.bundle.finding_names)


def evaluate_bundle(config: dict, bundle: str | Path, split: str = "test", device: str = "cpu") -> dict:
    pipeline = DraftPipeline(bundle, device=device)
    test = _studies(config, split)
    train = _studies({**config, "evaluate": {"max_studies": 0}}, "train")
    references, hypotheses, probs = draft_references(pipeline, test)
    # baselines
    most_frequent = Counter(note.lower() for _, _, note in train).most_common(1)[0][0]
    train_embeds = np.stack([_embed(pipeline, study) for _, study, _ in train])
    nearest = {}
    for sid, study, _ in test:
        nearest[sid] = train[int(np.argmax(train_embeds @ _embed(pipeline, study)))][2].lower()
    systems = {"model": hypotheses, "baseline_most_frequent": {sid: most_frequent for sid in references},
               "baseline_nearest_neighbour": nearest}
    result: dict = {"split": split, "studies": len(test)}
    for name, hyp in systems.items():
        result[name] = score_system(references, hyp)
    from train.classifier_evaluation import evaluate_classifier

    result["classifier"] = evaluate_classifier(config, pipeline, split,
                                               probe=bool(config.get("evaluate", {}).get("probe", True)))
    from train.draft_evaluation import evaluate_drafts

    result["drafts"] = evaluate_drafts(config, pipeline, split)
    jsrt = JsrtRegionDataset(config["data"]["jsrt"], split, spec_of(config),
                             regions=tuple(r for r in pipeline.bundle.region_names if r != WHOLE_IMAGE))
    if int(config.get("evaluate", {}).get("max_studies", 0) or 0):
        jsrt.ids = jsrt.ids[: int(config["evaluate"]["max_studies"])]
    with torch.inference_mode():
        result["detector"] = evaluate_detector(pipeline.bundle.detector, jsrt, pipeline.device)
    return json.loads(json.dumps(result, default=float))


def summary_table(metrics: dict) -> str:
    keys = ["BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]
    lines = ["| system | " + " | ".join(keys) + " | CE micro F1 | CE macro F1 |",
             "|---" * (len(keys) + 3) + "|"]
    for name in ("model", "baseline_most_frequent", "baseline_nearest_neighbour"):
        nlg, ce = metrics[name]["nlg"], metrics[name]["ce"]
        values = [nlg.get(k) for k in keys]
        cells = ["n/a" if v is None else f"{v:.3f}" for v in values]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ce.get('micro_f1', 0):.3f} | {ce.get('macro_f1', 0):.3f} |")
    return "\n".join(lines)
