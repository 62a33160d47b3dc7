"""RegionSentenceGenerator: GPT-2 with cross-attention over region/image/clue/memory tokens."""
from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from rrg_desk.models.generator import GeneratorConfig, RegionSentenceGenerator, make_labels
from rrg_desk.models.tokenizer import ReportTokenizer

VOCAB = 40
N, G = 4, 9  # sentences per batch, image tokens (a 3x3 grid)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture()
def config() -> GeneratorConfig:
    return GeneratorConfig.tiny(VOCAB)


@pytest.fixture()
def model(config) -> RegionSentenceGenerator:
    torch.manual_seed(0)
    return RegionSentenceGenerator(config).eval()


@pytest.fixture()
def visual(config) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return dict(region_features=torch.randn(N, config.region_feature_dim, generator=generator),
                region_ids=torch.tensor([0, 3, 5, 19]),
                image_tokens=torch.randn(1, G, config.image_token_dim, generator=generator),
                finding_probs=torch.rand(1, config.num_findings, generator=generator))


def _batch(lengths=(6, 4, 7, 5)) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(4, VOCAB, (len(lengths), max(lengths)), generator=torch.Generator().manual_seed(1))
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, 0], ids[row, length - 1] = 1, 2
        ids[row, length:] = 0
        mask[row, :length] = 1
    return ids, mask


def _assert_valid(sentences, count, max_len, eos=2):
    assert len(sentences) == count
    for tokens in sentences:
        assert all(isinstance(t, int) and 0 <= t < VOCAB for t in tokens)
        assert eos not in tokens[:-1]
        assert (tokens and tokens[-1] == eos) or len(tokens) == max_len


def test_config_round_trips_through_json(config):
    assert GeneratorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError):
        GeneratorConfig.from_dict({"n_layers": 3})


def test_forward_returns_loss_logits_and_cross_attentions(model, config, visual):
    ids, mask = _batch()
    out = model(ids, mask, **visual, labels=make_labels(ids, mask), output_attentions=True)
    assert out.logits.shape == (N, ids.shape[1], VOCAB)
    assert torch.isfinite(out.loss)
    encoder_tokens = 1 + G + config.num_findings + config.num_memory_tokens
    assert len(out.cross_attentions) == config.n_layer
    for attention in out.cross_attentions:
        assert attention.shape == (N, config.n_head, ids.shape[1], encoder_tokens)
        torch.testing.assert_close(attention.sum(dim=-1), torch.ones(attention.shape[:-1]))
    assert out.image_token_slice == slice(1, 1 + G)
    out.loss.backward()
    assert model.region_proj.weight.grad is not None and model.finding_present.grad is not None


def test_visual_inputs_condition_the_logits(model, visual):
    ids, mask = _batch()
    with torch.inference_mode():
        base = model(ids, mask, **visual).logits
        other_probs = model(ids, mask, **{**visual, "finding_probs": 1 - visual["finding_probs"]}).logits
        other_region = model(ids, mask, **{**visual, "region_ids": visual["region_ids"].flip(0)}).logits
        expanded = model(ids, mask, **{**visual, "image_tokens": visual["image_tokens"].expand(N, -1, -1)}).logits
        unbatched = model(ids, mask, **{**visual, "image_tokens": visual["image_tokens"][0],
                                        "finding_probs": visual["finding_probs"][0]}).logits
    assert not torch.allclose(base, other_probs)
    assert not torch.allclose(base, other_region)
    torch.testing.assert_close(base, expanded)  # [1,G,D] broadcasts to every sentence
    torch.testing.assert_close(base, unbatched)  # so do [G,D] tokens and [F] probabilities


def test_text_only_mode_for_language_model_pretraining(model):
    ids, mask = _batch()
    out = model(ids, mask, labels=make_labels(ids, mask), output_attentions=True)
    assert torch.isfinite(out.loss) and out.cross_attentions is None
    with torch.inference_mode():
        sentences = model.generate_sentences(max_len=6, num_sequences=3)
    _assert_valid(sentences, 3, 6)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_generation_stops_at_eos_or_max_len(model, visual, beam_size):
    with torch.inference_mode():
        sentences = model.generate_sentences(**visual, max_len=8, beam_size=beam_size)
    _assert_valid(sentences, N, 8)
    with torch.inference_mode():  # max_len is capped by the position table
        capped = model.generate_sentences(**visual, max_len=1000, beam_size=beam_size)
    _assert_valid(capped, N, model.config.n_positions - 1)


def test_greedy_with_kv_cache_matches_full_recompute(model, visual):
    with torch.inference_mode():
        sentences = model.generate_sentences(**visual, max_len=10)
        for row, tokens in enumerate(sentences):
            ids = torch.tensor([[1, *tokens]])
            one = {k: (v[row:row + 1] if v.shape[0] == N else v) for k, v in visual.items()}
            logits = model(ids, torch.ones_like(ids), **one).logits
            assert logits[0, :-1].argmax(dim=-1).tolist() == tokens


def test_beam_of_one_is_greedy_and_beam_is_deterministic(model, visual):
    with torch.inference_mode():
        greedy = model.generate_sentences(**visual, max_len=8, beam_size=1)
        beam = model.generate_sentences(**visual, max_len=8, beam_size=3)
        again = model.generate_sentences(**visual, max_len=8, beam_size=3)
    assert beam == again
    assert greedy == model.generate_sentences(**visual, max_len=8)


def test_same_seed_same_model_same_sentences(config, visual):
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = RegionSentenceGenerator(config).eval()
        outputs.append(model.generate_sentences(**visual, max_len=8, beam_size=2))
    assert outputs[0] == outputs[1]


def test_cross_attention_map_rows_sum_to_one(model, visual):
    with torch.inference_mode():
        sentences = model.generate_sentences(**visual, max_len=6)
        sentences[0] = []  # an empty sentence still gets a map
        maps = model.cross_attention_map(sentences, **visual)
    assert maps.shape == (N, G)
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum(dim=1), torch.ones(N))
    with pytest.raises(ValueError):
        model.encoder_states(image_tokens=torch.randn(1, model.config.max_image_tokens + 1, 8))


def test_state_dict_round_trips_through_safetensors(model, visual, tmp_path):
    path = tmp_path / "generator.safetensors"
    save_file(model.state_dict(), str(path))  # the tied lm_head is not stored twice
    torch.manual_seed(123)
    restored = RegionSentenceGenerator(model.config).eval()
    restored.load_state_dict(load_file(str(path)), strict=True)
    assert restored.gpt.lm_head.weight.data_ptr() == restored.gpt.transformer.wte.weight.data_ptr()
    with torch.inference_mode():
        assert restored.generate_sentences(**visual, max_len=8) == model.generate_sentences(**visual, max_len=8)


def test_overfits_two_regions_to_their_own_sentences():
    """Two regions, same image: each must get its own sentence back -> the conditioning works."""
    texts = ["no pneumothorax .", "the heart is enlarged ."]
    tokenizer = ReportTokenizer.train_from_texts(texts, vocab_size=50, min_frequency=1)
    torch.manual_seed(0)
    config = GeneratorConfig.tiny(tokenizer.vocab_size, n_embd=48)
    model = RegionSentenceGenerator(config)
    ids, mask = (torch.tensor(x) for x in tokenizer.encode_batch(texts, max_len=16))
    visual = dict(region_features=torch.randn(2, config.region_feature_dim), region_ids=torch.tensor([9, 2]),
                  image_tokens=torch.randn(1, G, config.image_token_dim), finding_probs=torch.rand(1, 14))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    started = time.process_time()  # CPU time: robust to other processes sharing the cores
    model.train()
    for _ in range(150):
        loss = model(ids, mask, **visual, labels=make_labels(ids, mask)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    assert time.process_time() - started < 15
    with torch.inference_mode():
        decoded = [tokenizer.decode(s) for s in model.generate_sentences(**visual, max_len=10)]
    assert decoded == ["No pneumothorax.", "The heart is enlarged."]


def test_default_config_fits_the_budget():
    model = RegionSentenceGenerator(GeneratorConfig(vocab_size=2000))
    params = sum(p.numel() for p in model.state_dict().values())
    print(f"default RegionSentenceGenerator parameters: {params:,} ({params * 4 / 1e6:.1f} MB fp32)")
    assert params < 2_600_000
