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


@figure(
    "families-gan-vs-diffusion",
    deps=("digits-classifier", "digits-gan", "digits-diffusion"),
    params=GRID,
    outputs=("gan_vs_diffusion.png",),
    data=DIGITS,
    title="A GAN and a diffusion model trained on the same digits.",
    caption="Samples (not cherry-picked) with the digits FID, precision (P), recall (R) and the "
    "number of classes the classifier finds among them; below, each model's class histogram.",
    alt="Two grids of generated 8x8 handwritten digits side by side, GAN on the left and "
    "diffusion on the right, each with a bar chart of how many samples fall in each digit class.",
)
def gan_vs_diffusion(ctx, p: Grid):
    """Sample grids and class histograms of the GAN and the diffusion model."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.figures._families_common import load_eval, score_line, show_grid
    from genai_report.plotting import save_figure

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), height_ratios=(3, 1))
    out = {}
    for j, node in enumerate(("digits-gan", "digits-diffusion")):
        m = load_eval(ctx, node)
        samples = torch.load(ctx.input(node, "samples.pt"), weights_only=True)
        show_grid(axes[0, j], samples, p.rows, p.cols, f"{DIGIT_FAMILIES[node]}\n{score_line(m)}")
        axes[1, j].bar(range(10), m["class_histogram"], color=f"C{j}")
        axes[1, j].set_xticks(range(10))
        axes[1, j].set_xlabel("class predicted by the digits classifier")
        axes[1, j].set_ylabel("samples")
        out[node.removeprefix("digits-")] = {k: m[k] for k in
                                             ("fid", "precision", "recall", "classes_covered",
                                              "class_histogram")}
    save_figure(fig, ctx.output("gan_vs_diffusion.png"))
    return out


@dataclass(frozen=True)
class Curve:
    """The training-time figure has no parameters; kept for the key."""

    version: int = 1


@figure(
    "families-training-time",
    deps=("digits-classifier", "digits-gan", "digits-diffusion"),
    params={"smoke": Curve(), "quick": Curve(), "full": Curve()},
    outputs=("training_time.svg",),
    data=DIGITS,
    title="Sample quality against training time, GAN vs diffusion.",
    caption="Digits FID (lower is better) and recall (the share of real test digits that "
    "fall within the generated samples' nearest-neighbour balls in the classifier's feature "
    "space), measured at checkpoints during "
    "training (the diffusion checkpoints with a cheaper DDIM sampler than its final score); "
    "the dashed line is the FID between real training and test digits (the floor), "
    "the dotted line the length of the shorter of the two runs.",
    alt="Two line charts against training seconds: FID of the GAN and the diffusion model "
    "falling toward a dashed floor, and the recall of each rising.",
)
def training_time(ctx, p: Curve):
    """FID and recall over training time for both models."""
    import matplotlib.pyplot as plt

    from genai_report.figures._families_common import load_eval
    from genai_report.plotting import save_figure

    floor = fid_floor(ctx)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    out = {"fid_floor": floor}
    for j, node in enumerate(("digits-gan", "digits-diffusion")):
        curve = _record_curve(ctx, node)
        t = [r["time_s"] for r in curve]
        axes[0].plot(t, [r["fid"] for r in curve], marker="o", color=f"C{j}",
                     label=DIGIT_FAMILIES[node])
        axes[1].plot(t, [r["recall"] for r in curve], marker="o", color=f"C{j}")
        out[node.removeprefix("digits-")] = {"curve": curve, "final_fid": load_eval(ctx, node)["fid"]}
    # the comparison at a matched budget (the shorter run's training time): each model's
    # last checkpoint within it, so neither is given more time than the other had
    budget = min(out[k]["curve"][-1]["time_s"] for k in ("gan", "diffusion"))
    out["matched"] = {"budget_s": budget}
    for k in ("gan", "diffusion"):
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
    axes[0].legend()
    save_figure(fig, ctx.output("training_time.svg"))
    return out


def _record_curve(ctx, node: str) -> list[dict]:
    from genai_report.figures._families_common import load_eval

    return load_eval(ctx, node)["curve"]


@figure(
    "families-gallery",
    deps=("digits-classifier", *DIGIT_FAMILIES),
    params=GRID,
    outputs=("gallery.png",),
    data=DIGITS,
    title="Every family on the same digits.",
    caption="Samples of each model beside held-out real digits, with the digits FID, precision and "
    "recall, and classes covered. The table on this page lists every metric.",
    alt="Six grids of 8x8 digits: real test digits, then samples from a GAN, a VAE, a diffusion "
    "model, a PixelCNN and a latent diffusion model; the VAE's are blurrier.",
)
def gallery(ctx, p: Grid):
    """A grid per family and one table of metrics (FID, P/R, coverage, bits/dim)."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import digits
    from genai_report.figures._families_common import load_eval, score_line, show_grid
    from genai_report.plotting import save_figure

    d = digits.load()
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.6))
    show_grid(axes[0, 0], d.x_test, p.rows, p.cols, f"Real test digits\nFID floor {fid_floor(ctx):.1f}")
    table = {"real": {"fid": fid_floor(ctx)}}
    for ax, node in zip(axes.flat[1:], DIGIT_FAMILIES, strict=True):
        m = load_eval(ctx, node)
        samples = torch.load(ctx.input(node, "samples.pt"), weights_only=True)
        show_grid(ax, samples, p.rows, p.cols, f"{DIGIT_FAMILIES[node]}\n{score_line(m)}")
        row = {k: m[k] for k in ("fid", "precision", "recall", "classes_covered")}
        row["fid_over_floor"] = m["fid"] / fid_floor(ctx)
        bpd = m.get("test_bpd", m.get("test_nelbo_bpd"))
        if bpd is not None:
            row["bits_per_dim"] = bpd
        row["train_time_s"] = _train_time(ctx, node)
        table[node.removeprefix("digits-")] = row
    save_figure(fig, ctx.output("gallery.png"))
    return {"table": table}


def _train_time(ctx, node: str) -> float:
    from genai_report.figures._families_common import load_eval

    return float(load_eval(ctx, node)["train_time_s"])


# --------------------------------------------------------------------------- latent diffusion
@figure(
    "families-latent-diffusion",
    deps=("digits-classifier", "digits-vae", "digits-diffusion", "digits-latent-diffusion"),
    params=GRID,
    outputs=("latent_diffusion.png",),
    data=DIGITS,
    title="Latent diffusion beside its parts: the VAE alone and diffusion on pixels.",
    caption="Samples of the VAE decoder from its Gaussian prior, of diffusion in the VAE's 8-D "
    "latent space decoded by the same decoder, and of diffusion directly on the 64 pixels.",
    alt="Three grids of digits: blurry VAE samples, sharper and more legible latent-diffusion "
    "samples, and pixel-diffusion samples.",
)
def latent_diffusion(ctx, p: Grid):
    """VAE prior samples vs latent-diffusion samples vs pixel diffusion."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.figures._families_common import load_eval, score_line, show_grid
    from genai_report.plotting import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    out = {}
    for ax, node, label in zip(axes, ("digits-vae", "digits-latent-diffusion", "digits-diffusion"),
                               ("VAE, z from the prior", "Diffusion in the VAE's latent",
                                "Diffusion on pixels"), strict=True):
        m = load_eval(ctx, node)
        show_grid(ax, torch.load(ctx.input(node, "samples.pt"), weights_only=True), p.rows,
                  p.cols, f"{label}\n{score_line(m)}")
        out[node.removeprefix("digits-")] = {k: m[k] for k in
                                             ("fid", "precision", "recall", "classes_covered")}
    out["latent_dim"] = 8
    out["compression"] = 64 / 8
    save_figure(fig, ctx.output("latent_diffusion.png"))
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
    outputs=("pixelcnn.png",),
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
    save_figure(fig, ctx.output("pixelcnn.png"))
    return {"network_passes_per_sample": 64}
