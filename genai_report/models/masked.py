"""A masked (bidirectional, BERT-style) language model built from the GPT's own blocks.

:func:`bidirectional` swaps each block's causal attention for the same projections without
the causal mask, so a GPT and its bidirectional twin have identical parameters and differ
only in what each position may attend to. :func:`mask_tokens` is the masking of Devlin et
al. (2019, "BERT", Section 3.1): 15% of positions are chosen for prediction; of those, 80%
are replaced by a ``[MASK]`` id, 10% by a random token and 10% left unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genai_report.models.gpt import GPT, CausalSelfAttention


class BidirectionalSelfAttention(CausalSelfAttention):
    """:class:`CausalSelfAttention`'s projections, every position attending to every other."""

    def forward(self, x: torch.Tensor, past=None, need_weights: bool = False):
        if past is not None or need_weights:
            raise ValueError("Bidirectional attention keeps no cache and returns no maps.")
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))  # (B, H, T, D)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=False, dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y)), (k, v), None


def bidirectional(model: GPT) -> GPT:
    """Make ``model``'s attention bidirectional in place (weights kept); returns it.

    Args:
        model: a GPT; its ``forward`` then gives logits at every position from the whole
            sequence, the shape of a masked language model.

    Returns:
        ``model``.
    """
    for block in model.blocks:
        attn = BidirectionalSelfAttention(model.config)
        attn.load_state_dict(block.attn.state_dict())
        block.attn = attn.to(next(model.parameters()).device)
    return model


def mask_tokens(ids: torch.Tensor, mask_id: int, vocab_size: int, generator: torch.Generator,
                rate: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: choose ``rate`` of positions; mask 80%, randomise 10%, keep 10%.

    Args:
        ids: token ids ``(B, T)`` (on the CPU, as the generator).
        mask_id: the ``[MASK]`` id.
        vocab_size: random replacements are drawn from ``0..vocab_size-1`` (not the mask).
        generator: source of the choices.
        rate: share of positions to predict.

    Returns:
        ``(inputs, targets)``: the corrupted ids, and the original id at chosen positions
        with ``-1`` (ignored by the loss) elsewhere.
    """
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), got {rate}.")
    chosen = torch.rand(ids.shape, generator=generator) < rate  # (B, T)
    r = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (r < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (r >= 0.8) & (r < 0.9), random_ids, inputs)
    targets = torch.where(chosen, ids, torch.full_like(ids, -1))
    return inputs, targets
