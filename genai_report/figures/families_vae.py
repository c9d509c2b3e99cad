"""Families of generative models: the VAE's latent space, its interpolations and beta-VAE.

The figures read the VAEs trained in :mod:`genai_report.artifacts.digits_models`.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.data.digits import data_file
from genai_report.pipeline import figure

DIGITS = (data_file,)


# --------------------------------------------------------------------------- VAE
@dataclass(frozen=True)
class Manifold:
    """Parameters of the latent-manifold figure: decoded grid size and latent range."""

    grid: int = 15
    span: float = 2.5


@figure(
    "families-vae-manifold",
    deps=("digits-vae-2d",),
    params={"smoke": Manifold(grid=4), "quick": Manifold(), "full": Manifold(grid=20)},
    outputs=("vae_manifold.svg",),
    data=DIGITS,
    title="A VAE's two-dimensional latent space.",
    caption="Left: test digits encoded to their posterior means, coloured by class. Right: the "
    "decoder's image at each point of a regular grid over the same square of latent space.",
    alt="A scatter of coloured clusters, one per digit class, in a 2-D latent plane, and beside "
    "it a square mosaic of decoded digits that morph smoothly from one class to the next.",
)
def vae_manifold(ctx, p: Manifold):
    """Encode test digits to the 2-D latent; decode a grid of latent points."""
    import matplotlib.pyplot as plt

    from genai_report.plotting import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.5), gridspec_kw={"wspace": 0.5})
    out = _manifold(ctx, p, "1.0", axes)
    save_figure(fig, ctx.output("vae_manifold.svg"))
    return out


def _manifold(ctx, p: Manifold, beta: str, axes) -> dict:
    import torch

    from genai_report.data import digits
    from genai_report.figures._families_common import show_grid
    from genai_report.models.vae import VAE

    blobs = torch.load(ctx.input("digits-vae-2d", "vaes.pt"), weights_only=True)
    vae = VAE.load(blobs[beta], ctx.device)
    d = digits.load()
    with torch.no_grad():
        mu = vae.encode(d.x_test.to(ctx.device))[0].cpu()
        lin = torch.linspace(-p.span, p.span, p.grid)
        gy, gx = torch.meshgrid(-lin, lin, indexing="ij")
        z = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(ctx.device)
        imgs = vae.decode(z).cpu()
    sc = axes[0].scatter(mu[:, 0], mu[:, 1], c=d.y_test, cmap="tab10", s=8, rasterized=True)
    axes[0].legend(*sc.legend_elements(), fontsize=7, loc="upper left", title="digit",
                   title_fontsize=7, bbox_to_anchor=(1.01, 1.0))  # beside the points, not on them
    axes[0].set_xlim(-p.span * 1.4, p.span * 1.4)
    axes[0].set_ylim(-p.span * 1.4, p.span * 1.4)
    axes[0].set_xlabel("$z_1$")
    axes[0].set_ylabel("$z_2$")
    show_grid(axes[1], imgs, p.grid, p.grid)
    # how well classes separate in the latent: 5-NN accuracy of test labels from latents
    dist = torch.cdist(mu, mu)
    dist.fill_diagonal_(float("inf"))
    nn_idx = dist.topk(5, largest=False).indices
    knn = float((d.y_test[nn_idx].mode(1).values == d.y_test).float().mean())
    return {"latent_knn_accuracy": knn, "latent_std": mu.std(0).tolist()}


@figure(
    "families-beta-vae",
    deps=("digits-vae-2d",),
    params={"smoke": Manifold(grid=4), "quick": Manifold(grid=10), "full": Manifold(grid=15)},
    outputs=("beta_vae.svg",),
    data=DIGITS,
    title="β-VAE: a heavier KL term gives a smoother, blurrier latent space.",
    caption="Top: β = 1 (the ELBO). Bottom: β = 4. Left: test digits in latent space; right: "
    "decoded grid. The table on the page gives reconstruction error and KL for both.",
    alt="Two rows, each with a latent scatter coloured by digit class and a mosaic of decoded "
    "digits; the β = 4 row has more overlapping clusters and blurrier decoded digits.",
)
def beta_vae(ctx, p: Manifold):
    """Latent scatter and decoded grid for beta = 1 and beta = 4, with their ELBO terms."""
    import json

    import matplotlib.pyplot as plt

    from genai_report.plotting import save_figure

    evals = json.loads(ctx.input("digits-vae-2d", "eval.json").read_text())
    fig, axes = plt.subplots(2, 2, figsize=(7.2, 7.2), gridspec_kw={"wspace": 0.5, "hspace": 0.4})
    out = {}
    for i, (key, m) in enumerate(sorted(evals.items(), key=lambda kv: kv[1]["beta"])):
        geo = _manifold(ctx, p, str(float(m["beta"])), axes[i])
        axes[i, 0].set_title(f"β = {m['beta']:g}: recon {m['test_recon_nats']:.1f} nats, "
                             f"KL {m['test_kl_nats']:.2f} nats", fontsize=9)
        out[key] = {"beta": m["beta"], "recon_nats": m["test_recon_nats"],
                    "kl_nats": m["test_kl_nats"], "nelbo_bpd": m["test_nelbo_bpd"],
                    "fid": m["fid"], **geo}
    save_figure(fig, ctx.output("beta_vae.svg"))
    return out


@dataclass(frozen=True)
class Interp:
    """Parameters of the interpolation figure: pairs and steps."""

    pairs: tuple[tuple[int, int], ...] = ((1, 7), (3, 8), (0, 6), (4, 9))
    steps: int = 10


@figure(
    "families-vae-interpolation",
    deps=("digits-vae",),
    params={"smoke": Interp(pairs=((1, 7),), steps=4), "quick": Interp(), "full": Interp()},
    outputs=("vae_interpolation.svg",),
    data=DIGITS,
    title="Reconstructions and latent interpolation in a VAE.",
    caption="Left: test digits (top) and their reconstructions (bottom). Right: decoding points "
    "on the straight line between the latents of two test digits.",
    alt="Two rows of real digits above their slightly blurred reconstructions, and four rows in "
    "which one digit morphs step by step into another.",
)
def vae_interpolation(ctx, p: Interp):
    """Reconstruct test digits and interpolate between pairs in the 8-D latent."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import digits
    from genai_report.figures._families_common import show_grid
    from genai_report.models.vae import VAE
    from genai_report.plotting import save_figure

    vae = VAE.load(torch.load(ctx.input("digits-vae", "vae.pt"), weights_only=True), ctx.device)
    d = digits.load()
    x = d.x_test[:10].to(ctx.device)
    rows = []
    with torch.no_grad():
        rec = vae.reconstruct(x)
        mse = float((vae.reconstruct(d.x_test.to(ctx.device)) - d.x_test.to(ctx.device))
                    .square().mean())
        for a, b in p.pairs:
            xa = d.x_test[d.y_test == a][:1].to(ctx.device)
            xb = d.x_test[d.y_test == b][:1].to(ctx.device)
            za, zb = vae.encode(xa)[0], vae.encode(xb)[0]
            w = torch.linspace(0, 1, p.steps, device=ctx.device)[:, None]
            rows.append(vae.decode((1 - w) * za + w * zb).cpu())
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), width_ratios=(1, 1))
    show_grid(axes[0], torch.cat([x.cpu(), rec.cpu()]), 2, 10, "test digits / reconstructions")
    show_grid(axes[1], torch.cat(rows), len(p.pairs), p.steps,
              "interpolation: " + ", ".join(f"{a}→{b}" for a, b in p.pairs))
    save_figure(fig, ctx.output("vae_interpolation.svg"))
    return {"test_recon_mse": mse, "pairs": [list(pr) for pr in p.pairs]}
