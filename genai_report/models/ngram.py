"""Character n-gram language models: interpolated Kneser–Ney, the strong cheap baseline.

:class:`KneserNey` is interpolated Kneser–Ney smoothing (Kneser & Ney 1995; the
interpolated form of Chen & Goodman 1998, eq. 3 and 4 of their section 3.4): the highest
order uses discounted counts, every lower order discounted *continuation* counts (how many
distinct characters precede an n-gram, not how often it occurs), and each order gives the
mass it discounted to the next lower one, down to a uniform distribution over the
vocabulary. One absolute discount per order and table, ``D = n1 / (n1 + 2 n2)`` from its
count-of-counts (Ney et al. 1994), at least 0.05. Every context gets a proper distribution, so the model
has a held-out likelihood (bits per character) to compare with a neural model's.

Counting once up to ``max_order`` gives the model of every order ``n <= max_order`` (the
lower-order continuation counts do not depend on ``n``), so the order is tuned on
validation text without refitting.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict


class KneserNey:
    """Interpolated Kneser–Ney character model of every order up to ``max_order``.

    Args:
        max_order: the longest n-gram counted (contexts of up to ``max_order - 1``
            characters), >= 1.

    Attributes:
        vocab: the characters the model predicts (sorted), set by :meth:`fit`.
        order: the order used by :meth:`prob`, :meth:`distribution` and :meth:`bits`
            (``max_order`` after fitting; set it to any ``1..max_order``).
    """

    def __init__(self, max_order: int = 8) -> None:
        if max_order < 1:
            raise ValueError(f"max_order must be >= 1, got {max_order}.")
        self.max_order = max_order
        self.order = max_order
        self.vocab: list[str] = []
        self._vocab_set: set[str] = set()
        self._raw: list[dict[str, Counter]] = []
        self._cont: list[dict[str, Counter]] = []
        self._stats: dict[tuple[str, int], dict[str, tuple[int, int]]] = {}
        self._disc: dict[tuple[str, int], float] = {}
        self._cache: dict[tuple[int, str], dict[str, float]] = {}

    def fit(self, text: str, extra_vocab: str = "") -> KneserNey:
        """Count ``text``; ``extra_vocab`` adds characters the model must give mass to.

        Returns:
            ``self``.
        """
        if not text:
            raise ValueError("Cannot fit an n-gram model on empty text.")
        self.vocab = sorted(set(text) | set(extra_vocab))
        self._vocab_set = set(self.vocab)
        M = self.max_order
        self._raw = [defaultdict(Counter) for _ in range(M)]  # k -> ctx (len k) -> next
        for i, ch in enumerate(text):
            for k in range(min(M, i + 1)):
                self._raw[k][text[i - k:i]][ch] += 1
        # N1+(. ctx ch): distinct characters preceding ctx + ch
        self._cont = [defaultdict(Counter) for _ in range(M)]
        for k in range(M - 1):
            for ctx, nxt in self._raw[k + 1].items():
                for ch in nxt:
                    self._cont[k][ctx[1:]][ch] += 1
        self._stats, self._disc = {}, {}
        for kind, tables in (("raw", self._raw), ("cont", self._cont)):
            for k, table in enumerate(tables):
                self._stats[kind, k] = {c: (sum(n.values()), len(n)) for c, n in table.items()}
                coc = Counter(v for n in table.values() for v in n.values())
                n1, n2 = coc.get(1, 0), coc.get(2, 0)
                # at least 0.05, so every order leaves mass for unseen characters
                self._disc[kind, k] = max(0.05, n1 / (n1 + 2 * n2)) if n1 else 0.5
        self._cache = {}
        self.order = M
        return self

    def _check(self) -> None:
        if not self.vocab:
            raise ValueError("The n-gram model is empty; call fit() with some text first.")
        if not 1 <= self.order <= self.max_order:
            raise ValueError(f"order must be in 1..{self.max_order}, got {self.order}.")

    def distribution(self, context: str) -> dict[str, float]:
        """``P(next | context)`` for every character of the vocabulary (sums to 1).

        Args:
            context: the text so far (only its last ``order - 1`` characters matter).
        """
        self._check()
        n = self.order
        ctx = context[max(0, len(context) - (n - 1)):] if n > 1 else ""
        key = (n, ctx)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        V = len(self.vocab)
        dist = dict.fromkeys(self.vocab, 1.0 / V)
        for k in range(min(n - 1, len(ctx)) + 1):
            kind = "raw" if k == n - 1 else "cont"  # lower orders: continuation counts
            h = ctx[len(ctx) - k:] if k else ""
            st = self._stats[kind, k].get(h)
            if st is None:
                continue
            tot, distinct = st
            D = self._disc[kind, k]
            counts = (self._raw if kind == "raw" else self._cont)[k][h]
            back = D * distinct / tot
            dist = {ch: max(counts.get(ch, 0) - D, 0.0) / tot + back * p for ch, p in dist.items()}
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = dist
        return dist

    def prob(self, context: str, ch: str) -> float:
        """``P(ch | context)``; 0 for a character outside the vocabulary.

        The same recursion as :meth:`distribution`, for one character only.
        """
        self._check()
        if ch not in self._vocab_set:
            return 0.0
        n = self.order
        ctx = context[max(0, len(context) - (n - 1)):] if n > 1 else ""
        p = 1.0 / len(self.vocab)
        for k in range(min(n - 1, len(ctx)) + 1):
            kind = "raw" if k == n - 1 else "cont"
            h = ctx[len(ctx) - k:] if k else ""
            st = self._stats[kind, k].get(h)
            if st is None:
                continue
            tot, distinct = st
            D = self._disc[kind, k]
            c = (self._raw if kind == "raw" else self._cont)[k][h].get(ch, 0)
            p = max(c - D, 0.0) / tot + D * distinct / tot * p
        return p

    def bits(self, text: str, start: int = 0, positions=None) -> tuple[float, int]:
        """Total bits (``-log2 P``) of the characters of ``text`` from ``start`` on, each
        predicted from the text before it (or only at ``positions``, an iterable of indices).

        Returns:
            ``(bits, n_characters)``.
        """
        idx = range(start, len(text)) if positions is None else positions
        total, n = 0.0, 0
        for i in idx:
            p = self.prob(text[max(0, i - self.order + 1):i], text[i])
            if p <= 0:
                raise ValueError(f"Character {text[i]!r} at {i} is not in the model's "
                                 "vocabulary; pass it to fit(extra_vocab=...).")
            total -= math.log2(p)
            n += 1
        return total, n

    def sample(self, context: str, n_chars: int, rng: random.Random, stop: str | None = None,
               temperature: float = 1.0) -> str:
        """Draw up to ``n_chars`` characters after ``context`` (stopping after ``stop``).

        Args:
            context: the prompt.
            n_chars: most characters to add.
            rng: the source of randomness.
            stop: stop once this character is drawn (it is kept).
            temperature: 0 for the most likely character (ties: the smallest), else
                probabilities are raised to ``1 / temperature`` and renormalised.
        """
        out = []
        for _ in range(n_chars):
            dist = self.distribution(context + "".join(out))
            if temperature == 0:
                ch = min(dist, key=lambda c: (-dist[c], c))
            else:
                chars = list(dist)
                w = [dist[c] ** (1.0 / temperature) for c in chars]
                ch = rng.choices(chars, weights=w)[0]
            out.append(ch)
            if stop is not None and ch == stop:
                break
        return "".join(out)
