"""Variational autoencoder (Kingma & Welling 2014) and beta-VAE (Higgins et al. 2017).

An MLP encoder gives a diagonal Gaussian ``q(z | x)``; an MLP decoder gives a categorical
distribution over the 17 grey levels of each pixel, so the ELBO is a bound on the discrete
log-likelihood and converts to bits per dimension like the autoregressive model's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genai_report.data.digits import LEVELS, from_levels, to_levels


@dataclass(frozen=True)
class VAEConfig:
    """Everything needed to rebuild a :class:`VAE`.

    Attributes:
        latent_dim: dimension of z.
        hidden: width of encoder and decoder.
        beta: weight of the KL term (1: the ELBO; > 1: beta-VAE).
        pixels: pixels per image.
    """

    latent_dim: int = 8
    hidden: int = 256
    beta: float = 1.0
    pixels: int = 64

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden < 1 or self.pixels < 1:
            raise ValueError("latent_dim, hidden and pixels must be >= 1.")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}.")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per example, summed over dimensions.

    ``KL = 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1)`` (appendix B of Kingma & Welling 2014).
    """
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1).sum(-1)


class VAE(nn.Module):
    """A VAE over 8x8 digits in [-1, 1] with a categorical pixel decoder.

    Args:
        config: the :class:`VAEConfig`.
    """

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        self.config = config
        h, d, n = config.hidden, config.latent_dim, config.pixels
        self.encoder = nn.Sequential(nn.Linear(n, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(),
                                     nn.Linear(h, 2 * d))
        self.decoder = nn.Sequential(nn.Linear(d, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(),
                                     nn.Linear(h, n * LEVELS))

    def checkpoint(self) -> dict:
        """A ``torch.save``-able dict with config and weights."""
        return {"config": asdict(self.config), "state": self.state_dict()}

    @classmethod
    def load(cls, blob: dict, device: torch.device | str = "cpu") -> VAE:
        """Rebuild from :meth:`checkpoint` output."""
        model = cls(VAEConfig(**blob["config"]))
        model.load_state_dict(blob["state"])
        return model.to(device).eval()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of ``q(z | x)``, each ``(B, latent_dim)``."""
        mu, logvar = self.encoder(x.reshape(len(x), -1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12, 8)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder logits ``(B, pixels, 17)`` over grey levels."""
        return self.decoder(z).reshape(len(z), self.config.pixels, LEVELS)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image ``(B, 1, 8, 8)`` in [-1, 1]."""
        probs = self.logits(z).softmax(-1)  # (B, P, L)
        levels = torch.arange(LEVELS, device=z.device, dtype=probs.dtype)
        return from_levels(probs @ levels).reshape(len(z), 1, 8, 8)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean of each image."""
        return self.decode(self.encode(x)[0])

    def terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-example reconstruction NLL and KL (nats), with one reparameterised sample.

        Args:
            x: images ``(B, 1, 8, 8)`` in [-1, 1].
            generator: CPU generator for the reparameterisation noise.
        """
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + (0.5 * logvar).exp() * eps  # reparameterisation trick
        target = to_levels(x).reshape(len(x), -1)  # (B, P)
        rec = F.cross_entropy(self.logits(z).transpose(1, 2), target, reduction="none").sum(-1)
        return {"recon": rec, "kl": gaussian_kl(mu, logvar)}

    def loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Negative (beta-weighted) ELBO per example, averaged: ``recon + beta * KL``."""
        t = self.terms(x, generator)
        return (t["recon"] + self.config.beta * t["kl"]).mean()

    @torch.no_grad()
    def nelbo_bits_per_dim(self, x: torch.Tensor, generator: torch.Generator) -> float:
        """The negative ELBO (beta = 1), an upper bound on -log p(x), in bits per dimension."""
        t = self.terms(x, generator)
        return float((t["recon"] + t["kl"]).mean() / (self.config.pixels * math.log(2)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Decode ``n`` draws from the prior: mean images ``(n, 1, 8, 8)``."""
        dev = next(self.parameters()).device
        z = torch.randn((n, self.config.latent_dim), generator=generator).to(dev)
        return self.decode(z)
