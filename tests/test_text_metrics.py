"""BLEU, ROUGE, exact match, syntax validity and ROC/AUC against hand-worked examples."""

import math

import pytest

from genai_report.metrics.roc import auc, rank_auc, roc_curve
from genai_report.metrics.text import bleu, exact_match, is_valid_python, rouge, syntax_validity


def test_exact_match_strips_whitespace():
    assert exact_match(["  return x", "a"], ["return x  ", "b"]) == 0.5
    assert exact_match([" a"], ["a"], strip=False) == 0.0
    with pytest.raises(ValueError):
        exact_match(["a"], [])


def test_syntax_validity():
    assert is_valid_python("def f(x):\n    return x + 1\n")
    assert not is_valid_python("def f(x):\n")
    assert not is_valid_python("return (1,\n")
    assert syntax_validity(["x = 1", "x = (", "pass", "if:"]) == 0.5


def test_bleu_by_hand():
    assert bleu(["one two three four"], ["one two three four"]) == pytest.approx(100.0)
    # all n-gram precisions are 1; brevity penalty exp(1 - r / c) with r = 6, c = 4
    expected = 100 * math.exp(1 - 6 / 4)
    assert bleu(["a b c d"], ["a b c d e f"]) == pytest.approx(expected, rel=1e-6)
    # sacrebleu's default "exp" smoothing: the k-th zero n-gram count gets precision
    # 1 / (2^k * total). Unigrams 4/4; bigrams 0/3 -> 1/6; trigrams 0/2 -> 1/8; 4-grams 0/1 -> 1/8
    assert bleu(["a b c d"], ["d c b a"]) == pytest.approx(100 * (1 / 384) ** 0.25, rel=1e-6)


def test_rouge_by_hand():
    r = rouge(["the cat sat"], ["the cat sat on the mat"])
    # ROUGE-1: precision 3/3, recall 3/6 -> F1 = 2/3
    assert r["rouge1"] == pytest.approx(2 / 3)
    # ROUGE-2: bigrams "the cat", "cat sat" both in the reference (5 bigrams): P=1, R=2/5
    assert r["rouge2"] == pytest.approx(2 * 1 * 0.4 / 1.4)
    assert r["rougeL"] == pytest.approx(2 / 3)
    assert rouge(["x y"], ["x y"])["rougeL"] == pytest.approx(1.0)


def test_roc_and_auc_by_hand():
    neg, pos = [0.1, 0.4, 0.35], [0.8, 0.4]
    fpr, tpr = roc_curve(neg, pos)
    # thresholds 0.8, 0.4 (tie: one pos and one neg), 0.35, 0.1
    assert fpr == pytest.approx([0, 0, 1 / 3, 2 / 3, 1])
    assert tpr == pytest.approx([0, 0.5, 1, 1, 1])
    # pairs: 0.8 beats all 3; 0.4 beats 0.1 and 0.35, ties 0.4 -> (3 + 2 + 0.5) / 6
    assert auc(fpr, tpr) == pytest.approx(5.5 / 6)
    assert rank_auc(neg, pos) == pytest.approx(5.5 / 6)
    assert auc(*roc_curve([0, 1], [2, 3])) == pytest.approx(1.0)
    assert auc(*roc_curve([2, 3], [0, 1])) == pytest.approx(0.0)
