"""An encoder-decoder transformer, the shape of Vaswani et al. (2017), "Attention Is All You
Need": an encoder of bidirectional self-attention over the source, and a decoder of causal
self-attention plus cross-attention to the encoder's output.

Two changes from the paper, both now standard: blocks are pre-norm (LayerNorm before each
sub-layer, as in GPT-2), and the output layer is tied to the target embedding. Positions are
the paper's fixed sinusoids. Every attention can run fused (``scaled_dot_product_attention``)
or explicitly, returning its weights for the alignment figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genai_report.models.gpt import MLP, explicit_attention


@dataclass(frozen=True)
class EncDecConfig:
    """Shape of an encoder-decoder transformer.

    Attributes:
        src_vocab: source token ids (id 0 is padding).
        tgt_vocab: target token ids (id 0 is padding).
        max_len: longest source or target sequence.
        n_enc_layer: encoder blocks.
        n_dec_layer: decoder blocks.
        n_head: heads per attention; must divide ``n_embd``.
        n_embd: model width.
        dropout: dropout probability.
        bias: biases in linear layers and LayerNorms.
    """

    src_vocab: int
    tgt_vocab: int
    max_len: int = 32
    n_enc_layer: int = 2
    n_dec_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False

    def __post_init__(self) -> None:
        for name in ("src_vocab", "tgt_vocab", "max_len", "n_enc_layer", "n_dec_layer",
                     "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be a multiple of n_head={self.n_head}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")


def sinusoidal_positions(n: int, d: int) -> torch.Tensor:
    """The fixed position encodings of Vaswani et al. (2017), section 3.5, ``(n, d)``."""
    # PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d))
    pos = torch.arange(n, dtype=torch.float64)[:, None]  # (n, 1)
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float64) / d)
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe.float()


class Attention(nn.Module):
    """Multi-head attention from queries ``x`` to keys/values ``mem`` (self if ``mem is x``)."""

    def __init__(self, config: EncDecConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.q = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.kv = nn.Linear(config.n_embd, 2 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout

    def forward(self, x, mem, mask, need_weights=False):
        """``mask``: boolean, broadcastable to ``(B, H, Tq, Tk)``, True where allowed."""
        B, T, C = x.shape
        S = mem.size(1)
        q = self.q(x).view(B, T, self.n_head, -1).transpose(1, 2)  # (B, H, T, D)
        k, v = self.kv(mem).split(C, dim=2)  # (B, S, C) each
        k = k.view(B, S, self.n_head, -1).transpose(1, 2)  # (B, H, S, D)
        v = v.view(B, S, self.n_head, -1).transpose(1, 2)
        if need_weights:
            y, w = explicit_attention(q, k, v, mask)
        else:
            y, w = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0), None
        return self.proj(y.transpose(1, 2).reshape(B, T, C)), w  # (B, T, C)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention over the whole source, then an MLP."""

    def __init__(self, config: EncDecConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config.n_embd, config.dropout, config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, src_mask, need_weights=False):
        h = self.ln_1(x)
        a, w = self.attn(h, h, src_mask, need_weights)
        x = x + self.drop(a)  # (B, S, C)
        return x + self.mlp(self.ln_2(x)), w


class DecoderLayer(nn.Module):
    """Pre-norm causal self-attention, cross-attention to the encoder, then an MLP."""

    def __init__(self, config: EncDecConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.self_attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.cross_attn = Attention(config)
        self.ln_3 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config.n_embd, config.dropout, config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, y, mem, causal, src_mask, need_weights=False):
        h = self.ln_1(y)
        a, ws = self.self_attn(h, h, causal, need_weights)
        y = y + self.drop(a)  # (B, T, C)
        a, wc = self.cross_attn(self.ln_2(y), mem, src_mask, need_weights)
        y = y + self.drop(a)
        return y + self.mlp(self.ln_3(y)), ws, wc


class EncoderDecoder(nn.Module):
    """Encoder-decoder transformer for sequence transduction.

    Args:
        config: the model's shape.
    """

    def __init__(self, config: EncDecConfig) -> None:
        super().__init__()
        self.config = config
        self.src_emb = nn.Embedding(config.src_vocab, config.n_embd)
        self.tgt_emb = nn.Embedding(config.tgt_vocab, config.n_embd)
        self.register_buffer("pe", sinusoidal_positions(config.max_len, config.n_embd),
                             persistent=False)
        self.encoder = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_enc_layer))
        self.decoder = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_dec_layer))
        self.ln_enc = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.ln_dec = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.tgt_vocab, bias=False)
        self.head.weight = self.tgt_emb.weight
        self.drop = nn.Dropout(config.dropout)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def _embed(self, emb, ids):
        T = ids.size(1)
        if T > self.config.max_len:
            raise ValueError(f"Sequence of length {T} exceeds max_len={self.config.max_len}.")
        # scale embeddings by sqrt(d) so they are not drowned by the unit-size sinusoids
        return self.drop(emb(ids) * math.sqrt(self.config.n_embd) + self.pe[:T])  # (B, T, C)

    def _run(self, src, tgt_in, need_weights=False):
        src_mask = (src != 0)[:, None, None, :]  # (B, 1, 1, S)
        T = tgt_in.size(1)
        causal = torch.ones(T, T, dtype=torch.bool, device=src.device).tril()  # (T, T)
        x = self._embed(self.src_emb, src)  # (B, S, C)
        maps = {"encoder": [], "decoder": [], "cross": []}
        for layer in self.encoder:
            x, w = layer(x, src_mask, need_weights)
            maps["encoder"].append(w)
        mem = self.ln_enc(x)
        y = self._embed(self.tgt_emb, tgt_in)  # (B, T, C)
        for layer in self.decoder:
            y, ws, wc = layer(y, mem, causal, src_mask, need_weights)
            maps["decoder"].append(ws)
            maps["cross"].append(wc)
        return self.head(self.ln_dec(y)), maps  # (B, T, V)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor,
                targets: torch.Tensor | None = None):
        """Logits for the next target token at each target position (teacher forcing).

        Args:
            src: source ids ``(B, S)``, 0-padded.
            tgt_in: target ids so far ``(B, T)``, starting with ``<bos>``.
            targets: the next ids ``(B, T)``; padding (0) is ignored in the loss.

        Returns:
            ``(logits, loss)``: ``(B, T, V)`` and the mean cross-entropy (or None).
        """
        logits, _ = self._run(src, tgt_in)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=0)
        return logits, loss

    def attention_maps(self, src: torch.Tensor, tgt_in: torch.Tensor):
        """Logits and attention weights of every layer and head (explicit path).

        Returns:
            ``(logits, maps)`` where ``maps`` has ``"encoder"`` ``(L, B, H, S, S)``,
            ``"decoder"`` ``(L, B, H, T, T)`` and ``"cross"`` ``(L, B, H, T, S)``.
        """
        logits, maps = self._run(src, tgt_in, need_weights=True)
        return logits, {k: torch.stack(v) for k, v in maps.items()}

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int, bos: int, eos: int) -> torch.Tensor:
        """Decode by taking the most likely token each step, up to ``max_len`` tokens.

        Returns:
            ``(B, <= max_len)`` ids starting with ``bos``; finished rows are padded with 0.
        """
        out = torch.full((src.size(0), 1), bos, dtype=torch.long, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        for _ in range(max_len - 1):
            logits, _ = self._run(src, out)
            nxt = logits[:, -1].argmax(-1).masked_fill(done, 0)  # (B,)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done |= nxt == eos
            if done.all():
                break
        return out
