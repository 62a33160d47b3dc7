"""ReportTokenizer on real IU X-ray report text (R2Gen split: train to fit, test to check)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rrg_desk.models.tokenizer import ReportTokenizer, TokenizerError

IU_ANNOTATION = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "iu_xray_reports" / "annotation.json"

pytestmark = pytest.mark.skipif(not IU_ANNOTATION.exists(), reason="IU X-ray report text not present")


@pytest.fixture(scope="module")
def iu_reports() -> dict[str, list[str]]:
    data = json.loads(IU_ANNOTATION.read_text(encoding="utf-8"))
    return {split: [entry["report"] for entry in entries] for split, entries in data.items()}


@pytest.fixture(scope="module")
def tokenizer(iu_reports) -> ReportTokenizer:
    return ReportTokenizer.train_from_texts(iu_reports["train"], vocab_size=2000)


def _sentences(reports: list[str]) -> list[str]:
    return [s.strip() for report in reports for s in re.split(r"(?<=\.)\s+", report) if s.strip()]


def test_special_tokens_have_fixed_ids(tokenizer):
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
    assert tokenizer.id_to_token(0) == "[PAD]" and tokenizer.token_to_id("[EOS]") == 2


def test_vocabulary_is_bounded_and_covers_common_words(tokenizer):
    assert 300 < tokenizer.vocab_size <= 2000
    for word in ("pneumothorax", "effusion", "heart", "lungs", "clear", "."):
        assert tokenizer.token_to_id(word) is not None, word


def test_small_vocab_size_is_respected(iu_reports):
    small = ReportTokenizer.train_from_texts(iu_reports["train"], vocab_size=100)
    assert small.vocab_size == 100
    assert small.unk_id in small.encode("the patient has a bizarre zygomatic anomaly")


def test_encode_lowercases_and_splits_punctuation(tokenizer):
    assert tokenizer.tokenize("No pneumothorax.") == ["no", "pneumothorax", "."]
    assert tokenizer.tokenize("effusion, stable..") == ["effusion", ",", "stable", "."]
    ids = tokenizer.encode("No pneumothorax.")
    assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id and len(ids) == 5


def test_truncation_keeps_eos(tokenizer):
    text = "the heart size and pulmonary vascularity appear within normal limits ."
    ids = tokenizer.encode(text, max_len=6)
    assert len(ids) == 6 and ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id
    assert tokenizer.decode(ids) == "The heart size and"
    with pytest.raises(ValueError):
        tokenizer.encode(text, max_len=1)


def test_decode_produces_natural_text(tokenizer):
    assert tokenizer.decode(tokenizer.encode("no pneumothorax .")) == "No pneumothorax."
    text = "heart size normal. no pleural effusion, no pneumothorax."
    assert tokenizer.decode(tokenizer.encode(text)) == "Heart size normal. No pleural effusion, no pneumothorax."
    assert tokenizer.decode([tokenizer.bos_id, *tokenizer.encode("lungs are clear", add_special_tokens=False),
                             tokenizer.eos_id, tokenizer.token_to_id("heart")]) == "Lungs are clear"


def test_round_trip_on_held_out_iu_sentences(tokenizer, iu_reports):
    sentences = _sentences(iu_reports["test"])
    known = [s for s in sentences if tokenizer.unk_id not in tokenizer.encode(s)]
    assert len(known) > 0.9 * len(sentences)  # the train vocabulary covers the test text
    exact = sum(tokenizer.decode(tokenizer.encode(s)).lower() == " ".join(s.split()).lower() for s in known)
    assert exact / len(known) > 0.98


def test_pad_builds_rectangular_batch(tokenizer):
    ids, mask = tokenizer.encode_batch(["no pneumothorax.", "the lungs are clear bilaterally."], max_len=32)
    assert len(ids[0]) == len(ids[1]) == len(mask[0]) == 8
    assert ids[0][-3:] == [tokenizer.pad_id] * 3 and mask[0] == [1] * 5 + [0] * 3
    assert mask[1] == [1] * 8


def test_json_round_trip(tokenizer, iu_reports):
    restored = ReportTokenizer.from_json(tokenizer.to_json())
    assert restored.vocab_size == tokenizer.vocab_size
    for report in iu_reports["val"][:50]:
        assert restored.encode(report, 64) == tokenizer.encode(report, 64)
    assert json.loads(tokenizer.to_json())["model"]["type"] == "WordLevel"


def test_invalid_json_is_refused():
    with pytest.raises(TokenizerError):
        ReportTokenizer.from_json("{not json")
    with pytest.raises(TokenizerError):
        ReportTokenizer.from_json(json.dumps({"model": {"type": "WordLevel"}}))
