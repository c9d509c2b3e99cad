"""Addition of two ``n``-digit numbers as a token task, answered directly or with a scratchpad.

The prompt writes both operands most significant digit first, ``^1011+0110=``. The answer is
the sum, most significant digit first, always ``n + 1`` digits wide, then the end token
``$``. Two targets share that prompt and that answer:

* **direct**: ``10001$``, the answer alone;
* **scratchpad**: one step per column from the right, the column's sum digit and a carry
  token (``n``: no carry, ``c``: carry), then ``>`` and the same answer:
  ``1n0c0c0c>10001$`` (Nye et al., 2021, wrote such intermediate steps for addition).

Writing the answer most significant digit first is the order people read and write numbers
in, and it makes the direct model's first digit depend on the carry out of every column
below it. The scratchpad writes the columns in the order they can be computed, each from
one column and the carry just written.

**Position ids.** Each token carries the position id of the column that the *next* token
needs (column ``i`` from the right has id ``i + 1``). The prompt's start token ``^`` has id
0 and ``+`` has ``n + 1``, the ids of the missing columns below and above the number, so
that "where to stop" is also found by matching an id, not by counting; ``$`` has 0. This is in the spirit
of digit-significance positions (Abacus embeddings, McLeish et al., 2024; position
coupling, Cho et al., 2024). Finding a column's digits is then "attend to my own id",
which does not depend on how long the numbers are. In training every example adds a
random offset to all of its ids (as randomized positional encodings do, Ruoss et al.,
2023), so that the ids of longer numbers are not new to the model. Both targets get the
same ids for the same prompt and answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Token strings; a token's id is its index. ``.`` pads a batch, ``n``/``c`` are carries,
#: ``^`` starts a prompt.
VOCAB = "0123456789+=>$.nc^"
STOI = {ch: i for i, ch in enumerate(VOCAB)}
PAD = STOI["."]
CARRY = "nc"

Problem = tuple[list[int], list[int], int]  # (a, b, offset); digits least significant first


def _check_base(base: int) -> None:
    if not 2 <= base <= 10:
        raise ValueError(f"base must be in 2..10, got {base}.")


def column_steps(a: Sequence[int], b: Sequence[int], base: int = 2
                 ) -> tuple[list[int], list[int]]:
    """Schoolbook addition, column by column from the right.

    Args:
        a, b: the operands' digits, least significant first, the same length ``n``.
        base: the number base (2..10).

    Returns:
        ``(sum_digits, carries)``: ``n + 1`` digits of ``a + b``, least significant first
        (the last is the carry out of the top column), and the ``n`` carries out of each
        column (``carries[i]`` goes into column ``i + 1``).
    """
    _check_base(base)
    if len(a) != len(b) or not a:
        raise ValueError(f"Operands need the same number (>= 1) of digits; got {len(a)} "
                         f"and {len(b)}.")
    if not all(0 <= d < base for d in (*a, *b)):
        raise ValueError(f"Digits must be in 0..{base - 1}; got a={list(a)}, b={list(b)}.")
    digits, carries, c = [], [], 0
    for x, y in zip(a, b, strict=True):
        # column i: t = a_i + b_i + c_i; digit t mod base, carry t // base
        t = x + y + c
        digits.append(t % base)
        c = t // base
        carries.append(c)
    return digits + [c], carries


def format_addition(a: Sequence[int], b: Sequence[int], *, scratchpad: bool, base: int = 2
                    ) -> tuple[list[str], list[int], int]:
    """Tokens and position ids of one problem with its target.

    Args:
        a, b: the operands' digits, least significant first.
        scratchpad: write the column steps before the answer.
        base: the number base.

    Returns:
        ``(tokens, ids, n_prompt)``: one-character tokens, their position ids (before any
        offset), and the length of the prompt (everything up to and including ``=``).
    """
    n = len(a)
    digits, carries = column_steps(a, b, base)
    seq: list[tuple[str, int]] = [("^", 0)]  # where the answer stops: the column below 0
    seq += [(str(a[i]), i + 1) for i in range(n - 1, -1, -1)]
    seq.append(("+", n + 1))  # the column above the top: where the column steps stop
    seq += [(str(b[i]), i + 1) for i in range(n - 1, -1, -1)]
    seq.append(("=", 1))  # predicts the first target token: column 0 for the scratchpad
    n_prompt = len(seq)
    if scratchpad:
        for i in range(n):
            # the digit of column i predicts its carry (needs column i: id i + 1); the
            # carry predicts the next column's digit (needs column i + 1: id i + 2)
            seq += [(str(digits[i]), i + 1), (CARRY[carries[i]], i + 2)]
        seq.append((">", n + 1))  # predicts the top digit, the last carry (id n + 1)
    # answer, top digit first: digit j predicts digit j - 1, found at id j
    seq += [(str(digits[j]), j) for j in range(n, -1, -1)]
    seq.append(("$", 0))
    return [t for t, _ in seq], [i for _, i in seq], n_prompt


def target_length(n: int, scratchpad: bool) -> int:
    """Tokens the model generates for one ``n``-digit problem, the end token included.

    ``n + 2`` directly (``n + 1`` digits and ``$``); the scratchpad adds ``2 n + 1``
    (a digit and a carry per column, and ``>``): ``3 n + 3``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    return n + 2 + (2 * n + 1 if scratchpad else 0)


def draw_problems(count: int, n_min: int, n_max: int, generator: torch.Generator, *,
                  base: int = 2, max_offset: int = 0) -> list[Problem]:
    """Random problems: a length uniform over ``n_min..n_max``, uniform digits, an offset.

    Leading zeros are allowed (every operand has exactly ``n`` digits), so all ``base**n``
    operands of a length are equally likely.

    Args:
        count: number of problems.
        n_min, n_max: range of operand lengths (inclusive).
        generator: source of randomness.
        base: the number base.
        max_offset: offsets are uniform over ``0..max_offset``.

    Returns:
        ``(a, b, offset)`` per problem, digits least significant first.
    """
    _check_base(base)
    if not 1 <= n_min <= n_max:
        raise ValueError(f"Need 1 <= n_min <= n_max; got {n_min}, {n_max}.")
    if max_offset < 0:
        raise ValueError(f"max_offset must be >= 0, got {max_offset}.")
    out = []
    for _ in range(count):
        n = int(torch.randint(n_min, n_max + 1, (1,), generator=generator))
        ab = torch.randint(0, base, (2, n), generator=generator)  # (2, n)
        off = int(torch.randint(0, max_offset + 1, (1,), generator=generator))
        out.append((ab[0].tolist(), ab[1].tolist(), off))
    return out


def encode_problems(problems: Sequence[Problem], *, scratchpad: bool, base: int = 2
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch of problems into tensors for training.

    The rows are laid out in Python lists and become tensors in one call each (a batch
    built row by row into tensors costs several small host operators per problem, at
    every training step).

    Args:
        problems: from :func:`draw_problems`.
        scratchpad: which target to write.
        base: the number base.

    Returns:
        ``(x, y, pos)``, each ``(B, T)``: token ids (padded with ``PAD``), next-token targets
        (``-1`` except where the next token is part of the target), position ids with the
        problem's offset added (0 on padding).
    """
    rows = [format_addition(a, b, scratchpad=scratchpad, base=base) for a, b, _ in problems]
    T = max(len(t) for t, _, _ in rows)
    xs, ys, ps = [], [], []
    for (toks, ids, n_prompt), (_, _, off) in zip(rows, problems, strict=True):
        L = len(toks)
        x = [STOI[t] for t in toks]
        xs.append(x + [PAD] * (T - L))
        # position t predicts token t + 1, from the first target token on
        ys.append([-1] * (n_prompt - 1) + x[n_prompt:] + [-1] * (T - L + 1))
        ps.append([i + off for i in ids] + [0] * (T - L))
    return (torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long),
            torch.tensor(ps, dtype=torch.long))


def decode(ids: Sequence[int]) -> str:
    """Token ids back to their characters."""
    return "".join(VOCAB[i] for i in ids)
