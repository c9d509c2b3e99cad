"""Generative adversarial networks (Goodfellow et al. 2014) and a DCGAN (Radford et al. 2016).

Two players trained against each other, so GANs keep their own loop (:func:`train_gan`)
rather than the single-loss :func:`genai_report.training.loop.train`. Two losses are offered:
the non-saturating ``"standard"`` loss of the original paper and the ``"hinge"`` loss; the
discriminator can append a minibatch-standard-deviation feature (Karras et al. 2018), which
lets it see a collapsed batch and so pushes the generator to spread out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GANConfig:
    """Everything needed to rebuild a GAN.

    Attributes:
        kind: ``"dcgan"`` (8x8 images) or ``"mlp"`` (2-D points).
        latent_dim: dimension of the generator's noise.
        width: channels (dcgan) or hidden units (mlp).
        loss: ``"standard"`` (non-saturating) or ``"hinge"``.
        minibatch_std: append the batch's feature standard deviation in the discriminator.
    """

    kind: str = "dcgan"
    latent_dim: int = 32
    width: int = 64
    loss: str = "standard"
    minibatch_std: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("dcgan", "mlp"):
            raise ValueError(f"kind must be 'dcgan' or 'mlp', got '{self.kind}'.")
        if self.loss not in ("standard", "hinge"):
            raise ValueError(f"loss must be 'standard' or 'hinge', got '{self.loss}'.")


class _MinibatchStd(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        std = h.std(0).mean().expand(len(h), 1, *h.shape[2:])  # one scalar per batch
        return torch.cat([h, std], dim=1)


def _bn(channels: int) -> nn.BatchNorm2d:
    # Batch statistics in training and sampling alike: running averages of a generator that
    # changes every step describe none of its recent batches (sampling with them collapses).
    return nn.BatchNorm2d(channels, track_running_stats=False)


class DCGenerator(nn.Module):
    """z -> 2x2 -> 4x4 -> 8x8 with transposed convolutions, batch norm and tanh."""

    def __init__(self, latent_dim: int, width: int):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 4 * w * 4), nn.Unflatten(1, (4 * w, 2, 2)),
            _bn(4 * w), nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), _bn(2 * w), nn.ReLU(),  # 4x4
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), _bn(w), nn.ReLU(),  # 8x8
            nn.Conv2d(w, 1, 3, padding=1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, 1, 8, 8)


class DCDiscriminator(nn.Module):
    """Strided convolutions with leaky ReLU (no batch norm), then a linear score."""

    def __init__(self, width: int, minibatch_std: bool = False):
        super().__init__()
        w = width
        extra = 1 if minibatch_std else 0
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),  # 4x4
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),  # 2x2
            *([_MinibatchStd()] if minibatch_std else []),
            nn.Flatten(), nn.Linear((2 * w + extra) * 4, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (B,)


class MLPGenerator(nn.Module):
    """An MLP from noise to 2-D points."""

    def __init__(self, latent_dim: int, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, width), nn.ReLU(), nn.Linear(width, width),
                                 nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """An MLP critic on 2-D points, optionally with the minibatch-std feature."""

    def __init__(self, width: int, minibatch_std: bool = False):
        super().__init__()
        self.minibatch_std = minibatch_std
        self.body = nn.Sequential(nn.Linear(2, width), nn.LeakyReLU(0.2),
                                  nn.Linear(width, width), nn.LeakyReLU(0.2))
        self.head = nn.Sequential(nn.Linear(width + int(minibatch_std), width), nn.LeakyReLU(0.2),
                                  nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        if self.minibatch_std:
            h = torch.cat([h, h.std(0).mean().expand(len(h), 1)], dim=1)
        return self.head(h).squeeze(-1)


class GAN(nn.Module):
    """A generator and a discriminator built from a :class:`GANConfig`."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        if config.kind == "dcgan":
            self.generator = DCGenerator(config.latent_dim, config.width)
            self.discriminator = DCDiscriminator(config.width, config.minibatch_std)
        else:
            self.generator = MLPGenerator(config.latent_dim, config.width)
            self.discriminator = MLPDiscriminator(config.width, config.minibatch_std)

    def checkpoint(self) -> dict:
        """A ``torch.save``-able dict with config and weights."""
        return {"config": asdict(self.config), "state": self.state_dict()}

    @classmethod
    def load(cls, blob: dict, device: torch.device | str = "cpu") -> GAN:
        """Rebuild from :meth:`checkpoint` output."""
        model = cls(GANConfig(**blob["config"]))
        model.load_state_dict(blob["state"])
        return model.to(device).eval()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` samples from the generator (in eval mode)."""
        dev = next(self.parameters()).device
        was = self.generator.training
        self.generator.eval()
        z = torch.randn((n, self.config.latent_dim), generator=generator).to(dev)
        out = self.generator(z)
        self.generator.train(was)
        return out


def d_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator loss on real and fake scores (logits)."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Generator loss: non-saturating ``-log D(G(z))`` (standard) or ``-D(G(z))`` (hinge)."""
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


@dataclass(frozen=True)
class GANTrainConfig:
    """Settings of :func:`train_gan`.

    Attributes:
        steps: generator updates (each after one discriminator update).
        batch: batch size.
        lr_g, lr_d: Adam learning rates.
        betas: Adam moments (DCGAN's 0.5, 0.999).
        eval_every: call ``eval_fn`` every this many steps (0: only at the end).
    """

    steps: int
    batch: int = 128
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eval_every: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 2:
            raise ValueError("steps must be >= 1 and batch >= 2.")


def train_gan(gan: GAN, data: Callable[[int, torch.Generator], torch.Tensor],
              config: GANTrainConfig, generator: torch.Generator, *,
              eval_fn: Callable[[GAN], dict] | None = None, progress=None) -> dict:
    """Alternate one discriminator and one generator step for ``config.steps`` steps.

    Args:
        gan: the model (on its device).
        data: ``data(batch, generator)`` returns a batch of real examples on the device.
        config: the :class:`GANTrainConfig`.
        generator: CPU generator for noise and batches.
        eval_fn: called every ``eval_every`` steps and at the end; returns metrics.
        progress: wraps the step range (``ctx.progress``).

    Returns:
        ``{"d_loss": [...], "g_loss": [...], "evals": [(step, seconds, metrics)], "wall_time_s"}``.
    """
    dev = next(gan.parameters()).device
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=config.lr_d, betas=config.betas)
    hist: dict = {"d_loss": [], "g_loss": [], "evals": []}
    steps = range(config.steps)
    if progress is not None:
        steps = progress(steps, config.steps, "train")
    t0, eval_time = time.perf_counter(), 0.0
    kind = gan.config.loss
    gan.train()
    for step in steps:
        real = data(config.batch, generator)
        z = torch.randn((config.batch, gan.config.latent_dim), generator=generator).to(dev)
        fake = gan.generator(z)
        ld = d_loss(gan.discriminator(real), gan.discriminator(fake.detach()), kind)
        opt_d.zero_grad(set_to_none=True)
        ld.backward()
        opt_d.step()
        lg = g_loss(gan.discriminator(fake), kind)
        opt_g.zero_grad(set_to_none=True)
        lg.backward()
        opt_g.step()
        hist["d_loss"].append(ld.item())
        hist["g_loss"].append(lg.item())
        last = step == config.steps - 1
        if eval_fn is not None and (last or (config.eval_every and (step + 1) % config.eval_every == 0)):
            e0 = time.perf_counter()
            gan.eval()
            metrics = eval_fn(gan)
            gan.train()
            eval_time += time.perf_counter() - e0
            hist["evals"].append((step + 1, time.perf_counter() - t0 - eval_time, metrics))
    gan.eval()
    hist["wall_time_s"] = time.perf_counter() - t0 - eval_time
    return hist
