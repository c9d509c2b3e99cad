"""Supervised fine-tuning of a pre-trained character GPT on ``(prompt, answer)`` pairs.

The pieces an instruction-tuning or preference-tuning experiment needs on top of the shared
training loop (:mod:`genai_report.training.loop`):

* :func:`load_char_gpt` rebuilds a GPT and its tokenizer from a ``model.pt`` written by the
  ``gpt-char`` artifact;
* :func:`pack` turns pairs into a padded batch whose targets are the answer only (the
  prompt's positions are ignored in the loss), the usual supervised fine-tuning loss
  (Ouyang et al., 2022, section 3.5);
* :func:`answer_scores` scores answers with one teacher-forced pass: exact match under
  greedy decoding, and the log-probability of each answer (what DPO-style losses compare);
* :func:`greedy_answers` writes answers one character at a time until a newline.

Every answer ends with :data:`STOP` (a newline); a model that has learned to stop writes
exactly the answer and the newline, which is what exact match checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from genai_report.data.text import CharTokenizer
from genai_report.models.gpt import GPT, GPTConfig

STOP = "\n"
"""The character that ends every answer."""


def load_char_gpt(path: str | Path, device: torch.device | str = "cpu"
                  ) -> tuple[GPT, CharTokenizer]:
    """A GPT and its tokenizer from a ``gpt-char`` ``model.pt``, in ``eval()`` mode.

    Args:
        path: the checkpoint (``{"config", "state", "chars", ...}``).
        device: where to put the model.

    Returns:
        ``(model, tokenizer)``.
    """
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    return model.to(device).eval(), CharTokenizer(blob["chars"])


def pack(pairs: Sequence[tuple[str, str]], tok: CharTokenizer, pad: str = " "
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded batch of ``prompt + answer + STOP`` with targets on the answer only.

    Args:
        pairs: ``(prompt, answer)`` pairs; ``answer`` excludes :data:`STOP`.
        tok: the tokenizer.
        pad: character that fills the inputs after a short sequence (never a target).

    Returns:
        ``(x, y)``, both ``(B, T)`` with ``T`` the longest sequence minus one: ``x`` the
        input ids, ``y`` the next-character targets, ``-1`` (ignored) except at the
        positions that predict the answer's characters and the stop.
    """
    if not pairs:
        raise ValueError("pack() needs at least one (prompt, answer) pair.")
    seqs = [tok.encode(p + a + STOP) for p, a in pairs]
    T = max(len(s) for s in seqs) - 1
    x = torch.full((len(seqs), T), tok.encode(pad)[0].item(), dtype=torch.long)  # (B, T)
    y = torch.full((len(seqs), T), -1, dtype=torch.long)  # (B, T)
    for i, ((p, _), s) in enumerate(zip(pairs, seqs, strict=True)):
        n = len(s) - 1
        x[i, :n] = s[:-1]
        y[i, len(p) - 1:n] = s[len(p):]  # position j predicts character j + 1
    return x, y


@torch.no_grad()
def answer_scores(model: GPT, tok: CharTokenizer, pairs: Sequence[tuple[str, str]],
                  device: torch.device | str = "cpu", batch_size: int = 256
                  ) -> dict[str, list[float]]:
    """Per-pair exact match and answer log-probability, teacher-forced.

    An answer is an exact match when every one of its characters and the closing
    :data:`STOP` is the model's most likely next character: exactly what greedy decoding
    would write (the tests check the two agree).

    Args:
        model: the GPT (in ``eval()`` mode).
        tok: its tokenizer.
        pairs: ``(prompt, answer)`` pairs.
        device: where the model is.
        batch_size: pairs per forward pass.

    Returns:
        ``{"exact": [0.0 or 1.0, ...], "logprob": [nats, ...]}``, one entry per pair; the
        log-probability covers the answer and the stop.
    """
    exact: list[float] = []
    logprob: list[float] = []
    for i in range(0, len(pairs), batch_size):
        x, y = pack(pairs[i:i + batch_size], tok)
        x, y = x.to(device), y.to(device)  # (B, T)
        logits, _ = model(x)  # (B, T, V)
        mask = y >= 0  # (B, T)
        target = y.clamp(min=0)
        lp = logits.float().log_softmax(-1).gather(-1, target[..., None])[..., 0]  # (B, T)
        hit = (logits.argmax(-1) == y) | ~mask  # (B, T)
        exact += hit.all(dim=1).float().tolist()
        logprob += (lp * mask).sum(dim=1).tolist()
    return {"exact": exact, "logprob": logprob}


@torch.no_grad()
def greedy_answers(model: GPT, tok: CharTokenizer, prompts: Sequence[str], max_new: int,
                   device: torch.device | str = "cpu") -> list[str]:
    """Greedy continuations of ``prompts``, each cut at its first :data:`STOP`.

    Prompts of different lengths are decoded one at a time (they are few: this is for
    showing answers, :func:`answer_scores` is for measuring them).

    Args:
        model: the GPT.
        tok: its tokenizer.
        prompts: the prompts.
        max_new: most characters to write per prompt; fewer where the context
            (``block_size``) would overflow.
        device: where the model is.

    Returns:
        The answers, without the stop character.
    """
    out = []
    for text in prompts:
        idx = tok.encode(text)[None].to(device)  # (1, T)
        if idx.size(1) > model.config.block_size:
            raise ValueError(f"Prompt of {idx.size(1)} characters exceeds block_size="
                             f"{model.config.block_size}.")
        answer = ""
        for _ in range(min(max_new, model.config.block_size - idx.size(1) + 1)):
            logits, _ = model(idx)  # (1, T, V)
            nxt = logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
            char = tok.decode(nxt[0])
            if char == STOP:
                break
            answer += char
            idx = torch.cat([idx, nxt], dim=1)
        out.append(answer)
    return out


__all__ = ["STOP", "load_char_gpt", "pack", "answer_scores", "greedy_answers"]
