"""The networks that predict noise in a diffusion model: a residual MLP and a small U-Net.

* :class:`MLPDenoiser` flattens its input, so it serves 2-D points, 8x8 digits and VAE latents
  alike.
* :class:`UNetDenoiser` is the convolutional U-Net (Ronneberger et al. 2015) of DDPM (Ho et al.
  2020) and its successors, cut down to 8x8 digits: residual blocks whose normalisation is
  shifted and scaled by the time-and-label embedding (FiLM, as in Dhariwal & Nichol 2021),
  strided convolutions down, nearest-neighbour upsampling back, skip connections that
  concatenate each resolution's features into the way up, and self-attention at the coarsest
  resolution. Convolutions share weights across positions, so the network does not have to
  learn every pixel's neighbourhood separately, as an MLP over flattened pixels must; on 1,347
  training digits that inductive bias is what brings a diffusion model's samples close to
  real digits.

Both take ``(x_t, t, y)`` and return a noise prediction shaped like ``x_t``; label
``n_classes`` is the "no label" token that classifier-free guidance trains with.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of (possibly fractional) timesteps ``(B,)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([args.sin(), args.cos()], dim=1)  # (B, 2 * half)
    return F.pad(emb, (0, dim % 2))  # an odd dim gets a zero column


class _Block(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, 2 * hidden)
        self.fc2 = nn.Linear(2 * hidden, hidden)
        self.emb = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = self.norm(h) + self.emb(emb)
        return h + self.fc2(F.silu(self.fc1(z)))


class MLPDenoiser(nn.Module):
    """Predicts the noise in ``x_t`` from ``(x_t, t, y)`` with a residual MLP.

    Label ``n_classes`` is the "no label" token that classifier-free guidance trains with.

    Args:
        dim: number of scalars per example (the input is flattened).
        hidden: width.
        depth: number of residual blocks.
        n_classes: number of labels (0: unconditional).
    """

    def __init__(self, dim: int, hidden: int = 256, depth: int = 3, n_classes: int = 0):
        super().__init__()
        self.hidden = hidden
        self.inp = nn.Linear(dim, hidden)
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label = nn.Embedding(n_classes + 1, hidden) if n_classes else None
        self.blocks = nn.ModuleList(_Block(hidden) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Noise prediction, the same shape as ``x``."""
        shape = x.shape
        emb = self.time(timestep_embedding(t, self.hidden))  # (B, H)
        if self.label is not None and y is not None:
            emb = emb + self.label(y)
        h = self.inp(x.reshape(len(x), -1))  # (B, H)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h).reshape(shape)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)  # up to 8 groups that divide evenly


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a FiLM-conditioned second normalisation and a residual path.

    Args:
        c_in, c_out: channels in and out.
        emb_dim: width of the conditioning embedding.
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, c_in, H, W)``; ``emb``: ``(B, emb_dim)``; returns ``(B, c_out, H, W)``."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)  # (B, c_out, 1, 1) each
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the ``H * W`` positions of a feature map, residual.

    Args:
        channels: feature channels (divisible by ``heads``).
        heads: number of attention heads.
    """

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads}).")
        self.heads = heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` to the same shape."""
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # (B, heads, HW, C/heads) each
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


def check_unet_shape(data_shape: tuple[int, ...], channels: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless a U-Net with ``channels`` levels can denoise ``data_shape``."""
    if len(data_shape) != 3:
        raise ValueError(f"a U-Net denoises images (C, H, W); data_shape {data_shape} is not "
                         "one. Use the 'mlp' denoiser for vectors.")
    factor = 2 ** (len(channels) - 1)
    if data_shape[1] % factor or data_shape[2] % factor:
        raise ValueError(f"image size {tuple(data_shape[1:])} is not divisible by {factor}, "
                         f"which {len(channels)} resolution levels need; give fewer channels.")


class UNetDenoiser(nn.Module):
    """Predicts the noise in ``x_t`` from ``(x_t, t, y)`` with a U-Net over the image.

    Args:
        data_shape: ``(C, H, W)`` of one image; ``H`` and ``W`` must be divisible by
            ``2 ** (len(channels) - 1)``.
        channels: feature channels at each resolution, finest first; each level after the
            first halves the resolution.
        n_classes: number of labels (0: unconditional).
        attention: add self-attention at the coarsest resolution.
    """

    def __init__(self, data_shape: tuple[int, ...], channels: tuple[int, ...] = (32, 64),
                 n_classes: int = 0, attention: bool = True):
        super().__init__()
        check_unet_shape(data_shape, channels)
        c0, emb_dim = channels[0], 4 * channels[0]
        self.c0 = c0
        self.time = nn.Sequential(nn.Linear(c0, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label = nn.Embedding(n_classes + 1, emb_dim) if n_classes else None
        self.inp = nn.Conv2d(data_shape[0], c0, 3, padding=1)
        self.down_blocks, self.downsample = nn.ModuleList(), nn.ModuleList()
        c_prev = c0
        for i, c in enumerate(channels):
            self.down_blocks.append(ResBlock(c_prev, c, emb_dim))
            c_prev = c
            if i + 1 < len(channels):
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid1 = ResBlock(c_prev, c_prev, emb_dim)
        heads = math.gcd(4, c_prev)
        self.attn = SelfAttention2d(c_prev, heads) if attention else nn.Identity()
        self.mid2 = ResBlock(c_prev, c_prev, emb_dim)
        self.up_blocks, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, c in reversed(list(enumerate(channels))):
            self.up_blocks.append(ResBlock(c_prev + c, c, emb_dim))
            c_prev = c
            if i > 0:
                self.upsample.append(nn.Conv2d(c, channels[i - 1], 3, padding=1))
                c_prev = channels[i - 1]
        self.out = nn.Sequential(_norm(c0), nn.SiLU(), nn.Conv2d(c0, data_shape[0], 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Noise prediction ``(B, C, H, W)`` for ``x_t`` ``(B, C, H, W)`` at timesteps ``(B,)``."""
        emb = self.time(timestep_embedding(t, self.c0))  # (B, emb_dim)
        if self.label is not None and y is not None:
            emb = emb + self.label(y)
        h = self.inp(x)  # (B, c0, H, W)
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, emb)
            skips.append(h)  # (B, c_i, H / 2^i, W / 2^i)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for i, block in enumerate(self.up_blocks):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(h)
