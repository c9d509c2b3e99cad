"""An energy-based model trained contrastively with Langevin sampling (Du & Mordatch 2019).

The model is a scalar energy ``E(x)`` with ``p(x) ∝ exp(-E(x))``. Training lowers the energy
of data and raises that of samples drawn from the model itself by Langevin dynamics, started
from a replay buffer of earlier samples (a persistent chain, as in contrastive divergence,
Hinton 2002) and occasionally from uniform noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class EBMConfig:
    """Everything needed to rebuild an :class:`EnergyModel` and sample from it.

    Attributes:
        dim: data dimension.
        hidden: MLP width.
        langevin_steps: Langevin steps per training batch.
        step_size: Langevin step ``eps``: ``x <- x - eps^2/2 grad E + eps * noise``.
        box: initial noise is uniform on ``[-box, box]^dim``.
        reinit: fraction of chains restarted from noise each batch.
        alpha: weight of the energy-magnitude regulariser.
    """

    dim: int = 2
    hidden: int = 128
    langevin_steps: int = 40
    step_size: float = 0.05
    box: float = 3.0
    reinit: float = 0.05
    alpha: float = 0.1

    def __post_init__(self) -> None:
        if self.dim < 1 or self.hidden < 1 or self.langevin_steps < 1 or self.step_size <= 0:
            raise ValueError("dim, hidden and langevin_steps must be >= 1, step_size > 0.")
        if not 0 <= self.reinit <= 1:
            raise ValueError(f"reinit must be in [0, 1], got {self.reinit}.")


class EnergyModel(nn.Module):
    """An MLP energy ``E(x)``, its Langevin sampler and its contrastive loss.

    Args:
        config: the :class:`EBMConfig`.
    """

    def __init__(self, config: EBMConfig = EBMConfig()):
        super().__init__()
        self.config = config
        h = config.hidden
        self.net = nn.Sequential(nn.Linear(config.dim, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(),
                                 nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 1))

    def checkpoint(self) -> dict:
        """A ``torch.save``-able dict with config and weights."""
        return {"config": asdict(self.config), "state": self.state_dict()}

    @classmethod
    def load(cls, blob: dict, device: torch.device | str = "cpu") -> EnergyModel:
        """Rebuild from :meth:`checkpoint` output."""
        model = cls(EBMConfig(**blob["config"]))
        model.load_state_dict(blob["state"])
        return model.to(device).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Energies ``(B,)``."""
        return self.net(x).squeeze(-1)

    def noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Uniform starting points on the box."""
        dev = next(self.parameters()).device
        u = torch.rand((n, self.config.dim), generator=generator).to(dev)
        return (2 * u - 1) * self.config.box

    def langevin(self, x: torch.Tensor, generator: torch.Generator, steps: int | None = None,
                 keep_every: int = 0):
        """Run Langevin dynamics from ``x``.

        ``x <- x - (eps^2 / 2) grad_x E(x) + eps * N(0, I)``

        Args:
            x: starting points ``(B, dim)``.
            generator: CPU generator for the noise.
            steps: number of steps (default ``config.langevin_steps``).
            keep_every: if > 0, also return the chain every this many steps.

        Returns:
            Final points (detached); with ``keep_every``, ``(points, [chain states])``.
        """
        eps = self.config.step_size
        steps = steps or self.config.langevin_steps
        chain = [x.detach().cpu().clone()] if keep_every else []
        x = x.detach()
        for i in range(steps):
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(self(x).sum(), x)
            z = torch.randn(x.shape, generator=generator).to(x.device)
            x = (x - 0.5 * eps**2 * grad + eps * z).detach()
            if keep_every and (i + 1) % keep_every == 0:
                chain.append(x.cpu().clone())
        return (x, chain) if keep_every else x

    def contrastive_loss(self, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        """``E(data) - E(samples)`` plus ``alpha (E(data)^2 + E(samples)^2)``.

        Returns:
            ``{"loss", "gap"}``; ``gap = E(samples) - E(data)`` grows as the model learns.
        """
        e_pos, e_neg = self(pos), self(neg)
        reg = self.config.alpha * (e_pos.square().mean() + e_neg.square().mean())
        return {"loss": e_pos.mean() - e_neg.mean() + reg, "gap": (e_neg - e_pos).mean().detach()}


class ReplayBuffer:
    """Persistent negative samples, refreshed with a little uniform noise each batch."""

    def __init__(self, model: EnergyModel, size: int, generator: torch.Generator):
        self.model = model
        self.data = model.noise(size, generator)

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(starting points, their buffer indices)``; some are fresh noise."""
        idx = torch.randint(0, len(self.data), (n,), generator=generator)
        x = self.data[idx.to(self.data.device)].clone()
        fresh = torch.rand(n, generator=generator) < self.model.config.reinit
        x[fresh.to(x.device)] = self.model.noise(int(fresh.sum()), generator)
        return x, idx

    def update(self, idx: torch.Tensor, x: torch.Tensor) -> None:
        """Write chain ends back."""
        self.data[idx.to(self.data.device)] = x.detach()


def train_step(model: EnergyModel, buffer: ReplayBuffer, pos: torch.Tensor,
               generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Draw negatives by Langevin from the buffer and return the contrastive loss terms."""
    start, idx = buffer.draw(len(pos), generator)
    model.eval()
    neg = model.langevin(start, generator)
    model.train()
    buffer.update(idx, neg)
    return model.contrastive_loss(pos, neg)
