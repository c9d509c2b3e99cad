"""Two-dimensional distributions generated in code, for density models we can see.

Every sampler takes an explicit ``torch.Generator`` and returns a float32 tensor of shape
``(n, 2)`` roughly centred on the origin with unit-ish scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from genai_report.utils import did_you_mean

Sampler = Callable[[int, torch.Generator], torch.Tensor]


def two_moons(n: int, generator: torch.Generator, noise: float = 0.08) -> torch.Tensor:
    """Two interleaved half circles (the classic "moons"), standardised."""
    n_top = n // 2
    t = torch.rand(n, generator=generator) * math.pi  # (n,)
    top = torch.stack([torch.cos(t[:n_top]), torch.sin(t[:n_top])], dim=1)
    bottom = torch.stack([1 - torch.cos(t[n_top:]), 0.5 - torch.sin(t[n_top:])], dim=1)
    x = torch.cat([top, bottom])  # (n, 2)
    x = x + noise * torch.randn(x.shape, generator=generator)
    x = (x - torch.tensor([0.5, 0.25])) / torch.tensor([0.87, 0.5])
    return x[torch.randperm(n, generator=generator)]


def ring_of_gaussians(
    n: int, generator: torch.Generator, modes: int = 8, radius: float = 2.0, std: float = 0.05
) -> torch.Tensor:
    """Equal mixture of ``modes`` small Gaussians on a circle (the GAN mode-collapse test)."""
    k = torch.randint(0, modes, (n,), generator=generator)  # (n,)
    angle = 2 * math.pi * k.float() / modes
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (n, 2)
    return centres + std * radius * torch.randn((n, 2), generator=generator)


def ring_centres(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The ``(modes, 2)`` centres of :func:`ring_of_gaussians`."""
    angle = 2 * math.pi * torch.arange(modes).float() / modes
    return radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def swiss_roll(n: int, generator: torch.Generator, noise: float = 0.05) -> torch.Tensor:
    """A 2-D spiral (the swiss roll seen from its axis), standardised."""
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))  # (n,)
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / 7.0
    return x + noise * torch.randn(x.shape, generator=generator)


def checkerboard(n: int, generator: torch.Generator, cells: int = 4) -> torch.Tensor:
    """Uniform density on the dark squares of a ``cells x cells`` board over [-2, 2]^2."""
    size = 4.0 / cells
    col = torch.randint(0, cells, (n,), generator=generator)
    row = torch.randint(0, cells // 2, (n,), generator=generator) * 2 + (col % 2)
    offset = torch.rand((n, 2), generator=generator) * size
    return torch.stack([col.float(), row.float()], dim=1) * size - 2.0 + offset


DATASETS: dict[str, Sampler] = {
    "two-moons": two_moons,
    "ring": ring_of_gaussians,
    "swiss-roll": swiss_roll,
    "checkerboard": checkerboard,
}


def sample(name: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` points from the named distribution.

    Args:
        name: one of ``two-moons``, ``ring``, ``swiss-roll``, ``checkerboard``.
        n: number of points (> 0).
        generator: source of randomness.

    Returns:
        Tensor of shape ``(n, 2)``.
    """
    if name not in DATASETS:
        raise ValueError(
            f"Unknown 2-D data set '{name}'.{did_you_mean(name, DATASETS)} "
            f"Valid: {', '.join(DATASETS)}."
        )
    if n <= 0:
        raise ValueError(f"Number of points must be positive, got {n}.")
    return DATASETS[name](n, generator)
