"""What every digits model node shares: the data declaration, the evaluator, and saving.

Every family learns the same training split of scikit-learn's digits and is scored on one
scale by :class:`genai_report.metrics.fid.DigitsEvaluator` against the held-out test split: a
digits "FID", precision/recall and the class histogram of its samples. Each node saves its
model (with the config to rebuild it), ``samples.pt`` (the scored samples) and ``eval.json``.
"""

from __future__ import annotations

from genai_report.artifacts._outputs import write_json
from genai_report.data.digits import data_file

DIGITS = (data_file,)
"""The ``data=`` declaration of every node that reads the digits."""


def setup(ctx):
    """Digits, the evaluator built on the ``digits-classifier`` node, and a batch sampler.

    Returns:
        ``(digits, evaluator, batch)``, where ``batch(n, generator)`` draws ``n`` training
        images and labels on the node's device.
    """
    import torch

    from genai_report.data import digits
    from genai_report.metrics.fid import DigitsEvaluator, load_classifier

    d = digits.load()
    clf = load_classifier(ctx.input("digits-classifier", "classifier.pt"), ctx.device)
    x, y = d.x_train.to(ctx.device), d.y_train.to(ctx.device)

    def batch(n, gen):
        idx = torch.randint(0, len(x), (n,), generator=gen).to(ctx.device)
        return x[idx], y[idx]

    return d, DigitsEvaluator(clf, d.x_test), batch


def save_eval(ctx, samples, metrics: dict) -> None:
    """Write ``samples.pt`` and ``eval.json`` to the node's outputs."""
    import torch

    torch.save(samples.cpu(), ctx.output("samples.pt"))
    write_json(ctx, "eval.json", metrics)
