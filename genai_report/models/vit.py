"""A vision transformer (ViT) for 8x8 digits (Dosovitskiy et al. 2021).

An image is cut into non-overlapping ``p x p`` patches; each patch is flattened and
projected linearly to a *patch token*. A learned ``[CLS]`` token is prepended, a learned
position embedding is added (attention by itself is blind to where a patch came from), and
pre-norm transformer blocks with bidirectional self-attention mix the tokens. The class is
read from the final ``[CLS]`` token by a linear head. With 2x2 patches an 8x8 digit is a
sequence of 16 patch tokens plus ``[CLS]``.

The blocks are the GPT's (:mod:`genai_report.models.gpt`) without its causal mask: the same
MLP and pre-norm layout, with an attention that lets every token read every other and that
can return its weights (:func:`~genai_report.models.gpt.explicit_attention`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genai_report.models.gpt import MLP, explicit_attention


@dataclass(frozen=True)
class ViTConfig:
    """Shape of a vision transformer.

    Attributes:
        image_size: side of the (square, one-channel) input image.
        patch_size: side of a patch; must divide ``image_size``.
        n_layer: transformer blocks.
        n_head: attention heads; must divide ``n_embd``.
        n_embd: width of the token vectors.
        n_classes: outputs of the head.
        position: learn a position embedding (``False``: the model is blind to where a
            patch is, a control).
    """

    image_size: int = 8
    patch_size: int = 2
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 32
    n_classes: int = 10
    position: bool = True

    def __post_init__(self) -> None:
        if min(self.image_size, self.patch_size, self.n_layer, self.n_head, self.n_embd,
               self.n_classes) < 1:
            raise ValueError("all sizes of a ViTConfig must be >= 1.")
        if self.image_size % self.patch_size:
            raise ValueError(f"patch_size={self.patch_size} must divide image_size="
                             f"{self.image_size}.")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be a multiple of n_head="
                             f"{self.n_head}.")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def n_patches(self) -> int:
        """Patch tokens per image (``[CLS]`` excluded)."""
        return self.grid ** 2


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images ``(B, C, H, W)`` into flattened patches ``(B, H W / p^2, C p^2)``, row-major."""
    B, C, H, W = x.shape
    p = patch_size
    x = x.reshape(B, C, H // p, p, W // p, p)  # (B, C, gh, p, gw, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)


class SelfAttention(nn.Module):
    """Multi-head bidirectional self-attention (no mask) that can return its weights."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        """``(y, weights)``: ``(B, T, C)`` and ``(B, H, T, T)`` (``None`` unless asked)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))  # (B, H, T, D)
        weights = None
        if need_weights:
            y, weights = explicit_attention(q, k, v, None)  # (B, H, T, D), (B, H, T, T)
        else:
            y = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y), weights


class EncoderBlock(nn.Module):
    """Pre-norm block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))`` (the GPT's MLP)."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = SelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, 0.0, bias=True)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        a, w = self.attn(self.ln_1(x), need_weights)
        x = x + a  # (B, T, C)
        return x + self.mlp(self.ln_2(x)), w


class ViT(nn.Module):
    """Vision transformer classifier.

    Args:
        config: the model's shape.
    """

    def __init__(self, config: ViTConfig = ViTConfig()) -> None:
        super().__init__()
        self.config = config
        C = config.n_embd
        self.patch_embed = nn.Linear(config.patch_size ** 2, C)  # one grey channel
        self.cls = nn.Parameter(torch.zeros(1, 1, C))
        self.pos = nn.Parameter(torch.zeros(1, config.n_patches + 1, C)) if config.position \
            else None
        self.blocks = nn.ModuleList(EncoderBlock(C, config.n_head)
                                    for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C)
        self.head = nn.Linear(C, config.n_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.cls, std=0.02)
        if self.pos is not None:
            nn.init.normal_(self.pos, std=0.02)

    def num_params(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def _run(self, x: torch.Tensor, need_weights: bool):
        B = x.size(0)
        x = x.reshape(B, 1, self.config.image_size, self.config.image_size)
        tok = self.patch_embed(patchify(x, self.config.patch_size))  # (B, N, C)
        h = torch.cat([self.cls.expand(B, -1, -1), tok], dim=1)  # (B, 1 + N, C)
        if self.pos is not None:
            h = h + self.pos
        maps = []
        for block in self.blocks:
            h, w = block(h, need_weights)
            maps.append(w)
        return self.head(self.ln_f(h[:, 0])), maps  # (B, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)`` of images ``(B, 1, H, W)``."""
        return self._run(x, False)[0]

    def attention_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and every head's weights, ``(B, K)`` and ``(n_layer, B, n_head, T, T)``.

        Token 0 is ``[CLS]``; tokens ``1..N`` are the patches in row-major order.
        """
        logits, maps = self._run(x, True)
        return logits, torch.stack(maps)


def attention_distance(weights: torch.Tensor, grid: int, patch_size: int) -> torch.Tensor:
    """Mean distance, in pixels, over which each head attends between patches.

    Dosovitskiy et al. (2021, fig. 7) average, over query patches, the distance to each key
    patch weighted by the attention; ``[CLS]`` is left out as query and key (the patch
    weights are renormalised).

    Args:
        weights: ``(..., T, T)`` with ``T = 1 + grid^2``.
        grid: patches per side.
        patch_size: pixels per patch side.

    Returns:
        ``(...)``: the mean attention distance per leading index (e.g. per layer and head).
    """
    ij = torch.stack(torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij"),
                     -1).reshape(-1, 2).float()  # (N, 2)
    dist = torch.cdist(ij, ij) * patch_size  # (N, N) pixels between patch centres
    w = weights[..., 1:, 1:]  # (..., N, N) patch-to-patch
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
    return (w * dist.to(w)).sum(-1).mean(-1)
