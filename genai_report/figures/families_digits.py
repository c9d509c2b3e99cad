"""Families of generative models, on the 8x8 digits: GAN vs diffusion, the gallery,
diffusion's sampler trade-offs, guidance, latent diffusion and PixelCNN sampling (the VAE's
figures are in :mod:`genai_report.figures.families_vae`).

Every figure reads trained artifacts from :mod:`genai_report.artifacts.digits_models`; only
sampling and scoring happen here, never training.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.data.digits import data_file
from genai_report.figures._families_common import DIGIT_FAMILIES
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
    caption="Digits FID (lower is better) and classes covered, measured at checkpoints during "
    "training; the dashed line is the FID between real training and test digits (the floor), "
    "the dotted line the length of the shorter of the two runs.",
    alt="Two line charts against training seconds: FID of the GAN and the diffusion model "
    "falling toward a dashed floor, and the number of digit classes each covers.",
)
def training_time(ctx, p: Curve):
    """FID and class coverage over training time for both models."""
    import matplotlib.pyplot as plt

    from genai_report.figures._families_common import load_eval
    from genai_report.plotting import save_figure

    floor = _floor(ctx)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    out = {"fid_floor": floor}
    for j, node in enumerate(("digits-gan", "digits-diffusion")):
        curve = _record_curve(ctx, node)
        t = [r["time_s"] for r in curve]
        axes[0].plot(t, [r["fid"] for r in curve], marker="o", color=f"C{j}",
                     label=DIGIT_FAMILIES[node])
        axes[1].plot(t, [r["classes_covered"] for r in curve], marker="o", color=f"C{j}")
        out[node.removeprefix("digits-")] = {"curve": curve, "final_fid": load_eval(ctx, node)["fid"]}
    # the comparison at a matched budget: each model's checkpoint nearest the end of the
    # shorter run
    budget = min(out[k]["curve"][-1]["time_s"] for k in ("gan", "diffusion"))
    out["matched"] = {"budget_s": budget}
    for k in ("gan", "diffusion"):
        row = min(out[k]["curve"], key=lambda r: abs(r["time_s"] - budget))
        out["matched"][k] = {"time_s": row["time_s"], "fid": row["fid"],
                             "classes_covered": row["classes_covered"]}
    axes[0].axvline(budget, color="0.6", ls=":", lw=1)
    axes[0].axhline(floor, color="0.4", ls="--", lw=1, label="real data (floor)")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("digits FID")
    axes[1].set_ylabel("classes covered (of 10)")
    axes[1].set_ylim(0, 10.5)
    for ax in axes:
        ax.set_xlabel("training time (s, CPU)")
    axes[0].legend()
    save_figure(fig, ctx.output("training_time.svg"))
    return out


def _floor(ctx) -> float:
    from genai_report.figures._families_common import load_eval

    return float(load_eval(ctx, "digits-classifier")["fid_floor"])


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
    show_grid(axes[0, 0], d.x_test, p.rows, p.cols, f"Real test digits\nFID floor {_floor(ctx):.1f}")
    table = {"real": {"fid": _floor(ctx)}}
    for ax, node in zip(axes.flat[1:], DIGIT_FAMILIES, strict=True):
        m = load_eval(ctx, node)
        samples = torch.load(ctx.input(node, "samples.pt"), weights_only=True)
        show_grid(ax, samples, p.rows, p.cols, f"{DIGIT_FAMILIES[node]}\n{score_line(m)}")
        row = {k: m[k] for k in ("fid", "precision", "recall", "classes_covered")}
        row["fid_over_floor"] = m["fid"] / _floor(ctx)
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


# --------------------------------------------------------------------------- diffusion
@dataclass(frozen=True)
class Trajectory:
    """Parameters of the denoising-trajectory figure: samples (one per class) and frames."""

    frames: int = 8


@figure(
    "families-denoising",
    deps=("digits-diffusion",),
    params={"smoke": Trajectory(frames=3), "quick": Trajectory(), "full": Trajectory()},
    outputs=("denoising.png",),
    title="From noise to digit: the reverse process.",
    caption="Ten DDPM samples, one per class (guidance scale 3), shown at evenly spaced steps "
    "from x_T (pure noise, left) to x_0 (right).",
    alt="A grid with ten rows, one per digit 0 to 9; each row goes from random noise on the "
    "left, through blurry shapes, to a clean digit on the right.",
)
def denoising(ctx, p: Trajectory):
    """Run the ancestral sampler for one sample per class and show x_t along the way."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.figures._families_common import diffusion, show_grid
    from genai_report.plotting import save_figure

    model = diffusion(ctx)
    T = model.config.timesteps
    y = torch.arange(10, device=ctx.device)
    _, traj = model.sample(10, generator=ctx.generator(), y=y, guidance_scale=3.0,
                           trajectory_every=max(1, T // (p.frames - 1)))
    idx = torch.linspace(0, len(traj) - 1, p.frames).round().long().tolist()
    frames = [traj[i] for i in idx]
    imgs = torch.stack([f[1] for f in frames], dim=1).reshape(-1, 1, 8, 8)  # (10 * F, 1, 8, 8)
    fig, ax = plt.subplots(figsize=(1.0 * p.frames, 9.5))
    show_grid(ax, imgs.clamp(-1, 1), 10, p.frames)
    ax.set_xticks([4.5 + 9 * k for k in range(p.frames)], [f"t={f[0]}" for f in frames])
    save_figure(fig, ctx.output("denoising.png"))
    return {"timesteps": T, "frames_t": [f[0] for f in frames]}


@dataclass(frozen=True)
class Steps:
    """Parameters of the sampler comparison: DDIM step counts, samples per point, and how many
    sampling seeds measure the spread of the FID estimate (DDIM at 50 steps)."""

    ddim_steps: tuple[int, ...] = (5, 10, 20, 50, 100)
    n: int = 1347
    ddpm: bool = True
    seeds: int = 3

    def __post_init__(self) -> None:
        if self.n < 2 or self.seeds < 1 or min(self.ddim_steps, default=0) < 1:
            raise ValueError("Steps needs n >= 2, seeds >= 1 and DDIM step counts >= 1.")


@figure(
    "families-ddim-steps",
    deps=("digits-classifier", "digits-diffusion"),
    params={"smoke": Steps(n=100, seeds=2), "quick": Steps(),
            "full": Steps(ddim_steps=(5, 10, 20, 50, 100, 250, 500))},
    outputs=("ddim_steps.svg",),
    data=DIGITS,
    title="Sampling steps: DDIM's shortcut against the full DDPM chain.",
    caption="Digits FID (left) and wall-clock sampling time (right) of the same trained model "
    "sampled with DDIM at several step counts and with the full ancestral DDPM chain; the "
    "dashed line is the real-data floor.",
    alt="Two charts against the number of sampling steps (log scale): FID falls quickly with "
    "the first DDIM steps and then flattens, with the 1000-step DDPM point lower still; "
    "sampling time grows linearly with steps.",
)
def ddim_steps(ctx, p: Steps):
    """FID and sampling time for DDIM at several step counts and for full DDPM."""
    import time

    import matplotlib.pyplot as plt

    from genai_report.data.digits import balanced_labels
    from genai_report.figures._families_common import diffusion, evaluator
    from genai_report.plotting import save_figure

    model, ev = diffusion(ctx), evaluator(ctx)
    y = balanced_labels(p.n, ctx.device)
    rows = []
    for k in ctx.progress(p.ddim_steps, desc="DDIM"):
        t0 = time.perf_counter()
        s = model.sample(p.n, generator=ctx.generator(k), y=y, method="ddim", steps=k)
        dt = time.perf_counter() - t0
        m = ev(s)
        rows.append({"steps": k, "time_s": dt, "fid": m["fid"], "precision": m["precision"],
                     "recall": m["recall"]})
    T = model.config.timesteps
    ddpm = None
    if p.ddpm:
        t0 = time.perf_counter()
        s = model.sample(p.n, generator=ctx.generator(1), y=y, method="ddpm")
        dt = time.perf_counter() - t0
        m = ev(s)
        ddpm = {"steps": T, "time_s": dt, "fid": m["fid"], "precision": m["precision"],
                "recall": m["recall"]}
    # the same sampler with fresh noise: how much the FID estimate itself varies
    spread = [ev(model.sample(p.n, generator=ctx.generator(1000 + i), y=y, method="ddim",
                              steps=50))["fid"] for i in ctx.progress(range(p.seeds), desc="seeds")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key in zip(axes, ("fid", "time_s"), strict=True):
        ax.plot([r["steps"] for r in rows], [r[key] for r in rows], marker="o", label="DDIM")
        if ddpm:
            ax.scatter([T], [ddpm[key]], marker="s", s=50, color="C1", zorder=3,
                       label=f"DDPM ({T} steps)")
        ax.set_xscale("log")
        ax.set_xlabel("sampling steps")
    axes[0].axhline(_floor(ctx), color="0.4", ls="--", lw=1, label="real data (floor)")
    axes[0].set_ylabel("digits FID")
    axes[1].set_ylabel(f"seconds for {p.n} samples")
    axes[0].legend()
    save_figure(fig, ctx.output("ddim_steps.svg"))
    best = min(rows, key=lambda r: r["fid"])
    by_steps = {str(r["steps"]): r for r in rows}
    mean = sum(spread) / len(spread)
    out = {"ddim": by_steps, "ddpm": ddpm, "fid_floor": _floor(ctx), "best_ddim": best,
           "ddim50_seeds": {"fid": spread, "mean": mean,
                            "std": (sum((f - mean) ** 2 for f in spread)
                                    / max(1, len(spread) - 1)) ** 0.5}}
    if ddpm:
        ddpm["fid_over_floor"] = ddpm["fid"] / _floor(ctx)
    if ddpm and "50" in by_steps:
        out["speedup_ddim50"] = ddpm["time_s"] / by_steps["50"]["time_s"]
    return out


@dataclass(frozen=True)
class Guidance:
    """Parameters of the guidance figure: scales, the digit drawn, samples per scale."""

    scales: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)
    digit: int = 7
    n: int = 400
    ddim_steps: int = 50
    show: int = 10


@figure(
    "families-guidance",
    deps=("digits-classifier", "digits-diffusion"),
    params={"smoke": Guidance(n=50, ddim_steps=5, show=4), "quick": Guidance(),
            "full": Guidance(n=2000)},
    outputs=("guidance.png",),
    data=DIGITS,
    title='"Draw a 7": classifier-free guidance trades diversity for fidelity.',
    caption="Left: samples asked for a 7 at each guidance scale s (s = 0 ignores the label, "
    "s = 1 is the plain conditional model). Right: the fraction the classifier reads as a 7, "
    "and precision and recall against the real 7s.",
    alt="Rows of generated digits for increasing guidance scales: at scale 0 they are mixed "
    "digits, from scale 1 on they are sevens that grow bolder and more alike. A chart beside "
    "shows the share read as a 7 rising to one, precision rising then easing, and recall "
    "falling with scale.",
)
def guidance(ctx, p: Guidance):
    """Sample the target digit at several guidance scales; accuracy, precision, recall."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import digits
    from genai_report.figures._families_common import classifier, diffusion, show_grid
    from genai_report.metrics.fid import features, frechet_distance, precision_recall
    from genai_report.plotting import save_figure

    model, clf = diffusion(ctx), classifier(ctx)
    d = digits.load()
    real = torch.cat([d.x_train, d.x_test])
    real = real[torch.cat([d.y_train, d.y_test]) == p.digit]
    f_real = features(clf, real)
    rows, grids = [], []
    for s in ctx.progress(p.scales, desc="scales"):
        y = torch.full((p.n,), p.digit, device=ctx.device)
        x = model.sample(p.n, generator=ctx.generator(), y=y, guidance_scale=s, method="ddim",
                         steps=p.ddim_steps)
        f = features(clf, x)
        acc = float((clf.predict(x.clamp(-1, 1)).cpu() == p.digit).float().mean())
        pr = precision_recall(f_real, f)
        rows.append({"scale": s, "accuracy": acc, **pr,
                     "fid_to_real_class": frechet_distance(f, f_real),
                     "pixel_std": float(x.std(0).mean())})
        grids.append(x[: p.show].cpu())
    fig = plt.figure(figsize=(11, 0.75 * len(p.scales) + 1.5))
    gs = fig.add_gridspec(1, 2, width_ratios=(1.1, 1))
    ax = fig.add_subplot(gs[0])
    show_grid(ax, torch.cat(grids), len(p.scales), p.show)
    ax.set_yticks([4.5 + 9 * k for k in range(len(p.scales))], [f"s = {s:g}" for s in p.scales])
    ax2 = fig.add_subplot(gs[1])
    sc = [r["scale"] for r in rows]
    for key, label in (("accuracy", f"classified as {p.digit}"), ("precision", "precision"),
                       ("recall", "recall")):
        ax2.plot(sc, [r[key] for r in rows], marker="o", label=label)
    ax2.set_xlabel("guidance scale s")
    ax2.set_ylim(0, 1.02)
    ax2.legend()
    save_figure(fig, ctx.output("guidance.png"))
    return {"digit": p.digit, "by_scale": {f"{r['scale']:g}": r for r in rows}}


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
