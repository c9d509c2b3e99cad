"""Synthetic sequence tasks for the in-context-learning and recall demonstrations.

* **Repeated random tokens** (Olsson et al., 2022): a random segment of ``period`` tokens,
  placed after a random-token prefix, repeated. The first copy is unpredictable; in the
  second, each next token can be read off one step after the earlier occurrence of the
  current token, which is what an induction head does. The period varies from sequence to
  sequence, so no fixed positional offset can stand in for the lookup.
* **In-context linear regression** (Garg et al., 2022): prompts ``x_1, y_1, ..., x_k, y_k``
  with ``y_i = w . x_i / sqrt(d)`` for a fresh ``w ~ N(0, I)`` per prompt.
* **Associative recall at a lag**: ``n_pairs`` key-value tokens, then ``lag`` filler tokens,
  then a key; the answer is that key's value.
"""

from __future__ import annotations

import math

import torch


def repeated_tokens(batch: int, vocab: int, length: int, min_period: int, max_period: int,
                    generator: torch.Generator, copies: str = "two"
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random token sequences containing a repeated random segment.

    Args:
        batch: sequences.
        vocab: token ids are ``0..vocab-1``.
        length: tokens per sequence.
        min_period, max_period: the segment's length is uniform over this range
            (``2 * max_period <= length``).
        generator: source of randomness.
        copies: ``"two"``: the segment appears exactly twice, after a random prefix of
            random tokens and followed by random tokens (for evaluation); ``"tile"``: it
            repeats from its start to the end of the sequence (for training: more positions
            to learn from).

    Returns:
        ``(x, period, start)``: ``(B, length)`` ids, and per sequence the segment length and
        the position of its first copy.
    """
    if copies not in ("two", "tile"):
        raise ValueError(f"copies must be 'two' or 'tile', got {copies!r}.")
    if not 1 <= min_period <= max_period or 2 * max_period > length:
        raise ValueError(f"Need 1 <= min_period <= max_period and 2 * max_period <= length; "
                         f"got {min_period}, {max_period}, {length}.")
    period = torch.randint(min_period, max_period + 1, (batch,), generator=generator)  # (B,)
    room = length - 2 * period + 1
    start = (torch.rand(batch, generator=generator) * room).floor().long()  # (B,)
    x = torch.randint(vocab, (batch, length), generator=generator)  # (B, T)
    pos = torch.arange(length)[None]  # (1, T)
    rel = pos - start[:, None]  # (B, T): position relative to the first copy
    if copies == "tile":
        src = torch.where(rel >= 0, start[:, None] + rel % period[:, None], pos)
    else:
        second = (rel >= period[:, None]) & (rel < 2 * period[:, None])
        src = torch.where(second, pos - period[:, None], pos)
    return x.gather(1, src), period, start


def copy_masks(period: torch.Tensor, start: torch.Tensor, length: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Which positions ``t`` predict a token of the first copy, and which of the second.

    Position ``t`` predicts token ``t + 1``. The first mask covers predictions of tokens
    2..S of the first copy (made from inside it); the second covers tokens 2..S of the
    second copy, each of which follows a token seen in the first copy.

    Returns:
        ``(first, second)``: boolean ``(B, length - 1)``.
    """
    rel = torch.arange(length - 1)[None] - start[:, None]  # (B, T-1)
    S = period[:, None]
    return (rel >= 0) & (rel < S - 1), (rel >= S) & (rel < 2 * S - 1)


def regression_prompts(batch: int, k: int, dim: int, generator: torch.Generator
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prompts of in-context linear regression, as vectors.

    Token ``2i`` is ``(x_i, 0)``, token ``2i + 1`` is ``(x_i, y_i)``; a causal model
    predicts ``y_i`` at token ``2i``, having seen ``i`` examples. (Garg et al. put ``y_i``
    alone in its token; repeating ``x_i`` beside it spares a small model from first learning
    to pair each ``y`` with the token before it, which costs thousands of steps.)

    Args:
        batch: prompts.
        k: examples per prompt.
        dim: dimension ``d`` of ``x``.
        generator: draws ``x ~ N(0, I)`` and a fresh ``w ~ N(0, I)`` per prompt.

    Returns:
        ``(z, x, y)``: ``(B, 2k, d + 1)``, ``(B, k, d)``, ``(B, k)``; ``y = x w / sqrt(d)``
        has unit variance.
    """
    x = torch.randn(batch, k, dim, generator=generator)  # (B, k, d)
    w = torch.randn(batch, dim, 1, generator=generator)  # (B, d, 1)
    y = (x @ w)[..., 0] / math.sqrt(dim)  # (B, k)
    z = torch.zeros(batch, 2 * k, dim + 1)
    z[:, 0::2, :dim] = x
    z[:, 1::2, :dim] = x
    z[:, 1::2, dim] = y
    return z, x, y


def recall_vocab(n_keys: int, n_values: int, n_fillers: int) -> int:
    """Vocabulary size of :func:`recall_batch`: pair tokens, query tokens, fillers."""
    return n_keys * n_values + n_keys + n_fillers


def recall_batch(batch: int, max_lag: int, generator: torch.Generator, *, n_keys: int = 8,
                 n_values: int = 8, n_fillers: int = 8, max_pairs: int = 4,
                 n_pairs: int | None = None, lag: int | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Associative recall: remember which value went with a key, across a gap.

    A sequence is filler tokens, then ``n_pairs`` pair tokens (pair token
    ``key * n_values + value``; distinct keys), then ``lag`` filler tokens, then a query
    token ``n_keys * n_values + key`` for one of the pairs' keys. Every sequence has the same
    length ``max_lag + max_pairs + 1`` and ends with the query, so the answer is read at the
    last position; leading fillers pad the shorter ones.

    Args:
        batch: sequences.
        max_lag: longest lag (with ``max_pairs``, sets the length).
        generator: source of randomness.
        n_keys, n_values, n_fillers: the task's alphabet.
        max_pairs: the largest memory load (sets the length).
        n_pairs: pairs to remember (the memory load); ``None`` draws it uniformly from
            ``1..max_pairs`` per sequence.
        lag: filler tokens between the pairs and the query; ``None`` draws it uniformly
            from ``0..max_lag`` per sequence.

    Returns:
        ``(x, answer, lags, loads)``: ``(B, max_lag + max_pairs + 1)`` ids, ``(B,)`` values
        in ``0..n_values-1``, ``(B,)`` lags and ``(B,)`` numbers of pairs.
    """
    if not 1 <= max_pairs <= n_keys:
        raise ValueError(f"max_pairs must be in [1, n_keys={n_keys}], got {max_pairs}.")
    if n_pairs is not None and not 1 <= n_pairs <= max_pairs:
        raise ValueError(f"n_pairs must be in [1, max_pairs={max_pairs}], got {n_pairs}.")
    if lag is not None and not 0 <= lag <= max_lag:
        raise ValueError(f"lag must be in [0, max_lag={max_lag}], got {lag}.")
    keys = torch.rand(batch, n_keys, generator=generator).argsort(dim=1)[:, :max_pairs]
    values = torch.randint(n_values, (batch, max_pairs), generator=generator)  # (B, P)
    lags = (torch.randint(0, max_lag + 1, (batch,), generator=generator) if lag is None
            else torch.full((batch,), lag))
    loads = (torch.randint(1, max_pairs + 1, (batch,), generator=generator) if n_pairs is None
             else torch.full((batch,), n_pairs))
    length = max_lag + max_pairs + 1
    x = n_keys * n_values + n_keys + torch.randint(n_fillers, (batch, length),
                                                   generator=generator)  # (B, T) fillers
    first = length - 1 - lags - loads  # (B,) position of the first pair
    rel = torch.arange(length)[None] - first[:, None]  # (B, T)
    in_pairs = (rel >= 0) & (rel < loads[:, None])
    x = torch.where(in_pairs, (keys * n_values + values).gather(1, rel.clamp(0, max_pairs - 1)),
                    x)
    which = (torch.rand(batch, 1, generator=generator) * loads[:, None]).long()  # (B, 1)
    x[:, -1] = n_keys * n_values + keys.gather(1, which)[:, 0]
    return x, values.gather(1, which)[:, 0], lags, loads
