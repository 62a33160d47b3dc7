"""The model bundle: a folder with card.json, one <component>.safetensors per model, tokenizer.json.

The card alone rebuilds the models (their configs), names the vocabularies they were trained
on, carries the preprocessing constants, thresholds and generation settings, and the sha256
of every file; its schema and its reading (torch-free) are rrg_desk.models.card. Loading
verifies every hash before reading weights, never unpickles (safetensors only) and refuses
anything inconsistent with a `BundleError` whose `user_message` can be shown as is.

Image tokens for the generator come from the component named in the card's
generation.image_tokens_from ("detector": RegionDetections.image_tokens; "classifier": CLIP
patch tokens); the loader checks the generator's input sizes against that source.
"""
from __future__ import annotations

import copy
import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from rrg_desk.models.card import (CARD_FILE, COMPONENTS, FORMAT_VERSION, TOKENIZER_FILE,
                                  BundleCard, BundleCorruptError, BundleError, BundleFileMissingError,
                                  BundleHashMismatchError, BundleIncompatibleError, Generation, Preprocessing,
                                  card_digest, read_card)
from rrg_desk.models.regions import REGION_NAMES
from rrg_desk.thresholds import DEFAULT_THRESHOLD

logger = logging.getLogger(__name__)

# component -> (module, config class, model class); imported lazily so that reading a card or
# building one model imports only that model's module.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "detector": ("rrg_desk.models.detector", "DetectorConfig", "RegionDetector"),
    "classifier": ("rrg_desk.models.clip_classifier", "ClipClassifierConfig", "ClipClassifier"),
    "generator": ("rrg_desk.models.generator", "GeneratorConfig", "RegionSentenceGenerator"),
}
# what save_bundle writes itself; card_extra may set the other card keys
_RESERVED_CARD_KEYS = {"format_version", "created", "components", "region_names", "finding_names", "tokenizer",
                       "integrity"}


@dataclass
class ModelBundle:
    card: BundleCard
    detector: nn.Module
    classifier: nn.Module
    generator: nn.Module
    tokenizer: Any  # rrg_desk.models.tokenizer.ReportTokenizer
    device: torch.device
    folder: Path

    @property
    def bundle_id(self) -> str:
        return self.card.bundle_id

    @property
    def preprocessing(self) -> Preprocessing:
        return self.card.preprocessing

    @property
    def region_names(self) -> tuple[str, ...]:
        return self.card.region_names

    @property
    def finding_names(self) -> tuple[str, ...]:
        return self.card.finding_names

    @property
    def thresholds(self) -> dict[str, float]:
        return self.card.thresholds

    @property
    def generation(self) -> Generation:
        return self.card.generation


def component_classes(component: str) -> tuple[type, type]:
    """(ConfigClass, ModelClass) registered for "detector" / "classifier" / "generator"."""
    module_name, config_name, model_name = _REGISTRY[component]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, model_name)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- saving -----------------------------------------------------------------------------------
def _save_half(model: nn.Module, path: Path, name: str) -> None:
    """Floating-point tensors as float16; save_model drops tied duplicates (GPT-2's lm_head/wte)."""
    save_model(copy.deepcopy(model).half(), str(path), metadata={"component": name, "stored_dtype": "float16"})


def save_bundle(folder: str | Path, *, detector: nn.Module, classifier: nn.Module, generator: nn.Module,
                tokenizer: Any, card_extra: dict | None = None, half_precision: tuple[str, ...] = ()) -> Path:
    """Write the bundle atomically (temp folder, then rename) and return its path.

    card_extra must hold "preprocessing" {"image_size", "mean", "std"}; it may hold the other
    keys of rrg_desk.models.card.BundleCard: bundle_id, thresholds (DEFAULT_THRESHOLD per
    finding not named), generation (max_len defaults to min(40, the generator's positions)),
    classification, region_selection, input_check, parent, and the records (training, metrics).
    Components named in `half_precision` store their floating-point weights as float16 (half the
    file; loading casts them back to float32); their card entry says "stored_dtype": "float16".
    """
    folder = Path(folder)
    extra = dict(card_extra or {})
    reserved = _RESERVED_CARD_KEYS & set(extra)
    if reserved:
        raise ValueError(f"card_extra may not set {sorted(reserved)}")
    if not isinstance(extra.get("preprocessing"), dict):
        raise ValueError("card_extra['preprocessing'] with image_size, mean and std is required")
    finding_names = list(classifier.config.finding_names)
    extra["thresholds"] = {name: DEFAULT_THRESHOLD for name in finding_names} | dict(extra.get("thresholds", {}))
    unknown = set(extra["thresholds"]) - set(finding_names)
    if unknown:
        raise ValueError(f"thresholds for unknown findings: {sorted(unknown)}")
    extra["generation"] = {"max_len": min(40, generator.config.n_positions)} | dict(extra.get("generation", {}))
    extra["bundle_id"] = extra.get("bundle_id") or f"rrg-{uuid.uuid4().hex[:12]}"

    if folder.exists() and any(folder.iterdir()) and not (folder / CARD_FILE).exists():
        raise ValueError(f"{folder} exists and is not a model bundle; refusing to replace it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        components = {}
        for name, model in (("detector", detector), ("classifier", classifier), ("generator", generator)):
            file_name = f"{name}.safetensors"
            if name in half_precision:
                _save_half(model, staging / file_name, name)
            else:  # save_model (not save_file) drops tied duplicates such as GPT-2's lm_head/wte.
                save_model(model, str(staging / file_name), metadata={"component": name})
            components[name] = {"config": model.config.to_dict(), "file": file_name,
                                "sha256": sha256_file(staging / file_name)}
            if name in half_precision:
                components[name]["stored_dtype"] = "float16"
        (staging / TOKENIZER_FILE).write_text(tokenizer.to_json(), encoding="utf-8")
        card = _checked_card(extra | {
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "components": components,
            "region_names": list(detector.config.region_names),
            "finding_names": finding_names,
            "tokenizer": {"file": TOKENIZER_FILE, "sha256": sha256_file(staging / TOKENIZER_FILE),
                          "vocab_size": tokenizer.vocab_size},
        })
        (staging / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")
        for path in staging.iterdir():  # mkdtemp makes 0700/0600: a shipped bundle is readable by all
            path.chmod(0o644)
        staging.chmod(0o755)
        _swap_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("saved model bundle %s to %s", card["bundle_id"], folder)
    return folder


def _checked_card(values: dict) -> dict:
    """The card to write: checked against the schema, in its canonical form, with its checksum."""
    try:
        card = BundleCard.from_dict(values).to_dict()
    except BundleError as exc:
        raise ValueError(f"card_extra does not make a valid card: {exc}") from exc
    return card | {"integrity": {"sha256": card_digest(card)}}


def _swap_into_place(staging: Path, folder: Path) -> None:
    """Replace `folder` by `staging` so a reader never sees a half-written bundle."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    retired = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(folder, retired)
    os.replace(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)


# --- loading ----------------------------------------------------------------------------------
def verify_bundle(folder: str | Path) -> BundleCard:
    """read_card + every listed file present with the card's sha256. Returns the card."""
    folder = Path(folder)
    card = read_card(folder)
    listed = [(c, card.components[c].file, card.components[c].sha256) for c in COMPONENTS]
    listed.append(("tokenizer", card.tokenizer.file, card.tokenizer.sha256))
    for _what, file_name, expected in listed:
        path = folder / file_name
        if not path.is_file():
            raise BundleFileMissingError(f"The model bundle is incomplete: {file_name} is missing.",
                                         str(path))
        if sha256_file(path) != expected:
            raise BundleHashMismatchError(
                f"The model bundle is damaged: {file_name} does not match its checksum. "
                "Reinstall or retrain the models.", f"{path}")
    return card


def _check_vocabularies(card: BundleCard, configs: dict[str, Any]) -> None:
    from rrg_desk.models.findings import FINDING_NAMES

    problems = []
    if list(card.region_names) != list(REGION_NAMES):
        problems.append("the card's region names differ from this version's region vocabulary")
    if list(configs["detector"].region_names) != list(card.region_names):
        problems.append("the detector's region names differ from the card's")
    if list(card.finding_names) != list(FINDING_NAMES):
        problems.append("the card's finding names differ from this version's findings")
    if list(configs["classifier"].finding_names) != list(card.finding_names):
        problems.append("the classifier's finding names differ from the card's")
    if configs["generator"].num_findings != len(card.finding_names):
        problems.append("the generator's number of findings differs from the card's")
    if configs["generator"].num_region_types != len(card.region_names):
        problems.append("the generator's number of region types differs from the card's")
    if problems:
        raise BundleIncompatibleError("This model bundle does not fit this version of RRG Desk.",
                                      "; ".join(problems))


def _check_sizes(card: BundleCard, configs: dict[str, Any], vocab_size: int) -> None:
    detector, classifier, generator = configs["detector"], configs["classifier"], configs["generator"]
    source = card.generation.image_tokens_from  # one of IMAGE_TOKEN_SOURCES (the card is checked)
    if source == "detector":
        token_dim, token_count = detector.image_token_dim, detector.num_image_tokens
    else:
        token_dim, token_count = classifier.vision_width, classifier.grid_size ** 2
    problems = []
    if generator.region_feature_dim != detector.feature_dim:
        problems.append(f"generator region_feature_dim {generator.region_feature_dim} != detector "
                        f"feature_dim {detector.feature_dim}")
    if generator.image_token_dim != token_dim or generator.max_image_tokens < token_count:
        problems.append(f"generator image tokens ({generator.image_token_dim}-d, <= {generator.max_image_tokens}) "
                        f"do not fit the {source}'s ({token_dim}-d, {token_count})")
    if card.classification.probe_weight and classifier.feature_probe is None:
        problems.append("the card mixes in a feature probe the classifier does not have")
    for name, config in (("classifier", classifier), ("generator", generator)):
        if config.vocab_size != vocab_size:
            problems.append(f"{name} vocab_size {config.vocab_size} != tokenizer's {vocab_size}")
    if problems:
        raise BundleIncompatibleError("The models in this bundle do not fit together.", "; ".join(problems))


def load_bundle(folder: str | Path, device: str | torch.device = "cpu") -> ModelBundle:
    """Verify and load a bundle; models are in eval mode on `device`. Raises BundleError."""
    from rrg_desk.models.tokenizer import ReportTokenizer, TokenizerError

    folder = Path(folder)
    card = verify_bundle(folder)
    configs = {}
    for component in COMPONENTS:
        config_class, _ = component_classes(component)
        try:
            configs[component] = config_class.from_dict(dict(card.components[component].config))
        except (TypeError, ValueError, KeyError) as exc:
            raise BundleIncompatibleError(
                f"The {component} in this model bundle cannot be built by this version of RRG Desk.",
                repr(exc)) from exc
    _check_vocabularies(card, configs)
    try:
        tokenizer = ReportTokenizer.from_json((folder / card.tokenizer.file).read_text(encoding="utf-8"))
    except (TokenizerError, UnicodeDecodeError) as exc:
        raise BundleCorruptError("The model bundle's tokenizer is damaged.", repr(exc)) from exc
    _check_sizes(card, configs, tokenizer.vocab_size)

    models = {}
    for component in COMPONENTS:
        _, model_class = component_classes(component)
        try:
            model = model_class(configs[component])
        except (RuntimeError, ValueError, TypeError, ZeroDivisionError, AssertionError, IndexError) as exc:
            raise BundleIncompatibleError(f"The {component} in this model bundle cannot be built.",
                                          repr(exc)[:500]) from exc
        path = folder / card.components[component].file
        try:
            load_model(model, str(path), strict=True)
        except SafetensorError as exc:
            raise BundleCorruptError(f"The {component} weights in this model bundle are unreadable.",
                                     repr(exc)) from exc
        except RuntimeError as exc:  # missing/unexpected keys, shape mismatches
            raise BundleIncompatibleError(
                f"The {component} weights in this model bundle do not match its configuration.",
                str(exc)[:500]) from exc
        models[component] = model.to(device).eval()
    logger.info("loaded model bundle %s from %s on %s", card.bundle_id, folder, device)
    return ModelBundle(card=card, detector=models["detector"], classifier=models["classifier"],
                       generator=models["generator"], tokenizer=tokenizer, device=torch.device(device),
                       folder=folder)


# --- a random bundle (tests; the trainer's starting point) -------------------------------------
_STARTER_TEXTS = (
    "The heart size is normal. The lungs are clear. No pneumothorax or pleural effusion.",
    "There is a small left pleural effusion. Mild cardiomegaly. No focal consolidation.",
    "Right lower lobe opacity consistent with pneumonia. The mediastinum is unremarkable.",
)


def build_random_bundle(folder: str | Path, size: str = "tiny", tokenizer_texts: list[str] | None = None,
                        seed: int = 0, card_extra: dict | None = None) -> Path:
    """Randomly initialised models of the `size` ("tiny" or "default") configs, saved as a bundle.

    The tokenizer is trained on `tokenizer_texts` (default: a few starter sentences plus the
    findings' prompts). Preprocessing defaults to the detector's image size with mean 0.5,
    std 0.25: placeholders until the trainer measures its data. The global RNG is untouched.
    """
    from rrg_desk.models.detector import DetectorConfig, RegionDetector
    from rrg_desk.models.regions import SCR_ORGANS
    from rrg_desk.models.clip_classifier import ClipClassifier, ClipClassifierConfig
    from rrg_desk.models.findings import DEFAULT_PROMPTS
    from rrg_desk.models.generator import GeneratorConfig, RegionSentenceGenerator
    from rrg_desk.models.tokenizer import ReportTokenizer

    if size not in ("tiny", "default"):
        raise ValueError(f"size must be 'tiny' or 'default', got {size!r}")
    texts = list(tokenizer_texts) if tokenizer_texts else \
        list(_STARTER_TEXTS) + [p for pair in DEFAULT_PROMPTS.values() for p in pair]
    tokenizer = ReportTokenizer.train_from_texts(texts, vocab_size=2000, min_frequency=1)
    special = dict(pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
    tiny = size == "tiny"
    detector_config = DetectorConfig.tiny(outlines=True) if tiny else DetectorConfig(mask_regions=list(SCR_ORGANS))
    classifier_config = (ClipClassifierConfig.tiny(vocab_size=tokenizer.vocab_size, **special) if tiny
                         else ClipClassifierConfig(vocab_size=tokenizer.vocab_size, **special))
    generator_dims = dict(vocab_size=tokenizer.vocab_size, bos_id=tokenizer.bos_id,
                          region_feature_dim=detector_config.feature_dim,
                          image_token_dim=detector_config.image_token_dim,
                          max_image_tokens=detector_config.num_image_tokens, **special)
    generator_config = GeneratorConfig.tiny(**generator_dims) if tiny else GeneratorConfig(**generator_dims)
    with torch.random.fork_rng(devices=[]):  # one seed per model: a detector head more or less
        torch.manual_seed(seed)               # leaves the classifier and generator as they were
        detector = RegionDetector(detector_config)
        torch.manual_seed(seed + 1)
        classifier = ClipClassifier(classifier_config)
        torch.manual_seed(seed + 2)
        generator = RegionSentenceGenerator(generator_config)
    extra = {"preprocessing": {"image_size": detector_config.image_size, "mean": 0.5, "std": 0.25},
             "training": {"note": f"random initialisation ({size}), seed {seed}"}} | dict(card_extra or {})
    return save_bundle(folder, detector=detector, classifier=classifier, generator=generator,
                       tokenizer=tokenizer, card_extra=extra)
