"""Preference tuning of a frozen character GPT: a rater, reward models, DPO, best-of-n, RL.

The pieces of the "Preference tuning" page, small enough to read in one sitting:

* :class:`Rater`: the programmatic "human" whose preference is known exactly (the *gold*
  reward), and :func:`bradley_terry_labels`, noisy comparisons drawn from it;
* :func:`rollout` and :func:`teacher_force`: continuations of prompts with the reference
  model's hidden states and logits, which both heads below read;
* :class:`RewardHead` and :func:`bradley_terry_loss`: a reward model on the reference
  model's trunk, fitted to pairwise comparisons (Christiano et al., 2017; Stiennon et al.,
  2020);
* :class:`PolicyHead`, :func:`sequence_logprobs` and :func:`dpo_loss`: a policy whose
  logits are the reference's plus a learned offset, trained by DPO (Rafailov et al., 2023,
  eq. 7) or by REINFORCE with a KL penalty (:func:`reinforce_loss`);
* :func:`best_of_n_kl` and :func:`best_of_n_expected`: best-of-``n`` sampling against a
  reward, its KL from the reference and an unbiased estimate of its expected reward from
  one pool of samples (Stiennon et al., 2020; Gao et al., 2023).

Every trained part is a small head on the frozen trunk, so the reference model and the
policy share their hidden states: ``pi(y_t | y_<t) = softmax(ref_logits + head(h_t))``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genai_report.models.gpt import GPT, KVCache

_WORD_RE = re.compile(r"[A-Za-z]+")
PLAIN = frozenset(" .,")
"""Characters besides letters that the rater does not count as symbols."""


# -- the gold preference --------------------------------------------------------------------
def lexicon_from_text(text: str, size: int, min_len: int = 2) -> frozenset[str]:
    """The ``size`` most frequent lower-case words of ``text`` with ``min_len`` letters or more.

    Args:
        text: the corpus.
        size: words to keep (>= 1).
        min_len: shortest word kept.

    Returns:
        The lexicon.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}.")
    counts = Counter(w for w in _WORD_RE.findall(text.lower()) if len(w) >= min_len)
    return frozenset(w for w, _ in counts.most_common(size))


@dataclass(frozen=True)
class Rater:
    """A programmatic rater: the gold reward of a continuation.

    ``score = word_reward * (distinct lexicon words) - repeat_penalty * (repeated words)
    - symbol_penalty * (symbol characters)``. Words are runs of letters, compared in lower
    case; a run that ends the text is left out (it may be cut off). A repeated word is any
    occurrence of a word after its first. A symbol is any character other than a letter, a
    space, a full stop or a comma (a line break is a symbol).

    Attributes:
        lexicon: the words that earn a point.
        word_reward, repeat_penalty, symbol_penalty: the weights (>= 0).
    """

    lexicon: frozenset[str]
    word_reward: float = 1.0
    repeat_penalty: float = 1.0
    symbol_penalty: float = 1.0

    def __post_init__(self) -> None:
        if not self.lexicon:
            raise ValueError("The rater needs a non-empty lexicon; see lexicon_from_text().")
        for name in ("word_reward", "repeat_penalty", "symbol_penalty"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")

    def parts(self, text: str) -> dict[str, int]:
        """The counts the score is made of: ``words``, ``lexicon``, ``repeats``, ``symbols``."""
        words = [w.lower() for w in _WORD_RE.findall(text)]
        if text and text[-1].isalpha():
            words = words[:-1]  # the last word may be cut off
        distinct = set(words)
        return {"words": len(words), "lexicon": len(distinct & self.lexicon),
                "repeats": len(words) - len(distinct),
                "symbols": sum(not (c.isalpha() or c in PLAIN) for c in text)}

    def __call__(self, text: str) -> float:
        """The gold reward of ``text``."""
        p = self.parts(text)
        return (self.word_reward * p["lexicon"] - self.repeat_penalty * p["repeats"]
                - self.symbol_penalty * p["symbols"])


def bradley_terry_labels(gold_a: torch.Tensor, gold_b: torch.Tensor, generator: torch.Generator,
                         scale: float = 1.0) -> torch.Tensor:
    """Noisy comparisons: ``a`` is preferred with probability ``sigmoid(scale * (g_a - g_b))``.

    Args:
        gold_a, gold_b: gold rewards of the two continuations of each pair ``(P,)``.
        generator: source of the label noise.
        scale: how consistent the rater is (``inf`` would always pick the better one).

    Returns:
        ``(P,)`` booleans, True where ``a`` is preferred.
    """
    p = torch.sigmoid(scale * (gold_a - gold_b).float())  # (P,)
    return torch.rand(p.shape, generator=generator) < p


# -- continuations with the reference model's states ----------------------------------------
@dataclass
class Continuations:
    """Continuations of prompts and what the frozen reference model computes on them.

    Attributes:
        tokens: the continuations ``(B, T)``.
        states: final hidden states ``(B, T + 1, C)``; ``states[:, t]`` has read the prompt
            and ``tokens[:, :t]`` (so it predicts ``tokens[:, t]``).
        ref_logits: the reference model's next-token logits ``(B, T, V)``.
        kl: with :func:`rollout`, the exact ``KL(pi || pi_ref)`` of each sequence's sampling
            distribution, summed over its positions ``(B,)``; None otherwise.
    """

    tokens: torch.Tensor
    states: torch.Tensor
    ref_logits: torch.Tensor
    kl: torch.Tensor | None = None

    @property
    def ref_token_logprobs(self) -> torch.Tensor:
        """``log pi_ref`` of each token ``(B, T)``."""
        return self.ref_logits.log_softmax(-1).gather(2, self.tokens[..., None])[..., 0]

    def select(self, index: torch.Tensor) -> Continuations:
        """The continuations at ``index`` (rows)."""
        return Continuations(self.tokens[index], self.states[index], self.ref_logits[index],
                             None if self.kl is None else self.kl[index])


def trunk(model: GPT, idx: torch.Tensor, cache: KVCache | None = None
          ) -> tuple[torch.Tensor, torch.Tensor, KVCache]:
    """The GPT's final hidden states and logits, continuing ``cache`` if given.

    The same computation as :meth:`GPT.forward` (without dropout), which returns the logits
    only; the heads here read the hidden states as well.

    Args:
        model: the GPT.
        idx: token ids ``(B, T)``.
        cache: keys and values of earlier positions (from a previous call).

    Returns:
        ``(states, logits, cache)``: ``(B, T, C)``, ``(B, T, V)`` and the extended cache.
    """
    start = 0 if cache is None else cache[0][0].size(2)
    pos = torch.arange(start, start + idx.size(1), device=idx.device)  # (T,)
    x = model.wte(idx) + model.wpe(pos)  # (B, T, C)
    new: KVCache = []
    for i, block in enumerate(model.blocks):
        x, kv, _ = block(x, None if cache is None else cache[i])
        new.append(kv)
    h = model.ln_f(x)  # (B, T, C)
    return h, model.lm_head(h), new


class PolicyHead(nn.Module):
    """A learned offset to the reference model's logits: ``logits = ref + head(h)``.

    The output layer starts at zero, so an untrained head is the reference policy.

    Args:
        n_embd: width of the trunk's hidden states.
        vocab_size: number of tokens.
        hidden: width of the head's hidden layer.
    """

    def __init__(self, n_embd: int, vocab_size: int, hidden: int = 64) -> None:
        super().__init__()
        self.fc = nn.Linear(n_embd, hidden)
        self.out = nn.Linear(hidden, vocab_size)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Logit offsets ``(..., V)`` from hidden states ``(..., C)``."""
        return self.out(F.gelu(self.fc(states)))


@torch.no_grad()
def rollout(model: GPT, prompts: torch.Tensor, n_new: int, generator: torch.Generator,
            head: PolicyHead | None = None) -> Continuations:
    """Sample ``n_new`` tokens after each prompt from the reference or the policy.

    Args:
        model: the frozen reference GPT.
        prompts: prompt ids ``(B, P)`` (all of one length), ``P + n_new <= block_size``.
        n_new: tokens to sample.
        generator: source of randomness.
        head: the policy's head (None: sample from the reference).

    Returns:
        The :class:`Continuations`, with the exact KL of each sequence's sampling steps.
    """
    if prompts.size(1) + n_new > model.config.block_size:
        raise ValueError(f"Prompt ({prompts.size(1)}) plus {n_new} new tokens exceeds "
                         f"block_size={model.config.block_size}; shorten one of them.")
    h, logits, cache = trunk(model, prompts)
    h, logits = h[:, -1], logits[:, -1]  # (B, C), (B, V)
    toks, states, ref_logits, kl = [], [h], [], torch.zeros(prompts.size(0))
    for _ in range(n_new):
        log_ref = logits.log_softmax(-1)  # (B, V)
        log_pi = log_ref if head is None else (logits + head(h)).log_softmax(-1)
        nxt = torch.multinomial(log_pi.exp(), 1, generator=generator)  # (B, 1)
        # KL(pi || ref) at this step: sum_v pi(v) (log pi(v) - log ref(v))
        kl += (log_pi.exp() * (log_pi - log_ref)).sum(-1)
        toks.append(nxt[:, 0])
        ref_logits.append(logits)
        h, logits, cache = trunk(model, nxt, cache)
        h, logits = h[:, -1], logits[:, -1]
        states.append(h)
    return Continuations(torch.stack(toks, 1), torch.stack(states, 1),
                         torch.stack(ref_logits, 1), kl)  # (B, T), (B, T+1, C), (B, T, V)


@torch.no_grad()
def teacher_force(model: GPT, prompts: torch.Tensor, tokens: torch.Tensor,
                  batch: int = 256) -> Continuations:
    """The reference model's states and logits on given continuations (one pass each).

    Args:
        model: the frozen reference GPT.
        prompts: prompt ids ``(B, P)``.
        tokens: continuation ids ``(B, T)``.
        batch: sequences per forward pass.

    Returns:
        The :class:`Continuations` (without KL).
    """
    P = prompts.size(1)
    states, logits = [], []
    for i in range(0, len(tokens), batch):
        seq = torch.cat([prompts[i: i + batch], tokens[i: i + batch]], 1)  # (b, P + T)
        h, lg, _ = trunk(model, seq)
        states.append(h[:, P - 1:])  # (b, T + 1, C)
        logits.append(lg[:, P - 1: -1])  # (b, T, V)
    return Continuations(tokens, torch.cat(states), torch.cat(logits))


# -- reward model ---------------------------------------------------------------------------
class RewardHead(nn.Module):
    """A reward model on the frozen trunk: a per-token MLP, summed over the continuation.

    Each token is scored from the hidden state after reading it and from the reference
    model's log-probability of it (how surprising it was); the sequence's reward is the sum.

    Args:
        n_embd: width of the trunk's hidden states.
        hidden: width of the MLP.
    """

    def __init__(self, n_embd: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(n_embd + 1), nn.Linear(n_embd + 1, hidden),
                                 nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Rewards ``(B,)`` from :func:`reward_features` ``(B, T, C + 1)``."""
        return self.net(features)[..., 0].sum(-1)


def reward_features(cont: Continuations) -> torch.Tensor:
    """What :class:`RewardHead` reads of each token: the hidden state after it and its
    reference log-probability, ``(B, T, C + 1)``."""
    return torch.cat([cont.states[:, 1:], cont.ref_token_logprobs[..., None]], -1)


def bradley_terry_loss(r_a: torch.Tensor, r_b: torch.Tensor, a_preferred: torch.Tensor
                       ) -> torch.Tensor:
    """Negative log-likelihood of comparisons under the Bradley-Terry model.

    ``P(a > b) = sigmoid(r_a - r_b)`` (Bradley & Terry, 1952; the reward-model loss of
    Stiennon et al., 2020).

    Args:
        r_a, r_b: rewards of the two members of each pair ``(P,)``.
        a_preferred: ``(P,)`` booleans (or probabilities) that ``a`` was preferred.

    Returns:
        The mean loss (a scalar).
    """
    return F.binary_cross_entropy_with_logits(r_a - r_b, a_preferred.float())


# -- policy losses --------------------------------------------------------------------------
def sequence_logprobs(cont: Continuations, head: PolicyHead | None = None) -> torch.Tensor:
    """``log pi(y | prompt)`` of each continuation, summed over its tokens ``(B,)``.

    Args:
        cont: continuations with the reference model's states and logits.
        head: the policy head (None: the reference policy).
    """
    logits = cont.ref_logits  # (B, T, V)
    if head is not None:
        logits = logits + head(cont.states[:, :-1])
    return logits.log_softmax(-1).gather(2, cont.tokens[..., None])[..., 0].sum(1)


def dpo_loss(logp_chosen: torch.Tensor, logp_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The DPO loss (Rafailov et al., 2023, eq. 7).

    ``-log sigmoid(beta * ((log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))))``:
    the Bradley-Terry loss of the implicit reward ``beta * log(pi / ref)``.

    Args:
        logp_chosen, logp_rejected: policy log-probabilities of preferred and rejected
            continuations ``(P,)``.
        ref_chosen, ref_rejected: the same under the reference model ``(P,)``.
        beta: strength of the implied KL penalty (> 0).

    Returns:
        ``(loss, margin)``: the mean loss and the implicit-reward margins ``(P,)``.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}.")
    margin = beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected))  # (P,)
    return -F.logsigmoid(margin).mean(), margin


def reinforce_loss(logp: torch.Tensor, reward: torch.Tensor, groups: int) -> torch.Tensor:
    """REINFORCE with a leave-one-out baseline among samples of the same prompt.

    The advantage of each sample is its reward minus the mean reward of the other samples
    of its prompt (Kool et al., 2019; Ahmadian et al., 2024). Put the KL penalty into
    ``reward`` (``r - kl_coef * (log pi - log ref)``), as Stiennon et al. (2020) do.

    Args:
        logp: ``log pi`` of each sample, with gradient ``(B,)``; samples are laid out as
            ``groups`` consecutive blocks of ``B / groups``, prompt ``i`` at ``i % (B/groups)``
            (what ``prompts.repeat(groups, 1)`` gives).
        reward: penalised reward of each sample ``(B,)`` (no gradient).
        groups: samples per prompt (>= 2).

    Returns:
        The loss (a scalar).
    """
    if groups < 2 or logp.numel() % groups:
        raise ValueError(f"Need groups >= 2 dividing the batch ({logp.numel()}), got {groups}.")
    r = reward.detach().view(groups, -1)  # (G, prompts)
    baseline = (r.sum(0, keepdim=True) - r) / (groups - 1)  # leave-one-out mean
    return -((r - baseline).reshape(-1) * logp).mean()


# -- best-of-n ------------------------------------------------------------------------------
def best_of_n_kl(n: int) -> float:
    """``KL(best-of-n || reference) = log n - (n - 1) / n`` for distinct samples.

    (Stiennon et al., 2020; Gao et al., 2023; an upper bound when samples can repeat,
    Beirami et al., 2024.)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    return math.log(n) - (n - 1) / n


def best_of_n_expected(scores: torch.Tensor, values: torch.Tensor, n: int) -> float:
    """Expected ``value`` of the best-``scores`` sample among ``n`` drawn from a pool.

    Unbiased over draws of ``n`` of the ``m`` pool samples without replacement: the sample
    of rank ``i`` (1 = lowest score) is the best of a draw with probability
    ``C(i-1, n-1) / C(m, n)``, so no Monte Carlo noise is added to the pool's own.
    Ties are broken by position.

    Args:
        scores: what best-of-n maximises, one per pool sample ``(m,)``.
        values: what is measured on the chosen sample ``(m,)``.
        n: samples per draw, ``1 <= n <= m``.

    Returns:
        The expectation.
    """
    m = scores.numel()
    if not 1 <= n <= m:
        raise ValueError(f"n must be in [1, pool size {m}], got {n}.")
    order = torch.sort(scores.double(), stable=True).indices
    v = values.double()[order]
    i = torch.arange(1, m + 1, dtype=torch.float64)  # ranks
    ok = i >= n
    # log C(i-1, n-1) - log C(m, n)
    log_c = (torch.lgamma(i) - torch.lgamma(i - n + 1).where(ok, torch.zeros_like(i))
             - math.lgamma(n))
    log_total = math.lgamma(m + 1) - math.lgamma(n + 1) - math.lgamma(m - n + 1)
    w = torch.where(ok, (log_c - log_total).exp(), torch.zeros_like(i))  # (m,)
    return float((w * v).sum())


__all__ = [
    "Continuations",
    "PolicyHead",
    "Rater",
    "RewardHead",
    "best_of_n_expected",
    "best_of_n_kl",
    "bradley_terry_labels",
    "bradley_terry_loss",
    "dpo_loss",
    "lexicon_from_text",
    "reinforce_loss",
    "reward_features",
    "rollout",
    "sequence_logprobs",
    "teacher_force",
]
