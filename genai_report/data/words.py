"""A language of independent words: a word list with frequencies, written word by word.

The masked-versus-causal demonstration trains its models on text made of the most frequent
words of a corpus, drawn independently with their corpus frequencies and separated by
single spaces. Nothing carries over from one word to the next, so all that the context of a
missing letter can tell about it is the rest of its word, and the best possible guess from
either side follows from the list itself: :meth:`Lexicon.best_from_left` (the beginning of
the word only, what a left-to-right model sees) and :meth:`Lexicon.best_from_both` (its
beginning and its end). :func:`letter_blanks` picks the letters to blank out.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import torch

#: The language's characters: a space, then the 26 lowercase letters (sorted, as
#: :class:`genai_report.data.text.CharTokenizer` expects).
ALPHABET = " abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Lexicon:
    """Words and the probability of drawing each.

    Attributes:
        words: distinct words of lowercase letters.
        probs: their probabilities (positive, summing to 1).
    """

    words: tuple[str, ...]
    probs: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.words or len(self.words) != len(self.probs):
            raise ValueError(f"Need one probability per word and at least one word; got "
                             f"{len(self.words)} words and {len(self.probs)} probabilities.")
        if len(set(self.words)) != len(self.words):
            raise ValueError("Words must be distinct.")
        bad = [w for w in self.words if not re.fullmatch(r"[a-z]+", w)]
        if bad:
            raise ValueError(f"Words must be lowercase letters a-z; got {bad[:3]}.")
        if min(self.probs) <= 0 or not math.isclose(sum(self.probs), 1.0, abs_tol=1e-6):
            raise ValueError("Probabilities must be positive and sum to 1.")

    @classmethod
    def from_text(cls, text: str, size: int) -> Lexicon:
        """The ``size`` most frequent words of ``text`` (runs of letters, lowercased).

        Args:
            text: any text.
            size: words to keep (ties in frequency broken alphabetically).

        Returns:
            The lexicon, each word's probability proportional to its count in ``text``.
        """
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}.")
        counts = Counter(re.findall(r"[a-z]+", text.lower()))
        if len(counts) < size:
            raise ValueError(f"The text has {len(counts)} distinct words; size={size} asks "
                             "for more. Use a smaller size or a longer text.")
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
        total = sum(c for _, c in top)
        return cls(tuple(w for w, _ in top), tuple(c / total for _, c in top))

    def sample(self, n_chars: int, generator: torch.Generator) -> str:
        """``n_chars`` characters of independent words separated by single spaces.

        Args:
            n_chars: length of the text (the last word may be cut off).
            generator: source of the draws.

        Returns:
            The text.
        """
        if n_chars < 1:
            raise ValueError(f"n_chars must be >= 1, got {n_chars}.")
        # every word and its space take >= 2 characters, so n_chars // 2 + 1 words suffice
        idx = torch.multinomial(torch.tensor(self.probs, dtype=torch.float64),
                                n_chars // 2 + 1, replacement=True, generator=generator)
        return " ".join(self.words[i] for i in idx.tolist())[:n_chars]

    def entropy_bits_per_char(self) -> float:
        """Entropy rate of the sampled text: no model can predict it in fewer bits.

        Returns:
            ``H(word) / E[len(word) + 1]`` in bits per character (the space counted): the
            words are independent and the spaces make their boundaries certain.
        """
        h = -sum(p * math.log2(p) for p in self.probs)
        return h / sum(p * (len(w) + 1) for w, p in zip(self.words, self.probs, strict=True))

    def best_from_left(self, prefix: str) -> str:
        """The most probable letter after a word's beginning ``prefix``, knowing one follows.

        Args:
            prefix: the letters of the word before the blank (may be empty).

        Returns:
            The letter; ``""`` if no word continues ``prefix``.
        """
        mass: dict[str, float] = defaultdict(float)
        k = len(prefix)
        for w, p in zip(self.words, self.probs, strict=True):
            if len(w) > k and w.startswith(prefix):
                mass[w[k]] += p
        return _argmax(mass)

    def best_from_both(self, prefix: str, suffix: str) -> str:
        """The most probable letter of a word that is ``prefix``, one letter, ``suffix``.

        Args:
            prefix: the letters before the blank, from the word's start.
            suffix: the letters after it, to the word's end.

        Returns:
            The letter; ``""`` if no word fits.
        """
        mass: dict[str, float] = defaultdict(float)
        k = len(prefix)
        for w, p in zip(self.words, self.probs, strict=True):
            if len(w) == k + 1 + len(suffix) and w.startswith(prefix) and w.endswith(suffix):
                mass[w[k]] += p
        return _argmax(mass)


def _argmax(mass: dict[str, float]) -> str:
    """The key of the largest value (ties: the first letter alphabetically); ``""`` if empty."""
    return min(mass, key=lambda c: (-mass[c], c)) if mass else ""


def letter_blanks(text: str, block_size: int, n: int, generator: torch.Generator
                  ) -> list[tuple[int, int, str, str]]:
    """Letters to blank out, each with its whole word and the spaces around it in view.

    The text is cut into consecutive windows of ``block_size`` characters; a blank is a
    letter of a window whose word starts after a space and ends before one inside the same
    window, so the window shows everything that the letter's context can tell.

    Args:
        text: text of words separated by single spaces.
        block_size: window length.
        n: blanks to draw (a window may be drawn more than once).
        generator: source of the draws.

    Returns:
        ``n`` tuples ``(window, position, prefix, suffix)``: the window's index, the
        letter's position in it, and the letters of its word before and after it.
    """
    n_win = len(text) // block_size
    if n_win < 1 or block_size < 3:
        raise ValueError(f"Need block_size >= 3 and a text of at least one window; got "
                         f"block_size={block_size}, {len(text)} characters.")
    found: list[tuple[int, int, str, str]] = []
    for _ in range(100 * n):
        if len(found) == n:
            return found
        w = int(torch.randint(n_win, (1,), generator=generator))
        p = int(torch.randint(1, block_size - 1, (1,), generator=generator))
        s = text[w * block_size: (w + 1) * block_size]
        start, end = s.rfind(" ", 0, p), s.find(" ", p)
        if s[p] != " " and start >= 0 and end >= 0:
            found.append((w, p, s[start + 1: p], s[p + 1: end]))
    if len(found) < n:
        raise ValueError(f"Found only {len(found)} of {n} letters whose word fits a window "
                         f"of {block_size}; use longer windows or shorter words.")
    return found
