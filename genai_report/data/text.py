"""Text corpora, a character tokenizer, train/validation splits and batches.

The embedded corpora (``english``, ``python``) ship in :mod:`genai_report.corpora` with their
sha256 pinned here; any UTF-8 text file can be used instead (pass its path, or set
``$GENAI_REPORT_TEXT_CORPUS`` for the pipeline). :func:`split` holds out either the tail of
the text or every k-th chunk of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genai_report.data.corpora import (
    CORPORA_DIR,
    CORPUS_ENV,
    EMBEDDED,
    MIN_CHARS,
    CorpusError,
    corpus_path,
    default_corpus_path,
    load_corpus,
    sha256_of,
)

__all__ = [
    "CORPORA_DIR",
    "CORPUS_ENV",
    "EMBEDDED",
    "MIN_CHARS",
    "CharTokenizer",
    "CorpusError",
    "corpus_path",
    "default_corpus_path",
    "get_batch",
    "load_corpus",
    "sha256_of",
    "split",
]

@dataclass(frozen=True)
class CharTokenizer:
    """Characters <-> integer ids over a fixed, sorted vocabulary.

    Attributes:
        chars: the vocabulary, one character per id.
    """

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is every character of ``text``."""
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Ids of ``text`` as a 1-D int64 tensor; unknown characters raise ``ValueError``."""
        index = {c: i for i, c in enumerate(self.chars)}
        try:
            return torch.tensor([index[c] for c in text], dtype=torch.long)
        except KeyError as exc:
            raise ValueError(f"Character {exc.args[0]!r} is not in the vocabulary.") from None

    def decode(self, ids) -> str:
        """Text of a sequence of ids."""
        return "".join(self.chars[int(i)] for i in ids)


def split(ids: torch.Tensor, val_fraction: float = 0.1, chunk: int | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Train/validation split of a 1-D token tensor.

    Args:
        ids: token ids ``(N,)``.
        val_fraction: share kept for validation, in (0, 1).
        chunk: ``None`` keeps the contiguous tail for validation (nanoGPT's split). A number
            cuts the text into chunks of that many tokens and validates on every
            ``round(1 / val_fraction)``-th one, so validation text comes from all parts of
            a corpus whose sections differ (falls back to the tail if the text is too short).

    Returns:
        ``(train, val)``.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}.")
    every = max(2, round(1 / val_fraction))
    if chunk is None or len(ids) < chunk * every:
        n = int(len(ids) * (1 - val_fraction))
        return ids[:n], ids[n:]
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}.")
    pieces = ids.split(chunk)
    val = [c for i, c in enumerate(pieces) if i % every == every - 1]
    train = [c for i, c in enumerate(pieces) if i % every != every - 1]
    return torch.cat(train), torch.cat(val)


def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of ``block_size`` tokens and the same windows shifted by one.

    Args:
        data: token ids ``(N,)`` with ``N > block_size``.
        batch_size: number of windows B.
        block_size: window length T.
        generator: source of the window offsets.

    Returns:
        ``(x, y)``, each ``(B, T)``; ``y[:, t]`` is the token after ``x[:, t]``.
    """
    if len(data) <= block_size:
        raise ValueError(f"Need more than block_size={block_size} tokens, got {len(data)}.")
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = ix[:, None] + torch.arange(block_size + 1)  # (B, T+1)
    windows = data[offsets]  # (B, T+1)
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
