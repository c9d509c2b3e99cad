"""A small byte-pair-encoding tokenizer (Sennrich et al., 2016, "Neural Machine Translation
of Rare Words with Subword Units", Algorithm 1).

Text is first cut into words, each with its leading space (GPT-2 style), so merges never
cross word boundaries; training repeatedly merges the most frequent adjacent pair of symbols,
counted over word types weighted by their frequency. Ties break by the pair itself, so the
merges are deterministic. Used for the figure that trades vocabulary size against sequence
length; the models themselves read characters.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_WORD_RE = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9\s]+|\s+")


def pretokenize(text: str) -> list[str]:
    """Split ``text`` into words (with their leading space), numbers, punctuation, spaces."""
    return _WORD_RE.findall(text)


def _merge_word(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


class _PairCounts:
    """Weighted counts of adjacent pairs, bucketed by count so that the most frequent pair
    (ties: the largest) is found without looking at every pair: the top count is kept
    (raised when a count passes it, walked down past emptied buckets when asked)."""

    def __init__(self) -> None:
        self.count: dict[tuple[str, str], int] = {}
        self.by_count: dict[int, set[tuple[str, str]]] = {}
        self.top = 0

    def add(self, pair: tuple[str, str], n: int) -> None:
        """Change ``pair``'s count by ``n``; a pair counted zero times is forgotten."""
        old = self.count.get(pair, 0)
        new = old + n
        if old:
            self.by_count[old].discard(pair)
        if new:
            self.count[pair] = new
            self.by_count.setdefault(new, set()).add(pair)
            self.top = max(self.top, new)
        else:
            self.count.pop(pair, None)

    def best(self) -> tuple[tuple[str, str], int] | None:
        """The most frequent pair and its count (``None`` when no pair is left)."""
        while self.top > 0 and not self.by_count.get(self.top):
            self.by_count.pop(self.top, None)
            self.top -= 1
        if self.top == 0:
            return None
        return max(self.by_count[self.top]), self.top


@dataclass(frozen=True)
class BPETokenizer:
    """A trained BPE tokenizer.

    Attributes:
        alphabet: the base symbols (characters), sorted.
        merges: the learned merges, in order; merge ``i`` creates token ``len(alphabet) + i``.
    """

    alphabet: tuple[str, ...]
    merges: tuple[tuple[str, str], ...]

    @classmethod
    def train(cls, text: str, num_merges: int) -> BPETokenizer:
        """Learn ``num_merges`` merges from ``text`` (fewer if no pair repeats).

        Each merge takes the most frequent adjacent pair (ties: the largest pair) over the
        word types weighted by their frequency, and merges it everywhere. The pair counts are
        kept up to date rather than recounted: a merge changes only the words that hold its
        pair, so only their pairs are counted again (:class:`_PairCounts`).

        Args:
            text: training text.
            num_merges: number of merges to learn.

        Returns:
            The tokenizer.
        """
        types = Counter(tuple(w) for w in pretokenize(text))
        alphabet = tuple(sorted({c for w in types for c in w}))
        words = [list(w) for w in types]  # each word type's symbols, merged in place
        freq = list(types.values())
        counts = _PairCounts()
        holders: dict[tuple[str, str], set[int]] = {}  # pair -> the words that hold it
        for i, w in enumerate(words):
            for pair in zip(w, w[1:], strict=False):
                counts.add(pair, freq[i])
                holders.setdefault(pair, set()).add(i)
        merges: list[tuple[str, str]] = []
        while len(merges) < num_merges:
            best = counts.best()
            if best is None or best[1] < 2:
                break
            pair = best[0]
            merges.append(pair)
            for i in sorted(holders.pop(pair)):
                old = words[i]
                new = list(_merge_word(tuple(old), pair))
                for q in zip(old, old[1:], strict=False):
                    counts.add(q, -freq[i])
                for q in zip(new, new[1:], strict=False):
                    counts.add(q, freq[i])
                for q in set(zip(old, old[1:], strict=False)) - {pair}:
                    holders[q].discard(i)
                for q in zip(new, new[1:], strict=False):
                    holders.setdefault(q, set()).add(i)
                words[i] = new
        return cls(alphabet, tuple(merges))

    @property
    def vocab_size(self) -> int:
        """Base symbols plus merges."""
        return len(self.alphabet) + len(self.merges)

    def tokenize(self, text: str, num_merges: int | None = None) -> list[str]:
        """Split ``text`` into tokens using the first ``num_merges`` merges (all if None)."""
        ranks = {m: i for i, m in enumerate(self.merges[:num_merges])}
        cache: dict[str, tuple[str, ...]] = {}
        out: list[str] = []
        for word in pretokenize(text):
            if word not in cache:
                sym = tuple(word)
                while len(sym) > 1:
                    cands = [(ranks.get(p, len(ranks)), p)
                             for p in zip(sym, sym[1:], strict=False)]
                    rank, pair = min(cands)
                    if rank == len(ranks):
                        break
                    sym = _merge_word(sym, pair)
                cache[word] = sym
            out.extend(cache[word])
        return out

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; characters outside the alphabet raise ``ValueError``."""
        vocab = {s: i for i, s in enumerate(self.alphabet)}
        for i, (a, b) in enumerate(self.merges):
            vocab.setdefault(a + b, len(self.alphabet) + i)
        try:
            return [vocab[t] for t in self.tokenize(text)]
        except KeyError as exc:
            raise ValueError(f"Symbol {exc.args[0]!r} is not in the BPE vocabulary.") from None

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids`` (the inverse of :meth:`encode`)."""
        table = list(self.alphabet) + [a + b for a, b in self.merges]
        return "".join(table[i] for i in ids)
