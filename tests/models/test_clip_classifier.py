"""ClipClassifier: a timm CNN image encoder (1 channel, built without download), a finding head,
the text tower (open_clip's layout, tests/models/test_text_transformer.py), the input gate,
Grad-CAM. The contrastive loss is the trainer's (tests/train/test_classifier_training.py)."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from rrg_desk.models.clip_classifier import ClipClassifier, ClipClassifierConfig
from rrg_desk.models.findings import DEFAULT_PROMPTS, FINDING_NAMES, default_prompt_pairs, finding_index
from rrg_desk.models.tokenizer import ReportTokenizer

VOCAB = 60
EOS = 2


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _texts(batch: int, length: int = 9, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = 1, EOS
    return ids


@pytest.fixture()
def model() -> ClipClassifier:
    torch.manual_seed(0)
    return ClipClassifier(ClipClassifierConfig.tiny(VOCAB))


def test_finding_vocabulary():
    assert len(FINDING_NAMES) == 14 and FINDING_NAMES[0] == "No Finding"
    assert set(DEFAULT_PROMPTS) == set(FINDING_NAMES)
    assert all(pos != neg for pos, neg in default_prompt_pairs())
    assert finding_index("Pleural Effusion") == 10
    with pytest.raises(ValueError):
        finding_index("Dragons")


def test_config_round_trips_through_json():
    config = ClipClassifierConfig.tiny(VOCAB, embed_dim=48)
    restored = ClipClassifierConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    with pytest.raises(ValueError):
        ClipClassifierConfig.from_dict({**config.to_dict(), "colour": "blue"})


def test_encoders_take_one_channel_any_size(model):
    assert model.backbone.conv_stem.in_channels == 1
    images = torch.randn(3, 1, 50, 41)  # resized to config.image_size inside
    embeds, tokens = model.encode_image_tokens(images)
    grid = model.config.grid_size
    assert embeds.shape == (3, model.config.embed_dim)
    assert tokens.shape == (3, grid * grid, model.config.vision_width)
    assert model.image_features(images).shape == (3, model.config.feature_dim)
    normalised = model.encode_image(images)
    torch.testing.assert_close(normalised.norm(dim=-1), torch.ones(3))
    with pytest.raises(ValueError):
        model.encode_image(torch.randn(2, 3, 32, 32))


def test_config_refuses_a_feature_width_the_backbone_does_not_have():
    with pytest.raises(ValueError, match="features"):
        ClipClassifier(ClipClassifierConfig.tiny(VOCAB, feature_dim=999))


def test_input_gate_gives_two_probabilities_per_image(model):
    with torch.inference_mode():
        gate = model.gate_probabilities(model.image_features(torch.randn(3, 1, 64, 64)))
    assert gate.shape == (3, 2) and ((gate > 0) & (gate < 1)).all()


def test_text_encoder_pools_at_eos_and_fits_context(model):
    short = _texts(2, length=5)
    embeds = model.encode_text(short)
    assert embeds.shape == (2, model.config.embed_dim)
    # tokens after eos (padding) do not change the embedding: the causal tower pools at eos
    padded = F.pad(short, (0, 4), value=0)
    garbage_after_eos = torch.cat([short, torch.randint(4, VOCAB, (2, 4))], dim=1)
    torch.testing.assert_close(model.encode_text(padded), embeds)
    torch.testing.assert_close(model.encode_text(garbage_after_eos), embeds)
    too_long = _texts(2, length=3 * model.config.context_length)
    assert torch.isfinite(model.encode_text(too_long)).all()


def test_zero_shot_probabilities(model):
    with torch.inference_mode():
        images = model.encode_image(torch.randn(4, 1, 64, 64))
        positive, negative = model.prompt_embeddings(_texts(14, seed=1), _texts(14, seed=2))
        probs = model.zero_shot_probabilities(images, positive, negative)
        swapped = model.zero_shot_probabilities(images, negative, positive)
    assert probs.shape == (4, 14)
    assert ((probs >= 0) & (probs <= 1)).all()
    torch.testing.assert_close(probs + swapped, torch.ones(4, 14))
    combined = ClipClassifier.combine_views(probs[:2])
    torch.testing.assert_close(combined, probs[:2].mean(dim=0))


def test_default_prompts_encode_with_a_report_tokenizer(model):
    pairs = default_prompt_pairs()
    texts = [text for pair in pairs for text in pair]
    tokenizer = ReportTokenizer.train_from_texts(texts, vocab_size=VOCAB, min_frequency=1)
    assert all(tokenizer.unk_id not in tokenizer.encode(t) for t in texts[:4])
    positive_ids, _ = tokenizer.encode_batch([p for p, _ in pairs], model.config.context_length)
    negative_ids, _ = tokenizer.encode_batch([n for _, n in pairs], model.config.context_length)
    positive, negative = model.prompt_embeddings(torch.tensor(positive_ids), torch.tensor(negative_ids))
    assert positive.shape == negative.shape == (14, model.config.embed_dim)
    assert len(model.config.prompts) == 14


def test_head_loss_ignores_masked_labels(model):
    model.eval()
    logits = model.finding_logits(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 14)
    targets = torch.zeros(2, 14)
    mask = torch.zeros(2, 14)
    mask[:, 0] = 1
    expected = F.binary_cross_entropy_with_logits(logits[:, 0], targets[:, 0])
    torch.testing.assert_close(ClipClassifier.head_loss(logits, targets, mask), expected)


def test_heatmaps_shape_range_and_inference_mode(model):
    model.eval()
    images = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        positive, negative = model.prompt_embeddings(_texts(14, seed=1), _texts(14, seed=2))
        from_head = model.finding_heatmaps(images, 2)
        from_prompts = model.finding_heatmaps(images, 2, positive, negative)
    grid = model.config.grid_size
    for heatmap in (from_head, from_prompts):
        assert heatmap.shape == (2, grid, grid)
        assert torch.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() <= 1
    assert not any(p.grad is not None for p in model.parameters())  # no training side effect


@pytest.mark.parametrize("seed", [0, 1])
def test_heatmap_points_at_the_evidence(seed):
    """A head trained to detect a bright square: its Grad-CAM peaks on the square's cell."""
    torch.manual_seed(seed)
    model = ClipClassifier(ClipClassifierConfig.tiny(VOCAB, head_dropout=0.0))
    generator = torch.Generator().manual_seed(seed + 1)
    grid = model.config.grid_size  # 2 x 2 cells of 32 px

    def batch(size):
        images = torch.randn(size, 1, 64, 64, generator=generator) * 0.3
        cells = torch.randint(0, grid * grid, (size,), generator=generator)
        labels = torch.randint(0, 2, (size,), generator=generator)
        for i in range(size):
            if labels[i]:
                row, col = divmod(int(cells[i]), grid)
                images[i, 0, row * 32 + 8:row * 32 + 24, col * 32 + 8:col * 32 + 24] += 2.0
        return images, labels, cells

    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        images, labels, _ = batch(32)
        loss = F.binary_cross_entropy_with_logits(model.finding_logits(images)[:, 3], labels.float())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    images, labels, cells = batch(64)
    heatmaps = model.finding_heatmaps(images, 3)
    peaks = heatmaps.reshape(64, -1).argmax(dim=1)
    hit_rate = (peaks == cells)[labels == 1].float().mean().item()
    assert hit_rate > 0.75  # chance is 1/4


def test_default_config_fits_the_budget():
    model = ClipClassifier(ClipClassifierConfig(vocab_size=2000))
    params = sum(p.numel() for p in model.parameters())
    # EfficientNet-Lite0 (3.4 M) + projection, text tower, heads: ~19 MB of fp32 in the bundle
    assert params < 5_000_000
