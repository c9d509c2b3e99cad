"""A character n-gram language model with back-off: the trivial baseline for code completion.

Counts of every context of up to ``order - 1`` characters and the character after it. To
predict, the model backs off to the longest context it has seen ("longest match" back-off,
the decision rule of stupid back-off, Brants et al. 2007, when only the argmax is needed) and
returns that context's empirical next-character distribution. Ties break on the character,
so greedy completion is deterministic.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class NGramModel:
    """Character n-gram counts with longest-match back-off.

    Args:
        order: n, the longest n-gram counted (context of ``order - 1`` characters), >= 1.

    Attributes:
        counts: context string -> Counter of the next character.
    """

    order: int = 6
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError(f"order must be >= 1, got {self.order}.")

    def fit(self, text: str) -> NGramModel:
        """Count every n-gram of ``text`` with n = 1..order; returns ``self``."""
        for i, ch in enumerate(text):
            for n in range(self.order):
                if i - n < 0:
                    break
                self.counts[text[i - n:i]][ch] += 1
        return self

    def distribution(self, context: str) -> dict[str, float]:
        """Next-character probabilities under the longest seen suffix of ``context``.

        Args:
            context: the text so far (only its last ``order - 1`` characters matter).

        Returns:
            character -> probability (empty only if the model saw no text).
        """
        for n in range(min(self.order - 1, len(context)), -1, -1):
            key = context[len(context) - n:]
            c = self.counts.get(key)
            if c:
                total = sum(c.values())
                return {ch: k / total for ch, k in c.items()}
        return {}

    def predict(self, context: str, exclude: str = "") -> str:
        """The most likely next character (ties: the smallest character).

        Args:
            context: the text so far.
            exclude: characters not allowed; the model backs off further while the longest
                seen context offers only excluded characters.
        """
        for n in range(min(self.order - 1, len(context)), -1, -1):
            c = self.counts.get(context[len(context) - n:])
            allowed = [(ch, k) for ch, k in c.items() if ch not in exclude] if c else []
            if allowed:
                return min(allowed, key=lambda kv: (-kv[1], kv[0]))[0]
        raise ValueError("The n-gram model is empty (or every character is excluded); call "
                         "fit() with some text first.")

    def complete(self, context: str, n_chars: int, stop: str | None = None,
                 first_exclude: str = "") -> str:
        """Greedy completion of ``context`` by up to ``n_chars`` characters.

        Args:
            context: the prompt.
            n_chars: most characters to add.
            stop: stop after emitting this character (e.g. ``"\\n"``), which is kept.
            first_exclude: characters the first added character may not be (e.g. blanks,
                when the prompt ends at a line's indentation).

        Returns:
            The added text.
        """
        out = []
        for i in range(n_chars):
            ch = self.predict(context + "".join(out), first_exclude if i == 0 else "")
            out.append(ch)
            if stop is not None and ch == stop:
                break
        return "".join(out)
