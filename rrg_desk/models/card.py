"""The model card (a bundle's card.json) as one typed schema, read and checked without torch.

What a bundle is and how it loads: rrg_desk.models.bundle. Here: what its card may hold.
The card has two parts:
- the model-defining part (configs, vocabularies, preprocessing, thresholds, generation,
  classification, region selection, input check, parent), checksummed by `card_digest` into
  "integrity" when the bundle is saved: a changed value there changes every draft;
- the records (RECORD_KEYS: training provenance, test metrics, a fine-tune's before/after
  evaluation), unhashed, which evaluation adds after export through `update_records` only.

Every key has its one default here; an unknown key, section entry or value is refused with a
`BundleError` worded for the person at the workstation. Listing bundles, the settings dialog
and the trainer read cards with `read_card`; nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rrg_desk.errors import UserFacingError
from rrg_desk.fileio import write_text_atomic
from rrg_desk.imaging.input_check import LearnedThresholds
from rrg_desk.models.measurements import MEASURES
from rrg_desk.thresholds import DEFAULT_THRESHOLD

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CARD_FILE = "card.json"
TOKENIZER_FILE = "tokenizer.json"
COMPONENTS: tuple[str, ...] = ("detector", "classifier", "generator")
CLASSIFICATION_MODES = ("zero_shot", "head", "ensemble")
DEFAULT_CLASSIFICATION_MODE = "ensemble"  # the head and zero-shot prompts averaged (zero-shot alone without a head)
# how the generator's disease clues are given: the classifier's calibrated probabilities (bundles
# before report-label clues) or 1/0 per finding the classifier calls present (trained on report labels)
CLUE_FORMS = ("probabilities", "thresholded")
IMAGE_TOKEN_SOURCES = ("detector", "classifier")
RECORD_KEYS = ("training", "metrics", "finetune_evaluation")  # unhashed: evaluation may add to them


# --- errors -------------------------------------------------------------------------------------
class BundleError(UserFacingError):
    """A bundle cannot be used; `user_message` is written for the person at the workstation."""


class BundleNotFoundError(BundleError):
    """No folder or no card.json."""


class BundleFileMissingError(BundleError):
    """A file the card lists is absent."""


class BundleCorruptError(BundleError):
    """card.json is not valid JSON / lacks fields, or a file cannot be parsed."""


class BundleHashMismatchError(BundleError):
    """A file's sha256 differs from the card's."""


class BundleVersionError(BundleError):
    """Unknown card format_version."""


class BundleIncompatibleError(BundleError):
    """Weights, configs, vocabularies or sizes do not fit this version of RRG Desk or each other."""


# --- values -------------------------------------------------------------------------------------
def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {value!r}")
    return value


def _choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")
    return value


def _names(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValueError(f"{what} must be a list of names")
    return tuple(value)


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _entries(section: Any, what: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    """`section` as an object holding all of `required`, some of `optional` and nothing else."""
    section = _object(section, what)
    missing = [key for key in required if key not in section]
    unknown = sorted(set(section) - set(required) - set(optional))
    if missing or unknown:
        raise ValueError(f"{what}: " + "; ".join(([f"missing {missing}"] if missing else [])
                                                 + ([f"unknown {unknown}"] if unknown else [])))
    return section


def safe_file_name(value: Any, what: str) -> str:
    """A plain file name inside the bundle: no folders, no '..' (a card must not point outside)."""
    if not isinstance(value, str) or not value or Path(value).name != value or value in (".", ".."):
        raise ValueError(f"bad file name for {what}: {value!r}")
    return value


def _without_none(values: dict) -> dict:
    return {key: value for key, value in values.items() if value is not None}


# --- sections -----------------------------------------------------------------------------------
class _Section:
    """A part of the card; as JSON, its fields without those left unset (None)."""

    def to_dict(self) -> dict:
        return _without_none(dataclasses.asdict(self))


@dataclass(frozen=True)
class Preprocessing(_Section):
    """The models' input: the display-windowed grey image in [0, 1], squashed to
    image_size x image_size, then (x - mean) / std. The one spec the app and the trainer share."""

    image_size: int
    mean: float
    std: float

    def __post_init__(self) -> None:
        _positive_int(self.image_size, "preprocessing.image_size")
        object.__setattr__(self, "mean", _number(self.mean, "preprocessing.mean"))
        object.__setattr__(self, "std", _number(self.std, "preprocessing.std"))
        if self.std <= 0:
            raise ValueError(f"preprocessing.std must be positive, got {self.std}")

    @classmethod
    def from_card(cls, section: Any) -> "Preprocessing":
        """From a card's (or a training config's) "preprocessing": {"image_size", "mean", "std"}."""
        section = _entries(section, "preprocessing", required=("image_size", "mean", "std"))
        return cls(section["image_size"], section["mean"], section["std"])


@dataclass(frozen=True)
class Generation(_Section):
    """How the generator writes: sentence length and beam (the request may override them), where
    its image tokens come from, and the form of the disease clues it was trained on."""

    max_len: int | None = None  # None: the generator's n_positions - 1
    beam_size: int = 1
    image_tokens_from: str = "detector"
    clues: str = "probabilities"

    @classmethod
    def from_card(cls, section: Any) -> "Generation":
        section = _entries(section, "generation", optional=tuple(f.name for f in dataclasses.fields(cls)))
        values = cls(**section)
        if values.max_len is not None:
            _positive_int(values.max_len, "generation.max_len")
        _positive_int(values.beam_size, "generation.beam_size")
        _choice(values.image_tokens_from, IMAGE_TOKEN_SOURCES, "generation.image_tokens_from")
        _choice(values.clues, CLUE_FORMS, "generation.clues")
        return values


@dataclass(frozen=True)
class Classification(_Section):
    """How the classifier's finding probabilities are made: `mode` (CLASSIFICATION_MODES),
    findings scored from a measurement of the frontal view's boxes instead of the image
    classifier {name: {"measure": m, "scale": a, "bias": b}} (rrg_desk.models.measurements,
    fitted on training data), Platt calibration per finding {name: {"scale": s, "bias": b}}
    fitted on validation data, applied to either, `probe_weight`: the share of the
    classifier's frozen-ImageNet feature probe in the logits (0: no probe; chosen on validation),
    and `abnormality_weight`: the share of "not normal" (1 - P(No Finding)) in each abnormal
    finding's logit (0: none; rrg_desk.models.classify.blend_abnormality)."""

    mode: str = DEFAULT_CLASSIFICATION_MODE
    calibration: dict[str, dict[str, float]] = field(default_factory=dict)
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)
    probe_weight: float = 0.0
    abnormality_weight: float = 0.0

    def to_dict(self) -> dict:
        out = super().to_dict()
        if not self.measurements:  # cards from before measurements existed keep their checksum
            out.pop("measurements")
        if not self.probe_weight:  # ... and those from before the feature probe
            out.pop("probe_weight")
        if not self.abnormality_weight:  # ... and before the abnormality blend
            out.pop("abnormality_weight")
        return out

    @classmethod
    def from_card(cls, section: Any) -> "Classification":
        section = _entries(section, "classification", optional=("mode", "calibration", "measurements",
                                                                "probe_weight", "abnormality_weight"))
        calibration = {}
        for name, fit in _object(section.get("calibration", {}), "classification.calibration").items():
            fit = _entries(fit, f"classification.calibration[{name}]", optional=("scale", "bias"))
            calibration[name] = {key: _number(value, f"classification.calibration[{name}].{key}")
                                 for key, value in fit.items()}
        measurements = {}
        for name, fit in _object(section.get("measurements", {}), "classification.measurements").items():
            what = f"classification.measurements[{name}]"
            fit = _entries(fit, what, required=("measure", "scale", "bias"))
            measurements[name] = {"measure": _choice(fit["measure"], MEASURES, f"{what}.measure"),
                                  "scale": _number(fit["scale"], f"{what}.scale"),
                                  "bias": _number(fit["bias"], f"{what}.bias")}
        probe_weight = _number(section.get("probe_weight", 0.0), "classification.probe_weight")
        if not 0.0 <= probe_weight < 1.0:
            raise ValueError(f"classification.probe_weight must be in [0, 1), got {probe_weight}")
        abnormality_weight = _number(section.get("abnormality_weight", 0.0), "classification.abnormality_weight")
        if not 0.0 <= abnormality_weight < 1.0:
            raise ValueError(f"classification.abnormality_weight must be in [0, 1), got {abnormality_weight}")
        return cls(_choice(section.get("mode", DEFAULT_CLASSIFICATION_MODE), CLASSIFICATION_MODES,
                           "classification.mode"), calibration, measurements, probe_weight, abnormality_weight)


@dataclass(frozen=True)
class RegionSelection(_Section):
    """The region selector's threshold, and how the trainer chose it (when it calibrated it)."""

    threshold: float = DEFAULT_THRESHOLD
    target_regions_per_report: float | None = None
    mean_selected_on_val: float | None = None

    @classmethod
    def from_card(cls, section: Any) -> "RegionSelection":
        names = tuple(f.name for f in dataclasses.fields(cls))
        section = _entries(section, "region_selection", optional=names)
        return cls(**{key: None if value is None else _number(value, f"region_selection.{key}")
                      for key, value in section.items()})


def _input_check(section: Any) -> LearnedThresholds:
    """The card's "input_check" {"p_chest_threshold", "p_lateral_threshold"}: the learned input
    check's decision thresholds (chosen by train/ on held-out data)."""
    section = _entries(section, "input_check", optional=("p_chest_threshold", "p_lateral_threshold"))
    return LearnedThresholds(
        p_chest=_number(section.get("p_chest_threshold", LearnedThresholds.p_chest), "input_check.p_chest_threshold"),
        p_lateral=_number(section.get("p_lateral_threshold", LearnedThresholds.p_lateral),
                          "input_check.p_lateral_threshold"))


def _input_check_dict(thresholds: LearnedThresholds) -> dict:
    return {"p_chest_threshold": thresholds.p_chest, "p_lateral_threshold": thresholds.p_lateral}


@dataclass(frozen=True)
class ComponentEntry(_Section):
    """One model of the bundle: its config (rebuilt by the component's config class), its
    safetensors file and that file's sha256."""

    config: dict
    file: str
    sha256: str
    stored_dtype: str | None = None  # "float16": stored in half precision, loaded as float32

    @classmethod
    def from_card(cls, section: Any, name: str) -> "ComponentEntry":
        what = f"components.{name}"
        section = _entries(section, what, required=("config", "file", "sha256"), optional=("stored_dtype",))
        return cls(_object(section["config"], f"{what}.config"), safe_file_name(section["file"], what),
                   _text(section["sha256"], f"{what}.sha256"),
                   None if section.get("stored_dtype") is None else _choice(section["stored_dtype"], ("float16",),
                                                                            f"{what}.stored_dtype"))


@dataclass(frozen=True)
class TokenizerEntry(_Section):
    file: str
    sha256: str
    vocab_size: int | None = None

    @classmethod
    def from_card(cls, section: Any) -> "TokenizerEntry":
        section = _entries(section, "tokenizer", required=("file", "sha256"), optional=("vocab_size",))
        size = section.get("vocab_size")
        return cls(safe_file_name(section["file"], "tokenizer"), _text(section["sha256"], "tokenizer.sha256"),
                   None if size is None else _positive_int(size, "tokenizer.vocab_size"))


@dataclass(frozen=True)
class ParentBundle(_Section):
    """The bundle a fine-tune started from, and the sha256 of its card.json then."""

    bundle_id: str
    folder: str
    card_sha256: str

    @classmethod
    def from_card(cls, section: Any) -> "ParentBundle":
        section = _entries(section, "parent", required=("bundle_id", "folder", "card_sha256"))
        return cls(*(_text(section[key], f"parent.{key}") for key in ("bundle_id", "folder", "card_sha256")))


@dataclass(frozen=True)
class CardRecords(_Section):
    """The unhashed part: where the weights came from and how they scored (free-form JSON objects)."""

    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    finetune_evaluation: dict | None = None  # a fine-tune: parent and child scored on one split

    @classmethod
    def from_card(cls, card: Mapping) -> "CardRecords":
        return cls(**{key: _object(card[key], key) for key in RECORD_KEYS if key in card})


# --- the card -----------------------------------------------------------------------------------
_REQUIRED_KEYS = ("format_version", "bundle_id", "components", "region_names", "finding_names", "thresholds",
                  "preprocessing", "tokenizer", "generation")
_OPTIONAL_KEYS = ("created", "classification", "region_selection", "input_check", "parent", "integrity",
                  *RECORD_KEYS)


@dataclass(frozen=True)
class BundleCard:
    """A parsed and checked card.json. `records` is the unhashed part; the rest defines the models."""

    bundle_id: str
    components: dict[str, ComponentEntry]
    region_names: tuple[str, ...]
    finding_names: tuple[str, ...]
    thresholds: dict[str, float]  # finding -> decision threshold (DEFAULT_THRESHOLD when absent)
    preprocessing: Preprocessing
    tokenizer: TokenizerEntry
    generation: Generation
    classification: Classification = field(default_factory=Classification)
    region_selection: RegionSelection = field(default_factory=RegionSelection)
    input_check: LearnedThresholds | None = None  # None: the input check runs its rules only
    parent: ParentBundle | None = None  # set by a fine-tune
    created: str = ""  # ISO 8601, UTC
    records: CardRecords = field(default_factory=CardRecords)

    def threshold(self, finding: str) -> float:
        return float(self.thresholds.get(finding, DEFAULT_THRESHOLD))

    @classmethod
    def from_dict(cls, card: Any) -> "BundleCard":
        """Check a card's structure and types (not its checksum). Raises BundleError."""
        if not isinstance(card, dict):
            raise BundleCorruptError("The model bundle's card is damaged.", "card.json is not an object")
        if card.get("format_version") != FORMAT_VERSION:
            raise BundleVersionError(
                "This model bundle was made for a different version of RRG Desk.",
                f"format_version {card.get('format_version')!r}, expected {FORMAT_VERSION}")
        missing = [key for key in _REQUIRED_KEYS if key not in card]
        if missing:
            raise BundleCorruptError("The model bundle's card is incomplete.", f"missing {missing}")
        unknown = sorted(set(card) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
        if unknown:
            raise BundleIncompatibleError(
                f"The model bundle's card has entries this version of RRG Desk does not know: {', '.join(unknown)}.",
                f"unknown card keys {unknown}")
        try:
            parsed = cls._parse(card)
        except (ValueError, TypeError) as exc:
            raise BundleCorruptError("The model bundle's card is damaged.", str(exc)) from exc
        parsed._check_consistency()
        return parsed

    @classmethod
    def _parse(cls, card: dict) -> "BundleCard":
        components = _entries(card["components"], "components", required=COMPONENTS)
        optional = {"classification": Classification.from_card, "region_selection": RegionSelection.from_card,
                    "input_check": _input_check, "parent": ParentBundle.from_card}
        return cls(
            bundle_id=_text(card["bundle_id"], "bundle_id"),
            components={name: ComponentEntry.from_card(components[name], name) for name in COMPONENTS},
            region_names=_names(card["region_names"], "region_names"),
            finding_names=_names(card["finding_names"], "finding_names"),
            thresholds={name: _number(value, f"thresholds[{name}]")
                        for name, value in _object(card["thresholds"], "thresholds").items()},
            preprocessing=Preprocessing.from_card(card["preprocessing"]),
            tokenizer=TokenizerEntry.from_card(card["tokenizer"]),
            generation=Generation.from_card(card["generation"]),
            created=_text(card.get("created", ""), "created"),
            records=CardRecords.from_card(card),
            **{key: parse(card[key]) for key, parse in optional.items() if key in card})

    def _check_consistency(self) -> None:
        """What the card says about the models must agree with itself (the configs are checked
        against the code when the bundle loads: rrg_desk.models.bundle)."""
        problems = []
        unknown = sorted(set(self.thresholds) - set(self.finding_names))
        if unknown:
            problems.append(f"thresholds for unknown findings {unknown}")
        unmeasurable = sorted(set(self.classification.measurements) - set(self.finding_names))
        if unmeasurable:
            problems.append(f"measurements for unknown findings {unmeasurable}")
        detector_size = self.components["detector"].config.get("image_size")
        if detector_size is not None and detector_size != self.preprocessing.image_size:
            problems.append(f"the detector takes {detector_size} px images, the preprocessing makes "
                            f"{self.preprocessing.image_size} px")
        if problems:
            raise BundleIncompatibleError("The model bundle's card is inconsistent.", "; ".join(problems))

    def to_dict(self) -> dict:
        """The card as JSON values (without "integrity": save_bundle adds the checksum)."""
        card = {
            "format_version": FORMAT_VERSION, "bundle_id": self.bundle_id, "created": self.created,
            "components": {name: entry.to_dict() for name, entry in self.components.items()},
            "region_names": list(self.region_names), "finding_names": list(self.finding_names),
            "thresholds": dict(self.thresholds), "preprocessing": self.preprocessing.to_dict(),
            "tokenizer": self.tokenizer.to_dict(), "generation": self.generation.to_dict(),
            "classification": self.classification.to_dict(), "region_selection": self.region_selection.to_dict(),
        }
        if self.input_check is not None:
            card["input_check"] = _input_check_dict(self.input_check)
        if self.parent is not None:
            card["parent"] = self.parent.to_dict()
        return card | self.records.to_dict()


def card_digest(card: Mapping) -> str:
    """sha256 of the card's model-defining part (all but the records and the checksum itself),
    as JSON with sorted keys: the value of card["integrity"]["sha256"]."""
    defining = {k: v for k, v in card.items() if k not in RECORD_KEYS and k != "integrity"}
    return hashlib.sha256(json.dumps(defining, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _load_json(folder: Path) -> dict:
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise BundleNotFoundError(f"No model bundle was found at {folder}: it has no {CARD_FILE}.",
                                  f"missing {CARD_FILE}")
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, OSError) as exc:
        raise BundleCorruptError("The model bundle's card is damaged (not valid JSON).", str(exc)) from exc


def _verified(folder: Path, raw: Any) -> BundleCard:
    card = BundleCard.from_dict(raw)
    integrity = raw.get("integrity")
    if integrity is None:
        logger.warning("model bundle %s has no card checksum (made by an older version)", folder)
    elif not isinstance(integrity, dict) or integrity.get("sha256") != card_digest(raw):
        raise BundleHashMismatchError("The model bundle's card was changed after the bundle was made; "
                                      "it cannot be trusted.", "card integrity sha256 mismatch")
    return card


def read_card(folder: str | Path) -> BundleCard:
    """Parse and check card.json and its checksum (no weights are read). Raises BundleError."""
    folder = Path(folder)
    return _verified(folder, _load_json(folder))


def update_records(folder: str | Path, *, training: dict | None = None, metrics: dict | None = None,
                   finetune_evaluation: dict | None = None) -> BundleCard:
    """Replace the given records of a bundle's card (evaluation after export). The model-defining
    part, and with it the checksum, the weights and their hashes, stays exactly as it is."""
    folder = Path(folder)
    raw = _load_json(folder)
    _verified(folder, raw)  # never rewrite a card that would not load
    raw.update(_without_none({"training": training, "metrics": metrics, "finetune_evaluation": finetune_evaluation}))
    card = _verified(folder, raw)  # the records must be JSON objects too
    write_text_atomic(folder / CARD_FILE, json.dumps(raw, indent=2), shared=True)  # readers never see half a card
    return card
