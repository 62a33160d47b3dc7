"""The model card schema (rrg_desk.models.card): the shipped card reads and keeps its checksum,
one default per key, strict sections, records updated without touching the model-defining
part, and card and request modules usable without torch."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrg_desk.imaging.input_check import LearnedThresholds
from rrg_desk.models.card import (
    CARD_FILE, DEFAULT_CLASSIFICATION_MODE, BundleCard, BundleCorruptError,
    BundleHashMismatchError, BundleIncompatibleError, BundleNotFoundError, Classification, Preprocessing,
    card_digest, read_card, update_records,
)
from rrg_desk.paths import default_bundle_dir
from rrg_desk.thresholds import DEFAULT_THRESHOLD

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shipped_card() -> dict:
    return json.loads((default_bundle_dir() / CARD_FILE).read_text(encoding="utf-8"))


@pytest.fixture
def card_folder(tmp_path) -> Path:
    """A copy of the shipped bundle's card alone (the weights are not needed to read it)."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    shutil.copy(default_bundle_dir() / CARD_FILE, folder / CARD_FILE)
    return folder


def _write(folder: Path, card: dict) -> None:
    """An edited card with a matching checksum, so the check under test is the one that fires."""
    card["integrity"] = {"sha256": card_digest(card)}
    (folder / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")


def test_the_shipped_card_reads_and_round_trips_to_the_same_checksum(shipped_card):
    card = read_card(default_bundle_dir())
    assert card.bundle_id == shipped_card["bundle_id"]
    assert card.preprocessing == Preprocessing(512, 0.5, 0.25)
    assert card.classification.mode == shipped_card["classification"]["mode"] == "ensemble"
    assert card.generation.clues == "thresholded"
    learned = shipped_card["input_check"]  # refitted with every calibration
    assert card.input_check == LearnedThresholds(p_chest=learned["p_chest_threshold"],
                                                 p_lateral=learned["p_lateral_threshold"])
    assert 0.0 < card.input_check.p_chest < 1.0
    assert card.components["classifier"].stored_dtype == "float16"
    written = card.to_dict()
    assert written == {k: v for k, v in shipped_card.items() if k != "integrity"}
    assert card_digest(written) == shipped_card["integrity"]["sha256"]


def test_every_key_has_one_default(shipped_card):
    for key in ("classification", "region_selection", "input_check"):
        del shipped_card[key]
    shipped_card["generation"] = {"max_len": 48}
    shipped_card["thresholds"].pop("Edema")
    card = BundleCard.from_dict(shipped_card)
    assert card.classification == Classification(DEFAULT_CLASSIFICATION_MODE, {})
    assert card.region_selection.threshold == DEFAULT_THRESHOLD
    assert card.input_check is None  # rules only
    assert (card.generation.beam_size, card.generation.image_tokens_from, card.generation.clues) == \
        (1, "detector", "probabilities")
    assert card.threshold("Edema") == DEFAULT_THRESHOLD


def test_an_unknown_top_level_key_is_refused_in_words(card_folder, shipped_card):
    _write(card_folder, shipped_card | {"colour": "red"})
    with pytest.raises(BundleIncompatibleError) as info:
        read_card(card_folder)
    assert "does not know: colour" in info.value.user_message


@pytest.mark.parametrize(("section", "value"), [
    ("classification", {"mode": "majority"}),
    ("classification", {"mode": "head", "calibration": {"Edema": {"scale": "big"}}}),
    ("classification", {"mode": "head", "calibration": {"Edema": {"scale": 1.0, "offset": 0.0}}}),
    ("classification", {"mode": "head", "temperature": 2.0}),
    ("region_selection", {"threshold": "half"}),
    ("region_selection", {"threshold": 0.5, "top_k": 3}),
    ("input_check", {"p_chest_threshold": None}),
    ("generation", {"max_len": 48, "clues": "logits"}),
    ("preprocessing", {"image_size": 512, "mean": 0.5, "std": 0.0}),
    ("preprocessing", {"image_size": 512, "mean": [0.5], "std": 0.25}),
])
def test_sections_are_validated(card_folder, shipped_card, section, value):
    _write(card_folder, shipped_card | {section: value})
    with pytest.raises(BundleCorruptError, match=section):
        read_card(card_folder)


def test_the_detector_image_size_must_match_the_preprocessing(card_folder, shipped_card):
    shipped_card["preprocessing"]["image_size"] = 256
    _write(card_folder, shipped_card)
    with pytest.raises(BundleIncompatibleError, match="512 px images, the preprocessing makes 256"):
        read_card(card_folder)


def test_a_missing_card_names_the_file(tmp_path):
    with pytest.raises(BundleNotFoundError) as info:
        read_card(tmp_path)
    assert CARD_FILE in info.value.user_message


def test_records_are_updated_without_touching_the_checksum(card_folder, shipped_card):
    card = update_records(card_folder, metrics={"split": "test"}, finetune_evaluation={"parent": {}})
    assert card.records.metrics == {"split": "test"} and card.records.finetune_evaluation == {"parent": {}}
    written = json.loads((card_folder / CARD_FILE).read_text())
    assert written["integrity"] == shipped_card["integrity"]
    assert written["training"] == shipped_card["training"]  # records not named stay as they were
    assert read_card(card_folder).records.metrics == {"split": "test"}
    assert sorted(p.name for p in card_folder.iterdir()) == [CARD_FILE]  # no staging file left


def test_records_of_a_card_that_does_not_verify_are_not_written(card_folder, shipped_card):
    shipped_card["preprocessing"]["mean"] = 0.4  # changed after export, checksum not renewed
    (card_folder / CARD_FILE).write_text(json.dumps(shipped_card))
    with pytest.raises(BundleHashMismatchError):
        update_records(card_folder, metrics={"split": "test"})
    assert json.loads((card_folder / CARD_FILE).read_text())["metrics"] == shipped_card["metrics"]


def test_card_and_request_modules_work_without_torch():
    """Listing bundles, the settings dialog and building a draft request never need torch
    (checked in a fresh process where importing torch fails)."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from rrg_desk.models.card import read_card\n"
        "from rrg_desk.inference.request import CancelToken, DraftCancelled, DraftError, DraftSettings\n"
        "from rrg_desk.app.bundles import bundle_problem\n"
        "from rrg_desk.app.settings import AppSettings\n"
        "from rrg_desk.paths import default_bundle_dir\n"
        "card = read_card(default_bundle_dir())\n"
        "settings = AppSettings(beam_size=3).draft_settings(draft_anyway=True)\n"
        "token = CancelToken(); token.cancel()\n"
        "assert settings == DraftSettings(beam_size=3, draft_anyway=True) and token.cancelled\n"
        "assert bundle_problem(default_bundle_dir()) == ''\n"
        "assert DraftError('No image.').user_message == 'No image.'\n"
        "print(card.bundle_id, card.preprocessing.image_size)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [read_card(default_bundle_dir()).bundle_id, "512"]
