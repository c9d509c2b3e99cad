"""A decoder-only transformer language model (GPT), nanoGPT-shaped.

Token and learned position embeddings, pre-norm blocks of multi-head causal self-attention
and an MLP, a final LayerNorm and an output layer tied to the token embedding (Radford et
al., 2018 and 2019; Vaswani et al., 2017 for the attention itself). Training uses PyTorch's
fused ``scaled_dot_product_attention``; :meth:`GPT.attention_maps` runs the same weights
through an explicit ``softmax(q k^T / sqrt(d)) v`` that also returns the attention weights,
and the tests check the two agree. Generation keeps a key/value cache per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a GPT.

    Attributes:
        vocab_size: number of token ids.
        block_size: longest context (number of learned positions).
        n_layer: transformer blocks.
        n_head: attention heads per block; must divide ``n_embd``.
        n_embd: width of the residual stream.
        dropout: dropout probability on attention weights and residual branches.
        bias: biases in the linear layers and LayerNorms.
    """

    vocab_size: int
    block_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be a multiple of n_head="
                             f"{self.n_head}; e.g. n_embd={self.n_head * 32}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(d) + mask) v`` with its weights (no dropout).

    Args:
        q: queries ``(B, H, Tq, D)``.
        k: keys ``(B, H, Tk, D)``.
        v: values ``(B, H, Tk, D)``.
        mask: boolean ``(Tq, Tk)`` or broadcastable, ``True`` where attending is allowed.

    Returns:
        ``(out, weights)``: ``(B, H, Tq, D)`` and ``(B, H, Tq, Tk)``, rows summing to 1.
    """
    # a_ij = softmax_j(q_i . k_j / sqrt(d))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)  # (B, H, Tq, Tk)
    return weights @ v, weights  # (B, H, Tq, D)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused q/k/v projection."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None,
                need_weights: bool = False):
        """Attend over ``past`` keys/values (if any) and the new positions ``x``.

        Returns ``(y, (k, v), weights)``; ``weights`` is ``None`` unless ``need_weights``.
        """
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))  # (B, H, T, D)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, L, D)
            v = torch.cat([past[1], v], dim=2)
        L = k.size(2)
        weights = None
        if need_weights:
            mask = torch.ones(T, L, dtype=torch.bool, device=x.device).tril(L - T)  # (T, L)
            y, weights = explicit_attention(q, k, v, mask)  # (B, H, T, D)
        elif L == T:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        else:  # new positions after a cache: position i sees keys up to L - T + i
            mask = torch.ones(T, L, dtype=torch.bool, device=x.device).tril(L - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y)), (k, v), weights


class MLP(nn.Module):
    """Position-wise feed-forward network, 4x wide with GELU."""

    def __init__(self, n_embd: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config.n_embd, config.dropout, config.bias)

    def forward(self, x, past=None, need_weights=False):
        a, kv, weights = self.attn(self.ln_1(x), past, need_weights)
        x = x + a  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))
        return x, kv, weights


class GPT(nn.Module):
    """Decoder-only transformer language model.

    Args:
        config: the model's shape.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf, 2017)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual projections
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (tied weights counted once).

        Args:
            non_embedding: leave out the position embedding (and, being tied, the token
                embedding counts as the output layer), as nanoGPT does.

        Returns:
            The count.
        """
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def _run(self, idx: torch.Tensor, cache: KVCache | None = None, need_weights: bool = False):
        B, T = idx.shape
        start = 0 if cache is None else cache[0][0].size(2)
        if start + T > self.config.block_size:
            raise ValueError(f"Sequence of length {start + T} exceeds block_size="
                             f"{self.config.block_size}.")
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        new_cache: KVCache = []
        maps = []
        for i, block in enumerate(self.blocks):
            x, kv, weights = block(x, None if cache is None else cache[i], need_weights)
            new_cache.append(kv)
            maps.append(weights)
        return self.lm_head(self.ln_f(x)), new_cache, maps  # (B, T, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Next-token logits at every position, and the loss if ``targets`` are given.

        Args:
            idx: token ids ``(B, T)`` with ``T <= block_size``.
            targets: next-token ids ``(B, T)``; ``-1`` is ignored.

        Returns:
            ``(logits, loss)``: ``(B, T, V)`` and the mean cross-entropy in nats (or None).
        """
        logits, _, _ = self._run(idx)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-1)
        return logits, loss

    def attention_maps(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and every head's attention weights, through the explicit attention path.

        Args:
            idx: token ids ``(B, T)``.

        Returns:
            ``(logits, weights)``: ``(B, T, V)`` and ``(n_layer, B, n_head, T, T)``; row
            ``i`` of a map is how position ``i`` distributes its attention over ``0..i``.
        """
        logits, _, maps = self._run(idx, need_weights=True)
        return logits, torch.stack(maps)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None,
                 use_cache: bool = True) -> torch.Tensor:
        """Continue ``idx`` by sampling one token at a time.

        With ``use_cache`` the keys and values of past positions are kept, so each step
        runs the model on one new token. Once the context is longer than ``block_size`` the
        window slides: the last ``block_size`` tokens are re-encoded, exactly what full
        recomputation (``use_cache=False``) does.

        Args:
            idx: prompt ids ``(B, T)``, ``T >= 1``.
            max_new_tokens: tokens to add.
            temperature: divides the logits (> 0); lower is more conservative.
            top_k: sample only among the ``top_k`` most likely tokens (None: all).
            generator: source of randomness for reproducible sampling.
            use_cache: reuse past keys/values (False recomputes the whole context).

        Returns:
            ``(B, T + max_new_tokens)`` ids.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}; use top_k=1 "
                             "for greedy decoding.")
        bs = self.config.block_size
        cache: KVCache | None = None
        for _ in range(max_new_tokens):
            if use_cache and cache is not None and cache[0][0].size(2) < bs:
                logits, cache, _ = self._run(idx[:, -1:], cache)  # (B, 1, V)
            else:
                logits, cache, _ = self._run(idx[:, -bs:])  # (B, T, V)
            logits = logits[:, -1, :] / temperature  # (B, V)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = logits.softmax(dim=-1)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
