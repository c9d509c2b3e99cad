"""Short English captions for the digits, generated from each image's own pixels.

A contrastive image–text model needs pairs of images and text. Ours describe each 8x8 digit
by its class and by two attributes measured on the image, so that a caption can say what a
class label cannot:

* **stroke**: the share of ink in the image, against the other images of its class: the
  heaviest third is ``"thick"``, the lightest third ``"thin"``, the middle third says nothing.
* **slant**: how the ink's horizontal position changes with height (the regression slope of
  column on row, weighted by ink): the third of the class whose top leans furthest right is
  ``"leaning right"``, the third leaning furthest left ``"leaning left"``.

Thresholds are the class's terciles on the training split, so every class has thick and thin,
left- and right-leaning members. A training caption names each of an image's attributes with
probability one half (:func:`sample_captions`), so the same image is seen as ``"a seven"``,
``"a thick seven"``, ``"a seven leaning left"`` and ``"a thick seven leaning left"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""The word for each class, in label order."""
STROKES = ("", "thick", "thin")
"""Stroke attribute values; index 0 means "not said" (the middle third)."""
SLANTS = ("", "leaning left", "leaning right")
"""Slant attribute values; index 0 means "not said" (the middle third)."""
PAD, EOS = 0, 1
"""Token ids of padding and of the end-of-caption token (whose features embed the caption)."""
VOCAB = ("<pad>", "<eos>", "a", *DIGIT_WORDS, "thick", "thin", "leaning", "left", "right")
"""Every word a caption can contain, in token-id order."""
MAX_LEN = 7
"""Longest caption in tokens: ``a thick seven leaning left <eos>`` plus room for one more."""


def ink(x: torch.Tensor) -> torch.Tensor:
    """Share of the image covered by ink, ``(N,)``, for images ``(N, 1, 8, 8)`` in [-1, 1]."""
    return ((x + 1) / 2).flatten(1).mean(1)


def slant(x: torch.Tensor) -> torch.Tensor:
    """Ink-weighted slope of column on row, ``(N,)``; positive when the top leans right.

    Rows count downwards, so a digit whose top is to the right of its bottom has columns
    that *fall* as rows rise: the slope ``d col / d row`` is negative, and we flip its sign.
    """
    w = ((x + 1) / 2).squeeze(1)  # (N, 8, 8) ink weights
    rows = torch.arange(8.0).view(1, 8, 1)
    cols = torch.arange(8.0).view(1, 1, 8)
    total = w.sum((1, 2)).clamp(min=1e-6)  # (N,)
    r_mean = (w * rows).sum((1, 2)) / total
    c_mean = (w * cols).sum((1, 2)) / total
    dr = rows - r_mean.view(-1, 1, 1)  # (N, 8, 1)
    dc = cols - c_mean.view(-1, 1, 1)  # (N, 1, 8)
    cov = (w * dr * dc).sum((1, 2)) / total
    var = (w * dr**2).sum((1, 2)) / total
    return -cov / var.clamp(min=1e-6)


@dataclass(frozen=True)
class Attributes:
    """Class-wise tercile thresholds of the two attributes, fitted on the training split.

    Attributes:
        ink_low, ink_high: per class ``(10,)``: below ``ink_low`` is thin, above ``ink_high``
            thick.
        slant_low, slant_high: per class ``(10,)``: below ``slant_low`` leans left, above
            ``slant_high`` leans right.
    """

    ink_low: torch.Tensor
    ink_high: torch.Tensor
    slant_low: torch.Tensor
    slant_high: torch.Tensor

    @classmethod
    def fit(cls, x: torch.Tensor, y: torch.Tensor) -> Attributes:
        """Terciles of ink and slant within each class of ``(x, y)``."""
        q = torch.tensor([1 / 3, 2 / 3])
        i, s = ink(x), slant(x)
        ink_q = torch.stack([torch.quantile(i[y == c], q) for c in range(10)])  # (10, 2)
        slant_q = torch.stack([torch.quantile(s[y == c], q) for c in range(10)])
        return cls(ink_q[:, 0], ink_q[:, 1], slant_q[:, 0], slant_q[:, 1])

    def of(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stroke and slant indices ``(N,)`` each (into :data:`STROKES` and :data:`SLANTS`)."""
        i, s = ink(x), slant(x)
        stroke = torch.zeros(len(y), dtype=torch.long)
        stroke[i > self.ink_high[y]] = 1
        stroke[i < self.ink_low[y]] = 2
        lean = torch.zeros(len(y), dtype=torch.long)
        lean[s < self.slant_low[y]] = 1
        lean[s > self.slant_high[y]] = 2
        return stroke, lean


def caption(digit: int, stroke: int = 0, lean: int = 0) -> str:
    """The caption ``"a [stroke] <digit> [slant]"``; index 0 of an attribute omits it."""
    words = ["a", STROKES[stroke], DIGIT_WORDS[digit], SLANTS[lean]]
    return " ".join(w for w in words if w)


def all_captions() -> list[str]:
    """Every caption, indexed by ``caption_index`` (digit, stroke, slant)."""
    return [caption(d, s, t) for d in range(10) for s in range(len(STROKES))
            for t in range(len(SLANTS))]


def caption_index(digit: torch.Tensor, stroke: torch.Tensor, lean: torch.Tensor) -> torch.Tensor:
    """Index into :func:`all_captions` of each ``(digit, stroke, slant)`` triple."""
    return (digit * len(STROKES) + stroke) * len(SLANTS) + lean


def sample_captions(digit: torch.Tensor, stroke: torch.Tensor, lean: torch.Tensor,
                    generator: torch.Generator, p_say: float = 0.5) -> torch.Tensor:
    """Training captions: each true attribute is said with probability ``p_say``.

    Returns:
        Indices into :func:`all_captions`, ``(N,)``.
    """
    say = torch.rand(2, len(digit), generator=generator) < p_say  # (2, N)
    return caption_index(digit, stroke * say[0], lean * say[1])


def tokenize(text: str) -> list[int]:
    """Token ids of a caption followed by :data:`EOS`; unknown words raise ``ValueError``."""
    ids = []
    for w in text.split():
        if w not in VOCAB:
            raise ValueError(f"unknown word {w!r} in caption {text!r}; the vocabulary is "
                             f"{', '.join(VOCAB[2:])}.")
        ids.append(VOCAB.index(w))
    if len(ids) + 1 > MAX_LEN:
        raise ValueError(f"caption {text!r} is longer than {MAX_LEN - 1} words.")
    return ids + [EOS]


def encode_batch(texts: list[str]) -> torch.Tensor:
    """Padded token ids ``(N, MAX_LEN)`` of several captions."""
    out = torch.full((len(texts), MAX_LEN), PAD, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = tokenize(t)
        out[i, : len(ids)] = torch.tensor(ids)
    return out
