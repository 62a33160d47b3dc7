"""Finding probabilities for a study's views: zero-shot, linear head, or their mean.

Shared by the app's pipeline and the trainer (which feeds the same probabilities to the
generator as disease clues), so both see identical clues.
"""
from __future__ import annotations

import torch

CLASSIFICATION_MODES = ("zero_shot", "head", "ensemble")


def prompt_token_ids(classifier, tokenizer, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier config's prompt pairs -> padded token ids [F, L] (positive, negative)."""
    length = classifier.config.context_length
    pos = [tokenizer.encode(p[0], max_len=length) for p in classifier.config.prompts]
    neg = [tokenizer.encode(p[1], max_len=length) for p in classifier.config.prompts]
    return (torch.tensor(tokenizer.pad(pos, length)[0], device=device),
            torch.tensor(tokenizer.pad(neg, length)[0], device=device))


def view_probabilities(classifier, images: torch.Tensor, mode: str,
                       prompts: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """images [V, 1, S, S] -> [V, F] probabilities per view."""
    if mode not in CLASSIFICATION_MODES:
        raise ValueError(f"classification mode must be one of {CLASSIFICATION_MODES}, got {mode!r}")
    has_head = classifier.finding_head is not None
    if mode == "head" and has_head:
        return classifier.head_probabilities(images)
    pos, neg = prompts
    zero_shot = classifier.zero_shot_probabilities(classifier.encode_image(images), pos, neg)
    if mode == "ensemble" and has_head:
        return 0.5 * (zero_shot + classifier.head_probabilities(images))
    return zero_shot
