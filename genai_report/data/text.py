"""Text corpora, a character tokenizer, train/validation splits and batches.

The embedded corpora (``english``, ``python``) ship in :mod:`genai_report.corpora` with their
sha256 pinned here; any UTF-8 text file can be used instead (pass its path, or set
``$GENAI_REPORT_TEXT_CORPUS`` for the pipeline). :func:`split` holds out either the tail of
the text or every k-th chunk of it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from genai_report.pipeline.errors import did_you_mean

CORPORA_DIR = Path(__file__).resolve().parent.parent / "corpora"
EMBEDDED: dict[str, tuple[str, str]] = {
    "english": ("english.txt", "5f796d6439a25d8382f0bab5810c6b04bf0eb7d47210ccf9c6b727ee51304a59"),
    "python": ("python_code.txt",
               "6922f19cb18c9664c5451fcda667c7b8188e66dc8d8269d34136b3ef8fb1bc2b"),
}
CORPUS_ENV = "GENAI_REPORT_TEXT_CORPUS"
MIN_CHARS = 1000


class CorpusError(ValueError):
    """A corpus file is missing, empty, not UTF-8, too short, or not the pinned bytes."""


def corpus_path(name: str) -> Path:
    """Path of an embedded corpus name (``english``, ``python``) or of a user file.

    Args:
        name: an embedded corpus name, or a path to a UTF-8 text file.

    Returns:
        The path (not yet checked; :func:`load_corpus` checks it).
    """
    if name in EMBEDDED:
        return CORPORA_DIR / EMBEDDED[name][0]
    path = Path(name).expanduser()
    if path.suffix == "" and not path.exists():
        raise CorpusError(
            f"Unknown corpus '{name}'.{did_you_mean(name, EMBEDDED)} Use one of "
            f"{', '.join(EMBEDDED)} or the path of a UTF-8 text file."
        )
    return path


def default_corpus_path() -> Path:
    """The English corpus, or the file named by ``$GENAI_REPORT_TEXT_CORPUS`` if it is set.

    Pipeline nodes declare this callable in ``data=`` so the corpus bytes are in their key.
    """
    return corpus_path(os.environ.get(CORPUS_ENV) or "english")


def load_corpus(name: str | Path, *, min_chars: int = MIN_CHARS) -> str:
    """Read a corpus and check it.

    Args:
        name: an embedded corpus name or a path to a UTF-8 text file.
        min_chars: the least number of characters accepted.

    Returns:
        The text.

    Raises:
        CorpusError: with the file and what is wrong with it.
    """
    path = corpus_path(str(name))
    if not path.is_file():
        raise CorpusError(f"Corpus file '{path}' does not exist (or is not a file). "
                          "Check the path, or use an embedded corpus: "
                          f"{', '.join(EMBEDDED)}.")
    data = path.read_bytes()
    if not data:
        raise CorpusError(f"Corpus file '{path}' is empty. Give a text file with at least "
                          f"{min_chars} characters.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"Corpus file '{path}' is not UTF-8 text: byte {exc.start} "
                          f"({data[exc.start:exc.start + 1]!r}) cannot be decoded. Convert "
                          "it to UTF-8 (e.g. `iconv -t UTF-8`).") from None
    if len(text) < min_chars:
        raise CorpusError(f"Corpus file '{path}' is too short: {len(text)} characters, at "
                          f"least {min_chars} are needed to train and validate.")
    for key, (fname, digest) in EMBEDDED.items():
        if path.resolve() == (CORPORA_DIR / fname).resolve():
            found = hashlib.sha256(data).hexdigest()
            if found != digest:
                raise CorpusError(f"Embedded corpus '{key}' ({path}) has sha256 {found}, "
                                  f"expected {digest}. Restore the committed file "
                                  "(`git checkout -- genai_report/corpora`).")
    return text


def sha256_of(name: str | Path) -> str:
    """sha256 hex digest of a corpus file's bytes (recorded in provenance)."""
    return hashlib.sha256(corpus_path(str(name)).read_bytes()).hexdigest()


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
