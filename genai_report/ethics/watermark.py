"""A statistical watermark for sampled text: the "green list" of Kirchenbauer et al. (2023).

Before each token is drawn, a hash of the secret key and the ``context`` previous tokens
selects a pseudo-random "green" subset of the vocabulary, a fraction ``gamma`` of it; the
sampler adds ``delta`` to the green logits (the "soft red list" of their Algorithm 2), so
watermarked text holds more green tokens than chance. The detector needs only the key: it
counts green tokens and computes the one-sided z-statistic of their section 3,

``z = (|s|_G - gamma' T) / sqrt(T gamma' (1 - gamma'))``,

with ``gamma'`` the green fraction actually used (``round(gamma V) / V``).

Calibration. z is standard normal without a watermark only if the green indicators of the
scored tokens are independent draws with probability ``gamma'``. Two things break that on
character text, and the detector here handles both:

* few distinct contexts: seeded by the previous character alone, a text reuses a handful of
  green lists, so whether its commonest pairs happen to be green is a property of the key,
  and z drifts with length away from zero. Seeding by the previous ``context`` characters
  (a hashed table of green lists, one per context bucket) gives fresh lists along a text.
* repeated n-grams: each distinct (context, token) tuple is scored once (the fix of
  Kirchenbauer et al. 2023 for repetitive text), so ``T`` is the number of distinct tuples.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

_MIX = 0x9E3779B1  # Knuth's multiplicative hash constant


class GreenList:
    """The green lists of one key: a table of ``buckets`` random subsets of the vocabulary,
    indexed by a hash of the ``context`` previous tokens.

    Args:
        vocab_size: V.
        gamma: target green fraction, in (0, 1); ``round(gamma V)`` tokens are green.
        key: the secret key shared by sampler and detector.
        context: tokens hashed to choose the list (Kirchenbauer et al.'s h), >= 1.
        buckets: rows of the table (contexts are hashed into them).

    Attributes:
        table: ``(buckets, V)`` bool, exactly ``round(gamma V)`` True per row.
        gamma_eff: the exact green fraction ``round(gamma V) / V`` (used by the z-score).
    """

    def __init__(self, vocab_size: int, gamma: float = 0.5, key: int = 15485863,
                 context: int = 1, buckets: int = 4096) -> None:
        if not 0 < gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {gamma}.")
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}.")
        if context < 1 or buckets < 1:
            raise ValueError(f"context and buckets must be >= 1, got {context}, {buckets}.")
        self.vocab_size, self.context, self.buckets, self.key = vocab_size, context, buckets, key
        n_green = min(vocab_size - 1, max(1, round(gamma * vocab_size)))
        self.gamma_eff = n_green / vocab_size
        g = torch.Generator().manual_seed(key % (2**63 - 1))
        perm = torch.rand(buckets, vocab_size, generator=g).argsort(1)[:, :n_green]
        self.table = torch.zeros(buckets, vocab_size, dtype=torch.bool).scatter_(1, perm, True)

    def bucket(self, ctx: torch.Tensor) -> torch.Tensor:
        """Table row of each context ``(..., context)`` of token ids -> ``(...)``."""
        h = torch.zeros(ctx.shape[:-1], dtype=torch.long)
        for j in range(self.context):
            h = (h * 1_000_003 + ctx[..., j].long().cpu()) % (2**31 - 1)
        return (h * _MIX) % (2**31 - 1) % self.buckets

    def mask(self, ctx: torch.Tensor) -> torch.Tensor:
        """Green masks ``(..., V)`` for contexts ``(..., context)``."""
        return self.table[self.bucket(ctx)]


def green_lists(vocab_size: int, gamma: float = 0.5, key: int = 15485863) -> GreenList:
    """The green lists seeded by the previous token alone (``context = 1``, one list per
    token: the scheme of Kirchenbauer et al.'s Algorithm 2 on a small vocabulary)."""
    return GreenList(vocab_size, gamma, key, context=1, buckets=vocab_size)


def bias_logits(logits: torch.Tensor, ctx: torch.Tensor, green: GreenList, delta: float
                ) -> torch.Tensor:
    """Add ``delta`` to the green tokens' logits ``(B, V)``; ``ctx`` ``(B, context)`` are
    each row's previous tokens."""
    return logits + delta * green.mask(ctx).to(logits.device, logits.dtype)  # (B, V)


@torch.no_grad()
def sample(next_logits: Callable[[torch.Tensor], torch.Tensor], prompt: torch.Tensor,
           n_tokens: int, green: GreenList, delta: float, generator: torch.Generator,
           temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample continuations, watermarked with strength ``delta`` (0: no watermark).

    Args:
        next_logits: ids ``(B, T)`` -> logits of the next token ``(B, V)``.
        prompt: ``(B, T0)`` ids, ``T0 >= green.context``.
        n_tokens: tokens to add.
        green: the key's :class:`GreenList`.
        delta: the green-list bias.
        generator: CPU generator for the draws.
        temperature: divides the logits before the bias.

    Returns:
        ``(ids, nll)``: ``(B, T0 + n_tokens)`` ids and ``(B, n_tokens)`` the negative
        log-probability (nats) of each drawn token under the *unbiased* model, whose mean
        exponentiated is the perplexity cost of the watermark.
    """
    if prompt.size(1) < green.context:
        raise ValueError(f"The prompt needs at least {green.context} tokens to seed the "
                         f"green list, got {prompt.size(1)}.")
    idx, nlls = prompt, []
    for _ in range(n_tokens):
        logits = next_logits(idx).float().cpu() / temperature  # (B, V)
        biased = bias_logits(logits, idx[:, -green.context:].cpu(), green, delta)
        nxt = torch.multinomial(biased.softmax(-1), 1, generator=generator)  # (B, 1)
        nlls.append(-logits.log_softmax(-1).gather(1, nxt))
        idx = torch.cat([idx, nxt.to(idx.device)], dim=1)
    return idx, torch.cat(nlls, dim=1)


def green_counts(ids: torch.Tensor, green: GreenList, unique: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Green tokens and scored tokens in each row of ``ids`` ``(B, T)``.

    Token ``t`` is scored against the green list of tokens ``t - context .. t - 1``, so the
    first ``context`` tokens of a row are not scored. With ``unique``, each distinct
    (context, token) tuple of a row counts once: a repeated n-gram is not independent
    evidence, and counting it again would inflate ``|z|`` without a watermark too.

    Returns:
        ``(n_green, n_scored)``, each ``(B,)``.
    """
    ids = ids.cpu().long()
    h = green.context
    if ids.size(1) <= h:
        raise ValueError(f"Texts of {ids.size(1)} tokens have nothing to score after a "
                         f"context of {h}.")
    ctx = ids.unfold(1, h, 1)[:, :-1]  # (B, T - h, h)
    cur = ids[:, h:]  # (B, T - h)
    hit = green.table[green.bucket(ctx), cur]  # (B, T - h)
    if not unique:
        return hit.sum(1), torch.full((len(ids),), cur.size(1))
    # code each row's (context, token) tuples as one integer, then keep first occurrences
    B, n = cur.shape
    if B * green.vocab_size ** (h + 1) >= 2**62:
        raise ValueError(f"{B} texts of a {green.vocab_size}-token vocabulary with a context "
                         f"of {h} overflow the tuple code; score fewer texts at a time.")
    code = torch.arange(B)[:, None]  # (B, 1): the row, so rows never share a tuple
    for j in range(h):
        code = code * green.vocab_size + ctx[..., j]
    code = (code * green.vocab_size + cur).flatten()  # (B * n,)
    _, inverse = torch.unique(code, return_inverse=True)
    pos = torch.arange(B * n)
    first = torch.full((int(inverse.max()) + 1,), B * n).scatter_reduce(0, inverse, pos, "amin")
    keep = torch.zeros(B * n, dtype=torch.bool)
    keep[first] = True
    keep = keep.view(B, n)
    return (hit & keep).sum(1), keep.sum(1)


def z_score(n_green: torch.Tensor | float, n_scored: torch.Tensor | int, gamma: float
            ) -> torch.Tensor:
    """The detector's statistic ``(|s|_G - gamma T) / sqrt(T gamma (1 - gamma))``."""
    n_scored = torch.as_tensor(n_scored, dtype=torch.float64)
    if (n_scored < 1).any():
        raise ValueError("Every text must have at least one scored token.")
    n_green = torch.as_tensor(n_green, dtype=torch.float64)
    return (n_green - gamma * n_scored) / (n_scored * gamma * (1 - gamma)).sqrt()


def detect(ids: torch.Tensor, green: GreenList, unique: bool = True) -> torch.Tensor:
    """z-scores of each row of ``ids`` ``(B, T)`` (see :func:`green_counts`), against the
    green list's exact fraction ``gamma_eff``."""
    return z_score(*green_counts(ids, green, unique), green.gamma_eff)


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
