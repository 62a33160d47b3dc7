"""The feedback loop end to end: signed reports in a store -> export-store -> finetune -> a
new bundle that drafts in the app's pipeline, beside an untouched parent."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rrg_desk.inference.pipeline import DraftPipeline
from rrg_desk.models.bundle import build_random_bundle, load_bundle
from rrg_desk.paths import samples_dir
from tests.store.test_export import exported, store  # noqa: F401  (fixtures)
from train.cli import main

FAST_FINETUNE = ["--set", "finetune.generator_loop={epochs: 1, batch_size: 4, lr: 0.001, warmup_steps: 1, "
                          "progress: false}",
                 "--set", "finetune.evaluate.meteor=false", "--device", "cpu"]


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finetuned(exported, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    parent = build_random_bundle(root / "parent", size="tiny", seed=1)
    before = folder_digest(parent)
    child = root / "child"
    code = main(["finetune", "--from", str(parent), "--data", str(exported), "--train", "generator",
                 "--out", str(child), "--set", f"out_dir={root / 'runs'}", *FAST_FINETUNE])
    assert code == 0
    return parent, child, before


def test_finetune_writes_a_new_bundle_and_never_touches_the_parent(finetuned):
    parent, child, before = finetuned
    assert folder_digest(parent) == before
    parent_card = load_bundle(parent).card
    child_card = load_bundle(child).card  # verifies every hash
    assert child_card.bundle_id != parent_card.bundle_id
    assert child_card.parent.bundle_id == parent_card.bundle_id
    assert child_card.parent.card_sha256 == hashlib.sha256((parent / "card.json").read_bytes()).hexdigest()
    assert child_card.records.training["trained"] == ["generator"]
    assert (parent / "tokenizer.json").read_bytes() == (child / "tokenizer.json").read_bytes()
    # the generator changed, the frozen parts did not
    assert child_card.components["generator"].sha256 != parent_card.components["generator"].sha256
    assert child_card.components["detector"].sha256 == parent_card.components["detector"].sha256


def test_card_records_both_evaluations_on_the_same_split(finetuned):
    _parent, child, _ = finetuned
    card = json.loads((child / "card.json").read_text())
    evaluation = card["finetune_evaluation"]
    assert evaluation["parent"]["studies"] == evaluation["child"]["studies"] >= 1
    assert evaluation["parent"]["bundle_id"] == card["parent"]["bundle_id"]
    assert evaluation["child"]["bundle_id"] == card["bundle_id"]
    for side in ("parent", "child"):
        assert set(evaluation[side]["model"]["nlg"]) >= {"BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"}
        assert "micro_f1" in evaluation[side]["model"]["ce"]
    assert card["metrics"]["split"] == "local val"


def test_child_drafts_in_the_app_pipeline(finetuned):
    from rrg_desk.imaging import load_studies

    _parent, child, _ = finetuned
    studies, _ = load_studies([samples_dir() / "study2"])
    draft = DraftPipeline(child, device="cpu").draft(studies[0])
    assert draft.bundle_id == json.loads((child / "card.json").read_text())["bundle_id"]
    assert len(draft.findings) == 14


def test_finetune_refuses_to_write_into_the_parent(finetuned, exported, capsys):
    parent, _child, before = finetuned
    code = main(["finetune", "--from", str(parent), "--data", str(exported), "--out", str(parent / "inside"),
                 *FAST_FINETUNE])
    assert code == 2 and "parent" in capsys.readouterr().err
    assert folder_digest(parent) == before


def test_finetune_classifier_and_generator_leaves_the_detector(exported, tmp_path):
    parent = build_random_bundle(tmp_path / "parent", size="tiny", seed=2)
    child = tmp_path / "child"
    fast_clip = ["--set", "finetune.clip_loop={epochs: 1, batch_size: 4, lr: 0.001, warmup_steps: 1, progress: false}"]
    assert main(["finetune", "--from", str(parent), "--data", str(exported), "--train", "classifier+generator",
                 "--out", str(child), "--set", f"out_dir={tmp_path / 'runs'}", *FAST_FINETUNE, *fast_clip]) == 0
    before, after = load_bundle(parent).card.components, load_bundle(child).card.components
    assert after["classifier"].sha256 != before["classifier"].sha256
    assert after["generator"].sha256 != before["generator"].sha256
    assert after["detector"].sha256 == before["detector"].sha256
    assert (tmp_path / "runs" / "child" / "clip" / "best.safetensors").exists()
