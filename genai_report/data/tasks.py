"""Small algorithmic tasks written as text, for emergence and fine-tuning experiments.

* **Addition** of two ``digits``-digit numbers, zero-padded, with the sum written least
  significant digit first (``"07+45=250"`` for 7 + 45 = 52): reversed sums let a
  left-to-right model carry as it writes, the format of Lee et al. (2023), "Teaching
  arithmetic to small transformers". All pairs are split once into a training and a
  held-out set, so accuracy is measured on sums the model never saw.
* **Word completion** on held-out text: the context before a long word and its first
  letters, to be continued by the next few letters. It needs no training of its own; it
  scores how well a language model knows its words.
* **Reversal** of a random lower-case word (``"qmzta>atzmq"``); a word goes to the held-out
  set by a hash of its letters, so the two sets never share a word.

Every example is a ``(prompt, answer)`` pair of fixed length; a training stream is lines of
``prompt + answer`` joined by newlines. :func:`score_answers` measures a language model on
held-out pairs with one teacher-forced forward pass: exact match (all answer characters
are the greedy choice, which is what greedy decoding would produce) and the continuous
per-character log-likelihood and accuracy of the answer.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import torch

Example = tuple[str, str]
TASKS = ("addition", "reversal")


def addition_example(a: int, b: int, digits: int) -> Example:
    """``("aa+bb=", reversed zero-padded sum)`` for ``digits``-digit operands."""
    total = str(a + b).zfill(digits + 1)
    return f"{a:0{digits}d}+{b:0{digits}d}=", total[::-1]


def addition_split(digits: int, held_out: float, generator: torch.Generator
                   ) -> tuple[list[Example], list[Example]]:
    """Every addition problem with ``digits``-digit operands, split into train and held out.

    Args:
        digits: operand width (1 to 3; 3 gives a million problems).
        held_out: share of the problems kept for evaluation, in (0, 1).
        generator: shuffles the problems before the split.

    Returns:
        ``(train, held_out)`` lists of examples.
    """
    if not 1 <= digits <= 3:
        raise ValueError(f"digits must be 1, 2 or 3, got {digits}.")
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be in (0, 1), got {held_out}.")
    n = 10 ** digits
    order = torch.randperm(n * n, generator=generator).tolist()
    cut = int(round(len(order) * held_out))
    test = [addition_example(i // n, i % n, digits) for i in order[:cut]]
    train = [addition_example(i // n, i % n, digits) for i in order[cut:]]
    return train, test


def _sum_is_held_out(a: int, b: int, digits: int) -> bool:
    return (a * 7919 + b * 104729 + digits * 31) % 5 == 0


def addition_examples(digits: int, n: int, split: str, generator: torch.Generator
                      ) -> list[Example]:
    """``n`` random additions of two ``digits``-digit operands from one split (any width).

    A pair goes to the held-out split by a hash of the operands (a fifth of all pairs),
    so the splits never share a problem at any width; for one-digit operands the held-out
    split has only its 20 pairs, drawn with replacement.

    Args:
        digits: operand width (1 to 9), zero-padded; the reversed sum has ``digits + 1``.
        n: examples.
        split: ``"train"`` or ``"held_out"``.
        generator: draws the operands.
    """
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}.")
    if not 1 <= digits <= 9:
        raise ValueError(f"digits must be in 1..9, got {digits}.")
    want = split == "held_out"
    out: list[Example] = []
    while len(out) < n:
        ab = torch.randint(10 ** digits, (4 * n + 64, 2), generator=generator).tolist()
        for a, b in ab:
            if _sum_is_held_out(a, b, digits) == want:
                out.append(addition_example(a, b, digits))
                if len(out) == n:
                    break
    return out


def _word_is_held_out(word: str) -> bool:
    return sum((i + 7) * ord(c) for i, c in enumerate(word)) % 10 == 0


def reversal_examples(n: int, length: int, split: str, generator: torch.Generator
                      ) -> list[Example]:
    """``n`` random words of ``length`` letters and their reversals, from one split.

    Args:
        n: examples.
        length: letters per word.
        split: ``"train"`` or ``"held_out"`` (disjoint sets of words).
        generator: draws the letters.
    """
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}.")
    letters = string.ascii_lowercase
    out: list[Example] = []
    while len(out) < n:
        ids = torch.randint(len(letters), (2 * n, length), generator=generator).tolist()
        for row in ids:
            word = "".join(letters[i] for i in row)
            if _word_is_held_out(word) == (split == "held_out"):
                out.append((word + ">", word[::-1]))
                if len(out) == n:
                    break
    return out


def word_completion_examples(text: str, n: int, generator: torch.Generator, *,
                             context: int = 24, given: int = 2, answer: int = 4
                             ) -> list[Example]:
    """Complete held-out words: ``(context + first letters, next letters)`` pairs.

    Args:
        text: held-out text (never trained on).
        n: examples (fewer if the text has fewer eligible words).
        generator: picks the words.
        context: characters before the word.
        given: letters of the word in the prompt.
        answer: letters to complete (the word has at least ``given + answer`` letters).

    Returns:
        Fixed-length ``(prompt, answer)`` pairs.
    """
    need = given + answer
    starts = [i for i in range(context, len(text) - need)
              if text[i - 1] == " " and text[i:i + need].isalpha() and text[i:i + need].islower()]
    if not starts:
        raise ValueError(f"No word of {need}+ lower-case letters found in the text.")
    order = torch.randperm(len(starts), generator=generator)[:n].tolist()
    return [(text[s - context:s + given], text[s + given:s + need])
            for s in (starts[i] for i in sorted(order))]


def stream(examples: Sequence[Example], n_lines: int, generator: torch.Generator) -> str:
    """``n_lines`` examples drawn with replacement, one ``prompt + answer`` per line."""
    idx = torch.randint(len(examples), (n_lines,), generator=generator).tolist()
    return "".join(f"{examples[i][0]}{examples[i][1]}\n" for i in idx)


@torch.no_grad()
def score_answers(model: torch.nn.Module, encode, examples: Sequence[Example],
                  device: torch.device | str = "cpu", batch_size: int = 512) -> dict[str, float]:
    """Exact match and per-character likelihood of the answers, teacher-forced.

    Each example is fed as ``"\\n" + prompt + answer``; the model's next-character
    distributions at the answer positions are scored.

    Args:
        model: returns ``(logits, loss)`` from ``model(idx)``, logits ``(B, T, V)``.
        encode: text -> 1-D tensor of token ids (a tokenizer's ``encode``).
        examples: fixed-length ``(prompt, answer)`` pairs.
        device: where the model is.
        batch_size: examples per forward pass.

    Returns:
        ``exact_match`` (share of answers entirely right under greedy decoding),
        ``char_accuracy`` (share of answer characters right), ``answer_nll`` (mean
        negative log-likelihood per answer character, nats) and ``answer_logprob``
        (mean log-probability of a whole answer, nats).
    """
    lengths = {(len(p), len(a)) for p, a in examples}
    if len(lengths) != 1:
        raise ValueError("score_answers needs examples of one fixed prompt/answer length.")
    ((lp, la),) = lengths
    ids = torch.stack([encode("\n" + p + a) for p, a in examples])  # (N, 1 + lp + la)
    start = 1 + lp  # index of the first answer character
    exact = correct = 0.0
    nll = 0.0
    for i in range(0, len(ids), batch_size):
        x = ids[i:i + batch_size].to(device)  # (B, T)
        logits = model(x[:, :-1])[0].float()  # (B, T-1, V)
        pred_logits = logits[:, start - 1:start - 1 + la]  # (B, la, V)
        target = x[:, start:start + la]  # (B, la)
        logp = pred_logits.log_softmax(-1).gather(-1, target[..., None])[..., 0]  # (B, la)
        hit = pred_logits.argmax(-1) == target  # (B, la)
        exact += float(hit.all(dim=1).sum())
        correct += float(hit.sum())
        nll -= float(logp.sum())
    n = len(ids)
    return {
        "exact_match": exact / n,
        "char_accuracy": correct / (n * la),
        "answer_nll": nll / (n * la),
        "answer_logprob": -nll / n,
    }
