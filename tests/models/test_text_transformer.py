"""rrg_desk.models.text_transformer against open_clip's text tower built as the classifier built
it (pool_type "eos"), which trained the shipped classifiers: same names and buffers, same
initial weights for a seed, same embeddings. open_clip stays installed for these tests only."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from rrg_desk.models.clip_classifier import ClipClassifier, ClipClassifierConfig
from rrg_desk.models.text_transformer import TextTransformer, TextTransformerConfig
from rrg_desk.paths import default_bundle_dir

open_clip_model = pytest.importorskip("open_clip.model")

EXACT = dict(rtol=0, atol=1e-6)  # the same operations in the same order: equal in practice, bit for bit

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def reference_tower(config: ClipClassifierConfig):
    """open_clip's tower as rrg_desk.models.clip_classifier built it before it stopped importing open_clip."""
    text_cfg = open_clip_model.CLIPTextCfg(
        context_length=config.context_length, vocab_size=config.vocab_size, width=config.text_width,
        heads=config.text_heads, layers=config.text_layers, mlp_ratio=config.mlp_ratio, pad_id=config.pad_id,
        eos_id=config.eos_id, pool_type="eos")
    return open_clip_model._build_text_tower(config.embed_dim, text_cfg)


def our_tower(config: ClipClassifierConfig) -> TextTransformer:
    return TextTransformer(TextTransformerConfig(
        vocab_size=config.vocab_size, context_length=config.context_length, width=config.text_width,
        heads=config.text_heads, layers=config.text_layers, mlp_ratio=config.mlp_ratio,
        output_dim=config.embed_dim, eos_id=config.eos_id))


def token_batch(config: ClipClassifierConfig, eos_at=(3, 7, 5, 9)) -> torch.Tensor:
    """[B, context_length]: bos, words, eos, padding; the last row has no eos until the end."""
    ids = torch.randint(4, config.vocab_size, (len(eos_at) + 1, config.context_length),
                        generator=torch.Generator().manual_seed(4))
    ids[:, 0] = 1
    for row, position in enumerate(eos_at):
        ids[row, position], ids[row, position + 1:] = config.eos_id, config.pad_id
    ids[-1, -1] = config.eos_id
    return ids


CONFIGS = {"tiny": ClipClassifierConfig.tiny(60), "default": ClipClassifierConfig(vocab_size=300)}


@pytest.mark.parametrize("size", CONFIGS)
def test_names_buffers_and_initial_weights_are_open_clips(size):
    config = CONFIGS[size]
    torch.manual_seed(3)
    reference = reference_tower(config)
    torch.manual_seed(3)
    ours = our_tower(config)
    expected = reference.state_dict()
    assert list(ours.state_dict()) == list(expected)  # the causal mask is not saved: persistent=False
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in reference.named_buffers()] == ["attn_mask"]
    assert torch.equal(ours.attn_mask, reference.attn_mask)
    for name, value in ours.state_dict().items():
        assert torch.equal(value, expected[name]), name


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("grad", [torch.inference_mode, torch.enable_grad])
def test_embeddings_match_in_every_mode(mode, grad):
    """Inference takes nn.MultiheadAttention's fused path, training the plain one: both match."""
    config = CONFIGS["default"]
    reference = reference_tower(config)
    ours = our_tower(config)
    ours.load_state_dict(reference.state_dict(), strict=True)
    getattr(reference, mode)()
    getattr(ours, mode)()
    ids = token_batch(config)
    with grad():
        torch.testing.assert_close(ours(ids), reference(ids), **EXACT)


def test_the_shipped_classifier_encodes_its_prompts_as_open_clip_did():
    """The default bundle's text weights in both towers: the same prompt embeddings."""
    from rrg_desk.models.bundle import load_bundle
    from rrg_desk.models.classify import prompt_token_ids

    bundle = load_bundle(default_bundle_dir())
    classifier: ClipClassifier = bundle.classifier
    reference = reference_tower(classifier.config).eval()
    weights = {k.removeprefix("text."): v.float()
               for k, v in load_file(default_bundle_dir() / "classifier.safetensors").items() if k.startswith("text.")}
    reference.load_state_dict(weights, strict=True)
    positive, negative = prompt_token_ids(classifier, bundle.tokenizer, "cpu")
    with torch.inference_mode():
        for ids in (positive, negative):
            fitted = classifier._fit_context(ids.long())
            torch.testing.assert_close(classifier.text(fitted), reference(fitted), **EXACT)
