"""Model bundle: exact round trip, every refusal, atomic saves, and no unpickling anywhere."""
from __future__ import annotations

import ast
import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from rrg_desk.models import bundle as bundle_module
from rrg_desk.models.bundle import build_random_bundle, load_bundle, save_bundle, sha256_file
from rrg_desk.models.card import (
    BundleCorruptError, BundleError, BundleFileMissingError, BundleHashMismatchError, BundleIncompatibleError,
    BundleNotFoundError, BundleVersionError, card_digest,
)
from rrg_desk.models.clip_classifier import ClipClassifier, ClipClassifierConfig
from rrg_desk.models.detector import DetectorConfig, RegionDetector
from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.models.generator import GeneratorConfig, RegionSentenceGenerator
from rrg_desk.models.regions import REGION_NAMES
from rrg_desk.models.tokenizer import ReportTokenizer

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["The heart size is normal.", "No pleural effusion or pneumothorax.", "Left lower lobe opacity."]
PREPROCESSING = {"image_size": 64, "mean": 0.45, "std": 0.27}


def _models(seed: int = 0, tokenizer: ReportTokenizer | None = None):
    tokenizer = tokenizer or ReportTokenizer.train_from_texts(TEXTS, vocab_size=100, min_frequency=1)
    torch.manual_seed(seed)
    detector = RegionDetector(DetectorConfig.tiny())
    ids = dict(pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
    classifier = ClipClassifier(ClipClassifierConfig.tiny(vocab_size=tokenizer.vocab_size, **ids))
    generator = RegionSentenceGenerator(GeneratorConfig.tiny(
        vocab_size=tokenizer.vocab_size, bos_id=tokenizer.bos_id, region_feature_dim=detector.config.feature_dim,
        image_token_dim=detector.config.image_token_dim, max_image_tokens=detector.config.num_image_tokens, **ids))
    return detector, classifier, generator, tokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(folder, models) of one tiny bundle; tests that damage it work on a copy."""
    detector, classifier, generator, tokenizer = _models()
    folder = save_bundle(tmp_path_factory.mktemp("bundles") / "tiny", detector=detector, classifier=classifier,
                         generator=generator, tokenizer=tokenizer,
                         card_extra={"preprocessing": PREPROCESSING, "bundle_id": "test-bundle",
                                     "thresholds": {"Pneumothorax": 0.3}, "metrics": {"bleu4": 0.1}})
    return folder, (detector.eval(), classifier.eval(), generator.eval(), tokenizer)


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    return Path(shutil.copytree(saved[0], tmp_path / "copy"))


def _card(folder: Path) -> dict:
    return json.loads((folder / "card.json").read_text())


def _write_card(folder: Path, card: dict) -> None:
    """Write an edited card with a matching checksum, so the check under test is the one that fires."""
    card["integrity"] = {"sha256": card_digest(card)}
    (folder / "card.json").write_text(json.dumps(card))


def _outputs(detector, classifier, generator, tokenizer):
    torch.manual_seed(7)
    images = torch.randn(1, 1, 64, 64)
    ids = torch.tensor([tokenizer.encode("no pleural effusion .", max_len=12)])
    with torch.inference_mode():
        detections = detector.detect(images)
        features = detections.features[0, :3]
        logits = generator(ids.expand(3, -1), torch.ones(3, ids.shape[1]), region_features=features,
                           region_ids=torch.arange(3), image_tokens=detections.image_tokens,
                           finding_probs=torch.full((1, len(FINDING_NAMES)), 0.3)).logits
        return [detections.boxes, detections.features, detections.selector_logits,
                classifier.encode_image(images), classifier.encode_text(ids), logits]


def test_round_trip_gives_identical_outputs(saved):
    folder, models = saved
    bundle = load_bundle(folder)
    assert not any(m.training for m in (bundle.detector, bundle.classifier, bundle.generator))
    assert bundle.tokenizer.to_json() == models[3].to_json()
    before = _outputs(*models)
    after = _outputs(bundle.detector, bundle.classifier, bundle.generator, bundle.tokenizer)
    for a, b in zip(before, after):
        assert torch.equal(a, b)
    # tied GPT-2 weights survive the duplicate-free safetensors file
    gpt = bundle.generator.gpt
    assert gpt.lm_head.weight.data_ptr() == gpt.transformer.wte.weight.data_ptr()


def test_card_describes_the_bundle(saved):
    folder, _ = saved
    card = _card(folder)
    assert card["format_version"] == 1 and card["bundle_id"] == "test-bundle"
    assert card["region_names"] == list(REGION_NAMES) and card["finding_names"] == list(FINDING_NAMES)
    assert card["preprocessing"] == PREPROCESSING
    assert card["thresholds"]["Pneumothorax"] == 0.3 and card["thresholds"]["Edema"] == 0.5
    assert card["metrics"] == {"bleu4": 0.1} and card["generation"]["image_tokens_from"] == "detector"
    for component in ("detector", "classifier", "generator"):
        entry = card["components"][component]
        assert entry["sha256"] == hashlib.sha256((folder / entry["file"]).read_bytes()).hexdigest()
    assert DetectorConfig.from_dict(card["components"]["detector"]["config"]) == DetectorConfig.tiny()
    assert card["tokenizer"]["sha256"] == sha256_file(folder / "tokenizer.json")
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "classifier.safetensors",
                                                        "detector.safetensors", "generator.safetensors",
                                                        "tokenizer.json"]


def test_missing_folder_or_card(tmp_path, copy):
    with pytest.raises(BundleNotFoundError):
        load_bundle(tmp_path / "nowhere")
    (copy / "card.json").unlink()
    with pytest.raises(BundleNotFoundError) as info:
        load_bundle(copy)
    assert "No model bundle" in info.value.user_message


def test_missing_weight_file(copy):
    (copy / "generator.safetensors").unlink()
    with pytest.raises(BundleFileMissingError, match="generator.safetensors"):
        load_bundle(copy)


@pytest.mark.parametrize("file_name", ["detector.safetensors", "tokenizer.json"])
def test_one_changed_byte_is_a_hash_mismatch(copy, file_name):
    data = bytearray((copy / file_name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / file_name).write_bytes(bytes(data))
    with pytest.raises(BundleHashMismatchError) as info:
        load_bundle(copy)
    assert file_name in info.value.user_message


def test_invalid_json_and_incomplete_cards(copy):
    (copy / "card.json").write_text('{"format_version": 1, "components": ')
    with pytest.raises(BundleCorruptError, match="not valid JSON"):
        load_bundle(copy)
    (copy / "card.json").write_text('[1, 2]')
    with pytest.raises(BundleCorruptError):
        load_bundle(copy)
    _write_card(copy, {"format_version": 1, "bundle_id": "x"})
    with pytest.raises(BundleCorruptError, match="incomplete"):
        load_bundle(copy)


def test_unknown_format_version(saved, copy):
    _write_card(copy, _card(saved[0]) | {"format_version": 2})
    with pytest.raises(BundleVersionError):
        load_bundle(copy)


def test_card_cannot_point_outside_the_bundle(saved, copy):
    card = _card(saved[0])
    card["components"]["detector"]["file"] = "../detector.safetensors"
    _write_card(copy, card)
    with pytest.raises(BundleCorruptError):
        load_bundle(copy)


def _replace_weights(folder: Path, component: str, tensors: dict) -> None:
    path = folder / f"{component}.safetensors"
    save_file(tensors, str(path))
    card = _card(folder)
    card["components"][component]["sha256"] = sha256_file(path)
    _write_card(folder, card)


def test_weights_of_another_shape_are_refused(copy):
    torch.manual_seed(0)
    wider = RegionDetector(DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {"heads_hidden": 24}))
    _replace_weights(copy, "detector", {k: v.contiguous() for k, v in wider.state_dict().items()})
    with pytest.raises(BundleIncompatibleError, match="do not match its configuration"):
        load_bundle(copy)


def test_weights_with_a_missing_tensor_are_refused(saved, copy):
    state = {k: v.contiguous() for k, v in saved[1][0].state_dict().items() if k != "prior_boxes"}
    _replace_weights(copy, "detector", state)
    with pytest.raises(BundleIncompatibleError, match="prior_boxes"):
        load_bundle(copy)


@pytest.mark.parametrize("change", ["region_names", "finding_names", "detector_regions", "vocab", "feature_dim",
                                    "unknown_config_key", "image_token_source"])
def test_inconsistent_cards_are_refused(saved, copy, change):
    card = _card(saved[0])
    components = card["components"]
    if change == "region_names":
        card["region_names"] = list(reversed(card["region_names"]))
    elif change == "finding_names":
        card["finding_names"] = card["finding_names"][:-1]
    elif change == "detector_regions":
        components["detector"]["config"]["region_names"] = ["heart", "whole_image"]
    elif change == "vocab":
        components["generator"]["config"]["vocab_size"] += 1
    elif change == "feature_dim":
        components["generator"]["config"]["region_feature_dim"] += 1
    elif change == "unknown_config_key":
        components["classifier"]["config"]["colour"] = "red"
    else:
        card["generation"]["image_tokens_from"] = "classifier"
    _write_card(copy, card)
    with pytest.raises(BundleIncompatibleError) as info:
        load_bundle(copy)
    assert info.value.user_message and isinstance(info.value, BundleError)


def test_resaving_replaces_the_bundle_atomically(saved, tmp_path):
    folder = Path(shutil.copytree(saved[0], tmp_path / "bundle"))
    detector, classifier, generator, tokenizer = _models(seed=3)
    save_bundle(folder, detector=detector, classifier=classifier, generator=generator, tokenizer=tokenizer,
                card_extra={"preprocessing": PREPROCESSING, "bundle_id": "second"})
    assert load_bundle(folder).bundle_id == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no staging or retired folders left


def test_a_failed_save_leaves_the_old_bundle_intact(saved, tmp_path):
    folder = Path(shutil.copytree(saved[0], tmp_path / "bundle"))
    detector, classifier, generator, _ = _models(seed=3)

    class BrokenTokenizer:
        def to_json(self):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_bundle(folder, detector=detector, classifier=classifier, generator=generator,
                    tokenizer=BrokenTokenizer(), card_extra={"preprocessing": PREPROCESSING})
    assert load_bundle(folder).bundle_id == "test-bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_save_refuses_bad_requests(saved, tmp_path):
    detector, classifier, generator, tokenizer = saved[1]
    models = dict(detector=detector, classifier=classifier, generator=generator, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="preprocessing"):
        save_bundle(tmp_path / "a", **models, card_extra={})
    with pytest.raises(ValueError, match="may not set"):
        save_bundle(tmp_path / "a", **models, card_extra={"preprocessing": PREPROCESSING, "components": {}})
    with pytest.raises(ValueError, match="unknown findings"):
        save_bundle(tmp_path / "a", **models, card_extra={"preprocessing": PREPROCESSING, "thresholds": {"Gout": 1}})
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ValueError, match="not a model bundle"):
        save_bundle(tmp_path / "photos", **models, card_extra={"preprocessing": PREPROCESSING})
    assert (tmp_path / "photos" / "holiday.jpg").exists()


def test_random_bundle_loads_and_leaves_the_global_rng_alone(tmp_path):
    state = torch.random.get_rng_state()
    folder = build_random_bundle(tmp_path / "random", size="tiny", seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    bundle = load_bundle(folder)
    assert bundle.preprocessing.image_size == bundle.detector.config.image_size
    assert bundle.tokenizer.token_to_id("effusion") is not None
    again = load_bundle(build_random_bundle(tmp_path / "again", size="tiny", seed=5))
    for a, b in zip(bundle.detector.state_dict().values(), again.detector.state_dict().values()):
        assert torch.equal(a, b)


# --- never unpickle ----------------------------------------------------------------------------
_UNPICKLERS = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def test_no_module_of_the_app_uses_torch_load_or_pickle():
    offenders = []
    for path in (ROOT / "rrg_desk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] in _UNPICKLERS for a in node.names):
                offenders.append(f"{path.name}: import")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _UNPICKLERS:
                offenders.append(f"{path.name}: from-import")
            elif isinstance(node, ast.Attribute) and node.attr == "load" and \
                    isinstance(node.value, ast.Name) and node.value.id == "torch":
                offenders.append(f"{path.name}: torch.load")
    assert offenders == []


def test_loading_never_unpickles_and_a_pickled_weight_file_is_refused(monkeypatch, copy):
    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    load_bundle(copy)  # the intact bundle loads with every unpickler disabled

    torch.save({"weight": torch.zeros(2)}, copy / "detector.safetensors")  # a pickle in disguise
    card = _card(copy)
    card["components"]["detector"]["sha256"] = sha256_file(copy / "detector.safetensors")
    _write_card(copy, card)
    with pytest.raises(BundleCorruptError, match="unreadable"):
        load_bundle(copy)


def test_registry_imports_components_lazily():
    assert bundle_module.component_classes("generator") == (GeneratorConfig, RegionSentenceGenerator)
    assert bundle_module.component_classes("detector") == (DetectorConfig, RegionDetector)


def test_an_edited_card_without_a_new_checksum_is_refused(tmp_path):
    folder = build_random_bundle(tmp_path / "b", size="tiny")
    card = _card(folder)
    card["preprocessing"]["mean"] = 0.1  # silently changes every input
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleHashMismatchError):
        load_bundle(folder)


@pytest.mark.parametrize("value", [7, "detector", 1.5, ["detector"]])
def test_a_card_whose_components_are_not_an_object_is_refused(tmp_path, value):
    """Found by `make fuzz`: a scalar in place of the components table raised TypeError."""
    folder = build_random_bundle(tmp_path / "b", size="tiny")
    card = _card(folder)
    card["components"] = value
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleCorruptError):
        load_bundle(folder)


def test_a_card_with_an_unknown_clue_form_is_refused(saved, copy):
    card = _card(saved[0])
    card["generation"]["clues"] = "logits"
    _write_card(copy, card)
    with pytest.raises(BundleCorruptError, match="generation"):
        load_bundle(copy)


def test_half_precision_components_halve_their_file_and_load_as_float32(saved, tmp_path):
    _folder, (detector, classifier, generator, tokenizer) = saved
    half = save_bundle(tmp_path / "half", detector=detector, classifier=classifier, generator=generator,
                       tokenizer=tokenizer, card_extra={"preprocessing": PREPROCESSING},
                       half_precision=("classifier",))
    full_size = (_folder / "classifier.safetensors").stat().st_size
    assert (half / "classifier.safetensors").stat().st_size < 0.6 * full_size
    card = _card(half)
    assert card["components"]["classifier"]["stored_dtype"] == "float16"
    assert "stored_dtype" not in card["components"]["detector"]
    bundle = load_bundle(half)
    assert all(p.dtype == torch.float32 for p in bundle.classifier.parameters())
    torch.manual_seed(7)
    images = torch.randn(1, 1, 64, 64)
    with torch.inference_mode():
        expected, got = classifier.encode_image(images), bundle.classifier.encode_image(images)
    assert torch.allclose(expected, got, atol=5e-3) and not torch.equal(expected, got)
    assert torch.equal(bundle.detector.rcnn.backbone.body["0"][0].weight, detector.rcnn.backbone.body["0"][0].weight)
