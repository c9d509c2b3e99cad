"""A PixelCNN (van den Oord et al. 2016): masked convolutions, pixels generated one by one.

The image is factorised in raster order, ``p(x) = prod_i p(x_i | x_<i)``. A type-"A" mask on
the first convolution hides the current pixel; type-"B" masks on later layers let a pixel see
its own features. Each pixel gets a 17-way categorical over grey levels, so the likelihood is
exact and discrete (bits per dimension compare directly with the VAE's bound).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genai_report.data.digits import LEVELS, from_levels, to_levels


@dataclass(frozen=True)
class PixelCNNConfig:
    """Everything needed to rebuild a :class:`PixelCNN`.

    Attributes:
        channels: feature channels.
        layers: number of type-B residual layers.
        n_classes: class-conditional with this many labels (0: unconditional).
    """

    channels: int = 64
    layers: int = 4
    n_classes: int = 0

    def __post_init__(self) -> None:
        if self.channels < 1 or self.layers < 0 or self.n_classes < 0:
            raise ValueError("channels must be >= 1, layers and n_classes >= 0.")


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel sees only pixels above, and left on the same row.

    Args:
        mask_type: ``"A"`` (excludes the centre) or ``"B"`` (includes it).
    """

    def __init__(self, mask_type: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got '{mask_type}'.")
        k = self.kernel_size[0]
        mask = torch.ones_like(self.weight)
        mask[:, :, k // 2, k // 2 + (mask_type == "B"):] = 0
        mask[:, :, k // 2 + 1:] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


class PixelCNN(nn.Module):
    """Masked-convolution autoregressive model over 8x8 digits.

    Args:
        config: the :class:`PixelCNNConfig`.
    """

    def __init__(self, config: PixelCNNConfig = PixelCNNConfig()):
        super().__init__()
        self.config = config
        c = config.channels
        self.inp = MaskedConv2d("A", 1, c, 5, padding=2)
        self.label = nn.Embedding(config.n_classes, c) if config.n_classes else None
        self.layers = nn.ModuleList(MaskedConv2d("B", c, c, 3, padding=1)
                                    for _ in range(config.layers))
        self.out = nn.Sequential(nn.ReLU(), MaskedConv2d("B", c, c, 1), nn.ReLU(),
                                 MaskedConv2d("B", c, LEVELS, 1))

    def checkpoint(self) -> dict:
        """A ``torch.save``-able dict with config and weights."""
        return {"config": asdict(self.config), "state": self.state_dict()}

    @classmethod
    def load(cls, blob: dict, device: torch.device | str = "cpu") -> PixelCNN:
        """Rebuild from :meth:`checkpoint` output."""
        model = cls(PixelCNNConfig(**blob["config"]))
        model.load_state_dict(blob["state"])
        return model.to(device).eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, 17, 8, 8)`` of each pixel given the pixels before it."""
        h = self.inp(x)
        if self.label is not None and y is not None:
            h = h + self.label(y)[:, :, None, None]
        for layer in self.layers:
            h = h + layer(F.relu(h))
        return self.out(h)

    def nll(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact ``-log p(x)`` per image in nats, ``(B,)``."""
        target = to_levels(x).squeeze(1)  # (B, 8, 8)
        return F.cross_entropy(self(x, y), target, reduction="none").sum((1, 2))

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean NLL in nats per dimension."""
        return self.nll(x, y).mean() / x[0].numel()

    @torch.no_grad()
    def bits_per_dim(self, x: torch.Tensor) -> float:
        """Exact negative log-likelihood in bits per dimension."""
        return float(self.nll(x).mean() / (x[0].numel() * math.log(2)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, y: torch.Tensor | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Generate ``n`` images pixel by pixel in raster order (64 network passes).

        Args:
            n: number of images.
            generator: CPU generator for the categorical draws.
            y: labels ``(n,)`` for a class-conditional model.
            temperature: divides the logits (< 1 is more conservative).
        """
        dev = next(self.parameters()).device
        x = torch.zeros((n, 1, 8, 8), device=dev)
        for i in range(8):
            for j in range(8):
                logits = self(x, y)[:, :, i, j] / temperature  # (n, 17)
                probs = logits.softmax(-1).cpu()
                level = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                x[:, 0, i, j] = from_levels(level).to(dev)
        return x
