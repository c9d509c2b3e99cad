"""The mixture-model artifact of the Foundations chapter.

A Gaussian mixture fitted by EM to the two-moons distribution, with the number of components
chosen on a validation split; its train/validation/test splits are saved beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import artifact


@dataclass(frozen=True)
class MixtureFit:
    """Parameters of the mixture-model artifact.

    Attributes:
        dataset: 2-D distribution to learn.
        n_train, n_val, n_test: split sizes (validation picks K, test is reported).
        components: candidate numbers of components K.
        iterations: EM iterations per fit.
    """

    dataset: str = "two-moons"
    n_train: int = 2000
    n_val: int = 1000
    n_test: int = 2000
    components: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 24, 32)
    iterations: int = 200


@artifact(
    "toy2d-gmm",
    params={
        "smoke": MixtureFit(n_train=200, n_val=100, n_test=200, components=(1, 4), iterations=10),
        "quick": MixtureFit(),
        "full": MixtureFit(n_train=20000, n_val=5000, n_test=20000,
                           components=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64), iterations=500),
    },
    outputs=("model.pt", "splits.pt"),
    seed=1,
)
def fit_mixture(ctx, p: MixtureFit):
    """Fit a Gaussian mixture for each candidate K and keep the best on validation data."""
    import torch

    from genai_report.data import toy2d
    from genai_report.models.gmm import GMMConfig, fit_gmm

    gen = ctx.generator()
    train = toy2d.sample(p.dataset, p.n_train, gen)  # (N, 2)
    val = toy2d.sample(p.dataset, p.n_val, gen)
    test = toy2d.sample(p.dataset, p.n_test, gen)
    # EM on the device: the full profile's 10 fits of 500 iterations over 20,000 points
    train_d, val_d, test_d = (s.to(ctx.device) for s in (train, val, test))
    curve = []
    best = None
    for k in ctx.progress(p.components, desc="EM per K"):
        model, history = fit_gmm(train_d, GMMConfig(components=k, iterations=p.iterations),
                                 gen)
        row = {
            "components": k,
            "train_ll": float(model.log_prob(train_d).mean()),
            "val_ll": float(model.log_prob(val_d).mean()),
            "iterations_run": len(history),
        }
        curve.append(row)
        if best is None or row["val_ll"] > best[1]["val_ll"]:
            best = (model, row)
    model, row = best
    torch.save({"state": {k: v.cpu() for k, v in model.state_dict().items()}, "curve": curve},
               ctx.output("model.pt"))
    torch.save({"train": train, "val": val, "test": test}, ctx.output("splits.pt"))
    single = next((r for r in curve if r["components"] == 1), None)
    return {
        "dataset": p.dataset,
        "components": row["components"],
        "test_ll_nats": float(model.log_prob(test_d).mean()),
        "val_ll_nats": row["val_ll"],
        "single_gaussian_val_ll_nats": single["val_ll"] if single else None,
        "n_parameters": model.n_parameters,
        "curve": curve,
    }
