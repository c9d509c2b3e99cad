"""Text-to-image diffusion: the digits U-Net conditioned on a caption's embedding.

Text-to-image systems condition a diffusion model on the output of a *frozen* text encoder:
GLIDE and Imagen on a language model's features, Stable Diffusion on CLIP's text encoder,
DALL·E 2 on a CLIP embedding (Ramesh et al. 2022; Saharia et al. 2022; Rombach et al. 2022).
Ours is the smallest version of the idea: the unit-norm caption embedding of our tiny CLIP
(:mod:`genai_report.models.clip`) passes through a small MLP and is added to the U-Net's
timestep embedding, where the class-conditional model adds its label embedding.

Classifier-free guidance (Ho & Salimans 2022) needs an unconditional model too: during
training a share ``p_uncond`` of the captions is replaced by the all-zero vector, which no
caption embedding can be (they have norm 1), so the zero vector means "no caption".
"""

from __future__ import annotations

from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn

from genai_report.models.diffusion import Diffusion, DiffusionConfig


class ConditionProjection(nn.Module):
    """Maps a condition vector ``(B, cond_dim)`` into the U-Net's embedding ``(B, emb_dim)``."""

    def __init__(self, cond_dim: int, emb_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cond_dim, emb_dim), nn.SiLU(),
                                 nn.Linear(emb_dim, emb_dim))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.net(c)


class TextDiffusion(Diffusion):
    """A DDPM whose denoiser is conditioned on a vector (a caption embedding), with CFG.

    The U-Net is :class:`~genai_report.models.denoisers.UNetDenoiser` unchanged, but its
    label embedding is replaced by a :class:`ConditionProjection`, so wherever the
    class-conditional model takes labels ``(B,)`` this one takes vectors ``(B, cond_dim)``.

    Args:
        config: the diffusion model's shape; must use the ``"unet"`` denoiser and
            ``n_classes=0``.
        cond_dim: size of the condition vectors.
    """

    def __init__(self, config: DiffusionConfig, cond_dim: int):
        if config.denoiser != "unet" or config.n_classes:
            raise ValueError("TextDiffusion needs denoiser='unet' and n_classes=0, got "
                             f"denoiser={config.denoiser!r}, n_classes={config.n_classes}.")
        if cond_dim < 1:
            raise ValueError(f"cond_dim must be >= 1, got {cond_dim}.")
        super().__init__(config)
        self.cond_dim = cond_dim
        emb_dim = 4 * config.channels[0]  # the U-Net's time-embedding width
        self.denoiser.label = ConditionProjection(cond_dim, emb_dim)

    def checkpoint(self) -> dict:
        """A ``torch.save``-able dict with config, condition size and weights."""
        return {"config": asdict(self.config), "cond_dim": self.cond_dim,
                "state": self.state_dict()}

    @classmethod
    def load(cls, blob: dict, device: torch.device | str = "cpu") -> TextDiffusion:
        """Rebuild from :meth:`checkpoint` output, in eval mode."""
        cfg = dict(blob["config"])
        for key in ("data_shape", "channels"):
            cfg[key] = tuple(cfg[key])
        model = cls(DiffusionConfig(**cfg), blob["cond_dim"])
        model.load_state_dict(blob["state"])
        return model.to(device).eval()

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None = None, *,
             generator: torch.Generator, p_uncond: float = 0.1) -> torch.Tensor:
        """Noise-prediction loss with conditions ``y`` ``(B, cond_dim)`` dropped to zero.

        Args:
            x0: clean images ``(B, C, H, W)``.
            y: condition vectors ``(B, cond_dim)``; ``None`` trains the unconditional model.
            generator: CPU generator for timesteps, noise and condition dropout.
            p_uncond: share of conditions replaced by the zero ("no caption") vector.
        """
        b, dev = len(x0), x0.device
        t = torch.randint(0, self.config.timesteps, (b,), generator=generator).to(dev)
        noise = torch.randn(x0.shape, generator=generator).to(dev)
        if y is None:
            y = torch.zeros(b, self.cond_dim, device=dev)
        else:
            keep = (torch.rand(b, generator=generator) >= p_uncond).to(dev)
            y = y * keep[:, None].float()  # (B, cond_dim), zero rows mean "no caption"
        xt = self.schedule.add_noise(x0, noise, t)
        return F.mse_loss(self.denoiser(xt, t, y), noise)

    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None,
                      guidance_scale: float = 1.0) -> torch.Tensor:
        """``eps(x, t, 0) + s (eps(x, t, c) - eps(x, t, 0))``; ``y`` is ``c``, ``(B, cond_dim)``."""
        null = torch.zeros(len(x), self.cond_dim, device=x.device)
        if y is None or guidance_scale == 0.0:
            return self.denoiser(x, t, null)
        if guidance_scale == 1.0:
            return self.denoiser(x, t, y)
        eps = self.denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = eps.chunk(2)
        return uncond + guidance_scale * (cond - uncond)
