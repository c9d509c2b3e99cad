"""Train on synthetic, test on real (TSTR; Esteban et al. 2017): a classifier is trained on
labelled samples from a generative model and scored on the real held-out digits.

The downstream classifier is scikit-learn's multinomial logistic regression on the 64 pixels:
convex, so its fit is deterministic and needs no seeds, and it takes a fraction of a second.
"""

from __future__ import annotations

import torch


def train_classifier(x: torch.Tensor, y: torch.Tensor, *, c: float = 1.0, max_iter: int = 500):
    """Fit a logistic-regression digits classifier to ``(x, y)``.

    Args:
        x: images ``(N, 1, 8, 8)`` in [-1, 1] (clamped to that range).
        y: labels ``(N,)``.
        c: inverse L2 regularisation strength.
        max_iter: L-BFGS iterations at most.

    Returns:
        The fitted ``sklearn.linear_model.LogisticRegression`` (or, if ``y`` holds a single
        class, as from a collapsed generator, a model that always predicts it).
    """
    import warnings

    if len(torch.unique(y)) < 2:
        return _Constant(int(y[0]))

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x.clamp(-1, 1).flatten(1).double().numpy(), y.numpy())
    return model


def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    pred = model.predict(x.clamp(-1, 1).flatten(1).double().numpy())
    return float((torch.from_numpy(pred) == y).double().mean())


class _Constant:
    def __init__(self, label: int) -> None:
        self.label = label

    def predict(self, x):
        import numpy as np

        return np.full(len(x), self.label)
