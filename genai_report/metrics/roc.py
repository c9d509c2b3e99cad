"""ROC curves and the area under them, for scores where higher means "positive" (anomalous)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def roc_curve(negatives: Sequence[float] | torch.Tensor, positives: Sequence[float] | torch.Tensor
              ) -> tuple[list[float], list[float]]:
    """False- and true-positive rates as the threshold sweeps from +inf down to -inf.

    Tied scores are stepped over together, so the curve is the convex-free, exact empirical
    ROC; it starts at (0, 0) and ends at (1, 1).

    Args:
        negatives: scores of normal examples.
        positives: scores of anomalous examples.

    Returns:
        ``(fpr, tpr)``, lists of equal length.
    """
    neg = torch.as_tensor(negatives, dtype=torch.float64).flatten()
    pos = torch.as_tensor(positives, dtype=torch.float64).flatten()
    if len(neg) == 0 or len(pos) == 0:
        raise ValueError("roc_curve needs at least one negative and one positive score.")
    scores = torch.cat([neg, pos])
    labels = torch.cat([torch.zeros(len(neg)), torch.ones(len(pos))]).double()
    order = torch.argsort(scores, descending=True, stable=True)
    scores, labels = scores[order], labels[order]
    tp = torch.cumsum(labels, 0)
    fp = torch.cumsum(1 - labels, 0)
    last = torch.ones(len(scores), dtype=torch.bool)  # keep the last of each run of ties
    last[:-1] = scores[1:] != scores[:-1]
    fpr = [0.0, *(fp[last] / len(neg)).tolist()]
    tpr = [0.0, *(tp[last] / len(pos)).tolist()]
    return fpr, tpr


def auc(fpr: Sequence[float], tpr: Sequence[float]) -> float:
    """Area under a curve by the trapezoid rule (``fpr`` non-decreasing)."""
    return float(sum((fpr[i + 1] - fpr[i]) * (tpr[i + 1] + tpr[i]) / 2
                     for i in range(len(fpr) - 1)))


def rank_auc(negatives: Sequence[float] | torch.Tensor, positives: Sequence[float] | torch.Tensor
             ) -> float:
    """AUC as the Mann-Whitney probability ``P(s_pos > s_neg) + P(s_pos = s_neg) / 2``."""
    neg = torch.as_tensor(negatives, dtype=torch.float64).flatten()
    pos = torch.as_tensor(positives, dtype=torch.float64).flatten()
    diff = pos[:, None] - neg[None, :]  # (P, N)
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())
