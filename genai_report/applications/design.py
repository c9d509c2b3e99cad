"""Generative design in miniature: sample a class-conditional diffusion model toward a
property target, with the property's gradient added to the guidance.

This is classifier guidance (Dhariwal & Nichol 2021, Algorithm 2) with a differentiable
*property* in place of ``log p(y | x)``, as in Bansal et al.'s universal guidance (2023; ICLR 2024):
each DDIM step shifts the noise prediction by ``- weight * sqrt(1 - alpha_bar_t) * grad_x
property(x0_hat(x_t))``, so samples drift toward lower property values while the class
condition keeps them digits. The weight sets the trade-off between reaching the target and
staying a valid member of the class.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def ink(x: torch.Tensor) -> torch.Tensor:
    """Fraction of ink per image ``(B,)``: mean pixel brightness mapped from [-1, 1] to [0, 1].

    Not clamped, so its gradient reaches every pixel; clamp images before measuring them.
    """
    return ((x + 1) / 2).flatten(1).mean(1)


def property_guided_sample(model, y: torch.Tensor, prop: Callable[[torch.Tensor], torch.Tensor],
                           weight: float, *, generator: torch.Generator, steps: int = 50,
                           guidance_scale: float = 1.0) -> torch.Tensor:
    """Deterministic DDIM sampling (eta = 0) of ``model`` for labels ``y``, pushed to lower
    ``prop``.

    Args:
        model: a class-conditional :class:`genai_report.models.diffusion.Diffusion`.
        y: labels ``(n,)``.
        prop: differentiable property of images ``(n, ...) -> (n,)`` to decrease.
        weight: strength of the property gradient (0: plain conditional sampling).
        generator: CPU generator for the initial noise.
        steps: DDIM steps.
        guidance_scale: classifier-free guidance scale for the label.

    Returns:
        Samples ``(n, *data_shape)``.
    """
    s, T = model.schedule, model.config.timesteps
    dev = s.betas.device
    y = y.to(dev)
    x = torch.randn((len(y), *model.config.data_shape), generator=generator).to(dev)
    times = torch.linspace(T - 1, 0, min(steps, T)).round().long().unique_consecutive().tolist()
    for i, t in enumerate(times):
        tt = torch.full((len(x),), t, device=dev, dtype=torch.long)
        ab = s.alpha_bar[t]
        with torch.enable_grad():
            xg = x.detach().requires_grad_(weight > 0)
            eps = model.predict_noise(xg, tt, y, guidance_scale)
            if weight > 0:
                x0 = (xg - (1 - ab).sqrt() * eps) / ab.sqrt()
                grad = torch.autograd.grad(prop(x0).sum(), xg)[0]
                # eps_hat = eps + w sqrt(1 - ab) grad_x prop  (sign: descend the property)
                eps = eps + weight * (1 - ab).sqrt() * grad
        eps = eps.detach()
        x0 = model._x0(x, eps, t)
        ab_prev = s.alpha_bar[times[i + 1]] if i + 1 < len(times) else torch.ones_like(ab)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
    return x.detach()
