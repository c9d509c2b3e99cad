"""Neural fields: a coordinate MLP that maps a pixel's position to its colour.

A *neural field* stores a signal in the weights of a network evaluated at coordinates:
here ``f(x, y) -> (r, g, b)`` for an image. A ReLU MLP fed raw coordinates is biased
towards low frequencies (the *spectral bias*, Rahaman et al. 2019) and learns fine detail
slowly. Mapping the coordinates through sinusoids first fixes that:

* :class:`FourierFeatures`: Gaussian random Fourier features
  ``gamma(v) = [cos(2 pi B v), sin(2 pi B v)]`` with ``B ~ N(0, sigma^2)`` (Tancik et al.
  2020, "Fourier features let networks learn high frequency functions in low dimensional
  domains", eq. 5); ``sigma`` sets the bandwidth of the function the MLP can fit.
* :class:`PositionalEncoding`: NeRF's log-linear frequencies ``2^k pi`` on each coordinate
  separately (Mildenhall et al. 2020, eq. 4), the same geometric ladder as the
  transformer's sinusoidal position encoding (Vaswani et al. 2017).

:class:`CoordinateMLP` puts an encoding in front of a ReLU MLP; :func:`psnr` scores a
reconstruction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

ENCODINGS = ("none", "fourier", "positional")
"""Input encodings :func:`make_encoding` knows."""


class FourierFeatures(nn.Module):
    """Gaussian random Fourier features of coordinates (Tancik et al. 2020, eq. 5).

    Args:
        in_dim: coordinate dimension (2 for an image).
        n_features: number of frequencies ``m``; the output has ``2 m`` channels.
        sigma: standard deviation of the frequencies, in cycles per unit of the coordinates.
        generator: draws ``B``; the same generator state gives the same features.
    """

    def __init__(self, in_dim: int, n_features: int, sigma: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        if sigma <= 0 or n_features < 1:
            raise ValueError(f"sigma must be > 0 and n_features >= 1, got {sigma}, "
                             f"{n_features}.")
        self.sigma = sigma
        B = torch.randn(n_features, in_dim, generator=generator) * sigma  # (m, in_dim)
        self.register_buffer("B", B)
        self.out_dim = 2 * n_features

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Features ``(..., 2 m)`` of coordinates ``(..., in_dim)``."""
        # gamma(v) = [cos(2 pi B v), sin(2 pi B v)]
        proj = 2 * math.pi * v @ self.B.T  # (..., m)
        return torch.cat([proj.cos(), proj.sin()], dim=-1)


class PositionalEncoding(nn.Module):
    """NeRF's positional encoding (Mildenhall et al. 2020, eq. 4), coordinates kept.

    ``gamma(p) = (p, sin(2^0 pi p), cos(2^0 pi p), ..., sin(2^{L-1} pi p), cos(2^{L-1} pi p))``
    applied to each coordinate separately.

    Args:
        in_dim: coordinate dimension.
        n_freqs: number of octaves ``L``.
    """

    def __init__(self, in_dim: int, n_freqs: int) -> None:
        super().__init__()
        if n_freqs < 1:
            raise ValueError(f"n_freqs must be >= 1, got {n_freqs}.")
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freqs)) * math.pi)  # (L,)
        self.out_dim = in_dim * (1 + 2 * n_freqs)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Encoding ``(..., in_dim (1 + 2 L))`` of coordinates ``(..., in_dim)``."""
        proj = (v[..., None] * self.freqs).flatten(-2)  # (..., in_dim * L)
        return torch.cat([v, proj.sin(), proj.cos()], dim=-1)


class Identity(nn.Module):
    """Raw coordinates (no encoding)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.out_dim = in_dim

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v


@dataclass(frozen=True)
class FieldConfig:
    """Shape of a coordinate MLP.

    Attributes:
        encoding: one of :data:`ENCODINGS`.
        sigma: bandwidth of the Fourier features (``encoding="fourier"``).
        n_features: Fourier frequencies ``m`` (``2 m`` input channels).
        n_freqs: octaves of the positional encoding (``encoding="positional"``).
        width: hidden units per layer.
        depth: hidden layers.
        in_dim, out_dim: coordinate and signal dimensions.
    """

    encoding: str = "fourier"
    sigma: float = 10.0
    n_features: int = 128
    n_freqs: int = 6
    width: int = 128
    depth: int = 3
    in_dim: int = 2
    out_dim: int = 3

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}.")
        if min(self.width, self.depth, self.in_dim, self.out_dim) < 1:
            raise ValueError("width, depth, in_dim and out_dim must all be >= 1.")


def make_encoding(config: FieldConfig, generator: torch.Generator) -> nn.Module:
    """The input encoding ``config`` asks for (``generator`` draws Fourier frequencies)."""
    if config.encoding == "fourier":
        return FourierFeatures(config.in_dim, config.n_features, config.sigma, generator)
    if config.encoding == "positional":
        return PositionalEncoding(config.in_dim, config.n_freqs)
    return Identity(config.in_dim)


class CoordinateMLP(nn.Module):
    """An input encoding, then a ReLU MLP, then a sigmoid: coordinates to values in [0, 1].

    Args:
        config: the shape and encoding.
        generator: draws the Fourier frequencies and the initial weights.
    """

    def __init__(self, config: FieldConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.config = config
        self.encoding = make_encoding(config, generator)
        dims = [self.encoding.out_dim] + [config.width] * config.depth
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], config.out_dim))
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):  # PyTorch's default init, from our generator
                bound = 1 / math.sqrt(m.in_features)
                with torch.no_grad():
                    m.weight.uniform_(-bound, bound, generator=generator)
                    m.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Values ``(..., out_dim)`` in [0, 1] at coordinates ``(..., in_dim)``."""
        return torch.sigmoid(self.mlp(self.encoding(coords)))


def grid(h: int, w: int) -> torch.Tensor:
    """Pixel-centre coordinates in the unit square, shape ``(h, w, 2)`` as ``(x, y)``."""
    ys = (torch.arange(h) + 0.5) / h  # (h,)
    xs = (torch.arange(w) + 0.5) / w  # (w,)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
    return torch.stack([xx, yy], dim=-1)


def psnr(pred: torch.Tensor, target: torch.Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(peak^2 / MSE)`` in dB (``inf`` if identical).

    Args:
        pred, target: tensors of the same shape, values in ``[0, peak]``.
        peak: the largest possible value.

    Returns:
        The PSNR in decibels.
    """
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}.")
    mse = float(((pred.double() - target.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)
