"""The classifier's input gate: is this a chest radiograph, and is it a lateral view?

Two logistic regressions on the trained classifier's frozen pooled features, written into
its `input_gate` layer (logit 0: chest radiograph, logit 1: lateral view):
- chest radiograph: every training image of the labelled sources (positives) against
  non-radiographs that ship inside installed packages (scikit-image's sample photographs,
  faces, textures, text and microscopy; matplotlib's sample images; the pixel data of
  pydicom's own CT/MR/US/RT/SEG/secondary-capture test files) and synthetic images (uniform,
  gradients, noise, shapes, stripes, smooth random fields). Files are split by a stable hash
  into fitting and held-out halves; the held-out half and fresh synthetic seeds measure it.
- lateral view: covid_cxr's lateral images against the frontal ones.
The chest threshold is the strictest that refuses at most `max_false_refusal` of the
VALIDATION radiographs (within [0.05, 0.9]); the card records it with the measured rates.
Colour photographs count as negatives by their grey version (the app refuses colour itself).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import numpy as np
import torch

from rrg_desk.models.card import Preprocessing
from rrg_desk.models.preprocess import prepare_image
from rrg_desk.thresholds import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)


def _package_dir(module: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def packaged_negative_files() -> list[Path]:
    """Non-radiograph images shipped inside installed packages (none is downloaded)."""
    files = []
    for module, parts, patterns in (("skimage", ("data",), ("*.png", "*.jpg")),
                                    ("matplotlib", ("mpl-data", "sample_data"), ("*.png", "*.jpg")),
                                    ("pydicom", ("data", "test_files"), ("*.dcm",))):
        folder = _package_dir(module, *parts)
        if folder is not None and folder.is_dir():
            files += sorted(p for pattern in patterns for p in folder.glob(pattern))
    return files


def held_out(path: Path) -> bool:
    """A stable half of the files is kept out of fitting (by name, not by position)."""
    return int(hashlib.sha1(path.name.encode()).hexdigest(), 16) % 2 == 0


def file_pixels(path: Path) -> np.ndarray | None:
    """[H, W] in [0, 1] through the app's reader and windowing, or None when unreadable."""
    from rrg_desk.imaging import read_image
    from rrg_desk.models.preprocess import window_to_unit

    try:
        image = read_image(path)
    except Exception as exc:  # noqa: BLE001 - a test file the app refuses is simply not a sample
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):  # a colour photo: its grey version is a negative
            return _grey_pixels(path)
        log.debug("skipping %s: %s", path.name, exc)
        return None
    window = image.display_window()
    return window_to_unit(image.pixels, window.center, window.width)


def _grey_pixels(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError):
        return None


def face_pixels(count: int, seed: int) -> list[np.ndarray]:
    """Greyscale portrait crops from scikit-image's LFW subset (25 x 25, shipped in the wheel)."""
    folder = _package_dir("skimage", "data")
    if folder is None or not (folder / "lfw_subset.npy").exists():
        return []
    faces = np.load(folder / "lfw_subset.npy", allow_pickle=False)
    pick = np.random.default_rng(seed).choice(len(faces), size=min(count, len(faces)), replace=False)
    return [np.clip(faces[i].astype(np.float32), 0, 1) for i in pick]


def synthetic_pixels(count: int, seed: int) -> list[np.ndarray]:
    """Images no radiograph looks like: uniform, gradients, noise, shapes, stripes, blobs."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        size = int(rng.choice([64, 128, 256, 512]))
        y, x = np.mgrid[0:size, 0:size] / size
        kind = k % 7
        if kind == 0:
            image = np.full((size, size), rng.random())
        elif kind == 1:
            angle = rng.random() * np.pi
            image = np.cos(angle) * x + np.sin(angle) * y
        elif kind == 2:
            image = rng.random((size, size)) if rng.random() < 0.5 else rng.normal(0.5, 0.2, (size, size))
        elif kind == 3:  # an MR/CT-like bright ellipse on black, with texture
            a, b = 0.2 + 0.25 * rng.random(2)
            inside = ((x - 0.5) / a) ** 2 + ((y - 0.5) / b) ** 2 < 1
            image = inside * (0.5 + 0.3 * rng.random((size, size)))
        elif kind == 4:
            period = rng.integers(4, 40)
            image = ((x * size // period + y * size // period) % 2).astype(float)
        elif kind == 5:
            image = np.sin(2 * np.pi * rng.integers(2, 30) * (x if rng.random() < 0.5 else y))
        else:  # a smooth random field (clouds)
            coarse = rng.random((8, 8))
            image = torch.nn.functional.interpolate(torch.tensor(coarse)[None, None], size=(size, size),
                                                    mode="bicubic", align_corners=False)[0, 0].numpy()
        image = np.asarray(image, dtype=np.float32)
        span = float(image.max() - image.min())
        out.append((image - image.min()) / span if span > 0 else np.clip(image, 0, 1))
    return out


def variants(pixels: np.ndarray) -> list[np.ndarray]:
    """The image, its negative, a central crop, four corner crops and a quarter turn: a
    photo stays a photo however it is framed."""
    h, w = pixels.shape
    crops = [pixels[:2 * h // 3, :2 * w // 3], pixels[:2 * h // 3, w // 3:], pixels[h // 3:, :2 * w // 3],
             pixels[h // 3:, w // 3:]]
    return [pixels, 1.0 - pixels, pixels[h // 6: h - h // 6, w // 6: w - w // 6], np.rot90(pixels).copy(), *crops]


@torch.no_grad()
def features_of(classifier, arrays: list[np.ndarray], spec: Preprocessing, device, batch_size: int = 32
                ) -> torch.Tensor:
    """[N, C] pooled features of [0, 1] images prepared exactly as the app prepares them."""
    out = []
    for start in range(0, len(arrays), batch_size):
        batch = torch.stack([prepare_image(a, spec)[0] for a in arrays[start:start + batch_size]])
        out.append(classifier.image_features(batch.to(device)).cpu())
    return torch.cat(out) if out else torch.zeros(0, classifier.config.feature_dim)


def fit_logistic(features: torch.Tensor, targets: torch.Tensor, l2: float = 1e-2) -> tuple[torch.Tensor, float]:
    """Class-balanced L2 logistic regression on standardised features, returned as raw-feature
    (weight [C], bias) so the gate layer takes the backbone's features directly."""
    x = features.double()
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    y = targets.double()
    positive_share = float(y.mean())
    sample_weight = torch.where(y > 0.5, 0.5 / positive_share, 0.5 / (1 - positive_share))
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ weight + bias, y, weight=sample_weight)
        loss = loss + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    raw_weight = (weight / std).detach()
    raw_bias = float(bias.detach() - (weight * mean / std).sum().detach())
    return raw_weight.float(), raw_bias


def refusal_rate(probabilities: torch.Tensor, threshold: float) -> float:
    return float((probabilities < threshold).float().mean()) if len(probabilities) else float("nan")


def _chest_arrays(items) -> list[np.ndarray]:
    return [a for a in (file_pixels(i.path) for i in items) if a is not None]


def negative_arrays(held: bool, seed: int) -> list[np.ndarray]:
    files = [p for p in packaged_negative_files() if held_out(p) == held]
    arrays = [v for p in files if (a := file_pixels(p)) is not None and min(a.shape) >= 8 for v in variants(a)]
    return arrays + face_pixels(100, seed) + synthetic_pixels(210, seed)  # seeds 0 / 1: disjoint draws


def fit_input_gate(config: dict, classifier, device, max_false_refusal: float = 0.005) -> dict:
    """Fit both gate outputs into `classifier.input_gate`; returns thresholds and measured rates."""
    from train.data.finding_labels import labelled_images
    from train.tasks.clip_task import labelled_sources, spread
    from train.tasks.common import limit

    sources, cap = labelled_sources(config), limit(config)
    spec = Preprocessing.from_card(config["preprocessing"])
    split_items = {s: labelled_images(sources, s) for s in ("train", "val", "test")}
    if cap:
        split_items = {s: spread(v, cap) for s, v in split_items.items()}
    classifier.eval()
    chest = {s: features_of(classifier, _chest_arrays(v), spec, device) for s, v in split_items.items()}
    negatives = features_of(classifier, negative_arrays(False, seed=0), spec, device)
    held_negatives = features_of(classifier, negative_arrays(True, seed=1), spec, device)
    chest_weight, chest_bias = fit_logistic(torch.cat([chest["train"], negatives]),
                                            torch.cat([torch.ones(len(chest["train"])), torch.zeros(len(negatives))]))
    lateral = torch.tensor([float(i.view == "LATERAL") for i in split_items["train"]])
    if 0 < lateral.sum() < len(lateral):
        lateral_weight, lateral_bias = fit_logistic(chest["train"], lateral)
    else:  # no lateral training image (tiny runs): the gate never calls a view lateral
        lateral_weight, lateral_bias = torch.zeros(chest["train"].shape[1]), -10.0
    with torch.no_grad():
        classifier.input_gate.weight.copy_(torch.stack([chest_weight, lateral_weight]).to(device))
        classifier.input_gate.bias.copy_(torch.tensor([chest_bias, lateral_bias], device=device))
    return _gate_record(classifier, chest, held_negatives, split_items, max_false_refusal, device)


def _gate_record(classifier, chest: dict, held_negatives, split_items: dict, max_false_refusal: float, device) -> dict:
    def probs(features):
        with torch.no_grad():
            return classifier.gate_probabilities(features.to(device)).cpu() if len(features) else torch.zeros(0, 2)

    val = probs(chest["val"])[:, 0].detach()
    # the strictest cut that still passes all but `max_false_refusal` of the validation radiographs
    threshold = min(0.9, max(0.05, float(torch.quantile(val, max_false_refusal)))) if len(val) else DEFAULT_THRESHOLD
    record = {"chest_threshold": round(threshold, 6), "lateral_threshold": DEFAULT_THRESHOLD,
              "max_false_refusal_on_validation": max_false_refusal,
              "false_refusal": {s: refusal_rate(probs(chest[s])[:, 0], threshold) for s in chest},
              "held_out_negatives": len(held_negatives),
              "held_out_negatives_refused": refusal_rate(probs(held_negatives)[:, 0], threshold)
              if len(held_negatives) else None}
    for split, items in split_items.items():
        truth = torch.tensor([float(i.view == "LATERAL") for i in items])
        called = (probs(chest[split])[:, 1] >= DEFAULT_THRESHOLD).float()
        if len(truth) == len(called) and truth.sum() > 0:
            record[f"lateral_recall_{split}"] = float((called * truth).sum() / truth.sum())
            record[f"frontal_called_lateral_{split}"] = float((called * (1 - truth)).sum() / (1 - truth).sum())
    log.info("input gate: chest threshold %.3f, false refusal %s, held-out negatives refused %.3f",
             threshold, record["false_refusal"], record["held_out_negatives_refused"] or float("nan"))
    return record
