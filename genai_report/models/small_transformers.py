"""Small transformers for the in-context-learning demonstrations of the Transformers chapter.

* :class:`AttentionOnlyTransformer`: token and learned position embeddings, then layers of
  causal self-attention only (no MLP), the model Olsson et al. (2022), "In-context learning
  and induction heads", use to isolate induction heads: with two layers a head can compose
  with a previous-token head of the layer below; with one it cannot.
* :class:`VectorGPT`: the GPT of ``gpt.py`` reading vectors instead of token ids (a linear
  read-in) and writing one number per position (a linear read-out), for in-context linear
  regression (Garg et al., 2022, "What can transformers learn in-context?").

Both reuse ``gpt.py``'s attention and blocks, so the fused and explicit attention paths (and
their tests) are shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genai_report.models.gpt import Block, CausalSelfAttention, GPTConfig


@dataclass(frozen=True)
class AttnOnlyConfig:
    """Shape of an attention-only transformer.

    Attributes:
        vocab_size: number of token ids.
        block_size: longest context.
        n_layer: attention layers (1 or 2 in the chapter).
        n_head: heads per layer; must divide ``n_embd``.
        n_embd: width of the residual stream.
    """

    vocab_size: int
    block_size: int
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64

    def __post_init__(self) -> None:
        # GPTConfig validates the shared fields and names the fix
        GPTConfig(vocab_size=self.vocab_size, block_size=self.block_size,
                  n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd)


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)


class AttentionOnlyTransformer(nn.Module):
    """Embeddings, ``n_layer`` pre-norm causal self-attention layers, an unembedding.

    Args:
        config: the model's shape.
    """

    def __init__(self, config: AttnOnlyConfig) -> None:
        super().__init__()
        self.config = config
        gcfg = GPTConfig(vocab_size=config.vocab_size, block_size=config.block_size,
                         n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.ln = nn.ModuleList(nn.LayerNorm(config.n_embd, bias=False)
                                for _ in range(config.n_layer))
        self.attn = nn.ModuleList(CausalSelfAttention(gcfg) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=False)
        self.unembed = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        _init(self)

    def num_params(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def _run(self, idx: torch.Tensor, need_weights: bool):
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"Sequence of length {T} exceeds block_size="
                             f"{self.config.block_size}.")
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))  # (B, T, C)
        maps = []
        for ln, attn in zip(self.ln, self.attn, strict=True):
            y, _, w = attn(ln(x), None, need_weights)
            x = x + y  # the residual stream: each layer adds what its heads read
            maps.append(w)
        return self.unembed(self.ln_f(x)), maps  # (B, T, V)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` of token ids ``(B, T)`` (fused attention)."""
        return self._run(idx, False)[0]

    def attention_maps(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and every head's weights, ``(B, T, V)`` and ``(n_layer, B, n_head, T, T)``."""
        logits, maps = self._run(idx, True)
        return logits, torch.stack(maps)


@dataclass(frozen=True)
class VectorGPTConfig:
    """Shape of a GPT over vectors.

    Attributes:
        n_in: width of each input vector.
        block_size: longest sequence.
        n_layer, n_head, n_embd: as in ``GPTConfig``.
    """

    n_in: int
    block_size: int
    n_layer: int = 3
    n_head: int = 2
    n_embd: int = 64

    def __post_init__(self) -> None:
        if self.n_in < 1:
            raise ValueError(f"n_in must be >= 1, got {self.n_in}.")
        GPTConfig(vocab_size=1, block_size=self.block_size, n_layer=self.n_layer,
                  n_head=self.n_head, n_embd=self.n_embd)


class VectorGPT(nn.Module):
    """A causal GPT whose tokens are vectors and whose output is one number per position.

    Args:
        config: the model's shape.
    """

    def __init__(self, config: VectorGPTConfig) -> None:
        super().__init__()
        self.config = config
        gcfg = GPTConfig(vocab_size=1, block_size=config.block_size, n_layer=config.n_layer,
                         n_head=config.n_head, n_embd=config.n_embd)
        self.read_in = nn.Linear(config.n_in, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(gcfg) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=False)
        self.read_out = nn.Linear(config.n_embd, 1)
        _init(self)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual projections
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def num_params(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """One output per position, ``(B, T)``, from input vectors ``(B, T, n_in)``."""
        T = z.size(1)
        if T > self.config.block_size:
            raise ValueError(f"Sequence of length {T} exceeds block_size="
                             f"{self.config.block_size}.")
        h = self.read_in(z) + self.wpe(torch.arange(T, device=z.device))  # (B, T, C)
        for block in self.blocks:
            h, _, _ = block(h)
        return self.read_out(self.ln_f(h))[..., 0]  # (B, T)
