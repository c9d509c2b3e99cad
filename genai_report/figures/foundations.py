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
    from genai_report.plotting.dark import keep_colours

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
    needle = _thinnest_component(model, train)

    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.6), sharex=True, sharey=True)
    axes[0].scatter(train[:, 0], train[:, 1], s=3, alpha=0.5, rasterized=True)
    axes[0].set_title("Training data")
    im = axes[1].imshow(
        logp.clamp(min=-8).numpy(), origin="lower", aspect="auto",
        extent=(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])),
    )
    axes[1].set_title(f"Learned log p(x), K = {len(model.weights)}")
    if needle["axis_ratio"] > NEEDLE_RATIO:  # point at the streak the text explains
        tip = _needle_tip(model, needle["component"])
        label = axes[1].annotate(
            f"one thin component\n({needle['weight']:.1%} of the weight)", xy=tip,
            xytext=(0.97, 0.04), textcoords="axes fraction", ha="right", va="bottom",
            fontsize=8, color="white",
            arrowprops={"arrowstyle": "->", "color": "white", "lw": 0.8})
        keep_colours(label, label.arrow_patch)  # drawn on the heat map, not on the paper
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.5, color="C1", rasterized=True)
    axes[2].set_title("Samples from the model")
    for ax in axes:
        ax.set_xlabel("$x_1$")
        ax.grid(False)
    axes[0].set_ylabel("$x_2$")
    save_figure(fig, ctx.output("density.svg"))
    return {"test_ll_nats": float(model.log_prob(test).mean()), "n_samples": p.n_samples,
            "thinnest_component": needle}


NEEDLE_RATIO = 50.0
"""Length-to-width ratio above which the density figure points out a component."""


def _needle_tip(model, k: int) -> tuple[float, float]:
    """A point on component ``k``'s long axis, 2.2 standard deviations from its mean, on
    the side where the mixture's density is lower (where the streak stands out)."""
    import torch

    eig, vec = torch.linalg.eigh(model.covariances[k])
    step = 2.2 * eig[-1].sqrt() * vec[:, -1]  # (D,)
    ends = torch.stack([model.means[k] + step, model.means[k] - step])  # (2, D)
    with torch.no_grad():
        end = ends[int(model.log_prob(ends).argmin())]
    return float(end[0]), float(end[1])


def _thinnest_component(model, train) -> dict:
    """The mixture's most elongated component: its weight, the ratio of its axes (standard
    deviations along its covariance's eigenvectors) and the training points it claims
    (those for which it has the largest responsibility)."""
    import torch

    eig = torch.linalg.eigvalsh(model.covariances)  # (K, D), ascending
    ratio = (eig[:, -1] / eig[:, 0]).sqrt()  # (K,)
    k = int(ratio.argmax())
    with torch.no_grad():
        owner = model.component_log_prob(train).argmax(dim=1)  # (N,)
    return {"component": k, "weight": float(model.weights[k]),
            "axis_ratio": float(ratio[k]), "long_sd": float(eig[k, -1].sqrt()),
            "short_sd": float(eig[k, 0].sqrt()), "train_points": int((owner == k).sum()),
            "n_train": len(train)}


@dataclass(frozen=True)
class CapacityPlot:
    """A capacity sweep small enough to overfit, repeated over independent training sets.

    Attributes:
        dataset: 2-D distribution to learn.
        n_train: training points per seed (few, so extra components have noise to fit).
        n_val: validation points per seed.
        components: numbers of mixture components K.
        iterations: EM iterations per fit.
        seeds: independent training and validation sets (and initialisations).
    """

    dataset: str = "two-moons"
    n_train: int = 200
    n_val: int = 2000
    components: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    iterations: int = 100
    seeds: int = 5

    def __post_init__(self):
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 for a spread, got {self.seeds}.")
        if max(self.components) >= self.n_train:
            raise ValueError(f"Every K must be below n_train={self.n_train}; "
                             f"got {max(self.components)}.")


@figure(
    "foundations-capacity",
    params={"smoke": CapacityPlot(n_train=60, n_val=200, components=(1, 4, 16), iterations=10,
                                  seeds=2),
            "quick": CapacityPlot(),
            "full": CapacityPlot(seeds=10, iterations=300)},
    outputs=("capacity.svg",),
    seed=3,
    title="More components fit the training data better; held-out data decides when to stop.",
    caption="Mean log-likelihood per point (nats) of Gaussian mixtures with K components "
    "fitted by EM to a small sample of the two moons, on their training points and on fresh "
    "validation points: mean and standard deviation over independent training sets.",
    alt="Line chart of mean log-likelihood against the number of mixture components: the "
    "training curve keeps rising while the validation curve peaks and then falls, with "
    "error bars.",
)
def capacity(ctx, p: CapacityPlot):
    """Fit mixtures of growing K to small training sets; train and validation likelihood."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import toy2d
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.gmm import GMMConfig, fit_gmm
    from genai_report.plotting import save_figure

    train_ll = {k: [] for k in p.components}
    val_ll = {k: [] for k in p.components}
    for s in ctx.progress(range(p.seeds), desc="seeds"):
        gen = ctx.generator(s)
        train = toy2d.sample(p.dataset, p.n_train, gen).to(ctx.device)  # (N, 2)
        val = toy2d.sample(p.dataset, p.n_val, gen).to(ctx.device)
        for k in p.components:
            model, _ = fit_gmm(train, GMMConfig(components=k, iterations=p.iterations), gen)
            with torch.no_grad():
                train_ll[k].append(float(model.log_prob(train).mean()))
                val_ll[k].append(float(model.log_prob(val).mean()))
    curve = [{"components": k, "train_ll": over_seeds(train_ll[k]),
              "val_ll": over_seeds(val_ll[k])} for k in p.components]
    ks = list(p.components)
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    for key, marker, label in (("train_ll", "o", "training"), ("val_ll", "s", "validation")):
        ax.errorbar(ks, [r[key]["mean"] for r in curve], yerr=[r[key]["sd"] for r in curve],
                    marker=marker, ms=4, capsize=2, label=label)
    best = max(curve, key=lambda r: r["val_ll"]["mean"])
    ax.axvline(best["components"], color="0.5", ls="--", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("components K")
    ax.set_ylabel("log-likelihood (nats / point)")
    ax.legend(fontsize=8)
    save_figure(fig, ctx.output("capacity.svg"))
    last = curve[-1]
    return {
        "best_components": best["components"], "curve": curve, "largest_k": last["components"],
        "best_val": best["val_ll"], "largest_val": last["val_ll"],
        "best_train": best["train_ll"], "largest_train": last["train_ll"],
        "train_val_gap_nats": best["train_ll"]["mean"] - best["val_ll"]["mean"],
        "n_train": p.n_train, "seeds": p.seeds,
    }
