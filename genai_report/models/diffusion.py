"""Denoising diffusion (DDPM, Ho et al. 2020) with DDIM sampling and classifier-free guidance.

Three pieces, each usable alone:

* :class:`NoiseSchedule` - the forward process ``q(x_t | x_0)`` in closed form.
* a denoiser from :mod:`genai_report.models.denoisers` that predicts the added noise from
  ``(x_t, t, y)``: a residual MLP for points and latent codes, or a small U-Net for images.
* :class:`Diffusion` - the training loss and the samplers: ancestral DDPM, DDIM (Song et al.
  2021) with any number of steps, and classifier-free guidance (Ho & Salimans 2022).

Save a model with :meth:`Diffusion.checkpoint` and rebuild it with :meth:`Diffusion.load`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genai_report.models.denoisers import MLPDenoiser, UNetDenoiser, check_unet_shape


@dataclass(frozen=True)
class DiffusionConfig:
    """Everything needed to rebuild a :class:`Diffusion`.

    Attributes:
        data_shape: shape of one example, e.g. ``(2,)`` or ``(1, 8, 8)``.
        timesteps: number of diffusion steps T.
        schedule: ``"linear"`` (Ho et al. 2020) or ``"cosine"`` (Nichol & Dhariwal 2021).
        beta_start, beta_end: range of the linear schedule (scaled by 1000 / T).
        denoiser: ``"mlp"`` (:class:`~genai_report.models.denoisers.MLPDenoiser`, any data)
            or ``"unet"`` (:class:`~genai_report.models.denoisers.UNetDenoiser`, images
            ``(C, H, W)``).
        hidden: width of the MLP denoiser.
        depth: number of residual blocks of the MLP denoiser.
        channels: the U-Net's channels at each resolution, finest first.
        attention: self-attention at the U-Net's coarsest resolution.
        n_classes: number of labels for conditioning (0: unconditional).
        clip: clamp predicted ``x_0`` to ``[-clip, clip]`` while sampling (0: never).
    """

    data_shape: tuple[int, ...] = (2,)
    timesteps: int = 1000
    schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    denoiser: str = "mlp"
    hidden: int = 256
    depth: int = 3
    channels: tuple[int, ...] = (32, 64)
    attention: bool = True
    n_classes: int = 0
    clip: float = 0.0

    def __post_init__(self) -> None:
        if self.timesteps < 2:
            raise ValueError(f"timesteps must be >= 2, got {self.timesteps}.")
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule must be 'linear' or 'cosine', got '{self.schedule}'.")
        if self.hidden < 1 or self.depth < 1 or self.n_classes < 0:
            raise ValueError("hidden and depth must be >= 1 and n_classes >= 0.")
        if self.denoiser not in ("mlp", "unet"):
            raise ValueError(f"denoiser must be 'mlp' or 'unet', got '{self.denoiser}'.")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty tuple of positive ints, got "
                             f"{self.channels}.")
        if self.denoiser == "unet":
            check_unet_shape(self.data_shape, self.channels)

    @property
    def dim(self) -> int:
        """Number of scalars in one example."""
        return math.prod(self.data_shape)


class NoiseSchedule(nn.Module):
    """The variance schedule and the closed-form forward process.

    Tables are computed in float64 and stored as float32 buffers, so ``.to(device)`` moves them.

    Args:
        timesteps: T.
        kind: ``"linear"`` or ``"cosine"``.
        beta_start, beta_end: range of the linear schedule at T = 1000 (rescaled for other T).
    """

    def __init__(self, timesteps: int, kind: str = "linear", beta_start: float = 1e-4,
                 beta_end: float = 0.02):
        super().__init__()
        self.timesteps = timesteps
        if kind == "linear":
            scale = 1000 / timesteps
            betas = torch.linspace(beta_start * scale, beta_end * scale, timesteps,
                                   dtype=torch.float64).clamp(max=0.999)
        else:
            s = 0.008
            steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        alphas = 1 - betas
        # alpha_bar_t = prod_{s<=t} alpha_s
        alpha_bar = torch.cumprod(alphas, 0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        # posterior q(x_{t-1} | x_t, x_0): variance beta_tilde, mean c0 x_0 + ct x_t (eq. 7)
        post_var = betas * (1 - alpha_bar_prev) / (1 - alpha_bar)
        tables = {
            "betas": betas,
            "alphas": alphas,
            "alpha_bar": alpha_bar,
            "alpha_bar_prev": alpha_bar_prev,
            "sqrt_alpha_bar": alpha_bar.sqrt(),
            "sqrt_one_minus_alpha_bar": (1 - alpha_bar).sqrt(),
            "posterior_var": post_var,
            "posterior_c0": betas * alpha_bar_prev.sqrt() / (1 - alpha_bar),
            "posterior_ct": (1 - alpha_bar_prev) * alphas.sqrt() / (1 - alpha_bar),
        }
        for name, value in tables.items():
            self.register_buffer(name, value.float(), persistent=False)

    @staticmethod
    def _gather(table: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
        return table[t].reshape(-1, *([1] * (ndim - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample ``q(x_t | x_0)`` in closed form (eq. 4 of Ho et al. 2020).

        ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise``

        Args:
            x0: clean data ``(B, ...)``.
            noise: standard normal noise of the same shape.
            t: integer timesteps ``(B,)`` in ``[0, T)``.

        Returns:
            ``x_t``, the same shape as ``x0``.
        """
        a = self._gather(self.sqrt_alpha_bar, t, x0.dim()).to(x0.dtype)
        s = self._gather(self.sqrt_one_minus_alpha_bar, t, x0.dim()).to(x0.dtype)
        return a * x0 + s * noise

    def step(self, x: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        """One step of the forward chain ``q(x_{t+1} | x_t)`` (for testing the closed form)."""
        b = self.betas[t]
        return (1 - b).sqrt() * x + b.sqrt() * noise


class Diffusion(nn.Module):
    """A DDPM: noise-prediction loss, DDPM/DDIM samplers and classifier-free guidance.

    Args:
        config: the :class:`DiffusionConfig`.
    """

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.schedule = NoiseSchedule(config.timesteps, config.schedule, config.beta_start,
                                      config.beta_end)
        if config.denoiser == "unet":
            self.denoiser = UNetDenoiser(config.data_shape, config.channels, config.n_classes,
                                         config.attention)
        else:
            self.denoiser = MLPDenoiser(config.dim, config.hidden, config.depth, config.n_classes)

    @property
    def null_label(self) -> int:
        """The label index meaning "unconditional"."""
        return self.config.n_classes

    def checkpoint(self) -> dict:
        """A ``torch.save``-able dict with config and weights."""
        return {"config": asdict(self.config), "state": self.state_dict()}

    @classmethod
    def load(cls, blob: dict, device: torch.device | str = "cpu") -> Diffusion:
        """Rebuild from :meth:`checkpoint` output."""
        cfg = dict(blob["config"])
        for key in ("data_shape", "channels"):
            if key in cfg:
                cfg[key] = tuple(cfg[key])
        model = cls(DiffusionConfig(**cfg))
        model.load_state_dict(blob["state"])
        return model.to(device).eval()

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator, p_uncond: float = 0.1) -> torch.Tensor:
        """The simple noise-prediction loss, eq. 14 of Ho et al. (2020).

        ``L = E_{t, x_0, eps} |eps - eps_theta(sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, t)|^2``.
        With labels, a fraction ``p_uncond`` of them is replaced by the null label so the same
        network also learns the unconditional model that guidance needs.

        Args:
            x0: a batch of clean data ``(B, *data_shape)``.
            y: labels ``(B,)`` or ``None``.
            generator: CPU generator for timesteps, noise and label dropout.
            p_uncond: label dropout probability.
        """
        b, dev = len(x0), x0.device
        t = torch.randint(0, self.config.timesteps, (b,), generator=generator).to(dev)
        noise = torch.randn(x0.shape, generator=generator).to(dev)
        if y is not None and self.config.n_classes:
            drop = torch.rand(b, generator=generator).to(dev) < p_uncond
            y = torch.where(drop, torch.full_like(y, self.null_label), y)
        elif self.config.n_classes:
            y = torch.full((b,), self.null_label, device=dev, dtype=torch.long)
        xt = self.schedule.add_noise(x0, noise, t)
        return F.mse_loss(self.denoiser(xt, t, y), noise)

    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None,
                      guidance_scale: float = 1.0) -> torch.Tensor:
        """Noise prediction with classifier-free guidance (Ho & Salimans 2022).

        ``eps = eps(x, t, null) + s (eps(x, t, y) - eps(x, t, null))``: ``s = 1`` is the plain
        conditional model, ``s = 0`` the unconditional one, ``s > 1`` sharpens toward ``y``.
        """
        if y is None or not self.config.n_classes:
            null = None
            if self.config.n_classes:
                null = torch.full((len(x),), self.null_label, device=x.device, dtype=torch.long)
            return self.denoiser(x, t, null)
        if guidance_scale == 1.0:
            return self.denoiser(x, t, y)
        null = torch.full_like(y, self.null_label)
        eps = self.denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = eps.chunk(2)
        return uncond + guidance_scale * (cond - uncond)

    def _x0(self, x: torch.Tensor, eps: torch.Tensor, t: int) -> torch.Tensor:
        s = self.schedule
        x0 = (x - s.sqrt_one_minus_alpha_bar[t] * eps) / s.sqrt_alpha_bar[t]
        return x0.clamp(-self.config.clip, self.config.clip) if self.config.clip else x0

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, y: torch.Tensor | None = None,
               guidance_scale: float = 1.0, steps: int | None = None, method: str = "ddpm",
               eta: float = 0.0, trajectory_every: int = 0):
        """Draw ``n`` samples by running the reverse process from pure noise.

        Args:
            n: number of samples.
            generator: CPU generator for the initial noise and every sampling step.
            y: labels ``(n,)`` for conditional sampling, or ``None``.
            guidance_scale: classifier-free guidance scale ``s`` (used only with ``y``).
            steps: DDIM steps (default T); DDPM always takes all T steps.
            method: ``"ddpm"`` (ancestral, Algorithm 2 of Ho et al. 2020) or ``"ddim"``
                (eq. 12 of Song et al. 2021; deterministic at ``eta = 0``).
            eta: DDIM stochasticity (1 recovers DDPM-like noise).
            trajectory_every: if > 0, also return ``x_t`` every this many steps.

        Returns:
            Samples ``(n, *data_shape)``; with ``trajectory_every``, ``(samples, [(t, x_t)])``.
        """
        if method not in ("ddpm", "ddim"):
            raise ValueError(f"method must be 'ddpm' or 'ddim', got '{method}'.")
        dev = self.schedule.betas.device
        s, T = self.schedule, self.config.timesteps
        x = torch.randn((n, *self.config.data_shape), generator=generator).to(dev)
        if y is not None:
            y = y.to(dev)
        traj = [(T, x.cpu())] if trajectory_every else []
        if method == "ddpm":
            times = list(range(T - 1, -1, -1))
        else:
            k = min(steps or T, T)
            times = torch.linspace(T - 1, 0, k).round().long().unique_consecutive().tolist()
        for i, t in enumerate(times):
            tt = torch.full((n,), t, device=dev, dtype=torch.long)
            eps = self.predict_noise(x, tt, y, guidance_scale)
            x0 = self._x0(x, eps, t)
            if method == "ddpm":
                # mean of q(x_{t-1} | x_t, x_0) with x_0 predicted, eq. 7
                x = s.posterior_c0[t] * x0 + s.posterior_ct[t] * x
                if t > 0:
                    z = torch.randn(x.shape, generator=generator).to(dev)
                    x = x + s.posterior_var[t].sqrt() * z
            else:
                ab = s.alpha_bar[t]
                ab_prev = s.alpha_bar[times[i + 1]] if i + 1 < len(times) else torch.ones_like(ab)
                eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()  # consistent with clipped x0
                # sigma_t(eta), eq. 16 of Song et al. (2021)
                sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
                x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
                if eta > 0 and i + 1 < len(times):
                    x = x + sigma * torch.randn(x.shape, generator=generator).to(dev)
            if trajectory_every and (i % trajectory_every == trajectory_every - 1 or t == 0):
                traj.append((t, x.cpu()))
        return (x, traj) if trajectory_every else x


class EMA:
    """An exponential moving average of a model's weights (sampled from instead of the model).

    ``shadow <- d * shadow + (1 - d) * weights`` with ``d = min(decay, (1 + n) / (10 + n))``
    after ``n`` updates, so early averages are not dominated by the random initialisation.

    Args:
        model: the model being trained (copied once).
        decay: the final decay ``d``.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}.")
        self.decay, self.updates = decay, 0
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow weights toward ``model``'s.

        One fused ``foreach`` update for all of them: a few kernels on a GPU, not one per
        weight tensor (a U-Net has 87), and the same values as ``lerp_`` on each.
        """
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        shadow, weights = list(self.shadow.parameters()), list(model.parameters())
        if len(shadow) != len(weights):
            raise ValueError(f"The model has {len(weights)} weight tensors; its EMA was made "
                             f"for a model with {len(shadow)}.")
        torch._foreach_lerp_(shadow, weights, 1 - d)
        self.updates += 1


def ensemble_loss(ensemble: nn.Module, model: Diffusion, x0: torch.Tensor,
                  generators: list[torch.Generator], y: torch.Tensor | None = None, *,
                  p_uncond: float = 0.1) -> torch.Tensor:
    """:meth:`Diffusion.loss` of every member of an ensemble of denoisers, ``(K,)``.

    ``ensemble`` is a :class:`~genai_report.training.ensemble.Ensemble` of ``K`` models'
    denoisers; ``model`` is any one of those models (for its noise schedule and null
    label). Member ``k`` draws its timesteps, noise and label dropout from
    ``generators[k]`` in the order ``Diffusion.loss`` does, so its loss is the one it
    would have trained with alone.

    Args:
        x0: each member's clean batch ``(K, B, *data_shape)``.
        generators: ``K`` CPU generators.
        y: labels ``(K, B)`` or ``None``.
        p_uncond: label dropout probability.
    """
    k, b, dev = x0.shape[0], x0.shape[1], x0.device
    if len(generators) != k:
        raise ValueError(f"{len(generators)} generator(s) for an ensemble of {k}.")
    t, noise, drop = [], [], []
    for gen in generators:
        t.append(torch.randint(0, model.config.timesteps, (b,), generator=gen))
        noise.append(torch.randn(x0.shape[1:], generator=gen))
        if y is not None and model.config.n_classes:
            drop.append(torch.rand(b, generator=gen) < p_uncond)
    t, noise = torch.stack(t).to(dev), torch.stack(noise).to(dev)  # (K, B), like x0
    if model.config.n_classes:
        y = (torch.full((k, b), model.null_label, dtype=torch.long) if y is None else
             torch.where(torch.stack(drop).to(y.device), model.null_label, y)).to(dev)
    xt = model.schedule.add_noise(x0.flatten(0, 1), noise.flatten(0, 1), t.flatten())
    args = (xt.view_as(x0), t) if y is None else (xt.view_as(x0), t, y)
    return (ensemble(*args) - noise).square().flatten(1).mean(-1)  # (K,)
