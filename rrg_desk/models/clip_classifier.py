"""CLIP finding classifier: open_clip's `CLIP` with a small ViT and its built-in text tower.

Image inputs are single-channel float tensors [B,1,H,W] ALREADY normalised by the caller
with the bundle card's (mean, std); they are resized here to `config.image_size` square if
needed (pad to square first to keep the aspect ratio). Text inputs are token ids from
`ReportTokenizer.encode` (bos ... eos); the text tower pools at the first eos.

Zero-shot finding probabilities compare each image with a (positive, negative) prompt pair
per finding; an optional linear head on the image embedding is trained with BCE on the
labeler's finding labels. Grad-CAM gives a coarse heatmap per finding on the ViT grid.
Nothing here ever downloads: the towers are built from config with random init.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from torch import nn

from rrg_desk.models.config import ConfigDict
from rrg_desk.models.findings import FINDING_NAMES, default_prompt_pairs

MAX_LOGIT_SCALE = 100.0


@dataclass
class ClipClassifierConfig(ConfigDict):
    vocab_size: int = 2000
    context_length: int = 64
    pad_id: int = 0
    eos_id: int = 2
    embed_dim: int = 128
    image_size: int = 224
    patch_size: int = 16
    vision_width: int = 128
    vision_layers: int = 4
    vision_head_width: int = 32          # heads = vision_width // vision_head_width
    text_width: int = 128
    text_layers: int = 3
    text_heads: int = 4
    mlp_ratio: float = 4.0
    use_finding_head: bool = True
    init_logit_scale: float = math.log(1 / 0.07)
    finding_names: list[str] = field(default_factory=lambda: list(FINDING_NAMES))
    # [[positive, negative], ...] in finding_names order; the card carries them to inference
    prompts: list[list[str]] = field(default_factory=lambda: [list(p) for p in default_prompt_pairs()])

    @classmethod
    def tiny(cls, vocab_size: int = 2000, **overrides) -> ClipClassifierConfig:
        """Milliseconds-per-step config for tests."""
        values = dict(vocab_size=vocab_size, context_length=16, embed_dim=32, image_size=32, patch_size=8,
                      vision_width=32, vision_layers=1, vision_head_width=16, text_width=32, text_layers=1,
                      text_heads=2, mlp_ratio=2.0)
        values.update(overrides)
        return cls(**values)



    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size


@dataclass
class ClipOutput:
    image_embeds: torch.Tensor   # [B, D], L2-normalised
    text_embeds: torch.Tensor    # [B, D], L2-normalised
    logit_scale: torch.Tensor    # scalar, exp() applied and clamped


class ClipClassifier(nn.Module):
    def __init__(self, config: ClipClassifierConfig):
        super().__init__()
        if config.prompts and len(config.prompts) != len(config.finding_names):
            raise ValueError("config.prompts needs one [positive, negative] pair per finding")
        self.config = config
        vision_cfg = CLIPVisionCfg(layers=config.vision_layers, width=config.vision_width,
                                   head_width=config.vision_head_width, mlp_ratio=config.mlp_ratio,
                                   patch_size=config.patch_size, image_size=config.image_size,
                                   output_tokens=True)
        text_cfg = CLIPTextCfg(context_length=config.context_length, vocab_size=config.vocab_size,
                               width=config.text_width, heads=config.text_heads, layers=config.text_layers,
                               mlp_ratio=config.mlp_ratio, pad_id=config.pad_id, eos_id=config.eos_id,
                               pool_type="eos")
        self.clip = CLIP(config.embed_dim, vision_cfg, text_cfg, init_logit_scale=config.init_logit_scale)
        # X-rays have one channel: a 1-channel patch embedding instead of repeating the image 3x.
        self.clip.visual.conv1 = nn.Conv2d(1, config.vision_width, kernel_size=config.patch_size,
                                           stride=config.patch_size, bias=False)
        num_findings = len(config.finding_names)
        self.finding_head = nn.Linear(config.embed_dim, num_findings) if config.use_finding_head else None
        self._clip_loss = ClipLoss()

    # -- encoders --------------------------------------------------------------------
    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        # images: [B,1,H,W] -> [B,1,S,S], S = config.image_size
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"expected images [B,1,H,W], got {tuple(images.shape)}")
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                   antialias=True)
        return images

    def encode_image_tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B,1,H,W] -> (embeds [B,D] not normalised, patch tokens [B,g*g,vision_width])."""
        pooled, tokens = self.clip.visual(self._resize(images))
        return pooled, tokens

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """images [B,1,H,W] -> [B,D]."""
        pooled, _ = self.encode_image_tokens(images)
        return F.normalize(pooled, dim=-1) if normalize else pooled

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
        return self.clip.encode_text(self._fit_context(token_ids.long()), normalize=normalize)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(self, images: torch.Tensor, token_ids: torch.Tensor) -> ClipOutput:
        """images [B,1,H,W], token_ids [B,L] (paired by index) -> normalised embeddings."""
        return ClipOutput(self.encode_image(images), self.encode_text(token_ids), self.logit_scale)

    # -- losses ----------------------------------------------------------------------
    def contrastive_loss(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE over the batch; both inputs [B,D] normalised, pairs on the diagonal."""
        return self._clip_loss(image_embeds, text_embeds, self.logit_scale)

    def finding_logits(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,1,H,W] -> [B,F] logits of the linear head."""
        if self.finding_head is None:
            raise ValueError("this classifier was built without a finding head")
        return self.finding_head(self.encode_image(images, normalize=False))

    @staticmethod
    def head_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """BCE of [B,F] logits vs 0/1 targets; mask [B,F] (1 = labelled) skips unmentioned findings."""
        loss = F.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none")
        if mask is None:
            return loss.mean()
        mask = mask.float()
        return (loss * mask).sum() / mask.sum().clamp(min=1.0)

    # -- classification --------------------------------------------------------------
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

    def head_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,1,H,W] -> [B,F] sigmoid of the finding head."""
        return torch.sigmoid(self.finding_logits(images))

    @staticmethod
    def combine_views(view_probabilities: torch.Tensor) -> torch.Tensor:
        """[V,F] probabilities of the views of one study -> [F] (mean over views)."""
        return view_probabilities.mean(dim=0)

    # -- explanation -----------------------------------------------------------------
    def finding_heatmaps(self, images: torch.Tensor, finding_index: int,
                         positive_prompt_embeds: torch.Tensor | None = None,
                         negative_prompt_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Gradient saliency of one finding on the ViT patch grid: [B,1,H,W] -> [B,g,g] in [0,1].

        The score is the zero-shot margin when prompt embeddings [F,D] are given, else the
        head logit. Gradients are taken at the INPUT of the last block: with class-token
        pooling the last block's patch outputs do not reach the score at all. Each patch's
        heat is the L2 norm of d(score)/d(token), max-normalised. Channel-averaged Grad-CAM
        weights were tried first and failed on ViT tokens (tests/models/test_clip_classifier.py
        ::test_heatmap_points_at_the_evidence: 0-13% peak hits vs 100% for the norm).
        Works inside torch.inference_mode() (it briefly leaves it).
        """
        use_prompts = positive_prompt_embeds is not None and negative_prompt_embeds is not None
        if not use_prompts and self.finding_head is None:
            raise ValueError("Grad-CAM needs prompt embeddings or a finding head")
        captured: list[torch.Tensor] = []
        last_block = self.clip.visual.transformer.resblocks[-1]
        handle = last_block.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
        try:
            with torch.inference_mode(False), torch.enable_grad():
                x = images.clone()  # a normal tensor even if `images` is an inference tensor
                pooled, _ = self.encode_image_tokens(x)
                if use_prompts:
                    positive = positive_prompt_embeds.clone()[finding_index]
                    negative = negative_prompt_embeds.clone()[finding_index]
                    image = F.normalize(pooled, dim=-1)
                    score = image @ F.normalize(positive, dim=-1) - image @ F.normalize(negative, dim=-1)
                else:
                    score = self.finding_head(pooled)[:, finding_index]
                activations = captured[-1]                               # [B,1+g*g,W]
                (gradients,) = torch.autograd.grad(score.sum(), activations)
        finally:
            handle.remove()
        cam = gradients[:, 1:].norm(dim=-1).detach()                      # [B,g*g]
        cam = cam / cam.amax(dim=1, keepdim=True).clamp(min=1e-8)
        grid = self.config.grid_size
        return cam.reshape(cam.shape[0], grid, grid)
