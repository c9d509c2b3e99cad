"""Families of generative models on 2-D data: mode collapse, flow densities, an energy
landscape, diffusion trajectories, and every family on the ring scored by MMD and modes.

Figures only sample and draw; the models are trained in
:mod:`genai_report.artifacts.toy2d_models`.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure


@dataclass(frozen=True)
class Plane:
    """Parameters of a 2-D figure: heat-map resolution and points drawn."""

    grid: int = 200
    points: int = 2000


PLANE = {"smoke": Plane(grid=24, points=200), "quick": Plane(), "full": Plane(grid=300)}
LIM = 3.0


def _scatter(ax, pts, title: str, color: str = "C0") -> None:
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color=color, rasterized=True)
    ax.set_xlim(-LIM, LIM)
    ax.set_ylim(-LIM, LIM)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.grid(False)


def _eval(ctx, node: str) -> dict:
    ctx.input(node, "eval.json")  # declared and present
    return ctx.input_metrics(node)  # eval.json and the timings kept out of it


@figure(
    "families-mode-collapse",
    deps=("ring-gan",),
    params=PLANE,
    outputs=("mode_collapse.svg",),
    title="Mode collapse: a GAN on a ring of eight Gaussians, and a fix.",
    caption="Generator samples at checkpoints during training. Top: the non-saturating GAN loss. "
    "Bottom: the hinge loss with a minibatch-standard-deviation feature in the discriminator. "
    "Grey crosses mark the eight true modes.",
    alt="Two rows of scatter plots over training: in the top row the samples cluster on only a "
    "few of the eight ring modes and hop between them; in the bottom row they spread to cover "
    "all eight.",
)
def mode_collapse(ctx, p: Plane):
    """Samples of the plain and the fixed ring GAN over training."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import toy2d
    from genai_report.plotting import save_figure

    blobs = torch.load(ctx.input("ring-gan", "gans.pt"), weights_only=True)
    ev = _eval(ctx, "ring-gan")
    centres = toy2d.ring_centres()
    cols = len(blobs["plain"]["snapshots"])
    fig, axes = plt.subplots(2, cols, figsize=(2.3 * cols, 5), squeeze=False)
    for i, (name, label) in enumerate((("plain", "standard GAN"),
                                       ("fixed", "hinge + minibatch std"))):
        b = blobs[name]
        for j, (snap, step) in enumerate(zip(b["snapshots"], b["snapshot_steps"], strict=True)):
            ax = axes[i, j]
            modes = ev[name]["modes_over_training"][j]
            _scatter(ax, snap[: p.points], f"{label}\nstep {step}: {modes}/8 modes", f"C{i}")
            ax.scatter(centres[:, 0], centres[:, 1], marker="x", color="0.4", s=20)
            ax.set_xticks([])
            ax.set_yticks([])
    save_figure(fig, ctx.output("mode_collapse.svg"))
    return {name: {k: ev[name][k] for k in ("modes_covered", "high_quality_fraction", "mmd",
                                              "modes_over_training")} for name in ev}


@figure(
    "families-flow-density",
    deps=("toy2d-flow",),
    params=PLANE,
    outputs=("flow_density.svg",),
    title="A RealNVP flow gives an exact density.",
    caption="For each data set: training points, the flow's log-density log p(x) (computed "
    "exactly by the change of variables), and samples. The held-out negative log-likelihood is "
    "in each title.",
    alt="Three rows (ring of Gaussians, two moons, checkerboard), each with training points, a "
    "heat map of the learned log-density and samples; the density follows each shape but "
    "leaves thin bridges between separate pieces.",
)
def flow_density(ctx, p: Plane):
    """Training data, exact log-density heat map and samples of each flow."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.models.flow import RealNVP
    from genai_report.plotting import save_figure

    blobs = torch.load(ctx.input("toy2d-flow", "flows.pt"), weights_only=True)
    ev = _eval(ctx, "toy2d-flow")
    lin = torch.linspace(-LIM, LIM, p.grid)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(ctx.device)
    fig, axes = plt.subplots(len(blobs), 3, figsize=(9, 3 * len(blobs)), squeeze=False)
    for i, (name, b) in enumerate(blobs.items()):
        flow = RealNVP.load(b["flow"], ctx.device)
        with torch.no_grad():
            logp = flow.log_prob(grid).reshape(p.grid, p.grid).cpu()
        _scatter(axes[i, 0], b["train"][: p.points], f"{name}: training data")
        axes[i, 1].imshow(logp.clamp(min=-10).numpy(), origin="lower", extent=(-LIM, LIM, -LIM, LIM))
        axes[i, 1].set_title(f"log p(x); test NLL {ev[name]['test_nll_nats']:.2f} nats", fontsize=9)
        axes[i, 1].grid(False)
        _scatter(axes[i, 2], b["samples"][: p.points], f"samples; MMD {ev[name]['mmd']:.4f}", "C1")
    save_figure(fig, ctx.output("flow_density.svg"), dpi=100)  # embedded pictures: 2x the column
    return {name: {k: v for k, v in m.items() if k != "mode_counts"} for name, m in ev.items()}


@figure(
    "families-ebm",
    deps=("toy2d-ebm",),
    params=PLANE,
    outputs=("ebm.svg",),
    title="An energy-based model: its energy landscape and Langevin sampling.",
    caption="Left: the learned energy E(x) (low is likely). Middle: Langevin chains started "
    "from uniform noise, drawn as paths. Right: where the chains end.",
    alt="A heat map with eight dark wells arranged on a ring; paths of sampling chains that "
    "start anywhere and slide into the wells; and the final points clustered in the wells.",
)
def ebm(ctx, p: Plane):
    """Energy landscape, a few Langevin chains, and the final samples."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.models.ebm import EnergyModel
    from genai_report.plotting import save_figure

    b = torch.load(ctx.input("toy2d-ebm", "ebm.pt"), weights_only=True)
    ev = _eval(ctx, "toy2d-ebm")
    model = EnergyModel.load(b["ebm"], ctx.device)
    lin = torch.linspace(-LIM, LIM, p.grid)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).to(ctx.device)
    with torch.no_grad():
        energy = model(grid).reshape(p.grid, p.grid).cpu()
    _, chain = model.langevin(model.noise(12, ctx.generator()), ctx.generator(1),
                              steps=ev["sample_steps"], keep_every=1)
    paths = torch.stack(chain).numpy()  # (steps + 1, 12, 2)
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.5), gridspec_kw={"wspace": 0.35})
    im = axes[0].imshow(energy.numpy(), origin="lower", extent=(-LIM, LIM, -LIM, LIM), cmap="magma")
    fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04)
    axes[0].set_title("energy E(x)\n(dark = low = likely)", fontsize=9)
    axes[0].grid(False)
    for k in range(paths.shape[1]):
        axes[1].plot(paths[:, k, 0], paths[:, k, 1], lw=0.8, color=f"C{k % 8}")
        axes[1].scatter(paths[0, k, 0], paths[0, k, 1], s=10, color="0.3", marker="o")
        axes[1].scatter(paths[-1, k, 0], paths[-1, k, 1], s=18, color=f"C{k % 8}", marker="*")
    axes[1].set_xlim(-LIM, LIM)
    axes[1].set_ylim(-LIM, LIM)
    axes[1].imshow(energy.numpy(), origin="lower", extent=(-LIM, LIM, -LIM, LIM), cmap="magma",
                   alpha=0.5)
    axes[1].grid(False)
    axes[1].set_title(f"{ev['sample_steps']} Langevin steps\nfrom noise", fontsize=9)
    _scatter(axes[2], b["samples"][: p.points],
             f"samples: MMD {ev['mmd']:.4f},\n{ev.get('modes_covered', '?')}/8 modes", "C1")
    save_figure(fig, ctx.output("ebm.svg"))
    return {k: v for k, v in ev.items() if k != "mode_counts"}


@figure(
    "families-2d-gallery",
    deps=("ring-gan", "toy2d-flow", "toy2d-ebm", "toy2d-diffusion"),
    params=PLANE,
    outputs=("gallery_2d.svg",),
    title="Every family on the ring of eight Gaussians.",
    caption="Samples of each 2-D model with the share of its samples that lie near one of "
    "the eight modes (within three standard deviations) and how evenly those are shared among "
    "the modes (balance: one minus the total-variation distance to an even share). The table "
    "below adds the kernel MMD to held-out points.",
    alt="Six scatter plots of the ring of eight Gaussians: real points, a collapsed GAN, a "
    "fixed GAN, a flow with faint bridges between modes, an energy-based model and a diffusion "
    "model, the last matching the eight blobs closely.",
)
def gallery_2d(ctx, p: Plane):
    """Samples of every 2-D family on the ring with MMD and modes covered, in one table."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import toy2d
    from genai_report.metrics.mmd import mode_balance
    from genai_report.plotting import save_figure

    gans = torch.load(ctx.input("ring-gan", "gans.pt"), weights_only=True)
    flows = torch.load(ctx.input("toy2d-flow", "flows.pt"), weights_only=True)
    ebm_blob = torch.load(ctx.input("toy2d-ebm", "ebm.pt"), weights_only=True)
    diffs = torch.load(ctx.input("toy2d-diffusion", "diffusions.pt"), weights_only=True)
    ev = {"gan": _eval(ctx, "ring-gan"), "flow": _eval(ctx, "toy2d-flow"),
          "ebm": _eval(ctx, "toy2d-ebm"), "diffusion": _eval(ctx, "toy2d-diffusion")}
    panels = [
        ("gan_plain", "GAN (standard)", gans["plain"]["samples"], ev["gan"]["plain"]),
        ("gan_fixed", "GAN (hinge + mb. std)", gans["fixed"]["samples"], ev["gan"]["fixed"]),
        ("flow", "Flow (RealNVP)", flows["ring"]["samples"], ev["flow"]["ring"]),
        ("ebm", "EBM (Langevin)", ebm_blob["samples"], ev["ebm"]),
        ("diffusion", "Diffusion (DDPM)", diffs["ring"]["samples"], ev["diffusion"]["ring"]),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(6.4, 5.2), gridspec_kw={"wspace": 0.15})
    axes = axes.ravel()
    real = toy2d.sample("ring", p.points, ctx.generator())
    centres = toy2d.ring_centres()
    floor = mode_balance(toy2d.sample("ring", 2000, ctx.generator(1)), centres)
    _scatter(axes[0], real, f"real data\n{floor['near_mode']:.0%} near a mode\n"
             f"balance {floor['balance']:.2f}")
    table = {}
    for ax, (key, label, pts, m) in zip(axes[1:], panels, strict=True):
        modes = mode_balance(pts, centres)
        _scatter(ax, pts[: p.points], f"{label}\n{modes['near_mode']:.0%} near a mode\n"
                 f"balance {modes['balance']:.2f}", "C1")
        table[key] = {"mmd": m["mmd"], "modes_covered": m["modes_covered"],
                      "near_mode": modes["near_mode"], "balance": modes["balance"],
                      "matched_mass": modes["matched_mass"],
                      "train_time_s": m["train_time_s"]}
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, ctx.output("gallery_2d.svg"))
    return {"table": table, "mmd_floor": ev["diffusion"]["ring"]["mmd_floor"],
            "real": {k: floor[k] for k in ("near_mode", "balance", "matched_mass")}}


@figure(
    "families-diffusion-2d",
    deps=("toy2d-diffusion",),
    params=PLANE,
    outputs=("diffusion_2d.svg",),
    title="The reverse process on the plane: noise becomes a swiss roll.",
    caption="The same 2,000 points at evenly spaced steps of the DDPM reverse process, from "
    "x_T (a standard Gaussian) to x_0.",
    alt="A row of scatter plots: a round Gaussian blob that gradually contracts and curls into "
    "a spiral, the swiss roll.",
)
def diffusion_2d(ctx, p: Plane):
    """Frames of the reverse trajectory of the 2-D diffusion model."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.plotting import save_figure

    blobs = torch.load(ctx.input("toy2d-diffusion", "diffusions.pt"), weights_only=True)
    ev = _eval(ctx, "toy2d-diffusion")
    name = "swiss-roll" if "swiss-roll" in blobs else next(iter(blobs))
    traj = blobs[name]["trajectory"]
    fig, axes = plt.subplots(1, len(traj), figsize=(7.2, 7.2 / len(traj) + 0.4), squeeze=False)
    for ax, (t, x) in zip(axes[0], traj, strict=True):
        _scatter(ax, x[: p.points], f"t = {int(t)}", "C0" if t else "C1")
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, ctx.output("diffusion_2d.svg"))
    return {k: {kk: vv for kk, vv in v.items() if kk != "mode_counts"} for k, v in ev.items()}
