"""Latent diffusion (Rombach et al. 2022): a diffusion model in a trained VAE's latent space.

This is the shape of Stable Diffusion at toy scale: the VAE compresses each image to a small
latent, a diffusion model learns the distribution of latents, and the decoder maps sampled
latents back to pixels. Latents are divided by their standard deviation (Stable Diffusion's
``scale_factor``) so the diffusion sees roughly unit-variance data.
"""

from __future__ import annotations

import torch
from torch import nn

from genai_report.models.diffusion import Diffusion
from genai_report.models.vae import VAE


class LatentDiffusion(nn.Module):
    """A frozen :class:`VAE` plus a :class:`Diffusion` over its scaled posterior means.

    Args:
        vae: the trained autoencoder (kept frozen).
        diffusion: a diffusion model with ``data_shape == (vae.config.latent_dim,)``.
        scale: latents are divided by this before diffusion.
    """

    def __init__(self, vae: VAE, diffusion: Diffusion, scale: float):
        super().__init__()
        if diffusion.config.data_shape != (vae.config.latent_dim,):
            raise ValueError(
                f"Diffusion data_shape {diffusion.config.data_shape} must be "
                f"({vae.config.latent_dim},), the VAE's latent size."
            )
        self.vae, self.diffusion, self.scale = vae, diffusion, float(scale)
        self.vae.requires_grad_(False)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B, latent_dim)`` of images."""
        return self.vae.encode(x)[0] / self.scale

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, y: torch.Tensor | None = None,
               guidance_scale: float = 1.0, steps: int | None = 50, method: str = "ddim"
               ) -> torch.Tensor:
        """Sample latents with the diffusion model and decode them to images ``(n, 1, 8, 8)``."""
        z = self.diffusion.sample(n, generator=generator, y=y, guidance_scale=guidance_scale,
                                  steps=steps, method=method)
        return self.vae.decode(z * self.scale)
