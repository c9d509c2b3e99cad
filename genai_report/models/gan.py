"""Generative adversarial networks (Goodfellow et al. 2014) and a DCGAN (Radford et al. 2016).

Two players trained against each other, so GANs keep their own loop (:func:`train_gan`)
rather than the single-loss :func:`genai_report.training.loop.train`. Two losses are offered:
the non-saturating ``"standard"`` loss of the original paper and the ``"hinge"`` loss; the
discriminator can append a minibatch-standard-deviation feature (Karras et al. 2018), which
lets it see a collapsed batch and so pushes the generator to spread out.

The DCGAN can be class-conditional (``n_classes > 0``): the generator sees a learned label
embedding beside its noise, and the discriminator is a projection discriminator (Miyato &
Koyama 2018), whose score adds the inner product of a label embedding with its features to
the unconditional score. :func:`train_gan` can keep an exponential moving average of the
generator's weights (``GANTrainConfig.ema``) and sample from it, as diffusion models do and
as large GANs do (Karras et al. 2018; Brock et al. 2019).
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
        n_classes: number of labels for a class-conditional DCGAN (0: unconditional).
    """

    kind: str = "dcgan"
    latent_dim: int = 32
    width: int = 64
    loss: str = "standard"
    minibatch_std: bool = False
    n_classes: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("dcgan", "mlp"):
            raise ValueError(f"kind must be 'dcgan' or 'mlp', got '{self.kind}'.")
        if self.loss not in ("standard", "hinge"):
            raise ValueError(f"loss must be 'standard' or 'hinge', got '{self.loss}'.")
        if self.n_classes < 0 or (self.n_classes and self.kind != "dcgan"):
            raise ValueError(f"n_classes must be >= 0, and only the dcgan is conditional; got "
                             f"n_classes={self.n_classes} for kind '{self.kind}'.")


def _minibatch_std(h: torch.Tensor, y: torch.Tensor | None = None,
                   n_classes: int = 0) -> torch.Tensor:
    """Append the batch's mean feature standard deviation as one more channel.

    Unconditionally one scalar per batch. With labels, one scalar per class, computed among
    the batch's examples of that class: a conditional generator that draws one image per
    class still shows a varied batch (ten classes), and only the within-class spread
    exposes that collapse.
    """
    if y is None:
        std = h.std(0).mean().expand(len(h), 1, *h.shape[2:])  # (B, 1, ...)
        return torch.cat([h, std], dim=1)
    flat = h.flatten(1)  # (B, D)
    onehot = F.one_hot(y, n_classes).to(flat.dtype)  # (B, K)
    count = onehot.sum(0).clamp(min=1)[:, None]  # (K, 1)
    mean = onehot.T @ flat / count  # (K, D)
    var = (onehot.T @ flat.square() / count - mean.square()).clamp(min=0)  # (K, D)
    per_class = (var + 1e-8).sqrt().mean(1)  # (K,)
    std = per_class[y].reshape(-1, 1, *([1] * (h.dim() - 2))).expand(-1, 1, *h.shape[2:])
    return torch.cat([h, std], dim=1)


def _bn(channels: int) -> nn.BatchNorm2d:
    # Batch statistics in training and sampling alike: running averages of a generator that
    # changes every step describe none of its recent batches (sampling with them collapses).
    return nn.BatchNorm2d(channels, track_running_stats=False)


class DCGenerator(nn.Module):
    """z -> 2x2 -> 4x4 -> 8x8 with transposed convolutions, batch norm and tanh.

    With ``n_classes``, a learned embedding of the label (``latent_dim`` wide) is appended to
    the noise before the first layer.
    """

    def __init__(self, latent_dim: int, width: int, n_classes: int = 0):
        super().__init__()
        w = width
        self.embed = nn.Embedding(n_classes, latent_dim) if n_classes else None
        self.net = nn.Sequential(
            nn.Linear(latent_dim * (2 if n_classes else 1), 4 * w * 4),
            nn.Unflatten(1, (4 * w, 2, 2)),
            _bn(4 * w), nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), _bn(2 * w), nn.ReLU(),  # 4x4
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), _bn(w), nn.ReLU(),  # 8x8
            nn.Conv2d(w, 1, 3, padding=1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("This generator is class-conditional: pass labels y.")
            z = torch.cat([z, self.embed(y)], dim=1)  # (B, 2 * latent_dim)
        return self.net(z)  # (B, 1, 8, 8)


class DCDiscriminator(nn.Module):
    """Strided convolutions with leaky ReLU (no batch norm), then a linear score.

    With ``n_classes`` it is a projection discriminator (Miyato & Koyama 2018): the score of
    ``(x, y)`` is ``w . phi(x) + embed(y) . phi(x)``, where ``phi(x)`` are the flattened
    features, so the label enters as a learned direction in feature space.
    """

    def __init__(self, width: int, minibatch_std: bool = False, n_classes: int = 0):
        super().__init__()
        w = width
        self.minibatch_std, self.n_classes = minibatch_std, n_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),  # 4x4
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, 2w, 2, 2)
        )
        dim = (2 * w + int(minibatch_std)) * 4
        self.head = nn.Linear(dim, 1)
        self.project = nn.Embedding(n_classes, dim) if n_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.project is not None and y is None:
            raise ValueError("This discriminator is class-conditional: pass labels y.")
        h = self.body(x)  # (B, 2w, 2, 2)
        if self.minibatch_std:
            h = _minibatch_std(h, y if self.project is not None else None, self.n_classes)
        h = h.flatten(1)  # (B, dim)
        score = self.head(h).squeeze(-1)  # (B,)
        if self.project is not None:
            score = score + (self.project(y) * h).sum(-1)
        return score


class MLPGenerator(nn.Module):
    """An MLP from noise to 2-D points."""

    def __init__(self, latent_dim: int, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, width), nn.ReLU(), nn.Linear(width, width),
                                 nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, 2))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
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

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)
        if self.minibatch_std:
            h = _minibatch_std(h)
        return self.head(h).squeeze(-1)


class GAN(nn.Module):
    """A generator and a discriminator built from a :class:`GANConfig`."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        if config.kind == "dcgan":
            self.generator = DCGenerator(config.latent_dim, config.width, config.n_classes)
            self.discriminator = DCDiscriminator(config.width, config.minibatch_std,
                                                 config.n_classes)
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

    @property
    def conditional(self) -> bool:
        """Whether the GAN is class-conditional (its generator needs labels)."""
        return self.config.n_classes > 0

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator,
               y: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples ``(n, ...)`` from the generator (in eval mode).

        Args:
            n: number of samples.
            generator: CPU generator for the noise.
            y: labels ``(n,)``, required by (and only by) a class-conditional GAN. The
                generator normalises with batch statistics, as in training, so ask for a
                mix of labels (e.g. 0-9 in turn) rather than a batch of one label.
        """
        if self.conditional and (y is None or len(y) != n):
            raise ValueError(f"This GAN is class-conditional: pass {n} labels y.")
        dev = next(self.parameters()).device
        was = self.generator.training
        self.generator.eval()
        z = torch.randn((n, self.config.latent_dim), generator=generator).to(dev)
        out = self.generator(z, None if y is None else y.to(dev))
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
        ema: decay of an exponential moving average of the generator's weights, which
            evaluations and the returned generator use (0: none, the last weights).
    """

    steps: int
    batch: int = 128
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eval_every: int = 0
    ema: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 2:
            raise ValueError("steps must be >= 1 and batch >= 2.")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}.")


def train_gan(gan: GAN, data: Callable[[int, torch.Generator], torch.Tensor | tuple],
              config: GANTrainConfig, generator: torch.Generator, *,
              eval_fn: Callable[[GAN], dict] | None = None, progress=None) -> dict:
    """Alternate one discriminator and one generator step for ``config.steps`` steps.

    A class-conditional GAN trains on ``(x, y)`` batches: the discriminator scores real
    images with their labels, and the fakes are generated for the same labels, so the
    generator sees the data's class mix.

    Args:
        gan: the model (on its device).
        data: ``data(batch, generator)`` returns a batch of real examples on the device, or
            ``(examples, labels)`` for a class-conditional GAN.
        config: the :class:`GANTrainConfig`.
        generator: CPU generator for noise and batches.
        eval_fn: called every ``eval_every`` steps and at the end; returns metrics. With
            ``config.ema`` it sees the averaged generator.
        progress: wraps the step range (``ctx.progress``).

    Returns:
        ``{"d_loss": [...], "g_loss": [...], "evals": [(step, seconds, metrics)], "wall_time_s"}``.
        With ``config.ema``, ``gan.generator`` holds the averaged weights on return.
    """
    from genai_report.models.diffusion import EMA

    dev = next(gan.parameters()).device
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=config.lr_d, betas=config.betas)
    ema = EMA(gan.generator, config.ema) if config.ema else None
    hist: dict = {"d_loss": [], "g_loss": [], "evals": []}
    steps = range(config.steps)
    if progress is not None:
        steps = progress(steps, config.steps, "train")
    t0, eval_time = time.perf_counter(), 0.0
    kind = gan.config.loss
    gan.train()
    for step in steps:
        real, y = _batch(data(config.batch, generator), gan.conditional)
        z = torch.randn((config.batch, gan.config.latent_dim), generator=generator).to(dev)
        fake = gan.generator(z, y)
        ld = d_loss(gan.discriminator(real, y), gan.discriminator(fake.detach(), y), kind)
        opt_d.zero_grad(set_to_none=True)
        ld.backward()
        opt_d.step()
        lg = g_loss(gan.discriminator(fake, y), kind)
        opt_g.zero_grad(set_to_none=True)
        lg.backward()
        opt_g.step()
        if ema is not None:
            ema.update(gan.generator)
        hist["d_loss"].append(ld.item())
        hist["g_loss"].append(lg.item())
        last = step == config.steps - 1
        if eval_fn is not None and (last or (config.eval_every and (step + 1) % config.eval_every == 0)):
            e0 = time.perf_counter()
            with _generator_weights(gan, ema):
                metrics = eval_fn(gan)
            eval_time += time.perf_counter() - e0
            hist["evals"].append((step + 1, time.perf_counter() - t0 - eval_time, metrics))
    if ema is not None:
        gan.generator.load_state_dict(ema.shadow.state_dict())
    gan.eval()
    hist["wall_time_s"] = time.perf_counter() - t0 - eval_time
    return hist


def _batch(batch, conditional: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, tuple | list):
        x, y = batch
        return x, (y if conditional else None)
    if conditional:
        raise ValueError("A class-conditional GAN needs (examples, labels) batches from data().")
    return batch, None


class _generator_weights:
    """Evaluate with the averaged generator (if any) in eval mode; restore both after."""

    def __init__(self, gan: GAN, ema):
        self.gan, self.ema, self.saved = gan, ema, None

    def __enter__(self) -> None:
        if self.ema is not None:
            self.saved = {k: v.clone() for k, v in self.gan.generator.state_dict().items()}
            self.gan.generator.load_state_dict(self.ema.shadow.state_dict())
        self.gan.eval()

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            self.gan.generator.load_state_dict(self.saved)
        self.gan.train()
