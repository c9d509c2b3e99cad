"""A statistical watermark for sampled text: the "green list" of Kirchenbauer et al. (2023).

At each step the previous token seeds a pseudo-random split of the vocabulary into a "green"
fraction ``gamma`` and a red rest; the sampler adds ``delta`` to the green logits (the "soft
red list" of their Algorithm 2), so watermarked text holds more green tokens than chance. The
detector needs only the key, not the model: it counts green tokens and computes the one-sided
z-statistic of their section 3,

``z = (|s|_G - gamma T) / sqrt(T gamma (1 - gamma))``,

which is approximately standard normal for text written without the watermark.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def green_lists(vocab_size: int, gamma: float = 0.5, key: int = 15485863) -> torch.Tensor:
    """The green list of every possible previous token.

    Row ``p`` is a boolean mask over the vocabulary: the first ``round(gamma * V)`` entries of
    a permutation drawn from a generator seeded with ``hash(key, p)``.

    Args:
        vocab_size: V.
        gamma: fraction of the vocabulary that is green, in (0, 1).
        key: the secret key shared by sampler and detector.

    Returns:
        ``(V, V)`` bool tensor.
    """
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma}.")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}.")
    n_green = max(1, round(gamma * vocab_size))
    green = torch.zeros(vocab_size, vocab_size, dtype=torch.bool)
    g = torch.Generator()
    for prev in range(vocab_size):
        g.manual_seed((key * 1_000_003 + prev) % (2**63 - 1))
        green[prev, torch.randperm(vocab_size, generator=g)[:n_green]] = True
    return green


def bias_logits(logits: torch.Tensor, prev: torch.Tensor, green: torch.Tensor, delta: float
                ) -> torch.Tensor:
    """Add ``delta`` to the green tokens' logits.

    Args:
        logits: next-token logits ``(B, V)``.
        prev: the previous token of each row ``(B,)``.
        green: the table from :func:`green_lists`.
        delta: the bias (0 leaves the logits unchanged).
    """
    return logits + delta * green[prev.cpu()].to(logits.device, logits.dtype)  # (B, V)


@torch.no_grad()
def sample(next_logits: Callable[[torch.Tensor], torch.Tensor], prompt: torch.Tensor,
           n_tokens: int, green: torch.Tensor, delta: float, generator: torch.Generator,
           temperature: float = 1.0) -> torch.Tensor:
    """Sample continuations, watermarked with strength ``delta`` (0: no watermark).

    Args:
        next_logits: ids ``(B, T)`` -> logits of the next token ``(B, V)``.
        prompt: ``(B, T0)`` ids, ``T0 >= 1``.
        n_tokens: tokens to add.
        green: the table from :func:`green_lists`.
        delta: the green-list bias.
        generator: CPU generator for the draws.
        temperature: divides the logits before the bias.

    Returns:
        ``(ids, nll)``: ``(B, T0 + n_tokens)`` ids and ``(B, n_tokens)`` the negative
        log-probability (nats) of each drawn token under the *unbiased* model, whose mean
        exponentiated is the perplexity cost of the watermark.
    """
    idx, nlls = prompt, []
    for _ in range(n_tokens):
        logits = next_logits(idx).float().cpu() / temperature  # (B, V)
        biased = bias_logits(logits, idx[:, -1].cpu(), green, delta)
        nxt = torch.multinomial(biased.softmax(-1), 1, generator=generator)  # (B, 1)
        nlls.append(-logits.log_softmax(-1).gather(1, nxt))
        idx = torch.cat([idx, nxt.to(idx.device)], dim=1)
    return idx, torch.cat(nlls, dim=1)


def green_counts(ids: torch.Tensor, green: torch.Tensor, unique: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Green tokens and scored tokens in each row of ``ids`` ``(B, T)``.

    Token ``t`` is scored against the green list of token ``t - 1``, so the first token of a
    row is not scored. With ``unique``, each distinct (previous, token) pair of a row counts
    once: a repeated pair (a run of spaces, a repeated word) is not independent evidence,
    and counting it again would inflate z for text without a watermark too (the repeated
    n-gram caveat of Kirchenbauer et al. 2023).

    Returns:
        ``(n_green, n_scored)``, each ``(B,)``.
    """
    ids = ids.cpu().long()
    prev, cur = ids[:, :-1], ids[:, 1:]  # (B, T-1)
    hit = green[prev, cur]  # (B, T-1)
    if not unique:
        return hit.sum(1), torch.full((len(ids),), cur.size(1))
    n_green, n_scored = [], []
    V = green.size(0)
    for p_row, c_row, h_row in zip(prev, cur, hit, strict=True):
        pair = p_row * V + c_row
        keep = torch.zeros_like(pair, dtype=torch.bool)
        _, first = torch.unique(pair, return_inverse=True)
        seen = set()
        for k, u in enumerate(first.tolist()):
            if u not in seen:
                seen.add(u)
                keep[k] = True
        n_green.append(int(h_row[keep].sum()))
        n_scored.append(int(keep.sum()))
    return torch.tensor(n_green), torch.tensor(n_scored)


def z_score(n_green: torch.Tensor | float, n_scored: torch.Tensor | int, gamma: float
            ) -> torch.Tensor:
    """The detector's statistic ``(|s|_G - gamma T) / sqrt(T gamma (1 - gamma))``."""
    n_scored = torch.as_tensor(n_scored, dtype=torch.float64)
    if (n_scored < 1).any():
        raise ValueError("Every text must have at least one scored token.")
    n_green = torch.as_tensor(n_green, dtype=torch.float64)
    return (n_green - gamma * n_scored) / (n_scored * gamma * (1 - gamma)).sqrt()


def detect(ids: torch.Tensor, green: torch.Tensor, gamma: float, unique: bool = True
           ) -> torch.Tensor:
    """z-scores of each row of ``ids`` ``(B, T)`` (see :func:`green_counts`)."""
    return z_score(*green_counts(ids, green, unique), gamma)


class GPTNextLogits:
    """``next_logits`` for :func:`sample` from a GPT, reusing its key/value cache.

    One new token per call runs on the cache; when the context would pass ``block_size`` the
    last ``block_size // 2`` tokens are re-encoded (a sliding window that jumps by half a
    block, so the cost per token stays constant). Uses the GPT's ``_run(idx, cache)``.

    Args:
        model: a :class:`genai_report.models.gpt.GPT` in eval mode.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.cache = None
        self.length = 0  # tokens of ``idx`` already in the cache

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        block = self.model.config.block_size
        cached = 0 if self.cache is None else self.cache[0][0].size(2)
        if self.cache is not None and idx.size(1) == self.length + 1 and cached < block:
            logits, self.cache, _ = self.model._run(idx[:, -1:], self.cache)
        else:
            logits, self.cache, _ = self.model._run(idx[:, -(block // 2):])
        self.length = idx.size(1)
        return logits[:, -1]  # (B, V)
