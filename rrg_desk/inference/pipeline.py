"""Study -> Draft: preprocess, detect regions, classify findings, write one sentence per
selected region, heatmaps, assemble FINDINGS and IMPRESSION. No Qt; models loaded once.

The frontal view drives regions and sentences; every view contributes to classification.
Every image first passes the input check (rrg_desk.imaging.input_check), whose refusal stops
the draft unless the request says draft_anyway; a study with no frontal view gets findings and
an impression but no regions or region sentences (they would be drawn on a lateral).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rrg_desk.imaging.input_check import (InputCheckResult, LearnedScorer, LearnedScores, LearnedThresholds,
                                          check_image)
from rrg_desk.imaging.types import Study, ViewPosition, XrayImage
from rrg_desk.inference.assemble import assemble_report, merge_duplicate_sentences, report_order, tidy_sentence
from rrg_desk.inference.consistency import (FINDING_REGIONS, FINDING_SENTENCES, bind_to_findings,
                                            normal_statements, positive_findings, states_only)
from rrg_desk.inference.device import choose_device
from rrg_desk.inference.grounding import ground_in_region
from rrg_desk.inference.outlines import mask_outline
from rrg_desk.inference.request import CancelToken, DraftCancelled, DraftError, DraftSettings
from rrg_desk.models.bundle import ModelBundle, load_bundle
from rrg_desk.models.card import CARD_FILE, Classification, Preprocessing
from rrg_desk.models.classify import prompt_token_ids, study_probabilities
from rrg_desk.models.measurements import measure
from rrg_desk.models.preprocess import prepare_image, window_to_unit
from rrg_desk.models.regions import WHOLE_IMAGE
from rrg_desk.reports.draft import Draft, FindingResult, RegionResult, Sentence, called_present

log = logging.getLogger(__name__)

STAGES = ("load_models", "preprocess", "detect", "classify", "generate", "heatmaps", "assemble")
ProgressCallback = Callable[[str, int, int], None]  # (stage, index, total)


_BUNDLE_CACHE: dict[tuple[str, str, float], ModelBundle] = {}
_CACHE_LOCK = threading.Lock()


def cached_bundle(folder: Path, device: torch.device) -> ModelBundle:
    """Load a bundle once per (folder, device, card mtime) and reuse it."""
    folder = Path(folder).resolve()
    card = folder / CARD_FILE
    key = (str(folder), str(device), card.stat().st_mtime if card.exists() else 0.0)
    with _CACHE_LOCK:
        if key not in _BUNDLE_CACHE:
            for old in [k for k in _BUNDLE_CACHE if k[:2] == key[:2]]:
                del _BUNDLE_CACHE[old]
            _BUNDLE_CACHE[key] = load_bundle(folder, device=device)
        return _BUNDLE_CACHE[key]


def forget_cached_bundles() -> None:
    """Drop every cached bundle (a process switching bundles keeps one loaded, not two)."""
    with _CACHE_LOCK:
        _BUNDLE_CACHE.clear()


@dataclass
class _Prepared:
    tensor: torch.Tensor  # [1, 1, h, w] normalised
    scale: tuple[float, float]  # (sx, sy) model pixels per original pixel
    features: torch.Tensor | None = None  # [1, C] classifier backbone features, computed once per draft


class DraftPipeline:
    def __init__(self, bundle_dir: str | Path, device: str = "auto") -> None:
        self.bundle_dir = Path(bundle_dir)
        self.device = choose_device(device)
        self._bundle: ModelBundle | None = None
        self._draft_memo: dict[int, _Prepared] | None = None  # id(XrayImage) -> prepared, during draft()
        self._prompt_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- models -----------------------------------------------------------------------
    @property
    def bundle(self) -> ModelBundle:
        if self._bundle is None:
            self._bundle = cached_bundle(self.bundle_dir, self.device)
        return self._bundle

    @property
    def preprocessing(self) -> Preprocessing:
        return self.bundle.preprocessing

    def _prompt_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._prompt_cache is None:
            bundle = self.bundle
            pos_ids, neg_ids = prompt_token_ids(bundle.classifier, bundle.tokenizer, self.device)
            self._prompt_cache = bundle.classifier.prompt_embeddings(pos_ids, neg_ids)
        return self._prompt_cache

    # -- stages -----------------------------------------------------------------------
    def _prepare(self, image: XrayImage) -> _Prepared:
        """The model input of an image; within one draft each image is prepared once (the input
        check and the models share it, and with it the classifier's backbone features)."""
        memo = self._draft_memo
        if memo is not None and id(image) in memo:
            return memo[id(image)]
        window = image.display_window()
        unit = window_to_unit(image.pixels, window.center, window.width)
        tensor, scale = prepare_image(unit, self.preprocessing)
        prepared = _Prepared(tensor[None].to(self.device), scale)
        if memo is not None:
            memo[id(image)] = prepared
        return prepared

    def _features(self, prepared: _Prepared) -> torch.Tensor:
        if prepared.features is None:
            prepared.features = self.bundle.classifier.image_features(prepared.tensor)
        return prepared.features

    def _classify(self, prepared: list[_Prepared], measured: dict[str, float]) -> torch.Tensor:
        """[F] probabilities, the mean over the study's views (or from the frontal view's
        measurements, for the findings the card scores that way)."""
        images = torch.cat([p.tensor for p in prepared])  # [V, 1, S, S]
        features = torch.cat([self._features(p) for p in prepared])
        return study_probabilities(self.bundle.classifier, images, self._classification, self._prompt_embeddings(),
                                   features=features, measured=measured)

    def image_probabilities(self, image: XrayImage) -> torch.Tensor:
        """[F] the probabilities a draft of `image` alone, as a frontal view, shows (no
        generation): how labelled sets are scored."""
        with torch.inference_mode():
            prepared = self._prepare(image)
            detections = self.bundle.detector.detect(prepared.tensor) if self._classification.measurements else None
            return self._classify([prepared], self._measurements(detections))

    def _measurements(self, detections) -> dict[str, float]:
        """Measurements off the regions the detector found on the frontal view (no fall-back
        boxes; none without a frontal view)."""
        return {} if detections is None else measure(detections.found_boxes(self.bundle.region_names))

    @property
    def _classification(self) -> Classification:
        return self.bundle.card.classification

    def _heatmap_prompts(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Grad-CAM explains what decides the probability: the prompts in zero-shot mode, else the head."""
        if self._classification.mode == "zero_shot" or self.bundle.classifier.finding_head is None:
            return self._prompt_embeddings()
        return None, None

    def _findings(self, probs: torch.Tensor, measured: dict[str, float]) -> list[FindingResult]:
        bundle = self.bundle
        fits = self._classification.measurements
        out = []
        for name, p in zip(bundle.finding_names, probs.tolist()):
            measure_name = fits.get(name, {}).get("measure")
            measurement = (measure_name, measured[measure_name]) if measure_name in measured else None
            out.append(FindingResult(name, float(p), bundle.card.threshold(name), measurement=measurement))
        return out

    def _clues(self, probs: torch.Tensor, findings: list[FindingResult]) -> torch.Tensor:
        """[F] disease clues for the generator (TRRG), in the form its card says it was trained on:
        "thresholded" = 1 for each finding the classifier calls present, else 0 (the generator
        learnt them from report labels); "probabilities" = the calibrated probabilities."""
        if self.bundle.generation.clues == "probabilities":
            return probs
        present = called_present(findings)
        return torch.tensor([float(f.name in present) for f in findings], dtype=probs.dtype, device=probs.device)

    def _image_tokens(self, detections, prepared: _Prepared) -> torch.Tensor:
        if self.bundle.generation.image_tokens_from == "classifier":
            return self.bundle.classifier.encode_image_tokens(prepared.tensor)[1]
        return detections.image_tokens

    def _generation(self, settings: DraftSettings) -> tuple[int, int]:
        card = self.bundle.generation
        beam = settings.beam_size or card.beam_size
        max_len = settings.max_len or card.max_len or self.bundle.generator.config.n_positions - 1
        return max(1, beam), max_len

    # -- the draft ----------------------------------------------------------------------
    def draft(self, study: Study, settings: DraftSettings = DraftSettings(), cancel: CancelToken | None = None,
              progress: ProgressCallback | None = None) -> Draft:
        if not study.images:
            raise DraftError("The study has no image to draft from.")
        self._draft_memo = {}
        try:
            return self._draft(study, settings, cancel, progress)
        finally:
            self._draft_memo = None

    def _draft(self, study: Study, settings: DraftSettings, cancel: CancelToken | None,
               progress: ProgressCallback | None) -> Draft:
        timings: dict[str, float] = {}
        total_start = time.perf_counter()

        def stage(name: str):
            if cancel is not None and cancel.cancelled:
                raise DraftCancelled(name)
            if progress is not None:
                progress(name, STAGES.index(name), len(STAGES))
            return _Timer(timings, name)

        with stage("load_models"):
            bundle = self.bundle
        with torch.inference_mode():
            with stage("preprocess"):
                checks = self._check_inputs(study.images, settings)
                frontal = _region_image(study, checks)  # None: no frontal view, so no regions
                others = [im for im in study.images if im is not frontal]
                views = others if frontal is None else [frontal] + others
                prepared = [self._prepare(im) for im in views]
            detections = None
            if frontal is not None:
                with stage("detect"):
                    detections = bundle.detector.detect(prepared[0].tensor)
            with stage("classify"):
                measured = self._measurements(detections)
                probs = self._classify(prepared, measured)
                findings = self._findings(probs, measured)
            regions, sentences, finding_maps = [], [], {}
            if detections is not None:
                regions, sentences, finding_maps = self._region_sentences(
                    stage, detections, prepared[0], frontal, self._clues(probs, findings)[None], findings, settings)
            else:
                log.info("no frontal view in study %s: findings only, no regions or region sentences",
                         study.study_uid)
        with stage("assemble"):
            sentences = report_order(merge_duplicate_sentences(sentences))
            findings_text, impression_text = assemble_report(sentences, findings)
        timings["total"] = (time.perf_counter() - total_start) * 1000.0
        beam, max_len = self._generation(settings)
        refused = [c.user_message for c in checks if not c.passed]  # drafted anyway
        return Draft(study_uid=study.study_uid, regions=regions, findings=findings, sentences=sentences,
                     findings_text=findings_text, impression_text=impression_text, bundle_id=bundle.bundle_id,
                     device=str(self.device),
                     settings={**settings.to_dict(), "beam_size": beam, "max_len": max_len,
                               **({"refused_inputs": refused} if refused else {})},
                     timings_ms=timings, finding_heatmaps=finding_maps)

    def _region_sentences(self, stage, detections, prepared: _Prepared, frontal: XrayImage,
                          clues: torch.Tensor, findings: list[FindingResult], settings: DraftSettings
                          ) -> tuple[list[RegionResult], list[Sentence], dict[str, np.ndarray]]:
        """Regions on the frontal view, one sentence per selected region, and the heatmaps."""
        names = self.bundle.region_names
        with stage("generate"):
            sentences_ids, chosen, region_ids = self._generate(detections, prepared, clues, settings)
            finding_maps = self._finding_heatmaps(prepared, findings) if settings.finding_heatmaps else {}
            written = self._bound_to_findings(sentences_ids, chosen, detections, prepared, clues, findings,
                                              finding_maps, settings)
        with stage("heatmaps"):
            region_ids = torch.tensor([r for _t, _ids, r in written], dtype=torch.long, device=self.device)
            maps = self._sentence_heatmaps([ids for _t, ids, _r in written], detections, prepared, region_ids,
                                           clues)
            if settings.ground_heatmaps:
                maps = [ground_in_region(heat, self._relative_box(detections.boxes[0, r], prepared))
                        for heat, (_t, _ids, r) in zip(maps, written)]
        used = sorted(set(chosen) | {r for _t, _ids, r in written})
        regions = self._regions(detections, prepared.scale, used, (frontal.height, frontal.width))
        sentences = [Sentence(text=text, region=names[r], heatmap=heat, image_index=0)
                     for (text, _ids, r), heat in zip(written, maps)]
        return regions, sentences, finding_maps

    def _bound_to_findings(self, sentences_ids, chosen, detections, prepared, clues, findings,
                           finding_maps, settings) -> list[tuple[str, list[int], int]]:
        """(text, ids, region) of the sentences that agree with the classifier, plus one sentence
        for each positive finding none of them states (rrg_desk.inference.consistency)."""
        decode = self.bundle.tokenizer.decode
        candidates = [(tidy_sentence(decode(ids)), ids, r) for ids, r in zip(sentences_ids, chosen)]
        if not settings.bind_to_findings:
            return [c for c in candidates if c[0].strip(" .")]
        as_sentences = [Sentence(text=t, region=self.bundle.region_names[r]) for t, _ids, r in candidates]
        kept, missing = bind_to_findings(as_sentences, findings)
        kept_ids = {id(s) for s in kept}
        written = [c for c, s in zip(candidates, as_sentences) if id(s) in kept_ids]
        positive = positive_findings(findings)
        for name in missing:
            region = self._finding_region(name, detections, finding_maps.get(name))
            written.append(self._finding_sentence(name, region, detections, prepared, clues, positive,
                                                  settings))
        names = self.bundle.region_names
        for region, text in normal_statements([Sentence(text=t, region=names[r]) for t, _i, r in written], findings):
            written.append((text, self.bundle.tokenizer.encode(text)[1:], names.index(region)))
        return written

    def _finding_region(self, finding: str, detections, heatmap: np.ndarray | None) -> int:
        """The usual region of a finding; among several, the one the finding's heatmap covers most."""
        names = self.bundle.region_names
        candidates = [names.index(r) for r in FINDING_REGIONS.get(finding, (WHOLE_IMAGE,)) if r in names]
        if not candidates:
            return names.index(WHOLE_IMAGE)
        if heatmap is None or len(candidates) == 1:
            return candidates[0]
        size = self.preprocessing.image_size
        grid = heatmap.shape[0]
        boxes = (detections.boxes[0].float().cpu().numpy() / size * grid)

        def heat_in(index: int) -> float:
            x0, y0, x1, y1 = boxes[index]
            cells = heatmap[int(y0):max(int(y0) + 1, int(np.ceil(y1))), int(x0):max(int(x0) + 1, int(np.ceil(x1)))]
            return float(cells.mean()) if cells.size else 0.0

        return max(candidates, key=heat_in)

    def _finding_sentence(self, finding: str, region: int, detections, prepared, clues, positive: set[str],
                          settings) -> tuple[str, list[int], int]:
        """The generator's sentence for `region` with the finding's clue made certain, kept when the
        labeler reads it as stating that finding and nothing unsupported; else the fixed sentence."""
        bundle = self.bundle
        forced = clues.clone()
        forced[..., bundle.finding_names.index(finding)] = 1.0
        region_ids = torch.tensor([region], device=self.device)
        beam, max_len = self._generation(settings)
        ids = bundle.generator.generate_sentences(
            region_features=detections.features[0, region_ids], region_ids=region_ids,
            image_tokens=self._image_tokens(detections, prepared), finding_probs=forced,
            max_len=max_len, beam_size=beam)[0]
        text = tidy_sentence(bundle.tokenizer.decode(ids))
        if states_only(text, finding, positive):
            return text, ids, region
        text = FINDING_SENTENCES[finding]
        return text, bundle.tokenizer.encode(text)[1:], region

    # -- the input check ------------------------------------------------------------------
    def _check_inputs(self, images: list[XrayImage], settings: DraftSettings) -> list[InputCheckResult]:
        """The input check ("is this a chest radiograph?") on every image; the first refusal is
        raised (an InputRefusal with a user_message) unless the request says draft_anyway."""
        scorer, thresholds = self._learned_input_check()
        checks = [check_image(image, scorer, thresholds) for image in images]
        refused = [check for check in checks if not check.passed]
        if refused and not settings.draft_anyway:
            refused[0].raise_if_refused()
        for check in refused:
            log.warning("drafting anyway although %s", check.user_message)
        return checks

    def _learned_input_check(self) -> tuple[LearnedScorer | None, LearnedThresholds | None]:
        """The learned half of the input check, when the bundle has it: a classifier method
        `input_check_scores(features [V, C]) -> (p_chest [V], p_lateral [V])` on its backbone
        features (shared with classification) and the card's "input_check" section
        {"p_chest_threshold", "p_lateral_threshold"}. Else rules only."""
        thresholds = self.bundle.card.input_check
        head = getattr(self.bundle.classifier, "input_check_scores", None)
        if thresholds is None or head is None:
            return None, None

        def score(image: XrayImage) -> LearnedScores:
            with torch.inference_mode():
                p_chest, p_lateral = head(self._features(self._prepare(image)))
            return LearnedScores(p_chest=float(p_chest[0]), p_lateral=float(p_lateral[0]))

        return score, thresholds

    def _selected_regions(self, detections, settings: DraftSettings) -> list[int]:
        threshold = settings.selector_threshold
        if threshold is None:
            threshold = self.bundle.card.region_selection.threshold
        probs = torch.sigmoid(detections.selector_logits[0])
        chosen = [i for i, p in enumerate(probs.tolist()) if p >= threshold]
        if not chosen:  # a report always says something: fall back to the whole image
            chosen = [self.bundle.region_names.index(WHOLE_IMAGE)]
        return chosen

    def _generate(self, detections, prepared: _Prepared, clues: torch.Tensor, settings: DraftSettings):
        chosen = self._selected_regions(detections, settings)
        region_ids = torch.tensor(chosen, device=self.device)
        beam, max_len = self._generation(settings)
        ids = self.bundle.generator.generate_sentences(
            region_features=detections.features[0, region_ids], region_ids=region_ids,
            image_tokens=self._image_tokens(detections, prepared), finding_probs=clues,
            max_len=max_len, beam_size=beam)
        return ids, chosen, region_ids

    def _grid_maps(self, weights: torch.Tensor) -> list[np.ndarray]:
        """[N, G] attention over image tokens -> N heatmaps [g, g] in [0, 1]."""
        grid = int(round(weights.shape[1] ** 0.5))
        maps = weights.reshape(-1, grid, grid)
        maps = maps / maps.amax(dim=(1, 2), keepdim=True).clamp(min=1e-12)
        return [m.float().cpu().numpy() for m in maps]

    @staticmethod
    def _relative_box(box: torch.Tensor, prepared: _Prepared) -> tuple[float, float, float, float]:
        """A model-frame box as fractions of the frame (the heatmaps' coordinates)."""
        height, width = prepared.tensor.shape[-2:]
        x0, y0, x1, y1 = box.tolist()
        return (x0 / width, y0 / height, x1 / width, y1 / height)

    def _sentence_heatmaps(self, sentences_ids, detections, prepared, region_ids, clues):
        if not sentences_ids:
            return []
        weights = self.bundle.generator.cross_attention_map(
            sentences_ids, detections.features[0, region_ids], region_ids,
            self._image_tokens(detections, prepared), clues)
        return self._grid_maps(weights)

    def _finding_heatmaps(self, prepared: _Prepared, findings: list[FindingResult]) -> dict[str, np.ndarray]:
        out = {}
        present = positive_findings(findings)
        positive = [f for f in findings if f.name in present]
        if not positive:
            return out
        pos, neg = self._heatmap_prompts()
        names = self.bundle.finding_names
        for finding in positive:
            cam = self.bundle.classifier.finding_heatmaps(prepared.tensor, names.index(finding.name), pos, neg,
                                                          self._classification.probe_weight)
            out[finding.name] = cam[0].float().cpu().numpy()
        return out

    def finding_heatmap(self, image: XrayImage, finding: str) -> np.ndarray:
        """Grad-CAM of one finding on an image, on demand (the UI asks when one is selected)."""
        prepared = self._prepare(image)
        pos, neg = self._heatmap_prompts()
        index = self.bundle.finding_names.index(finding)
        return self.bundle.classifier.finding_heatmaps(prepared.tensor, index, pos, neg,
                                                       self._classification.probe_weight)[0].float().cpu().numpy()

    def _regions(self, detections, scale: tuple[float, float], chosen: list[int], size: tuple[int, int]
                 ) -> list[RegionResult]:
        height, width = size
        sx, sy = scale
        boxes = detections.boxes[0] / detections.boxes.new_tensor([sx, sy, sx, sy])  # back to original pixels
        boxes = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                             boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], dim=1).tolist()
        abnormal = torch.sigmoid(detections.abnormal_logits[0]).tolist()
        outlines = self._outlines(detections, boxes)
        return [RegionResult(name=name, box=tuple(float(v) for v in boxes[i]), score=float(detections.scores[0, i]),
                             selected=i in chosen, abnormal_score=float(abnormal[i]), image_index=0,
                             outline=outlines.get(i, ()))
                for i, name in enumerate(self.bundle.region_names)]

    def _outlines(self, detections, boxes: list[list[float]]) -> dict[int, tuple]:
        """Region index -> outline polygon (original pixels) for the regions with a mask head."""
        masks = detections.masks
        if masks is None or masks.shape[1] == 0:
            return {}
        indices = self.bundle.detector.config.mask_indices
        probabilities = masks[0].float().cpu().numpy()
        return {region: mask_outline(probabilities[m], tuple(boxes[region])) for m, region in enumerate(indices)}

    def describe_region(self, study: Study, box: tuple[float, float, float, float],
                        settings: DraftSettings = DraftSettings()) -> Sentence:
        """RGRG's region-selection mode: one sentence about a box the radiologist drew on the
        frontal image (original pixels). The region type is the detected region it overlaps most."""
        frontal = study.frontal
        if frontal is None:
            raise DraftError("Describing a region needs a frontal view; this study has only lateral views.")
        bundle = self.bundle
        with torch.inference_mode():
            prepared = self._prepare(frontal)
            detections = bundle.detector.detect(prepared.tensor)
            measured = self._measurements(detections)
            probs = self._classify([prepared] + [self._prepare(im) for im in study.images if im is not frontal],
                                   measured)
            clues = self._clues(probs, self._findings(probs, measured))
            sx, sy = prepared.scale
            model_box = torch.tensor([box], dtype=torch.float32, device=self.device) * torch.tensor(
                [sx, sy, sx, sy], device=self.device)
            features = bundle.detector.region_features(prepared.tensor, model_box[None])[0]  # [1, D]
            region_index = _best_overlap(detections.boxes[0], model_box[0], bundle.region_names)
            region_ids = torch.tensor([region_index], device=self.device)
            beam, max_len = self._generation(settings)
            tokens = self._image_tokens(detections, prepared)
            ids = bundle.generator.generate_sentences(region_features=features, region_ids=region_ids,
                                                      image_tokens=tokens, finding_probs=clues[None],
                                                      max_len=max_len, beam_size=beam)
            heat = self._grid_maps(bundle.generator.cross_attention_map(ids, features, region_ids, tokens,
                                                                        clues[None]))
            if settings.ground_heatmaps:
                heat = [ground_in_region(heat[0], self._relative_box(model_box[0], prepared))]
        return Sentence(text=tidy_sentence(bundle.tokenizer.decode(ids[0])), region=bundle.region_names[region_index],
                        heatmap=heat[0], image_index=0)


def _region_image(study: Study, checks: list[InputCheckResult]) -> XrayImage | None:
    """The image regions are drawn on: the study's frontal view (the one the UI and the exports
    overlay), unless the learned check found it to be a lateral. None when there is none."""
    frontal = study.frontal
    if frontal is None:
        return None
    check = next(c for image, c in zip(study.images, checks) if image is frontal)
    return None if check.view is ViewPosition.LATERAL else frontal


def _best_overlap(boxes: torch.Tensor, box: torch.Tensor, names: list[str]) -> int:
    from rrg_desk.models.rcnn_ops import box_iou

    iou = box_iou(box[None], boxes)[0]
    iou[names.index(WHOLE_IMAGE)] = -1.0  # only if nothing else overlaps at all
    best = int(iou.argmax())
    return best if float(iou[best]) > 0.0 else names.index(WHOLE_IMAGE)


class _Timer:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> "_Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        elapsed = (time.perf_counter() - self.start) * 1000.0
        self.timings[self.name] = self.timings.get(self.name, 0.0) + elapsed
