"""Finding probabilities for a study's views: the finding head, zero-shot prompts, or their
mean, mixed with the frozen-ImageNet feature probe where the card says so, then per-finding
calibration fitted on validation data (the card's `classification` section).

Shared by the app's pipeline and the trainer (which feeds the same probabilities to the
generator as disease clues), so both see identical clues.
"""
from __future__ import annotations

import torch

from rrg_desk.models.card import CLASSIFICATION_MODES, Classification
from rrg_desk.models.feature_probe import mix_logits
from rrg_desk.models.findings import NO_FINDING
from rrg_desk.models.measurements import measured_probability


def prompt_token_ids(classifier, tokenizer, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier config's prompt pairs -> padded token ids [F, L] (positive, negative)."""
    length = classifier.config.context_length
    pos = [tokenizer.encode(p[0], max_len=length) for p in classifier.config.prompts]
    neg = [tokenizer.encode(p[1], max_len=length) for p in classifier.config.prompts]
    return (torch.tensor(tokenizer.pad(pos, length)[0], device=device),
            torch.tensor(tokenizer.pad(neg, length)[0], device=device))


def view_probabilities(classifier, images: torch.Tensor, mode: str,
                       prompts: tuple[torch.Tensor, torch.Tensor] | None,
                       features: torch.Tensor | None = None) -> torch.Tensor:
    """images [V, 1, S, S] -> [V, F] uncalibrated probabilities per view (one backbone pass;
    none when the caller already has the backbone features [V, C])."""
    if mode not in CLASSIFICATION_MODES:
        raise ValueError(f"classification mode must be one of {CLASSIFICATION_MODES}, got {mode!r}")
    if features is None:
        features = classifier.image_features(images)
    has_head = classifier.finding_head is not None
    if has_head and mode != "zero_shot":
        head = torch.sigmoid(classifier.head_logits(features))
        if mode == "head":
            return head
    zero_shot = classifier.zero_shot_probabilities(classifier.embed_features(features), *prompts)
    return 0.5 * (zero_shot + head) if has_head and mode == "ensemble" else zero_shot


# findings that "not normal" says nothing about: No Finding itself, and devices
NOT_ABNORMALITIES = (NO_FINDING, "Support Devices")


def blend_abnormality(probabilities: torch.Tensor, names: list[str], weight: float) -> torch.Tensor:
    """[..., F] probabilities with each abnormal finding's logit moved towards "not normal":
    sigmoid((1 - w) logit(p_k) + w logit(1 - p_NoFinding)). The No Finding score learns from
    every labelled image, a rare finding's from a handful of positives, so on patients unlike the
    training mix the shared part carries the ranking where the finding's own is noise
    (docs/training.md). Unchanged with weight 0 or without a No Finding output."""
    if not weight or NO_FINDING not in names:
        return probabilities
    logits = torch.logit(probabilities.clamp(1e-6, 1 - 1e-6))
    abnormal = -logits[..., names.index(NO_FINDING)].unsqueeze(-1)  # logit(1 - p) = -logit(p)
    blended = (1.0 - weight) * logits + weight * abnormal
    keep = torch.tensor([name in NOT_ABNORMALITIES for name in names], device=logits.device)
    return torch.sigmoid(torch.where(keep, logits, blended))


def calibrate(probabilities: torch.Tensor, names: list[str], calibration: dict | None) -> torch.Tensor:
    """Platt scaling per finding: sigmoid(scale * logit(p) + bias), with {name: {"scale", "bias"}}
    from the card; findings without an entry are returned unchanged. [..., F] -> [..., F]."""
    if not calibration:
        return probabilities
    scale = probabilities.new_tensor([float(calibration.get(n, {}).get("scale", 1.0)) for n in names])
    bias = probabilities.new_tensor([float(calibration.get(n, {}).get("bias", 0.0)) for n in names])
    logits = torch.logit(probabilities.clamp(1e-6, 1 - 1e-6))
    return torch.sigmoid(scale * logits + bias)


def with_measurements(probabilities: torch.Tensor, names: list[str], fits: dict[str, dict],
                      measured: dict[str, float]) -> torch.Tensor:
    """[F] probabilities with each finding the card scores from a measurement replaced by
    sigmoid(scale * value + bias), where the study has that measurement (else unchanged)."""
    out = probabilities.clone()
    for name, fit in fits.items():
        value = measured.get(fit["measure"])
        if value is not None and name in names:
            out[names.index(name)] = measured_probability(value, fit["scale"], fit["bias"])
    return out


def study_probabilities(classifier, images: torch.Tensor, classification: Classification,
                        prompts: tuple[torch.Tensor, torch.Tensor] | None,
                        features: torch.Tensor | None = None,
                        measured: dict[str, float] | None = None) -> torch.Tensor:
    """images [V, 1, S, S] of one study -> [F] calibrated probabilities (mean over views, or the
    frontal view's `measured` values for the findings the card measures), made the way the
    card's classification section says (with its feature probe mixed in and the abnormality
    blended per view)."""
    names = list(classifier.config.finding_names)
    views = view_probabilities(classifier, images, classification.mode, prompts, features)
    if classification.probe_weight:
        views = mix_logits(views, classifier.probe_logits(images), classification.probe_weight)
    views = blend_abnormality(views, names, classification.abnormality_weight)
    combined = with_measurements(classifier.combine_views(views), names, classification.measurements,
                                 measured or {})
    return calibrate(combined, names, classification.calibration)
