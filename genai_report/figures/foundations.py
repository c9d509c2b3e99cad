"""Foundations chapter: a model learns a data distribution.

A Gaussian mixture is fitted by EM to points from the two-moons distribution; the number of
components is chosen on a validation split. The figures show the data, the learned density
and fresh samples, and how held-out log-likelihood depends on model capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure


def _load_mixture(path):
    import torch

    from genai_report.models.gmm import GaussianMixture

    blob = torch.load(path, weights_only=True)
    st = blob["state"]
    return GaussianMixture(st["weights"], st["means"], st["covariances"]), blob["curve"]


@dataclass(frozen=True)
class DensityPlot:
    """Parameters of the density figure: grid resolution and number of samples drawn."""

    grid: int = 200
    n_samples: int = 2000


@figure(
    "foundations-density",
    deps=("toy2d-gmm",),
    params={"smoke": DensityPlot(grid=24, n_samples=200), "quick": DensityPlot(),
            "full": DensityPlot(grid=400, n_samples=5000)},
    outputs=("density.svg",),
    seed=2,
    title="A Gaussian mixture learns the two-moons distribution.",
    caption="Left: training points. Middle: the learned log-density log p(x). Right: new "
    "points sampled from the model, which were never in the data.",
    alt="Three scatter and heat-map panels: two interleaved crescent-shaped clouds of "
    "training points; the model's log-density, bright along both crescents; and samples "
    "from the model that trace the same two crescents.",
)
def density(ctx, p: DensityPlot):
    """Draw the data, the learned density and samples from the mixture."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.plotting import save_figure

    model, _ = _load_mixture(ctx.input("toy2d-gmm", "model.pt"))
    splits = torch.load(ctx.input("toy2d-gmm", "splits.pt"), weights_only=True)
    train, test = splits["train"], splits["test"]
    samples = model.sample(p.n_samples, ctx.generator())  # (S, 2)

    lo = torch.minimum(train.min(0).values, test.min(0).values) - 0.5
    hi = torch.maximum(train.max(0).values, test.max(0).values) + 0.5
    xs = torch.linspace(float(lo[0]), float(hi[0]), p.grid)
    ys = torch.linspace(float(lo[1]), float(hi[1]), p.grid)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")  # (G, G) each
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (G*G, 2)
    with torch.no_grad():
        logp = model.log_prob(grid).reshape(p.grid, p.grid)

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharex=True, sharey=True)
    axes[0].scatter(train[:, 0], train[:, 1], s=3, alpha=0.5, rasterized=True)
    axes[0].set_title("Training data")
    im = axes[1].imshow(
        logp.clamp(min=-8).numpy(), origin="lower", aspect="auto",
        extent=(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])),
    )
    axes[1].set_title(f"Learned log p(x), K = {len(model.weights)}")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.5, color="C1", rasterized=True)
    axes[2].set_title("Samples from the model")
    for ax in axes:
        ax.set_xlabel("$x_1$")
        ax.grid(False)
    axes[0].set_ylabel("$x_2$")
    save_figure(fig, ctx.output("density.svg"))
    return {"test_ll_nats": float(model.log_prob(test).mean()), "n_samples": p.n_samples}


@dataclass(frozen=True)
class CapacityPlot:
    """The capacity figure has no parameters beyond its input; kept for the key."""

    version: int = 1


@figure(
    "foundations-capacity",
    deps=("toy2d-gmm",),
    params={"smoke": CapacityPlot(), "quick": CapacityPlot(), "full": CapacityPlot()},
    outputs=("capacity.svg",),
    title="More components fit the training data better; held-out data decides when to stop.",
    caption="Mean log-likelihood per point (nats) on the training and validation splits "
    "for mixtures with K components.",
    alt="Line chart of mean log-likelihood against the number of mixture components: the "
    "training curve keeps rising while the validation curve rises and then levels off.",
)
def capacity(ctx, p: CapacityPlot):
    """Plot training vs validation log-likelihood across the number of components."""
    import matplotlib.pyplot as plt

    from genai_report.plotting import save_figure

    _, curve = _load_mixture(ctx.input("toy2d-gmm", "model.pt"))
    ks = [r["components"] for r in curve]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(ks, [r["train_ll"] for r in curve], marker="o", label="training")
    ax.plot(ks, [r["val_ll"] for r in curve], marker="s", label="validation")
    best = max(curve, key=lambda r: r["val_ll"])
    ax.axvline(best["components"], color="0.5", ls="--", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("components K")
    ax.set_ylabel("mean log-likelihood (nats / point)")
    ax.legend()
    save_figure(fig, ctx.output("capacity.svg"))
    gap = best["train_ll"] - best["val_ll"]
    return {"best_components": best["components"], "train_val_gap_nats": gap}
