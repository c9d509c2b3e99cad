"""A small WaveNet: dilated causal convolutions over μ-law samples (van den Oord et al. 2016).

The model predicts each 8-bit μ-law sample from all earlier ones with a softmax over the 256
levels. A stack of causal convolutions of kernel 2 whose dilation doubles from layer to
layer (1, 2, 4, ...) sees ``2^L`` past samples after ``L`` layers: the receptive field grows
exponentially with depth, where an undilated stack would need ``2^L`` layers.

Each layer is a gated unit ``z = tanh(W_f * x + V_f c) ⊙ σ(W_g * x + V_g c)`` (equation 2
of the paper) with a residual connection to the next layer and a skip connection to the
output. ``c`` adds two conditioning signals: a *global* class embedding (which sound) and a
*local* one, a few features of the position within the clip, so envelopes and sweeps can
follow the clock.

:meth:`WaveNet.generate` samples with per-layer queues of past activations (Paine et al.
2016, "Fast Wavenet generation"): each new sample costs one step of every layer, not a
recomputation of the receptive field. :meth:`WaveNet.generate_naive` recomputes the whole
history at every step and exists to test that the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 256
"""μ-law levels: the softmax's size."""

SILENCE = 128
"""The μ-law level of a zero sample: the history before a clip starts."""

N_POS = 5
"""Position features of the local conditioning: ``u`` and ``cos(pi k u)``, k = 1..4."""


@dataclass(frozen=True)
class WaveNetConfig:
    """Shape of a :class:`WaveNet`.

    Attributes:
        n_classes: classes of the global conditioning.
        residual: channels of the residual stream.
        skip: channels of the skip connections.
        dilations: one layer per entry (kernel 2 each); receptive field ``1 + sum``.
        clip_length: samples per clip, the unit of the position features.
    """

    n_classes: int = 6
    residual: int = 32
    skip: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    clip_length: int = 1024

    def __post_init__(self) -> None:
        if not self.dilations or any(d < 1 for d in self.dilations):
            raise ValueError(f"dilations must be a non-empty tuple of ints >= 1, got "
                             f"{self.dilations}.")
        if min(self.n_classes, self.residual, self.skip, self.clip_length) < 1:
            raise ValueError("n_classes, residual, skip and clip_length must be >= 1.")

    @property
    def receptive_field(self) -> int:
        """Past samples a prediction can see: ``sum(dilations) + 1`` (the input shift)."""
        return sum(self.dilations) + 1


def position_features(t: torch.Tensor, clip_length: int) -> torch.Tensor:
    """Local conditioning: ``(..., T)`` sample indices -> ``(..., N_POS, T)`` features of
    ``u = t / L``."""
    u = (t.float() / clip_length).unsqueeze(-2)  # (..., 1, T)
    k = torch.arange(1, N_POS, device=t.device, dtype=torch.float32)[:, None]  # (N_POS-1, 1)
    return torch.cat([u, torch.cos(math.pi * k * u)], -2)  # (..., N_POS, T)


class WaveNet(nn.Module):
    """Class- and position-conditioned WaveNet over μ-law levels.

    Args:
        config: the shape.
    """

    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.config = config
        R, S = config.residual, config.skip
        self.embed = nn.Embedding(LEVELS, R)
        self.class_embed = nn.Embedding(config.n_classes, 2 * R * len(config.dilations))
        self.dilated = nn.ModuleList(nn.Conv1d(R, 2 * R, 2, dilation=d)
                                     for d in config.dilations)
        self.pos = nn.ModuleList(nn.Conv1d(N_POS, 2 * R, 1) for _ in config.dilations)
        self.res_skip = nn.ModuleList(nn.Conv1d(R, R + S, 1) for _ in config.dilations)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(S, S, 1), nn.ReLU(),
                                  nn.Conv1d(S, LEVELS, 1))

    def _cond(self, labels: torch.Tensor) -> torch.Tensor:
        """``(B,)`` labels -> ``(B, layers, 2R)`` class terms of every layer."""
        return self.class_embed(labels).view(len(labels), len(self.config.dilations), -1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor,
                start: int | torch.Tensor = 0) -> torch.Tensor:
        """Logits of every sample given the samples before it.

        Args:
            x: ``(B, T)`` μ-law levels.
            labels: ``(B,)`` classes.
            start: the clip position of ``x[:, 0]`` (negative inside the silence before it),
                one for all rows or ``(B,)`` one per row.

        Returns:
            ``(B, LEVELS, T)`` logits; column ``t`` depends on ``x[:, :t]`` only.
        """
        B, T = x.shape
        shifted = F.pad(x, (1, 0), value=SILENCE)[:, :T]  # (B, T) input at t is x_{t-1}
        h = self.embed(shifted).transpose(1, 2)  # (B, R, T)
        t = torch.as_tensor(start, device=x.device).reshape(-1, 1) + torch.arange(
            T, device=x.device)  # (B or 1, T) clip positions
        pos = position_features(t, self.config.clip_length)  # (B or 1, N_POS, T)
        cond = self._cond(labels)  # (B, layers, 2R)
        R = self.config.residual
        skip = 0
        for i, d in enumerate(self.config.dilations):
            # causal: pad d zeros on the left, so output t sees h_{t-d} and h_t
            a = self.dilated[i](F.pad(h, (d, 0))) + self.pos[i](pos) + cond[:, i, :, None]
            z = torch.tanh(a[:, :R]) * torch.sigmoid(a[:, R:])  # (B, R, T)
            rs = self.res_skip[i](z)  # (B, R + S, T)
            h = h + rs[:, :R]
            skip = skip + rs[:, R:]
        return self.head(skip)  # (B, LEVELS, T)

    def nll(self, x: torch.Tensor, labels: torch.Tensor, start: int | torch.Tensor = 0,
            from_t: int = 0) -> torch.Tensor:
        """Mean cross-entropy (nats per sample) of ``x[:, from_t:]`` given what precedes it."""
        logits = self(x, labels, start)  # (B, LEVELS, T)
        return F.cross_entropy(logits[:, :, from_t:], x[:, from_t:])

    # -- sampling ------------------------------------------------------------------------
    def _step(self, token: torch.Tensor, t: int, cond: torch.Tensor,
              queues: list[torch.Tensor]) -> torch.Tensor:
        """One time step of every layer with activation queues (Paine et al. 2016).

        Args:
            token: ``(B,)`` the previous sample (the input at time ``t``).
            t: clip position of the sample being predicted.
            cond: ``(B, layers, 2R)`` class terms.
            queues: per layer ``(B, R, d)`` ring buffer of its last ``d`` inputs, updated
                in place.

        Returns:
            ``(B, LEVELS)`` logits of the sample at ``t``.
        """
        R = self.config.residual
        h = self.embed(token)  # (B, R)
        pos = position_features(torch.tensor([t], device=token.device),
                                self.config.clip_length)[:, 0]  # (N_POS,)
        skip = 0
        for i, d in enumerate(self.config.dilations):
            slot = t % d
            past = queues[i][:, :, slot].clone()  # (B, R): this layer's input d steps ago
            queues[i][:, :, slot] = h
            w = self.dilated[i].weight  # (2R, R, 2): tap 0 on t-d, tap 1 on t
            a = (past @ w[:, :, 0].T + h @ w[:, :, 1].T + self.dilated[i].bias
                 + self.pos[i].weight[:, :, 0] @ pos + self.pos[i].bias + cond[:, i])  # (B, 2R)
            z = torch.tanh(a[:, :R]) * torch.sigmoid(a[:, R:])  # (B, R)
            rs = z @ self.res_skip[i].weight[:, :, 0].T + self.res_skip[i].bias  # (B, R+S)
            h = h + rs[:, :R]
            skip = skip + rs[:, R:]
        return self.head(skip[:, :, None])[:, :, 0]  # (B, LEVELS)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, length: int, gen: torch.Generator,
                 temperature: float = 1.0, prefix: int | None = None) -> torch.Tensor:
        """Sample clips one μ-law level at a time, with activation queues.

        Args:
            labels: ``(B,)`` the class of each clip.
            length: samples per clip.
            gen: the random stream of the draws (one uniform per clip and sample).
            temperature: softmax temperature.
            prefix: samples of silence fed before the clip (default: the receptive field,
                as in training).

        Returns:
            ``(B, length)`` μ-law levels.
        """
        prefix = self.config.receptive_field if prefix is None else prefix
        B, dev = len(labels), labels.device
        queues = [torch.zeros(B, self.config.residual, d, device=dev)
                  for d in self.config.dilations]
        cond = self._cond(labels)
        token = torch.full((B,), SILENCE, device=dev, dtype=torch.long)
        out = torch.empty(B, length, dtype=torch.long, device=dev)
        for t in range(-prefix, length):
            logits = self._step(token, t, cond, queues)  # (B, LEVELS)
            if t < 0:
                token = torch.full_like(token, SILENCE)  # the silence before the clip
                continue
            token = _draw(logits, temperature, gen)
            out[:, t] = token
        return out

    @torch.no_grad()
    def generate_naive(self, labels: torch.Tensor, length: int, gen: torch.Generator,
                       temperature: float = 1.0, prefix: int | None = None) -> torch.Tensor:
        """As :meth:`generate`, recomputing the whole history at every step (slow; a test)."""
        prefix = self.config.receptive_field if prefix is None else prefix
        B = len(labels)
        seq = torch.full((B, prefix), SILENCE, dtype=torch.long, device=labels.device)
        for _ in range(length):
            probe = F.pad(seq, (0, 1), value=SILENCE)  # (B, T+1): a slot for the next sample
            logits = self(probe, labels, start=-prefix)[:, :, -1]  # (B, LEVELS)
            seq = torch.cat([seq, _draw(logits, temperature, gen)[:, None]], 1)
        return seq[:, prefix:]


def _draw(logits: torch.Tensor, temperature: float, gen: torch.Generator) -> torch.Tensor:
    """One sample per row by inverse CDF of one uniform each: ``(B, V)`` -> ``(B,)``."""
    probs = torch.softmax(logits.float() / temperature, -1)  # (B, V)
    cdf = probs.cumsum(-1)
    u = torch.rand(len(probs), 1, generator=gen, device=gen.device).to(probs.device)
    u = u * cdf[:, -1:]  # (B, 1)
    return torch.searchsorted(cdf, u).squeeze(1).clamp_max(logits.shape[-1] - 1)
