"""Trained models of the "families of generative models" chapter that learn 2-D distributions.

On the plane we can see what each family learns: a GAN that collapses onto a few modes of the
ring of Gaussians (and a fix), a RealNVP flow with its exact density, an energy-based model
with its energy landscape, and a small diffusion model. Each is scored by the kernel MMD to
held-out points and, on the ring, by the number of modes it covers.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts._outputs import write_json
from genai_report.pipeline import artifact

MMD_POINTS = 5000
"""Points of each set the MMD compares (the first ones; every set is i.i.d.). Its cost is
quadratic: at the ``full`` profile's 20 000 points, three sets of two MMDs cost minutes of
CPU per node, for an estimate whose spread is already far below the gaps it measures."""


def _score(samples, test, floor_sample, dataset: str) -> dict:
    """MMD to held-out points (and the same for fresh real points), ring modes if a ring."""
    from genai_report.data import toy2d
    from genai_report.metrics.mmd import mmd, ring_modes

    k = MMD_POINTS
    out = {"mmd": mmd(samples[:k], test[:k]), "mmd_floor": mmd(floor_sample[:k], test[:k])}
    if dataset == "ring":
        out.update(ring_modes(samples, toy2d.ring_centres(), std=0.1))
    return out


def _splits(dataset: str, n: int, ctx, offset: int):
    from genai_report.data import toy2d

    gen = ctx.generator(offset)
    return toy2d.sample(dataset, n, gen), toy2d.sample(dataset, n, gen), toy2d.sample(dataset, n, gen)


# --------------------------------------------------------------------------- ring GAN
@dataclass(frozen=True)
class RingGANFit:
    """Parameters of the two ring GANs (plain, and with the mode-collapse fix)."""

    steps: int = 3000
    batch: int = 256
    width: int = 128
    latent_dim: int = 8
    lr: float = 1e-3
    snapshots: int = 5
    n_eval: int = 2000


@artifact(
    "ring-gan",
    params={"smoke": RingGANFit(steps=20, width=16, snapshots=2, n_eval=200), "quick": RingGANFit(),
            "full": RingGANFit(steps=20000, width=256)},
    outputs=("gans.pt", "eval.json"),
    seed=20,
)
def ring_gan(ctx, p: RingGANFit):
    """Train an MLP GAN on the 8-Gaussian ring twice: the plain non-saturating loss, and with a
    minibatch-standard-deviation feature in the discriminator plus the hinge loss (the fix)."""
    import torch

    from genai_report.models.gan import GAN, GANConfig, GANTrainConfig, train_gan

    train, test, floor = _splits("ring", max(p.n_eval, 4 * p.batch), ctx, 0)
    train, test, floor = train.to(ctx.device), test[:p.n_eval], floor[:p.n_eval]
    variants = {"plain": GANConfig(kind="mlp", latent_dim=p.latent_dim, width=p.width),
                "fixed": GANConfig(kind="mlp", latent_dim=p.latent_dim, width=p.width,
                                   loss="hinge", minibatch_std=True)}
    blobs, out = {}, {}
    for i, (name, cfg) in enumerate(variants.items()):
        gan = GAN(cfg).to(ctx.device)
        snap_gen = ctx.generator(100 + i)
        snaps = []

        def eval_fn(g, snaps=snaps, snap_gen=snap_gen):
            s = g.sample(p.n_eval, snap_gen).cpu()
            snaps.append(s)
            return toy2d_modes(s)

        def data(n, g):
            return train[torch.randint(0, len(train), (n,), generator=g).to(ctx.device)]

        hist = train_gan(gan, data, GANTrainConfig(steps=p.steps, batch=p.batch, lr_g=p.lr,
                                                   lr_d=p.lr, eval_every=max(1, p.steps // p.snapshots)),
                         ctx.generator(10 + i), eval_fn=eval_fn, progress=ctx.progress)
        final = gan.sample(p.n_eval, ctx.generator(200 + i)).cpu()
        blobs[name] = {"gan": gan.checkpoint(), "snapshots": snaps,
                       "snapshot_steps": [s for s, _, _ in hist["evals"]], "samples": final}
        out[name] = {**_score(final, test, floor, "ring"), "train_time_s": hist["wall_time_s"],
                     "loss": cfg.loss, "minibatch_std": cfg.minibatch_std,
                     "modes_over_training": [m["modes_covered"] for _, _, m in hist["evals"]]}
    torch.save(blobs, ctx.output("gans.pt"))
    write_json(ctx, "eval.json", out)
    return out


def toy2d_modes(samples) -> dict:
    """Ring-mode coverage of 2-D samples (see :func:`genai_report.metrics.mmd.ring_modes`)."""
    from genai_report.data import toy2d
    from genai_report.metrics.mmd import ring_modes

    r = ring_modes(samples, toy2d.ring_centres(), std=0.1)
    return {"modes_covered": r["modes_covered"], "high_quality_fraction": r["high_quality_fraction"]}


# --------------------------------------------------------------------------- flow
@dataclass(frozen=True)
class FlowFit:
    """Parameters of the RealNVP fits (one per data set)."""

    datasets: tuple[str, ...] = ("ring", "two-moons", "checkerboard")
    steps: int = 1200
    batch: int = 512
    layers: int = 8
    hidden: int = 128
    lr: float = 2e-3
    n: int = 2000


@artifact(
    "toy2d-flow",
    params={"smoke": FlowFit(steps=20, layers=2, hidden=16, n=200), "quick": FlowFit(),
            "full": FlowFit(steps=20000, layers=12, hidden=256, n=20000)},
    outputs=("flows.pt", "eval.json"),
    seed=21,
)
def toy2d_flow(ctx, p: FlowFit):
    """Fit a RealNVP flow by exact maximum likelihood to each 2-D data set.

    The flows share one architecture, so they train at once as one
    :class:`~genai_report.training.ensemble.Ensemble` (one batched step for all data sets);
    each keeps its own initialisation and its own batches, drawn from its own generator as
    if it trained alone. Each flow's ``train_time_s`` is its share of that training.
    """
    import math

    import torch

    from genai_report.models.flow import FlowConfig, RealNVP
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    splits, gens, flows = [], [], []
    for i, name in enumerate(p.datasets):
        splits.append(_splits(name, p.n, ctx, 10 * i))
        gens.append(ctx.generator(10 * i + 1))
        flows.append(RealNVP(FlowConfig(dim=2, layers=p.layers, hidden=p.hidden)).to(ctx.device))
    x = torch.stack([tr for tr, _te, _floor in splits]).to(ctx.device)  # (K, n, 2)
    members = torch.arange(len(flows), device=ctx.device)[:, None]  # (K, 1)
    ensemble = Ensemble(flows).to(ctx.device)

    def loss_fn(ens, step):
        idx = torch.stack([torch.randint(0, p.n, (p.batch,), generator=g)
                           for g in gens]).to(ctx.device)  # (K, B)
        return ens.call("loss", x[members, idx])  # (K,)

    hist = train_ensemble(ensemble, loss_fn,
                          TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20),
                          progress=ctx.progress, record_every=10)
    ensemble.unstack_into(flows)
    first, last = hist.first_loss(), hist.last_loss()
    blobs, out = {}, {}
    for i, (name, flow, (tr, te, floor)) in enumerate(zip(p.datasets, flows, splits,
                                                          strict=True)):
        flow.eval()
        with torch.no_grad():
            nll = float(-flow.log_prob(te.to(ctx.device)).mean())
        samples = flow.sample(p.n, ctx.generator(10 * i + 2)).cpu()
        blobs[name] = {"flow": flow.checkpoint(), "train": tr, "samples": samples}
        out[name] = {**_score(samples, te, floor, name), "test_nll_nats": nll,
                     "test_bits_per_dim": nll / (2 * math.log(2)),
                     "first_loss": first[i], "last_loss": last[i],
                     "train_time_s": hist.wall_time_s / len(flows)}
    torch.save(blobs, ctx.output("flows.pt"))
    write_json(ctx, "eval.json", out)
    return out


# --------------------------------------------------------------------------- EBM
@dataclass(frozen=True)
class EBMFit:
    """Parameters of the energy-based model fit."""

    dataset: str = "ring"
    steps: int = 1000
    batch: int = 256
    hidden: int = 128
    langevin_steps: int = 25
    step_size: float = 0.05
    buffer: int = 8192
    lr: float = 1e-3
    sample_steps: int = 300
    n: int = 2000


@artifact(
    "toy2d-ebm",
    params={"smoke": EBMFit(steps=20, hidden=16, langevin_steps=5, buffer=256, sample_steps=10,
                            n=200),
            "quick": EBMFit(), "full": EBMFit(steps=10000, hidden=256, langevin_steps=60)},
    outputs=("ebm.pt", "eval.json"),
    seed=22,
)
def toy2d_ebm(ctx, p: EBMFit):
    """Train an energy network contrastively with short-run Langevin chains and a replay buffer."""
    import torch

    from genai_report.models.ebm import EBMConfig, EnergyModel, ReplayBuffer, train_step
    from genai_report.training.loop import TrainConfig, train

    tr, te, floor = _splits(p.dataset, p.n, ctx, 0)
    x = tr.to(ctx.device)
    gen = ctx.generator(1)
    model = EnergyModel(EBMConfig(hidden=p.hidden, langevin_steps=p.langevin_steps,
                                  step_size=p.step_size)).to(ctx.device)
    buffer = ReplayBuffer(model, p.buffer, gen)
    gaps = []

    def loss_fn(m, step):
        pos = x[torch.randint(0, len(x), (p.batch,), generator=gen).to(ctx.device)]
        terms = train_step(m, buffer, pos, gen)
        gaps.append(float(terms["gap"]))
        return terms["loss"]

    hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, betas=(0.0, 0.999),
                                             warmup_steps=p.steps // 20), progress=ctx.progress,
                 record_every=10)
    model.eval()
    samples, chain = model.langevin(model.noise(p.n, ctx.generator(2)), ctx.generator(3),
                                    steps=p.sample_steps, keep_every=max(1, p.sample_steps // 6))
    samples = samples.cpu()
    with torch.no_grad():
        e_data, e_noise = float(model(te.to(ctx.device)).mean()), float(model(model.noise(p.n, gen)).mean())
    torch.save({"ebm": model.checkpoint(), "train": tr, "samples": samples, "chain": chain,
                "buffer": buffer.data[:p.n].cpu()}, ctx.output("ebm.pt"))
    out = {**_score(samples, te, floor, p.dataset), "energy_data": e_data,
           "energy_uniform_noise": e_noise, "first_gap": sum(gaps[:20]) / len(gaps[:20]),
           "last_gap": sum(gaps[-20:]) / len(gaps[-20:]), "sample_steps": p.sample_steps,
           "train_time_s": hist.wall_time_s}
    write_json(ctx, "eval.json", out)
    return out


# --------------------------------------------------------------------------- 2-D diffusion
@dataclass(frozen=True)
class Diffusion2DFit:
    """Parameters of the 2-D diffusion fits (one per data set).

    ``n`` points are drawn for training and as many for testing; ``samples`` are generated
    by the reverse process (a dry run cuts them: ``timesteps`` passes over them).
    """

    datasets: tuple[str, ...] = ("ring", "swiss-roll")
    steps: int = 2000
    batch: int = 1024
    hidden: int = 128
    depth: int = 2
    timesteps: int = 100
    lr: float = 2e-3
    n: int = 2000
    samples: int = 2000

    def __post_init__(self) -> None:
        if self.n < 1 or self.samples < 1:
            raise ValueError(f"n and samples must be >= 1, got {self.n} and {self.samples}.")


@artifact(
    "toy2d-diffusion",
    params={"smoke": Diffusion2DFit(steps=20, hidden=16, depth=1, timesteps=20, n=200,
                                    samples=200),
            "quick": Diffusion2DFit(),
            "full": Diffusion2DFit(steps=20000, hidden=256, depth=3, timesteps=1000, n=20000,
                                   samples=20000)},
    outputs=("diffusions.pt", "eval.json"),
    seed=23,
    dry_run={"samples": 2000},
)
def toy2d_diffusion(ctx, p: Diffusion2DFit):
    """Train a small DDPM on each 2-D data set; keep its reverse trajectory for the figures.

    The models share one architecture, so they train at once as one
    :class:`~genai_report.training.ensemble.Ensemble`; each keeps its own initialisation,
    batches and noise, drawn from its own generator as if it trained alone. Each model's
    ``train_time_s`` is its share of that training.
    """
    import torch

    from genai_report.models.diffusion import Diffusion, DiffusionConfig, ensemble_loss
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    splits, gens, models = [], [], []
    for i, name in enumerate(p.datasets):
        splits.append(_splits(name, p.n, ctx, 10 * i))
        gens.append(ctx.generator(10 * i + 1))
        models.append(Diffusion(DiffusionConfig(data_shape=(2,), timesteps=p.timesteps,
                                                hidden=p.hidden, depth=p.depth)).to(ctx.device))
    x = torch.stack([tr for tr, _te, _floor in splits]).to(ctx.device)  # (K, n, 2)
    members = torch.arange(len(models), device=ctx.device)[:, None]  # (K, 1)
    ensemble = Ensemble([m.denoiser for m in models]).to(ctx.device)

    def loss_fn(ens, step):
        idx = torch.stack([torch.randint(0, p.n, (p.batch,), generator=g)
                           for g in gens]).to(ctx.device)  # (K, B)
        return ensemble_loss(ens, models[0], x[members, idx], gens)  # (K,)

    hist = train_ensemble(ensemble, loss_fn,
                          TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20),
                          progress=ctx.progress, record_every=10)
    ensemble.unstack_into([m.denoiser for m in models])
    first, last = hist.first_loss(), hist.last_loss()
    blobs, out = {}, {}
    for i, (name, model, (tr, te, floor)) in enumerate(zip(p.datasets, models, splits,
                                                           strict=True)):
        model.eval()
        samples, traj = model.sample(p.samples, generator=ctx.generator(10 * i + 2),
                                     trajectory_every=max(1, p.timesteps // 5))
        samples = samples.cpu()
        blobs[name] = {"diffusion": model.checkpoint(), "train": tr, "samples": samples,
                       "trajectory": traj}
        out[name] = {**_score(samples, te, floor, name), "first_loss": first[i],
                     "last_loss": last[i], "train_time_s": hist.wall_time_s / len(models)}
    torch.save(blobs, ctx.output("diffusions.pt"))
    write_json(ctx, "eval.json", out)
    return out
