"""Code-completion tasks cut from held-out Python source, and greedy completion by a char GPT.

Two tasks, both on text the models never trained on (the tail of the corpus):

* *next line*: given all the source before a line inside a function body, and its
  indentation, write the rest of that line; scored by exact match (whitespace-stripped).
* *function body*: given the source up to and including a top-level ``def`` line, write the
  body; scored by whether the function then parses (``ast.parse``).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import torch

_DEF = re.compile(r"^([ \t]*)(?:async[ \t]+)?def [A-Za-z_]\w*\(.*\)[ \t]*(->.*)?:[ \t]*(#.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


@dataclass(frozen=True)
class LineTask:
    """Predict ``line``, the rest of a line from ``start``, its first non-blank character
    (the indentation is part of the prompt, as after an editor's auto-indent)."""

    start: int
    line: str


@dataclass(frozen=True)
class BodyTask:
    """Write the body of the top-level function whose ``def`` line ends at ``start``."""

    start: int
    header: str
    body: str
    indent: int = 0


def function_spans(text: str) -> list[tuple[int, int, int]]:
    """``(start, end, indent)`` of every function with a one-line signature, nested or not.

    The body is every following line that is blank or indented deeper than the ``def``.
    """
    lines = text.splitlines(keepends=True)
    offsets, pos = [], 0
    for ln in lines:
        offsets.append(pos)
        pos += len(ln)
    spans = []
    for i, ln in enumerate(lines):
        m = _DEF.match(ln.rstrip("\n"))
        if not m:
            continue
        ind = len(m.group(1))
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > ind):
            j += 1
        while j > i + 1 and not lines[j - 1].strip():
            j -= 1
        if j > i + 1:
            spans.append((offsets[i], offsets[j - 1] + len(lines[j - 1]), ind))
    return spans


def line_tasks(text: str, lo: int, min_len: int = 4) -> list[LineTask]:
    """Non-trivial lines of function bodies (not comments or docstring quotes) from ``lo`` on."""
    seen, tasks = set(), []
    for a, b, _ in function_spans(text):
        if a < lo:
            continue
        pos = text.index("\n", a) + 1
        in_doc = False
        while pos < b:
            end = text.find("\n", pos)
            end = b if end < 0 or end > b else end
            line = text[pos:end]
            s = line.strip()
            quotes = line.count('"""') + line.count("'''")
            if (not in_doc and not quotes and len(s) >= min_len and not s.startswith("#")
                    and pos not in seen):
                seen.add(pos)
                cursor = pos + _indent(line)  # an editor puts the cursor after the indent
                tasks.append(LineTask(cursor, line.strip()))
            in_doc ^= quotes % 2 == 1
            pos = end + 1
    return tasks


def body_tasks(text: str, lo: int) -> list[BodyTask]:
    """Functions (any nesting) that start at or after ``lo``."""
    out = []
    for a, b, ind in function_spans(text):
        if a >= lo:
            nl = text.index("\n", a) + 1
            out.append(BodyTask(nl, text[a:nl], text[nl:b], ind))
    return out


def first_word(line: str) -> str:
    """The first identifier, keyword, number or symbol run of ``line`` (whitespace-stripped)."""
    m = re.match(r"\s*(\w+|[^\w\s]+)", line)
    return m.group(1) if m else ""


def cut_body(completion: str, indent: int = 0) -> str:
    """The function body at the head of ``completion``: its lines up to the first non-blank
    one indented ``indent`` or less, with an unfinished last line dropped."""
    lines = completion.split("\n")
    keep = []
    for k, ln in enumerate(lines):
        if k == len(lines) - 1:  # ran out of characters mid-line
            break
        if ln.strip() and _indent(ln) <= indent:
            break
        keep.append(ln)
    while keep and not keep[-1].strip():
        keep.pop()
    return "\n".join(keep) + ("\n" if keep else "")


def function_source(header: str, body: str) -> str:
    """``header + body`` dedented so a method or nested function parses on its own."""
    return textwrap.dedent(header + body)


@torch.no_grad()
def gpt_complete(model, tok, contexts: list[str], n_chars: int, batch: int = 64,
                 first_exclude: str = "") -> list[str]:
    """Greedy continuations of equal-length ``contexts`` by a character GPT.

    Args:
        model: a :class:`genai_report.models.gpt.GPT`.
        tok: its :class:`genai_report.data.text.CharTokenizer`; unknown characters in a
            context are replaced by a space.
        contexts: prompts, all of the same length.
        n_chars: characters to generate (>= 1).
        batch: prompts per forward pass.
        first_exclude: characters the first generated character may not be.

    Returns:
        The generated strings.
    """
    dev = next(model.parameters()).device
    known = set(tok.chars)
    banned = [tok.chars.index(c) for c in first_exclude if c in known]
    out = []
    for i in range(0, len(contexts), batch):
        rows = ["".join(c if c in known else " " for c in ctx) for ctx in contexts[i:i + batch]]
        idx = torch.stack([tok.encode(r) for r in rows]).to(dev)  # (B, T)
        logits = model(idx[:, -model.config.block_size:])[0][:, -1]  # (B, V)
        logits[:, banned] = float("-inf")
        idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
        gen = model.generate(idx, n_chars - 1, top_k=1) if n_chars > 1 else idx
        out += [tok.decode(g) for g in gen[:, idx.size(1) - 1:].cpu()]
    return out
