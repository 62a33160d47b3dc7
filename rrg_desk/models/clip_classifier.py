"""Finding classifier: a pretrained-able CNN image encoder with a linear finding head, aligned
CLIP-style with a report text encoder (CRRG-CLIP, TRRG) for zero-shot prompts.

Image inputs are single-channel float tensors [B,1,H,W] ALREADY normalised by the caller
with the bundle card's (mean, std); they are resized here to `config.image_size` square.
The image encoder is `config.backbone` (default `tf_efficientnet_lite0`, built in plain torch by
rrg_desk.models.efficientnet_lite with timm's names; other names are timm models) built with
`pretrained=False` and one input channel: ImageNet weights, when used, are converted and
loaded by `train/` only; the app loads the bundle's safetensors. Text inputs are token ids
from `ReportTokenizer.encode` (bos ... eos); the text tower (rrg_desk.models.text_transformer,
open_clip's layout in plain torch) pools at eos. The contrastive loss is the trainer's.

Outputs: the finding head's probabilities, zero-shot probabilities from (positive, negative)
prompt pairs, Grad-CAM heatmaps on the last feature map, and the input gate (is this a
chest radiograph? is it a lateral view?) fitted on frozen features after training.
Nothing here ever downloads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from rrg_desk.models.config import ConfigDict
from rrg_desk.models.efficientnet_lite import EfficientNetLite, is_efficientnet_lite
from rrg_desk.models.feature_probe import FeatureProbe, FeatureProbeConfig
from rrg_desk.models.findings import FINDING_NAMES, default_prompt_pairs
from rrg_desk.models.grad_cam import grad_cam
from rrg_desk.models.text_transformer import TextTransformer, TextTransformerConfig

MAX_LOGIT_SCALE = 100.0
GATE_OUTPUTS = ("chest_radiograph", "lateral_view")  # input_gate logits, in this order


@dataclass
class ClipClassifierConfig(ConfigDict):
    vocab_size: int = 2000
    context_length: int = 64
    pad_id: int = 0
    eos_id: int = 2
    backbone: str = "tf_efficientnet_lite0"  # a timm CNN, built with pretrained=False, in_chans=1
    feature_dim: int = 1280                 # the backbone's pooled feature width
    feature_stride: int = 32                # input pixels per cell of the last feature map
    embed_dim: int = 256
    image_size: int = 256
    text_width: int = 128
    text_layers: int = 3
    text_heads: int = 4
    mlp_ratio: float = 4.0
    head_dropout: float = 0.2
    use_finding_head: bool = True
    init_logit_scale: float = math.log(1 / 0.07)
    finding_names: list[str] = field(default_factory=lambda: list(FINDING_NAMES))
    # [[positive, negative], ...] in finding_names order; the card carries them to inference
    prompts: list[list[str]] = field(default_factory=lambda: [list(p) for p in default_prompt_pairs()])
    # a FeatureProbeConfig dict: a frozen-ImageNet second opinion the trainer fitted (None: none)
    feature_probe: dict | None = None

    @classmethod
    def tiny(cls, vocab_size: int = 2000, **overrides) -> ClipClassifierConfig:
        """Milliseconds-per-step config for tests (timm's own test-sized EfficientNet)."""
        values = dict(vocab_size=vocab_size, context_length=16, backbone="test_efficientnet", feature_dim=256,
                      embed_dim=32, image_size=64, text_width=32, text_layers=1, text_heads=2, mlp_ratio=2.0)
        values.update(overrides)
        return cls(**values)

    @property
    def grid_size(self) -> int:
        return max(1, self.image_size // self.feature_stride)

    @property
    def vision_width(self) -> int:
        """Width of the image tokens the generator may take from this classifier."""
        return self.feature_dim


@dataclass
class ClipOutput:
    image_embeds: torch.Tensor   # [B, D], L2-normalised
    text_embeds: torch.Tensor    # [B, D], L2-normalised
    logit_scale: torch.Tensor    # scalar, exp() applied and clamped


def build_backbone(name: str) -> nn.Module:
    """CNN with one input channel and no classifier (forward -> pooled [B, C]). EfficientNet-Lite
    0/1/2 are built in plain torch (timm's names and numerics) so a draft never imports timm;
    any other name is a timm model, imported only then."""
    if is_efficientnet_lite(name):
        return EfficientNetLite.named(name)
    import timm

    return timm.create_model(name, pretrained=False, in_chans=1, num_classes=0)


class ClipClassifier(nn.Module):
    def __init__(self, config: ClipClassifierConfig):
        super().__init__()
        if config.prompts and len(config.prompts) != len(config.finding_names):
            raise ValueError("config.prompts needs one [positive, negative] pair per finding")
        self.config = config
        self.backbone = build_backbone(config.backbone)
        if self.backbone.num_features != config.feature_dim:
            raise ValueError(f"{config.backbone} has {self.backbone.num_features} features, "
                             f"config.feature_dim says {config.feature_dim}")
        self.image_projection = nn.Linear(config.feature_dim, config.embed_dim)
        self.text = TextTransformer(TextTransformerConfig(
            vocab_size=config.vocab_size, context_length=config.context_length, width=config.text_width,
            heads=config.text_heads, layers=config.text_layers, mlp_ratio=config.mlp_ratio,
            output_dim=config.embed_dim, eos_id=config.eos_id))
        self.logit_scale_log = nn.Parameter(torch.tensor(float(config.init_logit_scale)))
        self.head_dropout = nn.Dropout(config.head_dropout)
        num_findings = len(config.finding_names)
        self.finding_head = nn.Linear(config.feature_dim, num_findings) if config.use_finding_head else None
        self.input_gate = nn.Linear(config.feature_dim, len(GATE_OUTPUTS))
        self.feature_probe = None
        if config.feature_probe is not None:
            self.attach_feature_probe(FeatureProbe(FeatureProbeConfig.from_dict(dict(config.feature_probe))))

    def attach_feature_probe(self, probe: FeatureProbe) -> None:
        """Carry `probe` (and its config, so the bundle rebuilds it) from now on."""
        if list(probe.config.finding_names) != list(self.config.finding_names):
            raise ValueError("the feature probe's findings differ from the classifier's")
        self.feature_probe = probe
        self.config.feature_probe = probe.config.to_dict()

    def probe_logits(self, images: torch.Tensor) -> torch.Tensor | None:
        """images [B,1,H,W] -> the feature probe's finding logits [B,F], or None without a probe."""
        return None if self.feature_probe is None else self.feature_probe(images)

    # -- image encoder -----------------------------------------------------------------
    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        # images: [B,1,H,W] -> [B,1,S,S], S = config.image_size
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"expected images [B,1,H,W], got {tuple(images.shape)}")
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                   antialias=True)
        return images

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,1,H,W] -> last feature map [B,C,g,g]."""
        return self.backbone.forward_features(self._resize(images))

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """[B,C,g,g] -> [B,C] (the backbone's own global pooling)."""
        return self.backbone.forward_head(feature_map)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,1,H,W] -> pooled backbone features [B,C]."""
        return self.pool(self.feature_map(images))

    def encode_image_tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B,1,H,W] -> (embeds [B,D] not normalised, tokens [B,g*g,C] of the last feature map)."""
        fmap = self.feature_map(images)
        return self.image_projection(self.pool(fmap)), fmap.flatten(2).transpose(1, 2)

    def embed_features(self, features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Pooled features [B,C] -> image embeddings [B,D] in the shared image-text space."""
        embeds = self.image_projection(features)
        return F.normalize(embeds, dim=-1) if normalize else embeds

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """images [B,1,H,W] -> [B,D]."""
        return self.embed_features(self.image_features(images), normalize)

    # -- text encoder ------------------------------------------------------------------
    def _fit_context(self, token_ids: torch.Tensor) -> torch.Tensor:
        # token_ids [T,L] -> [T,context_length]; a truncated sequence keeps an eos to pool at
        length = self.config.context_length
        if token_ids.shape[1] > length:
            token_ids = token_ids[:, :length].clone()
            missing_eos = ~(token_ids == self.config.eos_id).any(dim=1)
            token_ids[missing_eos, -1] = self.config.eos_id
        elif token_ids.shape[1] < length:
            token_ids = F.pad(token_ids, (0, length - token_ids.shape[1]), value=self.config.pad_id)
        return token_ids

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """token_ids [T,L] (bos ... eos, padded) -> [T,D]."""
        embeds = self.text(self._fit_context(token_ids.long()))
        return F.normalize(embeds, dim=-1) if normalize else embeds

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.logit_scale_log.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(self, images: torch.Tensor, token_ids: torch.Tensor) -> ClipOutput:
        """images [B,1,H,W], token_ids [B,L] (paired by index) -> normalised embeddings."""
        return ClipOutput(self.encode_image(images), self.encode_text(token_ids), self.logit_scale)

    # -- losses ------------------------------------------------------------------------
    def head_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features [B,C] -> [B,F] finding logits (dropout only in training)."""
        if self.finding_head is None:
            raise ValueError("this classifier was built without a finding head")
        return self.finding_head(self.head_dropout(features))

    def finding_logits(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,1,H,W] -> [B,F] logits of the linear head."""
        return self.head_logits(self.image_features(images))

    @staticmethod
    def head_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None,
                  pos_weight: torch.Tensor | None = None) -> torch.Tensor:
        """BCE of [B,F] logits vs 0/1 targets; mask [B,F] (1 = labelled) skips unlabelled findings;
        pos_weight [F] up-weights the positives of rare findings."""
        loss = F.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none",
                                                  pos_weight=pos_weight)
        if mask is None:
            return loss.mean()
        mask = mask.float()
        return (loss * mask).sum() / mask.sum().clamp(min=1.0)

    # -- classification ----------------------------------------------------------------
    def zero_shot_probabilities(self, image_embeds: torch.Tensor, positive_prompt_embeds: torch.Tensor,
                                negative_prompt_embeds: torch.Tensor) -> torch.Tensor:
        """[B,D] images, [F,D] positive and negative prompts -> [B,F] P(positive).

        Softmax over each (positive, negative) pair of scaled cosine similarities, which is the
        sigmoid of their difference.
        """
        image = F.normalize(image_embeds, dim=-1)
        positive = F.normalize(positive_prompt_embeds, dim=-1)
        negative = F.normalize(negative_prompt_embeds, dim=-1)
        margin = image @ positive.T - image @ negative.T          # [B,F]
        return torch.sigmoid(self.logit_scale * margin)

    def prompt_embeddings(self, positive_ids: torch.Tensor, negative_ids: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [F,L] of the positive and negative prompts -> two [F,D] normalised embeddings."""
        return self.encode_text(positive_ids), self.encode_text(negative_ids)

    def gate_probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features [B,C] -> [B,2]: P(chest radiograph), P(lateral view) (GATE_OUTPUTS)."""
        return torch.sigmoid(self.input_gate(features))

    def input_check_scores(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features [V,C] -> (P(chest radiograph) [V], P(lateral view) [V]) for the input check."""
        gate = self.gate_probabilities(features)
        return gate[:, 0], gate[:, 1]

    @staticmethod
    def combine_views(view_probabilities: torch.Tensor) -> torch.Tensor:
        """[V,F] probabilities of the views of one study -> [F] (mean over views)."""
        return view_probabilities.mean(dim=0)

    # -- explanation -------------------------------------------------------------------
    def finding_heatmaps(self, images: torch.Tensor, finding_index: int,
                         positive_prompt_embeds: torch.Tensor | None = None,
                         negative_prompt_embeds: torch.Tensor | None = None,
                         probe_weight: float = 0.0) -> torch.Tensor:
        """Grad-CAM of one finding on the last feature map: [B,1,H,W] -> [B,g,g] in [0,1].

        The score is the zero-shot margin when prompt embeddings [F,D] are given, else the
        head logit. With `probe_weight` > 0 (the card's share of the feature probe in the
        logits), the probe's own Grad-CAM is mixed in with that weight on its finer grid, so
        the map explains the probability the panel shows. Works inside torch.inference_mode().
        """
        use_prompts = positive_prompt_embeds is not None and negative_prompt_embeds is not None
        if not use_prompts and self.finding_head is None:
            raise ValueError("Grad-CAM needs prompt embeddings or a finding head")

        def score(fmap: torch.Tensor) -> torch.Tensor:
            features = self.pool(fmap)
            if not use_prompts:
                return self.finding_head(features)[:, finding_index]
            image = self.embed_features(features)
            positive = F.normalize(positive_prompt_embeds.clone()[finding_index], dim=-1)
            negative = F.normalize(negative_prompt_embeds.clone()[finding_index], dim=-1)
            return image @ positive - image @ negative

        cam = grad_cam(images, self.feature_map, score)
        if not probe_weight or self.feature_probe is None:
            return cam
        probe_cam = self.feature_probe.finding_heatmaps(images, finding_index)
        cam = F.interpolate(cam[:, None], size=probe_cam.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        mixed = (1.0 - probe_weight) * cam + probe_weight * probe_cam
        return mixed / mixed.amax(dim=(1, 2), keepdim=True).clamp(min=1e-8)
