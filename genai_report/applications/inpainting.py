"""Inpainting with a trained diffusion model by conditioning its reverse process on known pixels.

The replacement method (Song et al. 2021, appendix; the core of RePaint, Lugmayr et al. 2022):
run the reverse sampler, and after every step overwrite the known pixels of ``x_{t-1}``
with the true image noised to the same level, ``q(x_{t-1} | x_0)``. The network only ever sees
a consistent noisy image, and its predictions of the unknown pixels are pulled toward
completions that agree with the known ones. RePaint's "resampling" (going back one step and
re-noising, ``resample`` times) harmonises the two parts further. The known pixels of the
output are the truth exactly.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def inpaint(model, x_known: torch.Tensor, known: torch.Tensor, *, generator: torch.Generator,
            y: torch.Tensor | None = None, steps: int | None = None, resample: int = 1
            ) -> torch.Tensor:
    """Fill the unknown pixels of ``x_known`` with a diffusion model conditioned on the known ones.

    The reverse step is DDIM with ``eta = 1`` (eq. 12 and 16 of Song et al. 2021), which for
    ``steps = T`` is exactly the ancestral DDPM step and with fewer steps skips timesteps.

    Args:
        model: a :class:`genai_report.models.diffusion.Diffusion` (its schedule, ``_x0`` and
            ``predict_noise`` are used; the sampler is re-implemented here).
        x_known: images ``(B, *data_shape)``; only the pixels where ``known`` is True are read.
        known: bool mask broadcastable to ``x_known``, True where the pixel is given.
        generator: CPU generator for every draw.
        y: optional labels ``(B,)`` (None: the unconditional model).
        steps: reverse steps (default: all T).
        resample: RePaint's number of passes per step (1: plain replacement).

    Returns:
        ``(B, *data_shape)`` images equal to ``x_known`` where ``known``.
    """
    if resample < 1:
        raise ValueError(f"resample must be >= 1, got {resample}.")
    s, T = model.schedule, model.config.timesteps
    dev = s.betas.device
    x0_true = x_known.to(dev)
    mask = known.to(dev).expand_as(x0_true)
    if y is not None:
        y = y.to(dev)

    def noise_like():
        return torch.randn(x0_true.shape, generator=generator).to(dev)

    times = torch.linspace(T - 1, 0, min(steps or T, T)).round().long().unique_consecutive()
    times = times.tolist()
    x = noise_like()
    for i, t in enumerate(times):
        ab = s.alpha_bar[t]
        t_prev = times[i + 1] if i + 1 < len(times) else -1
        ab_prev = s.alpha_bar[t_prev] if t_prev >= 0 else torch.ones_like(ab)
        for r in range(resample):
            tt = torch.full((len(x),), t, device=dev, dtype=torch.long)
            x0 = model._x0(x, model.predict_noise(x, tt, y), t)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            # sigma_t(eta = 1), eq. 16 of Song et al. (2021): the DDPM posterior std
            sigma = ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
            x_prev = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
            if t_prev >= 0:
                x_prev = x_prev + sigma * noise_like()
                # the known part at the same noise level: x_{t_prev} ~ q(x_{t_prev} | x_0)
                known_prev = ab_prev.sqrt() * x0_true + (1 - ab_prev).sqrt() * noise_like()
            else:
                known_prev = x0_true
            x_prev = torch.where(mask, known_prev, x_prev)
            if r + 1 < resample and t_prev >= 0:
                # back to t: x_t ~ q(x_t | x_{t_prev}) = N(sqrt(ab/ab_prev) x, 1 - ab/ab_prev)
                x = (ab / ab_prev).sqrt() * x_prev + (1 - ab / ab_prev).sqrt() * noise_like()
            else:
                x = x_prev
    return torch.where(mask, x0_true, x)


def center_mask(side: int = 8, hole: int = 4) -> torch.Tensor:
    """``(1, side, side)`` bool mask, True outside a centred ``hole x hole`` square."""
    m = torch.ones(1, side, side, dtype=torch.bool)
    a = (side - hole) // 2
    m[:, a:a + hole, a:a + hole] = False
    return m


def half_mask(side: int = 8) -> torch.Tensor:
    """``(1, side, side)`` bool mask, True on the top half (the bottom half is to fill)."""
    m = torch.zeros(1, side, side, dtype=torch.bool)
    m[:, : side // 2] = True
    return m


def band_mask(rows: tuple[int, ...] = (3, 4), side: int = 8) -> torch.Tensor:
    """``(1, side, side)`` bool mask, False on the given rows (a horizontal band to fill)."""
    m = torch.ones(1, side, side, dtype=torch.bool)
    m[:, list(rows)] = False
    return m


def shift_right(x: torch.Tensor, pixels: int = 1, background: float = -1.0) -> torch.Tensor:
    """Images ``(B, C, H, W)`` moved right by ``pixels``; the uncovered columns are
    ``background`` (blank paper). No training digit sits in that position."""
    out = torch.full_like(x, background)
    out[..., pixels:] = x[..., :-pixels]
    return out


def chimera(x: torch.Tensor, generator: torch.Generator, row: int = 4) -> torch.Tensor:
    """Each image's rows from ``row`` on replaced by those of another image of the batch
    (a random permutation): top and bottom halves of different digits, a shape that is in
    no training set."""
    perm = torch.randperm(len(x), generator=generator)
    out = x.clone()
    out[..., row:, :] = x[perm][..., row:, :]
    return out


def nearest_fill(x: torch.Tensor, known: torch.Tensor, train: torch.Tensor, k: int = 1
                 ) -> torch.Tensor:
    """The baseline that copies: fill the hole of each image from its ``k`` nearest training
    images on the known pixels (Euclidean). Returns ``(B, k, *image_shape)``."""
    kn = known.expand_as(x[0]).flatten()
    dist = torch.cdist(x.flatten(1)[:, kn], train.flatten(1)[:, kn])  # (B, N)
    idx = dist.topk(k, largest=False).indices  # (B, k)
    return torch.where(known, x[:, None], train[idx])
