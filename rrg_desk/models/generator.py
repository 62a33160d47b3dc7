"""Region-guided sentence generator: a small GPT-2 decoder with cross-attention (RGRG + TRRG + MCSAM).

Each sentence is conditioned on one region. The decoder cross-attends to encoder tokens
laid out as
    [region token] + [image tokens ...] + [disease-clue tokens x F] + [memory tokens x M]
- region token: the detector's RoI feature of that region, projected, plus a learned
  embedding of the region type (index into REGION_NAMES);
- image tokens: a global feature grid of the image (detector FPN or CLIP patch tokens),
  projected, plus a learned position embedding; cross-attention over them is what
  `cross_attention_map` turns into a per-sentence heatmap;
- disease-clue tokens (TRRG): one per finding, p * present_f + (1 - p) * absent_f, where p
  is the classifier's probability, so the decoder sees what the classifier sees;
- memory tokens (MCSAM): learned, shared by all sentences.
Every visual input is optional. With none at all the decoder runs as a plain language model
(no cross-attention) for stage-1 pre-training on report text.

Batch convention: N sentences; image_tokens / finding_probs may have leading dim 1 and are
broadcast to N (all regions of one image share them).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rrg_desk.models.config import ConfigDict
from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.models.gpt2 import IGNORE_INDEX, GPT2Config, GPT2Decoder, KVCache, causal_lm_loss
from rrg_desk.models.regions import REGION_NAMES


@dataclass
class GeneratorConfig(ConfigDict):
    vocab_size: int = 2000
    n_positions: int = 64
    n_embd: int = 224
    n_layer: int = 3
    n_head: int = 4
    n_inner: int = 448
    dropout: float = 0.1
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    region_feature_dim: int = 256
    num_region_types: int = len(REGION_NAMES)
    image_token_dim: int = 128
    max_image_tokens: int = 256
    num_findings: int = len(FINDING_NAMES)
    num_memory_tokens: int = 4
    length_penalty: float = 1.0    # beam score = sum log p / length ** length_penalty

    @classmethod
    def tiny(cls, vocab_size: int = 2000, **overrides) -> GeneratorConfig:
        """Milliseconds-per-step config for tests."""
        values = dict(vocab_size=vocab_size, n_positions=24, n_embd=32, n_layer=2, n_head=2, n_inner=64,
                      dropout=0.0, region_feature_dim=16, image_token_dim=8, max_image_tokens=16,
                      num_memory_tokens=2)
        values.update(overrides)
        return cls(**values)




@dataclass
class GeneratorOutput:
    logits: torch.Tensor                               # [N,T,V]
    loss: torch.Tensor | None = None                   # scalar, when labels were given
    cross_attentions: tuple[torch.Tensor, ...] | None = None  # n_layer x [N,heads,T,S]
    image_token_slice: slice | None = None             # columns of S that are image tokens


def make_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """LM labels for right-padded [N,T] ids: padding ignored (the model shifts internally)."""
    return input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)


class RegionSentenceGenerator(nn.Module):
    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.gpt = GPT2Decoder(GPT2Config(
            vocab_size=config.vocab_size, n_positions=config.n_positions, n_embd=config.n_embd,
            n_layer=config.n_layer, n_head=config.n_head, n_inner=config.n_inner, dropout=config.dropout))
        width = config.n_embd
        self.region_proj = nn.Linear(config.region_feature_dim, width)
        self.region_type = nn.Embedding(config.num_region_types, width)
        self.image_proj = nn.Linear(config.image_token_dim, width)
        self.image_pos = nn.Parameter(torch.zeros(config.max_image_tokens, width))
        self.finding_present = nn.Parameter(torch.zeros(config.num_findings, width))
        self.finding_absent = nn.Parameter(torch.zeros(config.num_findings, width))
        self.memory = nn.Parameter(torch.zeros(config.num_memory_tokens, width))
        self.encoder_norm = nn.LayerNorm(width)
        for tensor in (self.region_type.weight, self.image_pos, self.finding_present,
                       self.finding_absent, self.memory):
            nn.init.normal_(tensor, std=0.02)

    # -- encoder tokens --------------------------------------------------------------
    @staticmethod
    def _broadcast(tensor: torch.Tensor, count: int) -> torch.Tensor:
        if tensor.shape[0] == count:
            return tensor
        if tensor.shape[0] == 1:
            return tensor.expand(count, *tensor.shape[1:])
        raise ValueError(f"leading dim {tensor.shape[0]} is neither 1 nor {count}")

    @staticmethod
    def _count(region_features, image_tokens, finding_probs) -> int | None:
        if region_features is not None:
            return region_features.shape[0]
        sizes = [t.shape[0] for t in (image_tokens, finding_probs) if t is not None]
        return max(sizes) if sizes else None

    def encoder_states(self, region_features: torch.Tensor | None = None,
                       region_ids: torch.Tensor | None = None,
                       image_tokens: torch.Tensor | None = None,
                       finding_probs: torch.Tensor | None = None,
                       ) -> tuple[torch.Tensor | None, slice | None]:
        """Visual inputs -> (encoder states [N,S,n_embd] or None when all are absent, image slice).

        region_features [N,Dr] with region_ids [N]; image_tokens [N|1,G,Di] (or [G,Di]);
        finding_probs [N|1,F] (or [F]).
        """
        if image_tokens is not None and image_tokens.ndim == 2:
            image_tokens = image_tokens[None]                                 # [G,Di] -> [1,G,Di]
        if finding_probs is not None and finding_probs.ndim == 1:
            finding_probs = finding_probs[None]                               # [F] -> [1,F]
        count = self._count(region_features, image_tokens, finding_probs)
        if count is None:
            return None, None
        parts: list[torch.Tensor] = []
        start = 0
        if region_features is not None:
            if region_ids is None:
                raise ValueError("region_features need region_ids")
            region = self.region_proj(region_features) + self.region_type(region_ids.long())
            parts.append(region[:, None])                                   # [N,1,E]
            start = 1
        image_slice = None
        if image_tokens is not None:
            num_tokens = image_tokens.shape[1]
            if num_tokens > self.config.max_image_tokens:
                raise ValueError(f"{num_tokens} image tokens > max_image_tokens={self.config.max_image_tokens}")
            image = self.image_proj(image_tokens) + self.image_pos[:num_tokens]   # [N|1,G,E]
            parts.append(self._broadcast(image, count))
            image_slice = slice(start, start + num_tokens)
        if finding_probs is not None:
            probs = self._broadcast(finding_probs, count).to(self.finding_present.dtype)[..., None]  # [N,F,1]
            parts.append(probs * self.finding_present + (1 - probs) * self.finding_absent)     # [N,F,E]
        if self.config.num_memory_tokens:
            parts.append(self.memory.expand(count, -1, -1))                 # [N,M,E]
        return self.encoder_norm(torch.cat(parts, dim=1)), image_slice

    # -- training --------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                region_features: torch.Tensor | None = None, region_ids: torch.Tensor | None = None,
                image_tokens: torch.Tensor | None = None, finding_probs: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_attentions: bool = False) -> GeneratorOutput:
        """input_ids [N,T] (bos ... eos, right-padded), attention_mask [N,T] -> logits [N,T,V].

        labels [N,T] (see `make_labels`) give the shifted cross-entropy loss.
        """
        states, image_slice = self.encoder_states(region_features, region_ids, image_tokens, finding_probs)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.gpt(input_ids, attention_mask, encoder_states=states, output_cross_attentions=output_attentions)
        loss = causal_lm_loss(out.logits, labels) if labels is not None else None
        return GeneratorOutput(logits=out.logits, loss=loss, cross_attentions=out.cross_attentions,
                               image_token_slice=image_slice)

    # -- decoding --------------------------------------------------------------------
    @torch.no_grad()
    def generate_sentences(self, region_features: torch.Tensor | None = None,
                           region_ids: torch.Tensor | None = None,
                           image_tokens: torch.Tensor | None = None,
                           finding_probs: torch.Tensor | None = None,
                           max_len: int | None = None, beam_size: int = 1,
                           bos_id: int | None = None, eos_id: int | None = None,
                           num_sequences: int | None = None) -> list[list[int]]:
        """Greedy (beam_size=1) or beam search with the KV cache; one sentence per row of N.

        Returns the generated ids after bos, each ending with eos unless it reached max_len
        tokens (max_len defaults to, and is capped at, n_positions - 1). `num_sequences` is
        needed only in text-only mode (no visual input). Call in eval mode (dropout off).
        """
        cfg = self.config
        bos = cfg.bos_id if bos_id is None else bos_id
        eos = cfg.eos_id if eos_id is None else eos_id
        max_len = cfg.n_positions - 1 if max_len is None else min(max_len, cfg.n_positions - 1)
        states, _ = self.encoder_states(region_features, region_ids, image_tokens, finding_probs)
        count = states.shape[0] if states is not None else num_sequences
        if not count:
            return []
        if beam_size <= 1:
            return self._greedy(states, count, max_len, bos, eos)
        return self._beam(states, count, max_len, bos, eos, beam_size)

    def _device(self) -> torch.device:
        return self.memory.device

    def _next_logits(self, step_input, states, cache: KVCache) -> torch.Tensor:
        # step_input [N,1] -> logits of the next token [N,V]; no padding inside a decoding batch
        return self.gpt(step_input, encoder_states=states, cache=cache).logits[:, -1]

    def _greedy(self, states, count, max_len, bos, eos) -> list[list[int]]:
        step_input = torch.full((count, 1), bos, dtype=torch.long, device=self._device())
        finished = torch.zeros(count, dtype=torch.bool, device=step_input.device)
        outputs: list[list[int]] = [[] for _ in range(count)]
        cache = KVCache()
        for _ in range(max_len):
            next_token = self._next_logits(step_input, states, cache).argmax(dim=-1)   # [N]
            next_token = next_token.masked_fill(finished, self.config.pad_id)
            for row, (token, done) in enumerate(zip(next_token.tolist(), finished.tolist())):
                if not done:
                    outputs[row].append(token)
            finished |= next_token == eos
            if bool(finished.all()):
                break
            step_input = next_token[:, None]
        return outputs

    def _beam(self, states, count, max_len, bos, eos, beam_size) -> list[list[int]]:
        device, pad = self._device(), self.config.pad_id
        flat = count * beam_size
        if states is not None:
            states = states.repeat_interleave(beam_size, dim=0)                # [N*K,S,E]
        scores = torch.zeros(count, beam_size, device=device)
        scores[:, 1:] = float("-inf")     # all beams start identical: expand from beam 0 only
        sequences = torch.empty(flat, 0, dtype=torch.long, device=device)
        finished = torch.zeros(flat, dtype=torch.bool, device=device)
        lengths = torch.zeros(flat, device=device)
        step_input = torch.full((flat, 1), bos, dtype=torch.long, device=device)
        row_offset = (torch.arange(count, device=device) * beam_size)[:, None]  # [N,1]
        cache = KVCache()
        for _ in range(max_len):
            log_probs = F.log_softmax(self._next_logits(step_input, states, cache).float(), dim=-1)  # [N*K,V]
            vocab = log_probs.shape[-1]
            # a finished beam continues only with pad, at no cost, so its score is frozen
            log_probs[finished] = float("-inf")
            log_probs[finished, pad] = 0.0
            candidates = (scores.reshape(flat, 1) + log_probs).reshape(count, beam_size * vocab)
            scores, top = candidates.topk(beam_size, dim=1)                   # [N,K]
            source = (row_offset + torch.div(top, vocab, rounding_mode="floor")).reshape(-1)  # [N*K]
            tokens = (top % vocab).reshape(-1)
            was_finished = finished[source]
            sequences = torch.cat([sequences[source], tokens[:, None]], dim=1)
            lengths = lengths[source] + (~was_finished).float()
            finished = was_finished | (tokens == eos)
            cache.reorder(source)
            if bool(finished.all()):
                break
            step_input = tokens[:, None]
        normalised = scores.reshape(-1) / lengths.clamp(min=1.0) ** self.config.length_penalty
        best = normalised.reshape(count, beam_size).argmax(dim=1) + row_offset[:, 0]
        results = []
        for index in best.tolist():
            length = int(lengths[index].item())
            results.append(sequences[index, :length].tolist())
        return results

    # -- explanation -----------------------------------------------------------------
    @torch.no_grad()
    def cross_attention_map(self, sentences: list[list[int]], region_features: torch.Tensor | None,
                            region_ids: torch.Tensor | None, image_tokens: torch.Tensor,
                            finding_probs: torch.Tensor | None = None) -> torch.Tensor:
        """Attention of each sentence over the image tokens: [N, G], rows sum to 1.

        Teacher-forces [bos] + sentence (without its final eos) and averages the
        cross-attention over layers, heads and the sentence's positions, then renormalises
        over the image-token columns. Reshape to the image grid to get a heatmap.
        """
        cfg = self.config
        device = self._device()
        rows = [[cfg.bos_id] + [t for t in sentence if t != cfg.eos_id][: cfg.n_positions - 1]
                for sentence in sentences]
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), cfg.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(input_ids)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row, device=device)
            mask[i, : len(row)] = 1
        out = self.forward(input_ids, mask, region_features, region_ids, image_tokens, finding_probs,
                           output_attentions=True)
        attention = torch.stack(out.cross_attentions).mean(dim=(0, 2))          # [N,T,S]
        weights = mask.to(attention.dtype)[..., None]
        attention = (attention * weights).sum(dim=1) / weights.sum(dim=1)        # [N,S]
        image = attention[:, out.image_token_slice]                               # [N,G]
        return image / image.sum(dim=1, keepdim=True).clamp(min=1e-12)
