"""Verbatim memorization: does a prefix of training text make the model emit its suffix?

The test of Carlini et al. (2021, 2023): a string is *extractable* when, prompted with the
``prefix_len`` tokens that precede it in the training data, greedy decoding reproduces the
next ``suffix_len`` tokens exactly. The same test on held-out text is the control: it counts
what any fluent model would continue correctly without having seen the passage.
"""

from __future__ import annotations

import torch


def sample_positions(n_tokens: int, n: int, span: int, generator: torch.Generator
                     ) -> torch.Tensor:
    """``n`` random start offsets of windows of ``span`` tokens in a text of ``n_tokens``."""
    if n_tokens <= span:
        raise ValueError(f"Text of {n_tokens} tokens is too short for windows of {span}.")
    return torch.randint(0, n_tokens - span, (n,), generator=generator)


@torch.no_grad()
def greedy_continue(model: torch.nn.Module, prefixes: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Greedy continuation ``(B, n_tokens)`` of ``prefixes`` ``(B, P)`` by a GPT.

    Uses the GPT's own cached ``generate`` with ``top_k=1`` (only the most likely token
    survives, so the draw is the argmax).
    """
    return model.generate(prefixes, n_tokens, top_k=1)[:, prefixes.size(1):]


def matched_length(generated: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Length of the longest common prefix of each row pair ``(B, S)`` -> ``(B,)``."""
    same = (generated == truth).long()
    return same.cumprod(1).sum(1)


@torch.no_grad()
def extraction(model: torch.nn.Module, ids: torch.Tensor, positions: torch.Tensor,
               prefix_len: int, suffix_len: int, batch: int = 256) -> dict[str, float]:
    """Extractable fraction and mean verbatim run for prompts taken from ``ids``.

    Args:
        model: a GPT (``model(idx) -> (logits, loss)``, ``model.config.block_size``).
        ids: the token stream ``(N,)`` the prompts come from.
        positions: start of each window ``(B,)``; window = prefix then suffix.
        prefix_len, suffix_len: tokens in the prompt and in the tested continuation.
        batch: prompts per forward pass.

    Returns:
        ``{"extractable": fraction reproduced exactly, "mean_match": mean matched tokens}``.
    """
    dev = next(model.parameters()).device
    offsets = torch.arange(prefix_len + suffix_len)
    runs = []
    for i in range(0, len(positions), batch):
        win = ids[positions[i:i + batch, None] + offsets].to(dev)  # (b, P + S)
        gen = greedy_continue(model, win[:, :prefix_len], suffix_len)
        runs.append(matched_length(gen, win[:, prefix_len:]).cpu())
    run = torch.cat(runs).double()
    return {"extractable": float((run == suffix_len).double().mean()),
            "mean_match": float(run.mean())}
