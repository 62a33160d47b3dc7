"""Is this a chest radiograph? Rules that run on every image before any model drafts from it.

    check_image(image, scorer=None, thresholds=None) -> InputCheckResult
    result.passed / result.refusals / result.raise_if_refused()

The rules use only the DICOM header and the pixels (no torch, no Qt):
- header: Modality, Body Part Examined and SOP Class of a DICOM file (PNG/JPEG carry none);
- size: the shortest side must be at least MIN_SIDE_PX;
- shape: the long side at most MAX_ASPECT_RATIO times the short side;
- content, measured on the windowed image the models see: not blank or near-uniform, more
  than a handful of grey levels (masks, drawings), and not noise (neighbouring pixels of a
  radiograph are strongly correlated, those of noise are not).

Each refusal is a typed exception with a one-line `user_message` worded for a radiologist,
who may still draft anyway (the app audits that choice).

What the rules cannot see (a greyscale photograph, a radiograph of a knee without a header)
is left to a learned score: a `LearnedScorer` maps an image to `LearnedScores(p_chest,
p_lateral)`, and `LearnedThresholds` holds the decision thresholds (the model card's
"input_check" section, read by rrg_desk.models.card). With a scorer, an image whose p_chest
is below the threshold is refused, and an image whose header names no view gets its view
from p_lateral.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rrg_desk.errors import UserFacingError
from rrg_desk.imaging.errors import file_message
from rrg_desk.imaging.types import ViewPosition, XrayImage
from rrg_desk.thresholds import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)

# The models read a 512 px square; at 128 px a 35-43 cm chest film is ~3 mm per pixel, about
# the coarsest at which ribs, lung markings, lines and the costophrenic angles still show.
# Below it (icons, thumbnails) the models would upsample more than 4x and describe blur.
MIN_SIDE_PX = 128
# Chest films are 35 x 43 cm (1.2:1); the most elongated real image at hand is a 2.2:1 crop
# of a PA film (covid_cxr). Stitched spine or leg films, scanned labels and report banners
# are longer strips than 2.5:1.
MAX_ASPECT_RATIO = 2.5
# Content statistics, on the image windowed to [0, 1] as the models see it. The dimmest real
# radiographs at hand (five JSRT exports squeezed into grey levels 237-255) have a standard
# deviation of 0.012 and 17 grey levels, so the limits below sit well under them.
MIN_CONTRAST_STD = 0.005  # ~1 grey level of 255: a blank or flat field
MAX_SINGLE_VALUE_FRACTION = 0.95  # one grey value covers (nearly) everything
MIN_GREY_LEVELS = 8  # of 256: masks, line drawings, binary images
MIN_NEIGHBOUR_CORRELATION = 0.3  # radiographs ~0.9+, white noise ~0
_ANALYSIS_SIDE = 256  # content statistics on a block-averaged copy about this size
_LEVEL_SAMPLES = 512  # grey levels counted on a strided sample about this size

# Modalities that are projection radiographs of some kind (DR is not a DICOM term, but some
# vendors write it); OT (other) is what many exports and secondary captures carry.
ACCEPTED_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "OT"})
# Defined DICOM modalities that are certainly not a chest radiograph, worded for the message.
REFUSED_MODALITIES = {
    "CT": "a CT image", "MR": "an MR image", "NM": "a nuclear medicine image", "PT": "a PET image",
    "US": "an ultrasound image", "MG": "a mammogram", "XA": "an angiography image",
    "RF": "a fluoroscopy image", "IO": "an intra-oral dental radiograph", "PX": "a panoramic dental radiograph",
    "BMD": "a bone densitometry image", "RTIMAGE": "a radiotherapy portal image", "RTDOSE": "a radiotherapy dose grid",
    "RTSTRUCT": "a radiotherapy structure set", "RTPLAN": "a radiotherapy plan", "RTRECORD": "a radiotherapy record",
    "SEG": "a segmentation", "SR": "a structured report", "KO": "a key object selection", "PR": "a presentation state",
    "DOC": "a document", "REG": "a registration", "FID": "a fiducials object", "PLAN": "a plan",
    "XC": "an external-camera photograph", "OP": "an ophthalmic photograph", "OPT": "an ophthalmic tomogram",
    "OCT": "an OCT image", "IVOCT": "an intravascular OCT image", "IVUS": "an intravascular ultrasound image",
    "ES": "an endoscopy image", "GM": "a general microscopy image", "SM": "a slide microscopy image",
    "ECG": "an ECG", "HD": "a haemodynamic waveform", "EPS": "an electrophysiology recording",
    "AU": "an audio recording", "DG": "a diaphanography image", "TG": "a thermography image",
    "LS": "a laser surface scan", "M3D": "a 3D model", "OSS": "an optical surface scan", "AR": "an autorefraction",
}
# Body Part Examined is free text in practice: refuse only when it names another part and
# nothing of the chest; anything unknown ("PORTABLE", "OTHER") goes on.
_CHEST_WORDS = ("CHEST", "THORAX", "LUNG", "HEART", "RIB", "TORAX", "TORACE", "BRUST", "POITRINE", "TORSO")
_OTHER_BODY_PARTS = frozenset({
    "SKULL", "HEAD", "BRAIN", "FACE", "ORBIT", "SINUS", "NOSE", "EAR", "JAW", "TMJ", "NECK", "CSPINE", "TSPINE",
    "LSPINE", "SSPINE", "SPINE", "COCCYX", "SACRUM", "ABDOMEN", "PELVIS", "HIP", "SHOULDER", "CLAVICLE",
    "SCAPULA", "HUMERUS", "ELBOW", "FOREARM", "RADIUS", "ULNA", "WRIST", "HAND", "FINGER", "THUMB", "ARM",
    "FEMUR", "KNEE", "PATELLA", "LEG", "TIBIA", "FIBULA", "ANKLE", "FOOT", "HEEL", "CALCANEUS", "TOE",
    "EXTREMITY", "BREAST", "KIDNEY", "LIVER", "BLADDER", "PROSTATE", "UTERUS", "DENTAL", "TEETH",
})
# SOP classes that hold a projection radiograph (or a capture of one). Any other registered
# Storage class (CT, RT Dose, Segmentation, SR, ...) is refused; private ones go on.
ACCEPTED_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image - For Processing
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte Secondary Capture (one frame)
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word Secondary Capture (one frame)
    "1.2.840.10008.5.1.1.29",  # Hardcopy Grayscale Image (a digitised film)
})


# --- refusals --------------------------------------------------------------------------------
class InputRefusal(UserFacingError):
    """Base class: the image can be shown, but it is not a chest radiograph the models can
    draft from. `user_message` is one line for the UI and the CLI (same shape as the
    readers' ImageReadError messages)."""

    reason = "this does not look like a chest radiograph."

    def __init__(self, path: str | Path | None = None, detail: str = "", reason: str = "") -> None:
        self.path = Path(path) if path is not None else None
        if reason:
            self.reason = reason
        super().__init__(file_message(self.path, self.reason, detail, unnamed="The image"), detail)


class WrongModalityError(InputRefusal):
    reason = "the DICOM header says this is not a radiograph."


class WrongBodyPartError(InputRefusal):
    reason = "the DICOM header says another body part was examined, not the chest."


class NotARadiographObjectError(InputRefusal):
    reason = "this DICOM object is not a radiograph."


class ImageTooSmallError(InputRefusal):
    reason = (f"the image is too small to read; a chest radiograph needs at least {MIN_SIDE_PX} pixels "
              "on its shortest side.")


class ExtremeAspectRatioError(InputRefusal):
    reason = f"the image is far too elongated for a chest radiograph (at most {MAX_ASPECT_RATIO:g}:1)."


class NearUniformImageError(InputRefusal):
    reason = "the image is blank or almost uniform: there is no anatomy to read."


class TooFewGreyLevelsError(InputRefusal):
    reason = "the image has only a few grey levels: a mask, drawing or binary image, not a radiograph."


class NoiseImageError(InputRefusal):
    reason = "the image looks like random noise, with no anatomical structure."


class NotChestByModelError(InputRefusal):
    reason = "the image does not look like a chest radiograph to the model."


# --- the learned hook ------------------------------------------------------------------------
@dataclass(frozen=True)
class LearnedScores:
    """A learned model's view of one image (a head on the classifier's features)."""

    p_chest: float | None = None  # probability this is a chest radiograph (in distribution)
    p_lateral: float | None = None  # probability of a lateral projection (else frontal)


LearnedScorer = Callable[[XrayImage], LearnedScores]


@dataclass(frozen=True)
class LearnedThresholds:
    """Decision thresholds for LearnedScores, from the model card's "input_check" section:
    {"p_chest_threshold": t, "p_lateral_threshold": u} (chosen by train/ on held-out data)."""

    p_chest: float = DEFAULT_THRESHOLD  # refuse below
    p_lateral: float = DEFAULT_THRESHOLD  # lateral at or above


# --- the result --------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputCheckResult:
    refusals: tuple[InputRefusal, ...] = ()
    view: ViewPosition = ViewPosition.UNKNOWN  # the header's, else the learned decision
    view_source: str = "unknown"  # "header", "model" or "unknown"
    measurements: dict[str, float] = field(default_factory=dict)  # the numbers behind the rules
    scores: LearnedScores | None = None

    @property
    def passed(self) -> bool:
        return not self.refusals

    @property
    def user_message(self) -> str:
        return self.refusals[0].user_message if self.refusals else ""

    def raise_if_refused(self) -> None:
        if self.refusals:
            raise self.refusals[0]


def check_image(image: XrayImage, scorer: LearnedScorer | None = None,
                thresholds: LearnedThresholds | None = None) -> InputCheckResult:
    """Every rule on one image; all refusals are collected, the first is the one to show."""
    path = image.source_path
    refusals = list(header_refusals(image))
    measurements = {"width": float(image.width), "height": float(image.height)}
    too_small = min(image.height, image.width) < MIN_SIDE_PX
    if too_small:
        refusals.append(ImageTooSmallError(path, f"{image.width} x {image.height} pixels"))
    else:
        refusals += shape_refusals(image)
        content = content_measurements(image)
        measurements.update(content)
        refusals += content_refusals(content, path)
    view, view_source = _header_view(image)
    scores = None
    if scorer is not None and not too_small:
        scores = scorer(image)
        refusals += learned_refusals(scores, thresholds, path)
        if view_source == "unknown" and scores.p_lateral is not None and thresholds is not None:
            view = ViewPosition.LATERAL if scores.p_lateral >= thresholds.p_lateral else ViewPosition.UNKNOWN
            view_source = "model"
    return InputCheckResult(tuple(refusals), view, view_source, measurements, scores)


def _header_view(image: XrayImage) -> tuple[ViewPosition, str]:
    if image.view is ViewPosition.UNKNOWN:
        return ViewPosition.UNKNOWN, "unknown"
    return image.view, "header"


# --- header rules ------------------------------------------------------------------------------
def header_refusals(image: XrayImage) -> list[InputRefusal]:
    """Modality, Body Part Examined and SOP Class; only DICOM files carry them."""
    if image.source_format != "DICOM":
        return []
    path, refusals = image.source_path, []
    modality = image.modality.strip().upper()
    if modality in REFUSED_MODALITIES:
        refusals.append(WrongModalityError(
            path, f"Modality {modality}",
            f"the DICOM header says this is {REFUSED_MODALITIES[modality]}, not a chest radiograph."))
    elif modality and modality not in ACCEPTED_MODALITIES:
        log.info("%s: unfamiliar modality %r; checking the pixels only", path, modality)
    body_part = image.metadata.get("BodyPartExamined", "").strip().upper()
    if body_part and _names_another_body_part(body_part):
        refusals.append(WrongBodyPartError(path, f"Body Part Examined {body_part}"))
    sop_class = _refused_sop_class(image.metadata.get("SOPClassUID", ""))
    if sop_class:
        refusals.append(NotARadiographObjectError(path, f"SOP class {sop_class}"))
    return refusals


def _names_another_body_part(body_part: str) -> bool:
    if any(word in body_part for word in _CHEST_WORDS):
        return False
    words = {w for w in "".join(c if c.isalpha() else " " for c in body_part).split()}
    return bool(words & _OTHER_BODY_PARTS)


def _refused_sop_class(uid: str) -> str:
    """The readable name of a registered non-radiograph Storage SOP class, else ""."""
    uid = uid.strip()
    if not uid or uid in ACCEPTED_SOP_CLASSES:
        return ""
    from pydicom.uid import UID_dictionary  # the imaging layer already reads DICOM with pydicom

    entry = UID_dictionary.get(uid)
    if entry is None or entry[1] != "SOP Class" or "Storage" not in entry[0]:
        return ""  # private or unknown: the pixels decide
    return entry[0].replace(" Storage", "").replace(" SOP Class", "").strip()


# --- pixel rules -------------------------------------------------------------------------------
def shape_refusals(image: XrayImage) -> list[InputRefusal]:
    long_side, short_side = max(image.height, image.width), min(image.height, image.width)
    ratio = long_side / max(short_side, 1)
    if ratio > MAX_ASPECT_RATIO:
        return [ExtremeAspectRatioError(image.source_path, f"{image.width} x {image.height} pixels, "
                                                           f"{ratio:.1f}:1")]
    return []


def content_measurements(image: XrayImage) -> dict[str, float]:
    """Contrast, dominant-value fraction, grey levels and neighbour correlation of the image
    windowed to [0, 1] (its display window, as the pipeline feeds the models)."""
    unit = _windowed(image)
    levels = _grey_levels(unit)
    small = _block_mean(unit, _ANALYSIS_SIDE)
    return {"contrast_std": float(small.std()), "single_value_fraction": float(levels.max() / levels.sum()),
            "grey_levels": float(np.count_nonzero(levels)), "neighbour_correlation": _neighbour_correlation(small)}


def content_refusals(measurements: Mapping[str, float], path: Path | None) -> list[InputRefusal]:
    """At most one content refusal: the most basic one that applies."""
    if measurements["contrast_std"] < MIN_CONTRAST_STD:
        return [NearUniformImageError(path)]
    if measurements["single_value_fraction"] > MAX_SINGLE_VALUE_FRACTION:
        return [NearUniformImageError(path, f"{measurements['single_value_fraction']:.0%} of the pixels "
                                            "have one grey value")]
    if measurements["grey_levels"] < MIN_GREY_LEVELS:
        return [TooFewGreyLevelsError(path, f"{int(measurements['grey_levels'])} grey levels")]
    if measurements["neighbour_correlation"] < MIN_NEIGHBOUR_CORRELATION:
        return [NoiseImageError(path)]
    return []


def learned_refusals(scores: LearnedScores, thresholds: LearnedThresholds | None,
                     path: Path | None) -> list[InputRefusal]:
    if thresholds is None or scores.p_chest is None or scores.p_chest >= thresholds.p_chest:
        return []
    return [NotChestByModelError(path, f"score {scores.p_chest:.2f}, needs {thresholds.p_chest:.2f}")]


def _windowed(image: XrayImage) -> np.ndarray:
    window = image.display_window()
    low = window.center - window.width / 2.0
    unit = (image.pixels.astype(np.float32) - np.float32(low)) / np.float32(window.width)
    return np.clip(np.nan_to_num(unit), 0.0, 1.0)


def _grey_levels(unit: np.ndarray) -> np.ndarray:
    """Histogram over 256 levels of a strided sample (block means would invent levels)."""
    step = max(1, max(unit.shape) // _LEVEL_SAMPLES)
    quantised = np.rint(unit[::step, ::step] * 255.0).astype(np.int64)
    return np.bincount(quantised.ravel(), minlength=256)


def _block_mean(unit: np.ndarray, side: int) -> np.ndarray:
    """Average k x k blocks so the shorter side is about `side` (noise stays uncorrelated)."""
    k = max(1, min(unit.shape) // side)
    h, w = (unit.shape[0] // k) * k, (unit.shape[1] // k) * k
    return unit[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3), dtype=np.float64)


def _neighbour_correlation(values: np.ndarray) -> float:
    """Mean Pearson correlation of horizontally and vertically adjacent pixels."""
    pairs = ((values[:, :-1], values[:, 1:]), (values[:-1, :], values[1:, :]))
    correlations = []
    for a, b in pairs:
        a, b = a - a.mean(), b - b.mean()
        denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
        correlations.append(float((a * b).sum()) / denominator if denominator > 0 else 1.0)
    return float(np.mean(correlations))

