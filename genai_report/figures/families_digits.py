"""Families of generative models, on the 8x8 digits: GAN vs diffusion, the gallery, latent
diffusion and PixelCNN sampling (diffusion's own figures are in
:mod:`genai_report.figures.families_diffusion`, the VAE's in
:mod:`genai_report.figures.families_vae`).

Every figure reads trained artifacts from :mod:`genai_report.artifacts.digits_models` and
:mod:`genai_report.artifacts.digits_diffusion`; only sampling and scoring happen here, never
training.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.data.digits import data_file
from genai_report.figures._families_common import DIGIT_FAMILIES, fid_floor
from genai_report.pipeline import figure

DIGITS = (data_file,)


@dataclass(frozen=True)
class Grid:
    """Parameters of a sample-grid figure: rows and columns of digits."""

    rows: int = 8
    cols: int = 10


GRID = {"smoke": Grid(rows=2, cols=4), "quick": Grid(), "full": Grid()}


LIKE_WITH_LIKE = {
    "gan": ("digits-gan", "GAN, no label"),
    "diffusion-uncond": ("digits-diffusion-uncond", "Diffusion, no label"),
    "gan-cond": ("digits-gan-cond", "GAN, labels 0-9"),
    "diffusion": ("digits-diffusion", "Diffusion, labels 0-9"),
}
"""Score name -> (training node, panel label) of the four models compared like with like."""

METRICS = ("fid", "precision", "recall", "classes_covered")


@figure(
    "families-gan-vs-diffusion",
    deps=("digits-classifier", "digits-scores", *(n for n, _ in LIKE_WITH_LIKE.values())),
    params=GRID,
    outputs=("gan_vs_diffusion.svg",),
    data=DIGITS,
    title="GANs and diffusion models compared like with like.",
    caption="Samples (not cherry-picked) of an unconditional GAN and an unconditional "
    "diffusion model (top), and of a class-conditional GAN (projection discriminator) and a "
    "class-conditional diffusion model asked for the labels 0-9 in turn (middle), all trained "
    "on the same digits for about the same CPU time. Below, each model's digits FID: mean "
    "and standard deviation over sampling seeds (error bars); the dashed line is the FID "
    "between real training and test digits.",
    alt="Four grids of generated 8x8 digits in two rows, GAN on the left and diffusion on the "
    "right, unconditional above and conditional below, and a bar chart of the four FIDs with "
    "error bars above a dashed floor line.",
)
def gan_vs_diffusion(ctx, p: Grid):
    """Sample grids and seeded FIDs of GAN and diffusion, unconditional and conditional."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.figures._families_common import (
        load_eval,
        score_line,
        seed_scores,
        show_grid,
    )
    from genai_report.plotting import save_figure

    scores, floor = seed_scores(ctx), fid_floor(ctx)
    fig = plt.figure(figsize=(7.2, 8.6))
    grid = fig.add_gridspec(3, 2, height_ratios=(3, 3, 2.2), hspace=0.45)
    out: dict = {}
    for k, (name, (node, label)) in enumerate(LIKE_WITH_LIKE.items()):
        ax = fig.add_subplot(grid[k // 2, k % 2])
        samples = torch.load(ctx.input(node, "samples.pt"), weights_only=True)
        show_grid(ax, samples, p.rows, p.cols, f"{label}\n{score_line(scores[name])}")
        out[name] = {**{m: scores[name][m] for m in METRICS},
                     "class_histogram": scores[name]["class_histogram"],
                     "train_time_s": float(load_eval(ctx, node)["train_time_s"]),
                     "steps": int(load_eval(ctx, node)["steps"])}
    ax = fig.add_subplot(grid[2, :])
    names = list(LIKE_WITH_LIKE)
    means = [out[n]["fid"]["mean"] for n in names]
    sds = [out[n]["fid"]["sd"] for n in names]
    colors = ["C0", "C1", "C0", "C1"]
    ax.bar(range(4), means, yerr=sds, capsize=4, color=colors,
           hatch=[None, None, "//", "//"], edgecolor="white")
    ax.axhline(floor, color="0.3", ls="--", lw=1, label="real data (floor)")
    ax.set_xticks(range(4), [LIKE_WITH_LIKE[n][1] for n in names])
    ax.set_ylabel(f"digits FID ({scores['gan']['fid']['n']} seeds)")
    ax.set_ylim(0, 1.15 * max(m + s for m, s in zip(means, sds, strict=True)))
    ax.legend(loc="upper right")
    times = [out[n]["train_time_s"] for n in names]
    out["budget"] = {"min_s": min(times), "max_s": max(times),
                     "ratio": max(times) / min(times)}
    for kind, (g, d) in {"unconditional": ("gan", "diffusion-uncond"),
                         "conditional": ("gan-cond", "diffusion")}.items():
        fg, fd = out[g]["fid"], out[d]["fid"]
        out[kind] = {"winner": "diffusion" if fd["mean"] < fg["mean"] else "gan",
                     "fid_ratio": max(fg["mean"], fd["mean"]) / min(fg["mean"], fd["mean"]),
                     # the gap in units of the larger of the two seed spreads
                     "gap_in_sd": abs(fg["mean"] - fd["mean"]) / max(fg["sd"], fd["sd"], 1e-12)}
    save_figure(fig, ctx.output("gan_vs_diffusion.svg"))
    return out


@dataclass(frozen=True)
class Curve:
    """The training-time figure has no parameters; kept for the key."""

    version: int = 2


@figure(
    "families-training-time",
    deps=("digits-classifier", "digits-scores", *(n for n, _ in LIKE_WITH_LIKE.values())),
    params={"smoke": Curve(), "quick": Curve(), "full": Curve()},
    outputs=("training_time.svg",),
    data=DIGITS,
    title="Sample quality against training time, GAN vs diffusion.",
    caption="Digits FID (lower is better) and recall (the share of real test digits that "
    "fall within the generated samples' nearest-neighbour balls in the classifier's feature "
    "space) of the four models, measured at checkpoints during training with one sampling "
    "seed (the diffusion checkpoints with a cheaper DDIM sampler than the final score). "
    "The error bar at the end of each curve is the final model's mean and standard deviation "
    "over sampling seeds; the dashed line is the floor, the dotted line the shortest run.",
    alt="Two line charts against training seconds: FID of two GANs and two diffusion models "
    "falling toward a dashed floor, and the recall of each rising.",
)
def training_time(ctx, p: Curve):
    """FID and recall over training time for the four models, with the seeded final scores."""
    import matplotlib.pyplot as plt

    from genai_report.figures._families_common import load_eval, seed_scores
    from genai_report.plotting import save_figure

    floor, scores = fid_floor(ctx), seed_scores(ctx)
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.2))
    out = {"fid_floor": floor}
    styles = {"gan": ("C0", "-"), "diffusion-uncond": ("C1", "-"),
              "gan-cond": ("C0", "--"), "diffusion": ("C1", "--")}
    for name, (node, label) in LIKE_WITH_LIKE.items():
        curve = load_eval(ctx, node)["curve"]
        t = [r["time_s"] for r in curve]
        color, ls = styles[name]
        axes[0].plot(t, [r["fid"] for r in curve], marker="o", ms=3, color=color, ls=ls,
                     label=label)
        fid = scores[name]["fid"]
        axes[0].errorbar([t[-1]], [fid["mean"]], yerr=[fid["sd"]], color=color, capsize=3,
                         marker="_", ms=10)
        axes[1].plot(t, [r["recall"] for r in curve], marker="o", ms=3, color=color, ls=ls)
        out[name] = {"curve": curve, "final_fid": fid}
    # the comparison at a matched budget (the shortest run's training time): each model's
    # last checkpoint within it, so none is given more time than another had
    budget = min(out[k]["curve"][-1]["time_s"] for k in LIKE_WITH_LIKE)
    out["matched"] = {"budget_s": budget}
    for k in LIKE_WITH_LIKE:
        within = [r for r in out[k]["curve"] if r["time_s"] <= budget]
        row = within[-1] if within else out[k]["curve"][0]
        out["matched"][k] = {"time_s": row["time_s"], "fid": row["fid"],
                             "recall": row["recall"], "classes_covered": row["classes_covered"],
                             "within_budget": bool(within)}
    axes[0].axvline(budget, color="0.6", ls=":", lw=1)
    axes[0].axhline(floor, color="0.4", ls="--", lw=1, label="real data (floor)")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("digits FID")
    axes[1].set_ylabel("recall")
    axes[1].set_ylim(0, 1.02)
    for ax in axes:
        ax.set_xlabel("training time (s, CPU)")
    axes[0].legend(fontsize=7)
    save_figure(fig, ctx.output("training_time.svg"))
    return out


@figure(
    "families-gallery",
    deps=("digits-classifier", "digits-scores", *DIGIT_FAMILIES),
    params=GRID,
    outputs=("gallery.svg",),
    data=DIGITS,
    title="Every family on the same digits.",
    caption="Samples of each model beside held-out real digits, with the digits FID (mean ± sd "
    "over sampling seeds), precision and recall, and classes covered. The table on this page "
    "lists every metric.",
    alt="Six grids of 8x8 digits: real test digits, then samples from a GAN, a VAE, a diffusion "
    "model, a PixelCNN and a latent diffusion model; the VAE's are blurrier.",
)
def gallery(ctx, p: Grid):
    """A grid per family and one table of metrics (seeded FID, P/R, coverage, bits/dim)."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import digits
    from genai_report.figures._families_common import (
        load_eval,
        score_line,
        seed_scores,
        show_grid,
    )
    from genai_report.plotting import save_figure

    d, scores = digits.load(), seed_scores(ctx)
    fig, axes = plt.subplots(2, 3, figsize=(7.2, 5.4))
    show_grid(axes[0, 0], d.x_test, p.rows, p.cols, f"Real test digits\nFID floor {fid_floor(ctx):.1f}")
    table = {"real": {"fid": fid_floor(ctx)}}
    for ax, node in zip(axes.flat[1:], DIGIT_FAMILIES, strict=True):
        name = node.removeprefix("digits-")
        m, row = load_eval(ctx, node), dict(scores[name])
        samples = torch.load(ctx.input(node, "samples.pt"), weights_only=True)
        show_grid(ax, samples, p.rows, p.cols, f"{DIGIT_FAMILIES[node]}\n{score_line(row)}")
        row = {k: row[k] for k in (*METRICS, "fid_over_floor")}
        bpd = m.get("test_bpd", m.get("test_nelbo_bpd"))
        if bpd is not None:
            row["bits_per_dim"] = bpd
        row["train_time_s"] = float(m["train_time_s"])
        table[name] = row
    save_figure(fig, ctx.output("gallery.svg"))
    return {"table": table}


# --------------------------------------------------------------------------- latent diffusion
@figure(
    "families-latent-diffusion",
    deps=("digits-classifier", "digits-scores", "digits-vae", "digits-diffusion",
          "digits-latent-diffusion"),
    params=GRID,
    outputs=("latent_diffusion.svg",),
    data=DIGITS,
    title="Latent diffusion beside its parts: the VAE alone and diffusion on pixels.",
    caption="Samples of the VAE decoder from its Gaussian prior; of diffusion in the VAE's 8-D "
    "latent space, decoded by the same decoder, without a label (like the VAE) and asked for "
    "the labels 0-9 in turn; and of diffusion directly on the 64 pixels, asked for the same "
    "labels. Scores are means ± sd over sampling seeds.",
    alt="Four grids of digits: blurry VAE samples, sharper and more legible latent-diffusion "
    "samples without and with labels, and pixel-diffusion samples.",
)
def latent_diffusion(ctx, p: Grid):
    """VAE prior samples vs latent-diffusion samples (no label, labels) vs pixel diffusion."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.figures._families_common import score_line, seed_scores, show_grid
    from genai_report.models.diffusion import Diffusion
    from genai_report.models.latent_diffusion import LatentDiffusion
    from genai_report.models.vae import VAE
    from genai_report.plotting import save_figure

    scores = seed_scores(ctx)
    vae = VAE.load(torch.load(ctx.input("digits-vae", "vae.pt"), weights_only=True), ctx.device)
    blob = torch.load(ctx.input("digits-latent-diffusion", "latent_diffusion.pt"),
                      weights_only=True)
    ldm = LatentDiffusion(vae, Diffusion.load(blob["diffusion"], ctx.device), blob["scale"])
    unlabelled = ldm.sample(p.rows * p.cols, generator=ctx.generator(), steps=50)
    grids = {
        "vae": (torch.load(ctx.input("digits-vae", "samples.pt"), weights_only=True),
                "VAE, z from the prior"),
        "latent-diffusion-null-label": (unlabelled, "Latent diffusion, no label"),
        "latent-diffusion": (torch.load(ctx.input("digits-latent-diffusion", "samples.pt"),
                                        weights_only=True), "Latent diffusion, labels 0-9"),
        "diffusion": (torch.load(ctx.input("digits-diffusion", "samples.pt"), weights_only=True),
                      "Pixel diffusion, labels 0-9"),
    }
    fig, axes = plt.subplots(2, 2, figsize=(7.2, 6.6))
    out = {}
    for ax, (name, (samples, label)) in zip(axes.flat, grids.items(), strict=True):
        show_grid(ax, samples, p.rows, p.cols, f"{label}\n{score_line(scores[name])}")
        out[name] = {k: scores[name][k] for k in ("fid", "precision", "recall", "classes_covered")}
    out["latent_dim"] = vae.config.latent_dim
    out["compression"] = 64 / vae.config.latent_dim
    save_figure(fig, ctx.output("latent_diffusion.svg"))
    return out


@dataclass(frozen=True)
class Raster:
    """Parameters of the PixelCNN raster figure: samples and snapshots."""

    n: int = 8
    snapshots: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)


@figure(
    "families-pixelcnn",
    deps=("digits-pixelcnn",),
    params={"smoke": Raster(n=2, snapshots=(32, 64)), "quick": Raster(), "full": Raster()},
    outputs=("pixelcnn.svg",),
    title="An autoregressive model writes a digit one pixel at a time.",
    caption="PixelCNN samples after 8, 16, …, 64 of the 64 pixels have been drawn, in raster "
    "order; pixels not yet drawn are blank.",
    alt="Eight rows of partially drawn digits; in each row more lines of pixels are filled in "
    "from top to bottom until the digit is complete.",
)
def pixelcnn(ctx, p: Raster):
    """Partially sampled images at several numbers of generated pixels."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.figures._families_common import show_grid
    from genai_report.models.pixelcnn import PixelCNN
    from genai_report.plotting import save_figure

    model = PixelCNN.load(torch.load(ctx.input("digits-pixelcnn", "pixelcnn.pt"),
                                     weights_only=True), ctx.device)
    x = model.sample(p.n, ctx.generator()).cpu()  # (n, 1, 8, 8)
    frames = []
    for k in p.snapshots:
        mask = (torch.arange(64) < k).float().reshape(1, 1, 8, 8)
        frames.append(x * mask - (1 - mask))  # undrawn pixels blank
    imgs = torch.stack(frames, 1).reshape(-1, 1, 8, 8)
    fig, ax = plt.subplots(figsize=(0.9 * len(p.snapshots), 0.9 * p.n + 0.5))
    show_grid(ax, imgs, p.n, len(p.snapshots))
    ax.set_xticks([4.5 + 9 * i for i in range(len(p.snapshots))], [str(k) for k in p.snapshots])
    ax.set_xlabel("pixels generated")
    save_figure(fig, ctx.output("pixelcnn.svg"))
    return {"network_passes_per_sample": 64}
