"""Word-level tokenizer for report text, shared by the CLIP text tower and the generator.

Reports use a small closed vocabulary (~1-2k words in IU X-ray), so a word-level model
keeps every token a readable word and makes decoding trivial; subword pieces would only
add length. Text is lower-cased, punctuation marks become tokens of their own and runs
of dots ("effusion..") collapse to one. Words below the training frequency cut map to
[UNK].

Special tokens have fixed ids: pad=0, bos=1, eos=2, unk=3.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "[PAD]", "[BOS]", "[EOS]", "[UNK]"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)

# Decoding rules, applied in order: re-glue what the pre-tokenizer split apart.
_DECIMAL = re.compile(r"(\d) \. (\d)")                 # "3 . 5" -> "3.5"
_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]])")         # "effusion ." -> "effusion."
_SPACE_AFTER = re.compile(r"([(\[]) ")                 # "( stable" -> "(stable"
_JOINERS = re.compile(r" ?([-/']) ?")                  # "t - spine" -> "t-spine"
_SENTENCE_START = re.compile(r"(^|[.!?] )([a-z])")     # capitalise each sentence


class TokenizerError(ValueError):
    """The tokenizer JSON is unusable (corrupt, or missing the special tokens)."""


def _build_untrained() -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.Lowercase(),
        normalizers.Replace(Regex(r"\.(\s*\.)+"), "."),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Punctuation(behavior="isolated"),
    ])
    return tokenizer


def _natural_text(words: Sequence[str]) -> str:
    text = " ".join(words)
    text = _DECIMAL.sub(r"\1.\2", text)
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    text = _JOINERS.sub(r"\1", text)
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)


class ReportTokenizer:
    """Thin wrapper around a trained `tokenizers.Tokenizer` (word level)."""

    def __init__(self, tokenizer: Tokenizer):
        ids = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
        if ids != [0, 1, 2, 3]:
            raise TokenizerError(f"special tokens {SPECIAL_TOKENS} must have ids 0..3, got {ids}")
        self._tokenizer = tokenizer
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = ids
        self._special_ids = frozenset(ids)

    # -- construction / persistence -------------------------------------------------
    @classmethod
    def train_from_texts(cls, texts: Iterable[str], vocab_size: int = 2000,
                         min_frequency: int = 2) -> ReportTokenizer:
        """Learn the vocabulary: the `vocab_size` most frequent words seen >= min_frequency times."""
        tokenizer = _build_untrained()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=list(SPECIAL_TOKENS), show_progress=False)
        tokenizer.train_from_iterator(texts, trainer)
        return cls(tokenizer)

    def to_json(self) -> str:
        return self._tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str) -> ReportTokenizer:
        try:
            json.loads(text)
            tokenizer = Tokenizer.from_str(text)
        except Exception as exc:  # tokenizers raises a bare Exception on bad input
            raise TokenizerError(f"invalid tokenizer JSON: {exc}") from exc
        return cls(tokenizer)

    # -- properties ------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)

    def tokenize(self, text: str) -> list[str]:
        """The normalised word/punctuation tokens of `text` (no special tokens)."""
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    # -- encode / decode -------------------------------------------------------------
    def encode(self, text: str, max_len: int | None = None, add_special_tokens: bool = True) -> list[int]:
        """[bos] + word ids + [eos], truncated so the whole list fits in max_len.

        Truncation keeps the trailing eos, so every encoded sequence is terminated.
        """
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        if not add_special_tokens:
            return ids if max_len is None else ids[:max_len]
        if max_len is not None:
            if max_len < 2:
                raise ValueError("max_len must leave room for bos and eos (>= 2)")
            ids = ids[: max_len - 2]
        return [self.bos_id, *ids, self.eos_id]

    def encode_batch(self, texts: Sequence[str], max_len: int) -> tuple[list[list[int]], list[list[int]]]:
        """Encode and right-pad to the longest sequence: (ids, attention_mask), plain lists."""
        encoded = [self.encode(text, max_len) for text in texts]
        return self.pad(encoded)

    def pad(self, sequences: Sequence[Sequence[int]], length: int | None = None
            ) -> tuple[list[list[int]], list[list[int]]]:
        """Right-pad with pad_id to `length` (default: the longest); mask 1 = real token."""
        target = length if length is not None else max((len(s) for s in sequences), default=0)
        ids, mask = [], []
        for seq in sequences:
            seq = list(seq)[:target]
            fill = target - len(seq)
            ids.append(seq + [self.pad_id] * fill)
            mask.append([1] * len(seq) + [0] * fill)
        return ids, mask

    def decode(self, ids: Iterable[int]) -> str:
        """Natural text: specials dropped, punctuation re-attached, sentences capitalised.

        Decoding stops at the first eos. Unknown words ([UNK]) are dropped as well.
        """
        words = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id == self.eos_id:
                break
            if token_id in self._special_ids:
                continue
            token = self._tokenizer.id_to_token(token_id)
            if token is not None:
                words.append(token)
        return _natural_text(words)
