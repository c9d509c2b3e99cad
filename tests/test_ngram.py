"""Interpolated Kneser-Ney character model: proper distributions, the KN recursion by hand."""

import math
import random

import pytest

from genai_report.models.ngram import KneserNey

TEXT = "the cat sat on the mat. the dog sat on the log. a quick brown fox jumps. " * 2


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distributions_sum_to_one_for_every_context(order):
    m = KneserNey(5).fit(TEXT, extra_vocab="Z")
    m.order = order
    for ctx in ("", "t", "th", "the ", "xyzq", "ZZZZ", "on th", TEXT[:40]):
        d = m.distribution(ctx)
        assert set(d) == set(m.vocab) and "Z" in d
        assert sum(d.values()) == pytest.approx(1.0, abs=1e-12)
        assert min(d.values()) > 0  # the uniform floor: never an infinite loss
        for ch, p in d.items():
            assert m.prob(ctx, ch) == pytest.approx(p, abs=1e-14)


def test_unigram_level_uses_continuation_counts_by_hand():
    # "aab": bigrams aa, ab -> N1+(. a) = 1 (a), N1+(. b) = 1 (a); D from count-of-counts
    m = KneserNey(2).fit("aab")
    m.order = 2
    # context "x" (unseen): backs off to the continuation unigram
    # continuation counts over next chars of context "": {a: 1, b: 1}, total 2, 2 distinct
    # raw count-of-counts at k=0 ... the discount for the cont table is n1/(n1+2 n2) = 2/2 = 1
    d = m.distribution("x")
    # max(1 - 1, 0)/2 + 1 * 2/2 * 1/2 = 0.5 for each of a, b
    assert d == pytest.approx({"a": 0.5, "b": 0.5})
    # context "a": raw counts {a: 1, b: 1}, D_raw(k=1) = n1/(n1+2n2) = 2/2 = 1 -> all mass
    # goes to the lower order: again 0.5 each
    assert m.distribution("a") == pytest.approx({"a": 0.5, "b": 0.5})


def test_higher_order_helps_on_repetitive_text_and_bits_match_probabilities():
    m = KneserNey(6).fit(TEXT)
    held = "the cat sat on the log. "
    per_order = {}
    for order in range(1, 7):
        m.order = order
        bits, n = m.bits(held, 1)
        assert n == len(held) - 1
        manual = -sum(math.log2(m.prob(held[max(0, i - order + 1):i], held[i]))
                      for i in range(1, len(held)))
        assert bits == pytest.approx(manual)
        per_order[order] = bits / n
    assert per_order[4] < per_order[2] < per_order[1]


def test_sampling_and_errors():
    m = KneserNey(4).fit(TEXT)
    rng = random.Random(0)
    s = m.sample("the c", 30, rng, stop=".")
    assert len(s) <= 30 and set(s) <= set(m.vocab)
    assert m.sample("the c", 2, rng, temperature=0) == "at"
    with pytest.raises(ValueError, match="max_order"):
        KneserNey(0)
    with pytest.raises(ValueError, match="fit"):
        KneserNey(3).distribution("a")
    with pytest.raises(ValueError, match="vocabulary"):
        m.bits("the Q", 1)
