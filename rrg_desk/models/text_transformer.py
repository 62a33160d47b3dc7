"""The CLIP classifier's report encoder: a causal text transformer pooled at the first eos.

It is open_clip's TextTransformer as the classifier configured it (pool_type "eos", no layer
scale, no class token, a bias-free linear projection, exact GELU), which trained the shipped
classifiers: the same parameter names and shapes, so their state dicts load strictly, and the
same operations, so prompts encode to the same numbers. Attention is torch's
nn.MultiheadAttention called the way open_clip calls it (one tensor as query, key and value, an
additive -inf causal mask, no weights returned), so it takes the same fused path at inference.
A fresh tower draws its initial weights in open_clip's order, so a seed gives the same weights.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TextTransformerConfig:
    vocab_size: int
    context_length: int   # inputs are padded (or cut) to exactly this many tokens by the caller
    width: int
    heads: int
    layers: int
    mlp_ratio: float
    output_dim: int
    eos_id: int


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, hidden)), ("gelu", nn.GELU()),
                                              ("c_proj", nn.Linear(hidden, width))]))

    def forward(self, x: torch.Tensor, causal_mask: torch.Tensor) -> torch.Tensor:
        """x [B,L,W] -> [B,L,W]."""
        normed = self.ln_1(x)
        x = x + self.attn(normed, normed, normed, need_weights=False, attn_mask=causal_mask.to(normed.dtype))[0]
        return x + self.mlp(self.ln_2(x))


class ResidualBlocks(nn.Module):
    def __init__(self, config: TextTransformerConfig):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(config.width, config.heads, config.mlp_ratio)
                                        for _ in range(config.layers)])

    def forward(self, x: torch.Tensor, causal_mask: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, causal_mask)
        return x


class TextTransformer(nn.Module):
    def __init__(self, config: TextTransformerConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.transformer = ResidualBlocks(config)
        self.ln_final = nn.LayerNorm(config.width)
        # additive: -inf above the diagonal, so a token sees itself and the tokens before it
        length = config.context_length
        self.register_buffer("attn_mask", torch.full((length, length), float("-inf")).triu_(1), persistent=False)
        self.text_projection = nn.Parameter(torch.empty(config.width, config.output_dim))
        self._init_parameters()

    @torch.no_grad()
    def _init_parameters(self) -> None:
        width, layers = self.config.width, self.config.layers
        projection_std = width ** -0.5 * (2 * layers) ** -0.5
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=width ** -0.5)
            nn.init.normal_(block.attn.out_proj.weight, std=projection_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
            nn.init.normal_(block.mlp.c_proj.weight, std=projection_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """token_ids [B,context_length] (bos ... eos, padded) -> embeddings [B,output_dim], not normalised."""
        x = self.token_embedding(token_ids) + self.positional_embedding[: token_ids.shape[1]]
        x = self.ln_final(self.transformer(x, self.attn_mask))                     # [B,L,W]
        first_eos = (token_ids == self.config.eos_id).int().argmax(dim=-1)          # [B]
        return x[torch.arange(x.shape[0], device=x.device), first_eos] @ self.text_projection
