"""A tiny CLIP: an image encoder and a text encoder trained into one embedding space.

Radford et al. (2021) train two encoders so that an image and its caption map to nearby unit
vectors and mismatched pairs to distant ones, with a symmetric cross-entropy over the
similarity matrix of a batch (InfoNCE in both directions) and a learned temperature. Text
becomes a classifier for free: embed ``"a seven"`` and the nine other prompts, and the image
is of the class whose prompt is most similar (*zero-shot* classification).

Ours, for 8x8 digits and the captions of :mod:`genai_report.data.captions`:

* the image encoder is the digits classifier's CNN (:class:`~genai_report.metrics.fid.DigitsClassifier`,
  two resolutions) up to its penultimate layer, so that a supervised classifier of the same
  shape is the like-for-like baseline;
* the text encoder is our GPT block stack over words (causal self-attention, as in CLIP), and
  the caption's embedding is the final layer's features at its end-of-caption token;
* both end in a linear projection to ``embed_dim`` and are L2-normalised.

With only 90 distinct captions, one batch holds many copies of the same caption; the loss
counts every pair with the same caption as a positive (the targets are spread evenly over
them), which is the plain CLIP loss when captions are unique.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genai_report.data.captions import EOS, MAX_LEN, VOCAB
from genai_report.metrics.fid import ClassifierConfig, DigitsClassifier
from genai_report.models.gpt import Block, GPTConfig


@dataclass(frozen=True)
class ClipConfig:
    """Shape of the tiny CLIP.

    Attributes:
        embed_dim: size of the joint embedding.
        image_channels: channels of the CNN (``c`` at 8x8, ``2c`` at 4x4).
        image_features: width of the CNN's last hidden layer.
        text_width, text_layers, text_heads: the text transformer.
        init_temperature: initial softmax temperature (CLIP: 0.07); learned afterwards.
    """

    embed_dim: int = 32
    image_channels: int = 32
    image_features: int = 64
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    init_temperature: float = 0.07

    def __post_init__(self) -> None:
        for name in ("embed_dim", "image_channels", "image_features", "text_width", "text_layers", "text_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.text_width % self.text_heads:
            raise ValueError(f"text_width={self.text_width} must be a multiple of "
                             f"text_heads={self.text_heads}.")
        if not 0 < self.init_temperature < 1:
            raise ValueError(f"init_temperature must be in (0, 1), got {self.init_temperature}.")


class TextEncoder(nn.Module):
    """A causal transformer over caption tokens; features at the end-of-caption token.

    Args:
        width, layers, heads: the transformer's shape.
    """

    def __init__(self, width: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        cfg = GPTConfig(vocab_size=len(VOCAB), block_size=MAX_LEN, n_layer=layers,
                        n_head=heads, n_embd=width)
        self.tok = nn.Embedding(len(VOCAB), width)
        self.pos = nn.Embedding(MAX_LEN, width)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(layers))
        self.ln = nn.LayerNorm(width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Features ``(B, width)`` of padded captions ``(B, MAX_LEN)``."""
        B, T = ids.shape
        h = self.tok(ids) + self.pos(torch.arange(T, device=ids.device))  # (B, T, W)
        for block in self.blocks:
            h, _, _ = block(h)
        h = self.ln(h)
        # causal attention: the <eos> position has read the whole caption, never the padding
        end = (ids == EOS).long().argmax(1)  # (B,)
        return h[torch.arange(B, device=ids.device), end]  # (B, W)


def image_config(config: ClipConfig) -> ClassifierConfig:
    """The digits-classifier shape of CLIP's image tower (and of the supervised baseline)."""
    return ClassifierConfig(channels=config.image_channels, features=config.image_features)


class Clip(nn.Module):
    """The two encoders, their projections into the joint space, and the temperature.

    Args:
        config: the :class:`ClipConfig`.
    """

    def __init__(self, config: ClipConfig = ClipConfig()):
        super().__init__()
        self.config = config
        self.image = DigitsClassifier(image_config(config)).body  # (B, 1, 8, 8) -> (B, F)
        self.text = TextEncoder(config.text_width, config.text_layers, config.text_heads)
        self.image_proj = nn.Linear(config.image_features, config.embed_dim, bias=False)
        self.text_proj = nn.Linear(config.text_width, config.embed_dim, bias=False)
        # log of the inverse temperature, CLIP's parametrisation
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.init_temperature)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm embeddings ``(B, embed_dim)`` of images ``(B, 1, 8, 8)``."""
        return F.normalize(self.image_proj(self.image(x)), dim=-1)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Unit-norm embeddings ``(B, embed_dim)`` of padded captions ``(B, MAX_LEN)``."""
        return F.normalize(self.text_proj(self.text(ids)), dim=-1)

    def scale(self) -> torch.Tensor:
        """The inverse temperature, clamped at 100 as in CLIP."""
        return self.logit_scale.exp().clamp(max=100.0)

    def checkpoint(self) -> dict:
        """A ``torch.save``-able dict with config and weights."""
        from dataclasses import asdict

        return {"config": asdict(self.config), "state": self.state_dict()}

    @classmethod
    def load(cls, blob: dict, device: torch.device | str = "cpu") -> Clip:
        """Rebuild from :meth:`checkpoint` output, in eval mode."""
        model = cls(ClipConfig(**blob["config"]))
        model.load_state_dict(blob["state"])
        return model.to(device).eval()


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor,
              caption_ids: torch.Tensor) -> torch.Tensor:
    """Symmetric contrastive loss over a batch, with repeated captions as shared positives.

    ``logits = scale * I T^T``; the image-to-text and text-to-image cross-entropies are
    averaged (Radford et al. 2021). Where several pairs of the batch carry the same caption,
    each row's target is spread evenly over all of them.

    Args:
        image_emb, text_emb: unit-norm ``(B, D)`` each, row ``i`` of both from pair ``i``.
        scale: the inverse temperature (scalar).
        caption_ids: ``(B,)`` an id per pair; equal ids mean the same caption.

    Returns:
        The scalar loss.
    """
    logits = scale * image_emb @ text_emb.T  # (B, B): image i against caption j
    same = (caption_ids[:, None] == caption_ids[None, :]).float()  # (B, B), symmetric
    target = same / same.sum(1, keepdim=True)  # rows sum to 1
    loss_i = -(target * logits.log_softmax(1)).sum(1).mean()
    loss_t = -(target * logits.T.log_softmax(1)).sum(1).mean()
    return (loss_i + loss_t) / 2
