"""Diffusion on the 8x8 digits: the denoising trajectory, DDIM's step counts against the full
DDPM chain, and classifier-free guidance ("draw a 7").

Every figure samples the model trained by ``digits-diffusion``
(:mod:`genai_report.artifacts.digits_diffusion`); only sampling and scoring happen here.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.data.digits import data_file
from genai_report.figures._families_common import fid_floor
from genai_report.pipeline import figure

DIGITS = (data_file,)


@dataclass(frozen=True)
class Trajectory:
    """Parameters of the denoising-trajectory figure: samples (one per class) and frames."""

    frames: int = 8


@figure(
    "families-denoising",
    deps=("digits-diffusion",),
    params={"smoke": Trajectory(frames=3), "quick": Trajectory(), "full": Trajectory()},
    outputs=("denoising.svg",),
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
    save_figure(fig, ctx.output("denoising.svg"))
    return {"timesteps": T, "frames_t": [f[0] for f in frames]}


@dataclass(frozen=True)
class Steps:
    """Parameters of the sampler comparison: DDIM step counts, samples per point, and the
    sampling seeds every DDIM point is scored over (the 1000-step DDPM chain, 20 times the
    cost of DDIM-50, is drawn once)."""

    ddim_steps: tuple[int, ...] = (5, 10, 20, 50, 100)
    n: int = 1347
    ddpm: bool = True
    seeds: int = 5

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
    dry_run={"n": 100, "seeds": 2},
    title="Sampling steps: DDIM's shortcut against the full DDPM chain.",
    caption="Digits FID (left; DDIM: mean and standard deviation over sampling seeds) and "
    "wall-clock sampling time (right) of the same trained model sampled with DDIM at several "
    "step counts and with the full ancestral DDPM chain; the dashed line is the real-data "
    "floor.",
    alt="Two charts against the number of sampling steps (log scale): FID falls quickly with "
    "the first DDIM steps and then flattens, with the 1000-step DDPM point lower still; "
    "sampling time grows linearly with steps.",
)
def ddim_steps(ctx, p: Steps):
    """FID (mean ± sd over sampling seeds) and sampling time, DDIM steps and full DDPM."""
    import time

    import matplotlib.pyplot as plt

    from genai_report.data.digits import balanced_labels
    from genai_report.figures._families_common import diffusion, evaluator
    from genai_report.metrics.fid import score_over_seeds
    from genai_report.plotting import save_figure

    model, ev = diffusion(ctx), evaluator(ctx)
    y = balanced_labels(p.n, ctx.device)
    rows = []
    for k in ctx.progress(p.ddim_steps, desc="DDIM"):
        times = []

        def draw(gen, k=k, times=times):
            t0 = time.perf_counter()
            s = model.sample(p.n, generator=gen, y=y, method="ddim", steps=k)
            times.append(time.perf_counter() - t0)
            return s

        m = score_over_seeds(ev, draw, [ctx.generator(1000 * i + k) for i in range(p.seeds)])
        rows.append({"steps": k, "time_s": min(times), "fid": m["fid"],
                     "precision": m["precision"], "recall": m["recall"]})
    T = model.config.timesteps
    ddpm = None
    if p.ddpm:
        t0 = time.perf_counter()
        s = model.sample(p.n, generator=ctx.generator(1), y=y, method="ddpm")
        dt = time.perf_counter() - t0
        m = ev(s)
        ddpm = {"steps": T, "time_s": dt, "fid": m["fid"], "precision": m["precision"],
                "recall": m["recall"], "seeds": 1}
    by_steps = {str(r["steps"]): r for r in rows}
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0))
    steps = [r["steps"] for r in rows]
    axes[0].errorbar(steps, [r["fid"]["mean"] for r in rows], yerr=[r["fid"]["sd"] for r in rows],
                     marker="o", capsize=3, label=f"DDIM ({p.seeds} seeds)")
    axes[1].plot(steps, [r["time_s"] for r in rows], marker="o", label="DDIM")
    if ddpm:
        for ax, key in zip(axes, ("fid", "time_s"), strict=True):
            ax.scatter([T], [ddpm[key]], marker="s", s=40, color="C1", zorder=3,
                       label=f"DDPM ({T} steps, 1 seed)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("sampling steps")
    axes[0].axhline(fid_floor(ctx), color="0.4", ls="--", lw=1, label="real data (floor)")
    axes[0].set_ylabel("digits FID")
    axes[1].set_ylabel(f"seconds for {p.n} samples")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, ctx.output("ddim_steps.svg"))
    best = min(rows, key=lambda r: r["fid"]["mean"])
    out = {"ddim": by_steps, "ddpm": ddpm, "fid_floor": fid_floor(ctx), "best_ddim": best,
           "seeds": p.seeds}
    if ddpm:
        ddpm["fid_over_floor"] = ddpm["fid"] / fid_floor(ctx)
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
    outputs=("guidance.svg",),
    data=DIGITS,
    dry_run={"n": 50},
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
    save_figure(fig, ctx.output("guidance.svg"))
    return {"digit": p.digit, "by_scale": {f"{r['scale']:g}": r for r in rows}}
