"""Anomaly scores from a VAE, and the corruptions that make digits anomalous.

A VAE trained on digits assigns its negative ELBO (an upper bound on ``-log p(x)``, in nats)
to any image; inputs unlike the training data should score high. Beware that likelihoods of
deep generative models can rank out-of-distribution inputs *above* in-distribution ones
(Nalisnick et al. 2019), which is why the scores are measured, not assumed.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def negative_elbo(vae, x: torch.Tensor, generator: torch.Generator, n_samples: int = 8
                  ) -> torch.Tensor:
    """Per-image negative ELBO (recon + KL, nats), averaged over ``n_samples`` draws of z."""
    dev = next(vae.parameters()).device
    x = x.to(dev)
    total = torch.zeros(len(x), device=dev)
    for _ in range(n_samples):
        t = vae.terms(x, generator)
        total += t["recon"] + t["kl"]
    return (total / n_samples).cpu()


@torch.no_grad()
def reconstruction_error(vae, x: torch.Tensor) -> torch.Tensor:
    """Per-image squared error between ``x`` and the decoded posterior mean."""
    dev = next(vae.parameters()).device
    rec = vae.reconstruct(x.to(dev)).cpu()
    return (rec - x).square().flatten(1).sum(1)


def corrupt(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Anomalous versions of digits ``(B, 1, 8, 8)`` in [-1, 1].

    Args:
        x: clean digits.
        kind: ``"salt-pepper"`` (15% of pixels set to black or white), ``"noise"`` (Gaussian
            noise, std 0.5), ``"flip"`` (upside down), ``"invert"`` (negative image),
            ``"uniform"`` (pure noise images, out of distribution).
        generator: CPU generator.

    Returns:
        Corrupted images, clamped to [-1, 1].
    """
    if kind == "salt-pepper":
        hit = torch.rand(x.shape, generator=generator) < 0.15
        val = torch.where(torch.rand(x.shape, generator=generator) < 0.5, -1.0, 1.0)
        return torch.where(hit, val, x)
    if kind == "noise":
        return (x + 0.5 * torch.randn(x.shape, generator=generator)).clamp(-1, 1)
    if kind == "flip":
        return x.flip(-2)
    if kind == "invert":
        return -x
    if kind == "uniform":
        return torch.rand(x.shape, generator=generator) * 2 - 1
    raise ValueError(f"Unknown corruption '{kind}'; use one of {', '.join(CORRUPTIONS)}.")


CORRUPTIONS = ("salt-pepper", "noise", "flip", "invert", "uniform")
