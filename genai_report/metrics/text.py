"""Text metrics: BLEU and ROUGE through well-kept libraries, exact match, syntax validity.

BLEU (Papineni et al. 2002) is computed by ``sacrebleu`` (Post 2018), ROUGE (Lin 2004) by
Google's ``rouge-score`` without stemming (stemming would need NLTK data, never downloaded
here). Both expect whitespace-separated words; callers join token lists with spaces.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence


def exact_match(predictions: Sequence[str], references: Sequence[str], strip: bool = True
                ) -> float:
    """Fraction of predictions equal to their reference.

    Args:
        predictions, references: strings of the same length.
        strip: compare with leading and trailing whitespace removed.

    Returns:
        A number in [0, 1] (0 for empty input).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references.")
    if not predictions:
        return 0.0
    norm = (lambda s: s.strip()) if strip else (lambda s: s)
    return sum(norm(p) == norm(r) for p, r in zip(predictions, references, strict=True)) / len(
        predictions)


def is_valid_python(source: str) -> bool:
    """Whether ``source`` parses as Python (``ast.parse``; nothing is executed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning on odd escapes
            ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def syntax_validity(sources: Sequence[str]) -> float:
    """Fraction of ``sources`` that parse as Python (0 for empty input)."""
    return sum(map(is_valid_python, sources)) / len(sources) if sources else 0.0


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 in [0, 100] with one reference per hypothesis (sacrebleu, eq. of
    Papineni et al. 2002: brevity penalty times the geometric mean of n-gram precisions).

    Args:
        hypotheses: system outputs, words separated by spaces.
        references: one reference per hypothesis.

    Returns:
        The corpus BLEU score (sacrebleu's defaults: ``13a`` tokenisation and "exp"
        smoothing, which gives the k-th n-gram order with no match precision
        ``1 / (2^k * total)``; it matters only when a whole corpus has no match).
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references.")
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def rouge(hypotheses: Sequence[str], references: Sequence[str],
          kinds: Sequence[str] = ("rouge1", "rouge2", "rougeL")) -> dict[str, float]:
    """Mean ROUGE F1 over pairs (``rouge-score``, no stemming), in [0, 1].

    Args:
        hypotheses: system outputs.
        references: one reference per hypothesis.
        kinds: ROUGE variants (``rouge1``, ``rouge2``, ``rougeL``...).

    Returns:
        variant -> mean F1.
    """
    from rouge_score import rouge_scorer

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references.")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=False)
    totals = dict.fromkeys(kinds, 0.0)
    for h, r in zip(hypotheses, references, strict=True):
        scores = scorer.score(r, h)  # (target, prediction)
        for k in kinds:
            totals[k] += scores[k].fmeasure
    n = max(1, len(hypotheses))
    return {k: v / n for k, v in totals.items()}
