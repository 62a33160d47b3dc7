"""rrg_desk.models.gpt2 against transformers' GPT2LMHeadModel(add_cross_attention=True, eager
attention), which trained the shipped generators: same names, same initial weights for a seed,
same logits, loss, cross-attentions, gradients and cached decoding. transformers stays installed
for these tests (and for nothing the app runs)."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from rrg_desk.models.gpt2 import IGNORE_INDEX, GPT2Config, GPT2Decoder, KVCache, causal_lm_loss
from rrg_desk.paths import default_bundle_dir

transformers = pytest.importorskip("transformers")

SIZE = dict(vocab_size=50, n_positions=24, n_embd=32, n_layer=2, n_head=2, n_inner=64)
N, T, S = 4, 9, 7  # sequences, tokens, encoder states
EXACT = dict(rtol=0, atol=1e-6)  # the same operations in the same order: equal in practice, bit for bit

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def reference_model(size: dict, dropout: float = 0.1):
    """transformers' GPT-2 as rrg_desk.models.generator built it before it stopped importing it."""
    config = transformers.GPT2Config(**size, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                                     add_cross_attention=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    config._attn_implementation = "eager"
    model = transformers.GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"
    return model


@pytest.fixture()
def pair():
    """(reference, ours) built from the same seed."""
    torch.manual_seed(5)
    reference = reference_model(SIZE)
    torch.manual_seed(5)
    return reference, GPT2Decoder(GPT2Config(**SIZE, dropout=0.1))


@pytest.fixture()
def batch():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, SIZE["vocab_size"], (N, T), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # right padding, as the generator's batches have
    mask[2, 4:] = 0
    encoder_states = torch.randn(N, S, SIZE["n_embd"], generator=generator)
    return ids, mask, encoder_states, ids.masked_fill(mask == 0, IGNORE_INDEX)


def test_names_shapes_and_buffers_are_transformers_ones(pair):
    reference, ours = pair
    ours_params = dict(ours.named_parameters(remove_duplicate=False))
    assert {n: p.shape for n, p in reference.named_parameters(remove_duplicate=False)} == \
        {n: p.shape for n, p in ours_params.items()}
    assert [n for n, _ in reference.named_buffers()] == [n for n, _ in ours.named_buffers()] == []
    # the state dict is the reference's without the tied head (safetensors stores wte once)
    assert list(ours.state_dict()) == [k for k in reference.state_dict() if k != "lm_head.weight"]
    assert ours_params["lm_head.weight"] is ours_params["transformer.wte.weight"]


def test_a_seed_gives_the_same_initial_weights(pair):
    reference, ours = pair
    expected = reference.state_dict()
    for name, value in ours.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_logits_loss_and_cross_attentions_match(pair, batch):
    reference, ours = (m.eval() for m in pair)
    ids, mask, states, labels = batch
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, encoder_hidden_states=states, labels=labels,
                             use_cache=False, output_attentions=True)
        out = ours(ids, mask, encoder_states=states, output_cross_attentions=True)
    torch.testing.assert_close(out.logits, expected.logits, **EXACT)
    torch.testing.assert_close(causal_lm_loss(out.logits, labels), expected.loss, **EXACT)
    assert len(out.cross_attentions) == len(expected.cross_attentions) == SIZE["n_layer"]
    for ours_layer, expected_layer in zip(out.cross_attentions, expected.cross_attentions):
        assert ours_layer.shape == (N, SIZE["n_head"], T, S)
        torch.testing.assert_close(ours_layer, expected_layer, **EXACT)


def test_without_encoder_states_it_is_a_plain_language_model(pair, batch):
    reference, ours = (m.eval() for m in pair)
    ids, mask, _, _ = batch
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, use_cache=False).logits
        out = ours(ids, mask, output_cross_attentions=True)
    torch.testing.assert_close(out.logits, expected, **EXACT)
    assert out.cross_attentions is None


def test_training_mode_draws_the_same_dropout_and_gives_the_same_gradients(pair, batch):
    reference, ours = (m.train() for m in pair)
    ids, mask, states, labels = batch
    torch.manual_seed(11)
    expected = reference(input_ids=ids, attention_mask=mask, encoder_hidden_states=states, labels=labels,
                         use_cache=False)
    torch.manual_seed(11)
    loss = causal_lm_loss(ours(ids, mask, encoder_states=states).logits, labels)
    torch.testing.assert_close(loss, expected.loss, **EXACT)
    expected.loss.backward()
    loss.backward()
    reference_grads = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, reference_grads[name].grad, **EXACT)


def test_cached_decoding_with_beam_reorders_matches_transformers_and_a_full_forward(pair, batch):
    reference, ours = (m.eval() for m in pair)
    ids, _, states, _ = batch
    past, cache, step_ids, decoded = None, KVCache(), ids[:, :1], ids[:, :1]
    reorders = {2: torch.tensor([1, 1, 3, 0]), 4: torch.tensor([3, 2, 2, 0])}
    with torch.no_grad():
        for step in range(8):
            expected = reference(input_ids=step_ids, attention_mask=torch.ones(N, step + 1, dtype=torch.long),
                                 encoder_hidden_states=states, past_key_values=past, use_cache=True)
            logits = ours(step_ids, encoder_states=states, cache=cache).logits
            torch.testing.assert_close(logits, expected.logits, **EXACT)
            past = expected.past_key_values
            rows = reorders.get(step, torch.arange(N))
            past.reorder_cache(rows)
            cache.reorder(rows)
            states, decoded = states[rows], decoded[rows]
            step_ids = logits[rows, -1].argmax(dim=-1)[:, None]
            decoded = torch.cat([decoded, step_ids], dim=1)
        assert cache.length == 8
        full = ours(decoded[:, :-1], encoder_states=states).logits
    # the last step's logits from the cache are the full forward's last position
    torch.testing.assert_close(full[:, -1], logits[rows, -1], rtol=0, atol=1e-5)
    assert torch.equal(full.argmax(dim=-1), decoded[:, 1:])  # every token was the greedy one of its beam


def test_the_shipped_generator_weights_give_transformers_outputs():
    """The default bundle's GPT-2 loaded into both: the same logits and cross-attentions."""
    from rrg_desk.models.card import read_card

    size = read_card(default_bundle_dir()).components["generator"].config
    weights = {k.removeprefix("gpt."): v for k, v in load_file(default_bundle_dir() / "generator.safetensors").items()
               if k.startswith("gpt.")}
    shape = {k: size[k] for k in SIZE}
    reference = reference_model(shape).eval()
    reference.load_state_dict({**weights, "lm_head.weight": weights["transformer.wte.weight"]}, strict=True)
    ours = GPT2Decoder(GPT2Config(**shape)).eval()
    ours.load_state_dict(weights, strict=True)
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(3, shape["vocab_size"], (3, 12), generator=generator)
    states = torch.randn(3, 40, shape["n_embd"], generator=generator)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=torch.ones_like(ids), encoder_hidden_states=states,
                             use_cache=False, output_attentions=True)
        out = ours(ids, encoder_states=states, output_cross_attentions=True)
    torch.testing.assert_close(out.logits, expected.logits, **EXACT)
    for ours_layer, expected_layer in zip(out.cross_attentions, expected.cross_attentions):
        torch.testing.assert_close(ours_layer, expected_layer, **EXACT)
