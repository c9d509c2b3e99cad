"""A character-level GRU language model, the recurrent baseline for the transformer chapter.

Its :meth:`CharGRU.forward_stepwise` walks the sequence one token at a time, the way any
recurrent network must, since step ``t`` needs the state of step ``t - 1``; the timing figure
sets it against a transformer that processes all positions at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CharGRU(nn.Module):
    """Embedding, a stacked GRU (Cho et al., 2014) and a linear read-out.

    Args:
        vocab_size: number of token ids.
        n_embd: embedding width.
        hidden: GRU state width.
        n_layer: stacked GRU layers.
    """

    def __init__(self, vocab_size: int, n_embd: int = 128, hidden: int = 256,
                 n_layer: int = 2) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, n_embd)
        self.gru = nn.GRU(n_embd, hidden, num_layers=n_layer, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def num_params(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits ``(B, T, V)`` and loss, using the GRU's own (C++) loop over time."""
        h, _ = self.gru(self.emb(idx))  # (B, T, H)
        logits = self.head(h)  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def forward_stepwise(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, V)`` computed one position at a time (same result as forward)."""
        x = self.emb(idx)  # (B, T, E)
        state = None
        outs = []
        for t in range(idx.size(1)):
            h, state = self.gru(x[:, t : t + 1], state)  # (B, 1, H)
            outs.append(h)
        return self.head(torch.cat(outs, dim=1))  # (B, T, V)
