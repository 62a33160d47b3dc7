"""Are the drafts truthful? Contradictions with their own classifier and clinical efficacy
against ground-truth labels, on every labelled test split, beside two baselines.

Every labelled test image is drafted as its own study by the app's pipeline. Each draft's
text (FINDINGS + IMPRESSION) is read by the project's labeler.
- contradictions per draft (issue 13): findings the text asserts that the classifier scores
  below threshold, plus one when a normal impression stands beside positive text;
- CE precision / recall / F1 (micro) against the image labels, over the findings each source
  labels (mask), No Finding excluded;
- systems: the shipped drafts; the generator alone (the same pipeline with the text NOT held
  to the classifier); the classifier alone at its thresholds; a template report (one fixed
  normal sentence per region plus one sentence per positive finding).
"""
from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

from rrg_desk.inference.consistency import FINDING_SENTENCES, contradictions, read_sentence
from rrg_desk.models.findings import FINDING_NAMES, NO_FINDING
from rrg_desk.models.regions import WHOLE_IMAGE
from train.classifier_evaluation import evaluation_groups
from train.data.finding_labels import label_arrays, labelled_images

log = logging.getLogger(__name__)

TEMPLATE_NORMAL = ("The heart size is normal.", "The mediastinal contours are normal.", "The lungs are clear.",
                   "There is no pleural effusion or pneumothorax.", "The osseous structures are intact.")


GROUNDING_IMAGES = 60  # drafted twice more (raw and grounded heatmaps) for the in-region share


def template_report(findings) -> str:
    """The template baseline: fixed normal sentences, one sentence per positive finding."""
    positive = [f.name for f in findings if f.positive and f.name != NO_FINDING]
    normal = [s for s in TEMPLATE_NORMAL if not read_sentence(s).denied & set(positive)]
    return " ".join(normal + [FINDING_SENTENCES[name] for name in positive])


def text_positives(text: str) -> np.ndarray:
    """[F] 1 where the labeler reads the finding as present or possible in `text`."""
    from rrg_desk.reports.text import split_sentences

    asserted = set()
    for sentence in split_sentences(text):
        asserted |= read_sentence(sentence).asserted
    return np.array([float(n in asserted) for n in FINDING_NAMES])


def masked_ce(truth: np.ndarray, mask: np.ndarray, predicted: np.ndarray) -> dict:
    """Micro precision / recall / F1 over labelled (mask 1) entries, No Finding excluded."""
    keep = mask.astype(bool).copy()
    keep[:, FINDING_NAMES.index(NO_FINDING)] = False
    t, p = truth[keep].astype(bool), predicted[keep].astype(bool)
    tp, fp, fn = float((t & p).sum()), float((~t & p).sum()), float((t & ~p).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "positives": int(t.sum())}


def draft_all(pipeline, items, bind: bool, ground: bool = True) -> list:
    from rrg_desk.imaging import read_image
    from rrg_desk.imaging.types import Study
    from rrg_desk.inference.request import DraftSettings

    settings = DraftSettings(finding_heatmaps=bind, bind_to_findings=bind, draft_anyway=True,
                             ground_heatmaps=ground)
    return [pipeline.draft(Study(study_uid=str(i.path), images=[read_image(i.path)]), settings) for i in items]


def heatmap_grounding(pipeline, items) -> dict:
    """Mean share of each sentence heatmap's mass inside its region's box (whole-image sentences
    left out), for the generator's raw cross-attention and for the grounded map the app shows."""
    from rrg_desk.inference.grounding import share_in_region

    shares: dict[str, list[float]] = {"raw": [], "grounded": []}
    for name, ground in (("raw", False), ("grounded", True)):
        for item, draft in zip(items, draft_all(pipeline, items, True, ground=ground)):
            if not any(r.name == WHOLE_IMAGE for r in draft.regions):
                continue  # a lateral-only study: no regions, no region sentences
            frontal = draft_frame(draft)
            boxes = {r.name: r.box for r in draft.regions}
            for sentence in draft.sentences:
                if sentence.heatmap is None or sentence.region == WHOLE_IMAGE or sentence.region not in boxes:
                    continue
                x0, y0, x1, y1 = boxes[sentence.region]
                width, height = frontal
                shares[name].append(share_in_region(sentence.heatmap, (x0 / width, y0 / height,
                                                                       x1 / width, y1 / height)))
    return {"images": len(items), "sentences": len(shares["raw"]),
            **{f"mean_share_in_region_{k}": float(np.mean(v)) if v else None for k, v in shares.items()}}


def draft_frame(draft) -> tuple[float, float]:
    """(width, height) of the drafted frontal image: its whole-image region's box."""
    whole = next(r for r in draft.regions if r.name == WHOLE_IMAGE)
    return whole.box[2], whole.box[3]


def evaluate_drafts(config: dict, pipeline, split: str = "test") -> dict:
    from train.tasks.clip_task import labelled_sources, spread

    items = labelled_images(labelled_sources(config), split)
    limit = int(config.get("evaluate", {}).get("max_studies", 0) or 0)
    items = spread(items, limit) if limit else items
    truth, mask = label_arrays(items)
    bound, alone = draft_all(pipeline, items, True), draft_all(pipeline, items, False)
    classifier = np.array([[float(f.positive) for f in d.findings] for d in bound])
    classifier[:, FINDING_NAMES.index(NO_FINDING)] = 0.0
    systems = {
        "drafts": [f"{d.findings_text} {d.impression_text}" for d in bound],
        "generator_alone": [f"{d.findings_text} {d.impression_text}" for d in alone],
        "template": [template_report(d.findings) for d in bound],
    }
    result = {"split": split, "images": len(items), "groups": {}}
    for group, rows in {"all": list(range(len(items))), **evaluation_groups(items)}.items():
        record = {"images": len(rows)}
        for name, texts in systems.items():
            drafts = bound if name != "generator_alone" else alone
            predicted = np.stack([text_positives(texts[r]) for r in rows])
            counts = [contradictions(drafts[r].findings_text, drafts[r].impression_text, drafts[r].findings)
                      if name != "template" else 0 for r in rows]
            record[name] = {"ce": masked_ce(truth[rows], mask[rows], predicted),
                            "contradictions_per_draft": float(np.mean(counts)),
                            "drafts_with_a_contradiction": float(np.mean([c > 0 for c in counts]))}
        record["classifier_alone"] = {"ce": masked_ce(truth[rows], mask[rows], classifier[rows])}
        result["groups"][group] = record
    result["examples"] = _examples(items, bound)
    result["heatmap_grounding"] = heatmap_grounding(pipeline, spread(items, GROUNDING_IMAGES))
    return result


def _examples(items, drafts) -> dict:
    """Three drafts to read: a normal chest, one positive finding, several."""
    by_count = defaultdict(list)
    for item, draft in zip(items, drafts):
        positive = [f.name for f in draft.findings if f.positive and f.name != NO_FINDING]
        by_count[min(len(positive), 2)].append((item, draft, positive))
    out = {}
    for key, label in ((0, "normal"), (1, "one_finding"), (2, "several_findings")):
        if by_count[key]:
            item, draft, positive = by_count[key][0]
            out[label] = {"image": str(item.path.name), "source": item.source, "classifier_positive": positive,
                          "findings": draft.findings_text, "impression": draft.impression_text}
    return out


def drafts_table(result: dict) -> str:
    lines = ["| split | system | contradictions / draft | CE precision | CE recall | CE F1 |", "|---|---|---|---|---|---|"]
    for group, record in result["groups"].items():
        for name in ("drafts", "generator_alone", "classifier_alone", "template"):
            entry = record[name]
            ce = entry["ce"]
            rate = entry.get("contradictions_per_draft")
            lines.append(f"| {group} ({record['images']}) | {name} | {'-' if rate is None else f'{rate:.3f}'} | "
                         f"{ce['precision']:.3f} | {ce['recall']:.3f} | {ce['f1']:.3f} |")
    return "\n".join(lines)
