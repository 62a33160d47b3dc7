"""GPT-2 decoder with cross-attention, in plain torch (nanoGPT-sized, no transformers import).

It is transformers' GPT2LMHeadModel(add_cross_attention=True) with eager attention, which
trained the shipped generators: the same parameter names and shapes, so their state dicts load
strictly, and the same operations in the same order, so the outputs are the same numbers:
- projections keep their weight as [in, out] and compute addmm(bias, x, weight) (GPT-2's "Conv1D");
- GELU is the tanh approximation written out ("gelu_new"; F.gelu(approximate="tanh") differs in
  the last bits);
- masked scores get the dtype's most negative value added, not -inf (a fully masked row stays finite);
- a fresh model draws its initial weights in transformers' order (each layer as built, then an
  init pass, then the head), so a seed gives the same weights as before.
Only what the generator uses is here: no token types, no head mask, no encoder mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100  # label value the loss skips (padding)

_HEAD, _TOKEN_EMBEDDING = "lm_head.weight", "transformer.wte.weight"


@dataclass
class GPT2Config:
    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int
    dropout: float = 0.1            # on embeddings, attention weights and residual branches alike
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02


@dataclass
class DecoderOutput:
    logits: torch.Tensor                                        # [N,T,V]
    cross_attentions: tuple[torch.Tensor, ...] | None = None    # n_layer x [N,heads,T,S], when asked for


class KVCache:
    """Keys and values [N,heads,length,head_dim] for incremental decoding, per (kind, layer):
    "self" grows by the new tokens at every step; "cross" (over the encoder states) is computed
    at the first step and reused."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def length(self) -> int:
        """Tokens decoded so far."""
        return self.states[("self", 0)][0].shape[-2] if ("self", 0) in self.states else 0

    def append(self, slot: tuple[str, int], keys: torch.Tensor, values: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new tokens' keys and values to the slot; returns the slot's whole keys and values."""
        if slot in self.states:
            past_keys, past_values = self.states[slot]
            keys, values = torch.cat([past_keys, keys], dim=-2), torch.cat([past_values, values], dim=-2)
        else:  # a copy, as transformers stores it (same memory layout, same arithmetic after)
            keys, values = keys.contiguous(), values.contiguous()
        self.states[slot] = (keys, values)
        return keys, values

    def reorder(self, rows: torch.Tensor) -> None:
        """Beam search: row i continues from row rows[i] [N]."""
        self.states = {slot: (keys.index_select(0, rows), values.index_select(0, rows))
                       for slot, (keys, values) in self.states.items()}


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation, exactly as GPT-2 writes it."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of position t predicting labels[t + 1]; logits [N,T,V], labels [N,T]
    with IGNORE_INDEX where nothing is predicted."""
    targets = F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:].contiguous()
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=IGNORE_INDEX)


def padded_causal_mask(attention_mask: torch.Tensor, query_length: int, dtype: torch.dtype) -> torch.Tensor:
    """attention_mask [N,K] (1 = token, 0 = padding; K = past + T) -> additive mask [N,1,T,K]:
    0 where query i (at position K - T + i) may see key j, the dtype's minimum elsewhere."""
    keys = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    queries = keys[keys.shape[0] - query_length:, None]
    allowed = (keys[None, :] <= queries)[None, None] & attention_mask.bool()[:, None, None, :]
    return torch.where(allowed, torch.zeros((), device=allowed.device, dtype=dtype), torch.finfo(dtype).min)


class TransposedLinear(nn.Module):
    """A linear layer with its weight stored [in, out] (GPT-2's "Conv1D")."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [..., in] -> [..., out]
        out = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return out.view(x.size()[:-1] + (self.weight.shape[1],))


class Attention(nn.Module):
    """Multi-head attention: causal self-attention, or (cross=True) the tokens attending to the
    encoder states, unmasked."""

    def __init__(self, config: GPT2Config, layer: int, cross: bool = False):
        super().__init__()
        width = config.n_embd
        self.layer, self.cross = layer, cross
        self.width, self.head_dim = width, width // config.n_head
        if cross:  # queries from the tokens, keys and values from the encoder states
            self.c_attn = TransposedLinear(width, 2 * width)
            self.q_attn = TransposedLinear(width, width)
        else:
            self.c_attn = TransposedLinear(width, 3 * width)
        self.c_proj = TransposedLinear(width, width)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # [N,L,E] -> [N,heads,L,head_dim]
        return x.view(*x.shape[:-1], -1, self.head_dim).transpose(1, 2)

    def _self_qkv(self, hidden, cache):
        query, keys, values = (self._heads(t) for t in self.c_attn(hidden).split(self.width, dim=2))
        if cache is not None:
            keys, values = cache.append(("self", self.layer), keys, values)
        return query, keys, values

    def _cross_qkv(self, hidden, encoder_states, cache):
        query, slot = self._heads(self.q_attn(hidden)), ("cross", self.layer)
        if cache is not None and slot in cache.states:
            return (query, *cache.states[slot])
        keys, values = (self._heads(t) for t in self.c_attn(encoder_states).split(self.width, dim=2))
        if cache is not None:
            keys, values = cache.append(slot, keys, values)
        return query, keys, values

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None,
                encoder_states: torch.Tensor | None = None, cache: KVCache | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [N,T,E] -> (output [N,T,E], attention weights [N,heads,T,K])."""
        if self.cross:
            query, keys, values = self._cross_qkv(hidden, encoder_states, cache)
        else:
            query, keys, values = self._self_qkv(hidden, cache)
        weights = torch.matmul(query, keys.transpose(-1, -2)) * self.head_dim ** -0.5
        if mask is not None:
            weights = weights + mask
        weights = self.attn_dropout(F.softmax(weights, dim=-1).type(values.dtype))
        out = torch.matmul(weights, values).transpose(1, 2)                  # [N,T,heads,head_dim]
        out = self.c_proj(out.reshape(*out.shape[:-2], -1).contiguous())
        return self.resid_dropout(out), weights


class MLP(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.c_fc = TransposedLinear(config.n_embd, config.n_inner)
        self.c_proj = TransposedLinear(config.n_inner, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(gelu_new(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm block: self-attention, cross-attention (when there are encoder states), MLP."""

    def __init__(self, config: GPT2Config, layer: int):
        super().__init__()
        width, eps = config.n_embd, config.layer_norm_eps
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(config, layer)
        self.ln_2 = nn.LayerNorm(width, eps=eps)
        self.crossattention = Attention(config, layer, cross=True)
        self.ln_cross_attn = nn.LayerNorm(width, eps=eps)
        self.mlp = MLP(config)

    def forward(self, x, mask, encoder_states, cache) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [N,T,E] -> (x [N,T,E], cross-attention weights [N,heads,T,S] or None)."""
        attended, _ = self.attn(self.ln_1(x), mask, cache=cache)
        x = attended + x
        cross_weights = None
        if encoder_states is not None:
            attended, cross_weights = self.crossattention(self.ln_cross_attn(x), encoder_states=encoder_states,
                                                          cache=cache)
            x = x + attended
        return x + self.mlp(self.ln_2(x)), cross_weights


class GPT2Transformer(nn.Module):
    """Token and position embeddings, the blocks, the final layer norm."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config, layer) for layer in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)

    def forward(self, input_ids, attention_mask, encoder_states, cache) -> tuple[torch.Tensor, list]:
        """input_ids [N,T] -> (hidden [N,T,E], per layer the cross-attention weights or None)."""
        past = cache.length if cache is not None else 0
        if attention_mask is None:  # no padding
            attention_mask = torch.ones(input_ids.shape[0], past + input_ids.shape[1], device=input_ids.device)
        tokens = self.wte(input_ids)
        positions = (torch.arange(input_ids.shape[1], device=input_ids.device) + past)[None]   # [1,T]
        x = self.drop(tokens + self.wpe(positions))
        mask = padded_causal_mask(attention_mask, input_ids.shape[1], tokens.dtype)
        cross_weights = []
        for block in self.h:
            x, weights = block(x, mask, encoder_states, cache)
            cross_weights.append(weights)
        return self.ln_f(x), cross_weights


class GPT2Decoder(nn.Module):
    """GPT-2 language model whose tokens also attend to encoder states; lm_head shares wte's weight."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = GPT2Transformer(config)
        self.transformer.apply(self._init_weights)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self._init_weights(self.lm_head)
        self.lm_head.weight = self.transformer.wte.weight
        # safetensors refuses shared tensors: only wte is serialised, lm_head is tied again on load
        self.register_state_dict_post_hook(_drop_tied_head)
        self.register_load_state_dict_pre_hook(_restore_tied_head)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, TransposedLinear, nn.Embedding)):
            module.weight.normal_(0.0, std)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        if isinstance(module, (Attention, MLP)):  # GPT-2: residual projections scaled by depth
            module.c_proj.weight.normal_(0.0, std / math.sqrt(2 * self.config.n_layer))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                encoder_states: torch.Tensor | None = None, cache: KVCache | None = None,
                output_cross_attentions: bool = False) -> DecoderOutput:
        """input_ids [N,T] (with a cache: only the new tokens), attention_mask [N,past+T] (None: no
        padding), encoder_states [N,S,E] -> logits [N,T,V]; the cache, when given, is extended."""
        hidden, cross_weights = self.transformer(input_ids, attention_mask, encoder_states, cache)
        cross = tuple(cross_weights) if output_cross_attentions and encoder_states is not None else None
        return DecoderOutput(logits=self.lm_head(hidden), cross_attentions=cross)


def _drop_tied_head(module, state_dict, prefix, local_metadata) -> None:
    state_dict.pop(prefix + _HEAD, None)


def _restore_tied_head(module, state_dict, prefix, *args) -> None:
    head, embedding = prefix + _HEAD, prefix + _TOKEN_EMBEDDING
    if head not in state_dict and embedding in state_dict:
        state_dict[head] = state_dict[embedding]
    elif embedding not in state_dict and head in state_dict:
        state_dict[embedding] = state_dict[head]
