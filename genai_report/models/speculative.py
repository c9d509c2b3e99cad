"""Speculative sampling: a small draft model proposes, the large target model verifies.

Leviathan et al. (2023), "Fast Inference from Transformers via Speculative Decoding"
(Algorithm 1), and Chen et al. (2023), "Accelerating Large Language Model Decoding with
Speculative Sampling" (Algorithm 2). The draft samples ``k`` tokens ``x_1..x_k`` one at a
time from its distributions ``q_i``; the target scores all of them in *one* forward pass,
giving ``p_1..p_{k+1}``. Token ``x_i`` is kept with probability ``min(1, p_i(x_i) /
q_i(x_i))``; at the first rejection a replacement is drawn from the residual
``norm(max(0, p_i - q_i))`` and the rest is dropped; if all ``k`` are kept, one more token
is drawn from ``p_{k+1}``. Every emitted token is then distributed exactly as the target's
own sample would be (Leviathan et al., Appendix A.1), whatever the draft; a good draft only
makes more of them per target call.

Both models keep a key/value cache, cut back to the accepted prefix after each round.
Sequences must fit in the models' ``block_size`` (no sliding window here).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from genai_report.models.gpt import GPT, KVCache


@dataclass
class SpeculativeStats:
    """What one speculative generation did.

    Attributes:
        rounds: draft-then-verify rounds (= target forward passes after the prompt).
        proposed: draft tokens proposed.
        accepted: draft tokens the target kept.
        emitted: tokens added to the sequence.
        draft_s, target_s: wall-clock seconds inside the draft's and the target's forward
            passes (the rest is sampling and bookkeeping).
    """

    rounds: int = 0
    proposed: int = 0
    accepted: int = 0
    emitted: int = 0
    draft_s: float = 0.0
    target_s: float = 0.0

    @property
    def acceptance_rate(self) -> float:
        """Share of proposed draft tokens that were kept."""
        return self.accepted / max(1, self.proposed)

    @property
    def tokens_per_round(self) -> float:
        """Tokens emitted per target forward pass."""
        return self.emitted / max(1, self.rounds)


def accept_or_resample(p: torch.Tensor, q: torch.Tensor, drafts: torch.Tensor,
                       generator: torch.Generator | None = None) -> tuple[int, int]:
    """The verification rule for one round of ``k`` draft tokens.

    Args:
        p: target probabilities ``(k + 1, V)`` after the prefix and after each draft token.
        q: draft probabilities ``(k, V)`` the drafts were sampled from.
        drafts: the ``k`` draft token ids ``(k,)``.
        generator: source of the acceptance coins and the resampled token.

    Returns:
        ``(n, token)``: the first ``n`` drafts are kept, then ``token`` is appended (drawn
        from the residual at the first rejection, or from ``p[k]`` if none was rejected).
    """
    k = drafts.numel()
    idx = torch.arange(k)
    ratio = (p[idx, drafts] / q[idx, drafts]).tolist()  # p_i(x_i) / q_i(x_i)
    coins = torch.rand(k, generator=generator, dtype=torch.float64).tolist()
    # keep x_i with probability min(1, p_i(x_i) / q_i(x_i))
    n = next((i for i in range(k) if coins[i] >= ratio[i]), k)
    if n == k:
        return k, int(torch.multinomial(p[k], 1, generator=generator))
    # the residual norm(max(0, p - q)) makes up exactly the mass the rule took from p
    residual = (p[n] - q[n]).clamp_min(0)
    if float(residual.sum()) <= 0:  # p == q to rounding: any draw from p is exact
        residual = p[n]
    return n, int(torch.multinomial(residual / residual.sum(), 1, generator=generator))


def _probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return (logits.double() / temperature).softmax(dim=-1)


@torch.no_grad()
def extend(model: GPT, ids: torch.Tensor, cache: KVCache | None = None
           ) -> tuple[torch.Tensor, KVCache]:
    """Run ``model`` on the ids its key/value ``cache`` does not hold yet.

    Args:
        model: a GPT.
        ids: the whole sequence so far ``(B, T)``; the cache holds its first ``L`` positions.
        cache: keys/values of those ``L`` positions (None: nothing cached).

    Returns:
        ``(logits, cache)``: logits of the ``T - L`` new positions ``(B, T - L, V)`` and the
        cache of all ``T``.
    """
    done = 0 if cache is None else cache[0][0].size(2)
    logits, cache, _ = model._run(ids[:, done:], cache)  # (B, T - L, V)
    return logits, cache


def _truncate(cache: KVCache, length: int) -> KVCache:
    return [(k[:, :, :length], v[:, :, :length]) for k, v in cache]


@torch.no_grad()
def speculative_generate(target: GPT, draft: GPT, idx: torch.Tensor, max_new_tokens: int,
                         k: int, temperature: float = 1.0,
                         generator: torch.Generator | None = None
                         ) -> tuple[torch.Tensor, SpeculativeStats]:
    """Sample ``max_new_tokens`` from ``target`` with ``draft`` proposing ``k`` at a time.

    Args:
        target: the model whose distribution the output follows.
        draft: the cheaper proposal model, over the same vocabulary.
        idx: the prompt ``(1, T)``, ``T >= 1`` (one sequence: rounds accept different
            numbers of tokens).
        max_new_tokens: tokens to add; ``T + max_new_tokens`` must fit both block sizes.
        k: draft tokens per round (>= 1).
        temperature: applied to both models' logits (> 0).
        generator: source of all randomness (draft samples, coins, resamples).

    Returns:
        ``(ids, stats)``: ``(1, T + max_new_tokens)`` ids and what the rounds did.
    """
    if idx.dim() != 2 or idx.size(0) != 1 or idx.size(1) < 1:
        raise ValueError(f"idx must have shape (1, T) with T >= 1, got {tuple(idx.shape)}.")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if target.config.vocab_size != draft.config.vocab_size:
        raise ValueError(f"The draft's vocabulary ({draft.config.vocab_size}) differs from "
                         f"the target's ({target.config.vocab_size}).")
    limit = min(target.config.block_size, draft.config.block_size)
    if idx.size(1) + max_new_tokens > limit:
        raise ValueError(f"Prompt plus {max_new_tokens} new tokens exceeds block_size={limit}; "
                         "speculative_generate does not slide the window.")
    stats = SpeculativeStats()
    end = idx.size(1) + max_new_tokens
    t_cache: KVCache | None = None
    d_cache: KVCache | None = None
    ids = idx
    while ids.size(1) < end:
        n_draft = min(k, end - ids.size(1))  # never propose past the end
        prefix = ids.size(1)
        # the draft proposes n_draft tokens, one forward pass each
        q_rows, drafts = [], []
        t0 = time.perf_counter()
        for _ in range(n_draft):
            logits, d_cache = extend(draft, ids, d_cache)
            q = _probs(logits[0, -1], temperature)  # (V,)
            x = torch.multinomial(q, 1, generator=generator)  # (1,)
            q_rows.append(q)
            drafts.append(x)
            ids = torch.cat([ids, x[None]], dim=1)
        t1 = time.perf_counter()
        # the target scores the prefix's last token and every draft in one pass
        logits, t_cache = extend(target, ids, t_cache)
        t2 = time.perf_counter()
        p = _probs(logits[0, -(n_draft + 1):], temperature)  # (n_draft + 1, V)
        n, token = accept_or_resample(p, torch.stack(q_rows), torch.cat(drafts), generator)
        ids = torch.cat([ids[:, : prefix + n], ids.new_tensor([[token]])], dim=1)
        # caches keep only keys/values of tokens that stay (the new token is not in them)
        t_cache = _truncate(t_cache, prefix + n)
        d_cache = _truncate(d_cache, min(d_cache[0][0].size(2), prefix + n))
        stats.rounds += 1
        stats.draft_s += t1 - t0  # draft passes with their sampling
        stats.target_s += t2 - t1
        stats.proposed += n_draft
        stats.accepted += n
        stats.emitted += min(n + 1, end - prefix)
    return ids[:, :end], stats
