"""A small transduction task generated in code: numbers to their English words.

``"4021"`` becomes ``four thousand twenty one``. The source is read one digit at a time, the
target is produced one word at a time, so an encoder-decoder's cross-attention has to find,
for each word, the digit it spells out. Numbers go up to 999,999; a fixed hash of the number
holds out one in ten of those with two digits or more for validation, so the model is scored
on numbers it never saw. The ten one-digit numbers all stay in training: "zero" is spelled
by 0 alone, so holding 0 out would test a word the model never saw rather than its grasp
of numbers.
"""

from __future__ import annotations

import torch

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
PAD, BOS, EOS = 0, 1, 2
SRC_VOCAB = ("<pad>", *"0123456789")
TGT_VOCAB = ("<pad>", "<bos>", "<eos>", *ONES, *TENS[2:], "hundred", "thousand")
MAX_DIGITS = 6
MAX_SRC_LEN = MAX_DIGITS
MAX_TGT_LEN = 11  # <bos> + at most 9 words + <eos>


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(TENS[n // 10])
        n %= 10
    if n:
        words.append(ONES[n])
    return words


def spell(n: int) -> list[str]:
    """English words of ``0 <= n < 10**6``, e.g. ``spell(4021) == ['four', 'thousand',
    'twenty', 'one']``."""
    if not 0 <= n < 10**MAX_DIGITS:
        raise ValueError(f"n must be in [0, {10**MAX_DIGITS}), got {n}.")
    if n == 0:
        return ["zero"]
    words = []
    if n >= 1000:
        words += [*_below_thousand(n // 1000), "thousand"]
    return words + _below_thousand(n % 1000)


def is_validation(n: int) -> bool:
    """Whether ``n`` is held out: one number in ten of those ``>= 10`` (a fixed
    multiplicative hash); the one-digit numbers, and so every word, stay in training."""
    return n >= 10 and (n * 2654435761 >> 8) % 10 == 0


def held_out_numbers(digits: int, n: int, generator: torch.Generator) -> list[int]:
    """Up to ``n`` distinct held-out numbers with exactly ``digits`` digits, in drawn order.

    Two-digit numbers have only a handful of held-out members; all of them are returned
    when there are fewer than ``n``.

    Args:
        digits: number of digits, 2 to ``MAX_DIGITS`` (one-digit numbers are never held out).
        n: how many to return at most.
        generator: the order in which the candidates are drawn.

    Returns:
        Distinct numbers ``x`` with ``is_validation(x)``, in the order drawn.
    """
    if not 2 <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be in [2, {MAX_DIGITS}] (one-digit numbers are all "
                         f"in training), got {digits}.")
    lo, hi = 10 ** (digits - 1), 10**digits
    if hi - lo <= 20 * n:  # small range: enumerate every held-out number, then shuffle
        pool = [x for x in range(lo, hi) if is_validation(x)]
        order = torch.randperm(len(pool), generator=generator).tolist()
        return [pool[i] for i in order[:n]]
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        cand = torch.randint(lo, hi, (20 * n,), generator=generator).tolist()
        for x in cand:
            if is_validation(x) and x not in seen:
                seen.add(x)
                out.append(x)
                if len(out) == n:
                    break
    return out


def encode_numbers(numbers: list[int]) -> torch.Tensor:
    """Padded source digit ids ``(N, MAX_SRC_LEN)`` of ``numbers``."""
    src = torch.full((len(numbers), MAX_SRC_LEN), PAD, dtype=torch.long)
    for i, x in enumerate(numbers):
        s, _ = encode_pair(x)
        src[i, : len(s)] = torch.tensor(s)
    return src


def encode_pair(n: int) -> tuple[list[int], list[int]]:
    """Source digit ids and target word ids (with ``<bos>``/``<eos>``) of ``n``."""
    src = [SRC_VOCAB.index(c) for c in str(n)]
    tgt = [BOS, *(TGT_VOCAB.index(w) for w in spell(n)), EOS]
    return src, tgt


def make_dataset(size: int, split: str, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Padded examples whose digit count is uniform over 1..6 (2..6 for ``"val"``: no
    one-digit number is held out).

    Args:
        size: number of examples.
        split: ``"train"`` or ``"val"`` (disjoint sets of numbers).
        generator: source of the numbers.

    Returns:
        ``(src, tgt, numbers)``: ``(N, MAX_SRC_LEN)`` and ``(N, MAX_TGT_LEN)`` int64 padded
        with ``PAD``, and the numbers themselves.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}.")
    want_val = split == "val"
    numbers: list[int] = []
    while len(numbers) < size:
        digits = torch.randint(1, MAX_DIGITS + 1, (4 * size,), generator=generator)
        u = torch.rand(4 * size, generator=generator, dtype=torch.float64)
        lo = torch.where(digits == 1, 0, 10 ** (digits - 1))
        cand = (lo + (u * (10**digits - lo)).floor().long()).tolist()
        numbers += [n for n in cand if is_validation(n) == want_val][: size - len(numbers)]
    src = torch.full((size, MAX_SRC_LEN), PAD, dtype=torch.long)
    tgt = torch.full((size, MAX_TGT_LEN), PAD, dtype=torch.long)
    for i, n in enumerate(numbers):
        s, t = encode_pair(n)
        src[i, : len(s)] = torch.tensor(s)
        tgt[i, : len(t)] = torch.tensor(t)
    return src, tgt, numbers


def decode_words(ids) -> list[str]:
    """Words of target ids, stopping at ``<eos>`` and skipping ``<bos>``/``<pad>``."""
    out = []
    for i in ids:
        i = int(i)
        if i == EOS:
            break
        if i not in (PAD, BOS):
            out.append(TGT_VOCAB[i])
    return out
