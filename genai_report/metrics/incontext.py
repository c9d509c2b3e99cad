"""Measures of in-context learning: the induction score of attention heads, and the
baselines an in-context regressor must beat.
"""

from __future__ import annotations

import torch


def induction_score(maps: torch.Tensor, period: torch.Tensor, start: torch.Tensor
                    ) -> torch.Tensor:
    """Mean attention each head pays to the induction target (Olsson et al., 2022).

    In the second copy of a repeated segment, position ``t`` holds the token seen at
    ``t - S``; an induction head attends from ``t`` to ``t - S + 1``, the token that came
    next last time. The score of a head is its attention weight on that position, averaged
    over the second-copy positions ``t = start + S .. start + 2S - 2`` of every sequence.

    Args:
        maps: attention weights ``(L, B, H, T, T)``.
        period: segment length ``S`` per sequence ``(B,)``.
        start: position of the first copy per sequence ``(B,)``.

    Returns:
        ``(L, H)`` scores in ``[0, 1]``.
    """
    L, B, H, T, _ = maps.shape
    t = torch.arange(T)[None]  # (1, T)
    rel = t - start[:, None]  # (B, T)
    S = period[:, None]
    query = (rel >= S) & (rel < 2 * S - 1)  # (B, T)
    target = (t - S + 1).clamp(0, T - 1)  # (B, T)
    idx = target[None, :, None, :, None].expand(L, B, H, T, 1)
    on_target = maps.gather(-1, idx)[..., 0]  # (L, B, H, T)
    w = query[None, :, None].to(maps.dtype)  # (1, B, 1, T)
    return (on_target * w).sum(dim=(1, 3)) / query.sum()


def uniform_induction_score(period: torch.Tensor, start: torch.Tensor, length: int) -> float:
    """The score of a head that spreads its attention evenly over the past: ``1 / (t + 1)``
    averaged over the same positions as :func:`induction_score`."""
    t = torch.arange(length)[None].double()
    rel = t - start[:, None]
    S = period[:, None]
    query = (rel >= S) & (rel < 2 * S - 1)
    return float((1.0 / (t + 1)).expand_as(query)[query].mean())


def regression_baselines(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Predictions of ``y_i`` from the first ``i`` examples, by four cheap estimators.

    * ``least_squares``: the minimum-norm least-squares fit (``pinv``); exact once ``i >= d``
      for noiseless data, the Bayes-optimal answer here (Garg et al., 2022).
    * ``nearest_neighbour``: the ``y`` of the nearest earlier ``x``.
    * ``mean``: the mean of the earlier ``y``.
    * ``zero``: 0, the prior mean of ``y`` (what a model that ignores the prompt predicts).

    Args:
        x: inputs ``(B, k, d)``.
        y: targets ``(B, k)``.

    Returns:
        Name -> predictions ``(B, k)``; with no example yet (``i = 0``) every baseline
        predicts 0.
    """
    B, k, _ = x.shape
    out = {name: torch.zeros(B, k, dtype=x.dtype)
           for name in ("least_squares", "nearest_neighbour", "mean", "zero")}
    for i in range(1, k):
        X, Y = x[:, :i], y[:, :i]  # (B, i, d), (B, i)
        w = torch.linalg.pinv(X) @ Y[:, :, None]  # (B, d, 1)
        out["least_squares"][:, i] = (x[:, i : i + 1] @ w)[:, 0, 0]
        nearest = ((X - x[:, i : i + 1]) ** 2).sum(-1).argmin(dim=1)  # (B,)
        out["nearest_neighbour"][:, i] = Y.gather(1, nearest[:, None])[:, 0]
        out["mean"][:, i] = Y.mean(dim=1)
    return out
