"""Code generation scored by unit tests: templated one-line Python functions and pass@k.

Each problem is a function whose docstring says in words what to compute and whose body is
one ``return`` line, e.g.::

    def f(x):
        \"\"\"add 3 then double\"\"\"
        return (x + 3) * 2

The problems are generated in code from a small grammar of arithmetic steps (1 to 3 steps),
so there are tens of thousands of distinct ones; the held-out problems are ones whose
docstring never occurs in training, so a model has to compose the steps it has seen
separately. A completion is correct when the function it completes returns the reference's
values on every test input (HumanEval's rule, Chen et al. 2021): any equivalent expression
passes. pass@k is estimated without bias from ``n >= k`` samples per problem (eq. 1 of Chen
et al. 2021).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# (phrase template, expression builder, constants): x is the expression so far
_STEPS = (
    ("add {c}", "{x} + {c}", range(1, 10)),
    ("subtract {c}", "{x} - {c}", range(1, 10)),
    ("times {c}", "{x} * {c}", range(2, 10)),
    ("double", "{x} * 2", (None,)),
    ("triple", "{x} * 3", (None,)),
    ("square", "{x} ** 2", (None,)),
    ("negate", "-{x}", (None,)),
    ("mod {c}", "{x} % {c}", range(2, 10)),
    ("floor-divide by {c}", "{x} // {c}", range(2, 10)),
)
TEST_INPUTS = (-7, -2, 0, 1, 3, 4, 10, 25)
PROMPT_END = "    return "


@dataclass(frozen=True)
class CodeProblem:
    """One function to write.

    Attributes:
        doc: the docstring, e.g. ``"add 3 then double"``.
        body: the reference expression, e.g. ``"(x + 3) * 2"``.
        expected: the reference's value on each of :data:`TEST_INPUTS`.
    """

    doc: str
    body: str
    expected: tuple[int, ...]

    @property
    def prompt(self) -> str:
        """The text a model continues: signature, docstring and ``return ``."""
        return f'def f(x):\n    """{self.doc}"""\n{PROMPT_END}'

    @property
    def source(self) -> str:
        """The whole reference function, with a blank line after it (a training document)."""
        return f"{self.prompt}{self.body}\n\n"


def _apply(expr: str, template: str, c: int | None) -> str:
    # parenthesise the expression so far unless it is a bare name
    inner = expr if expr == "x" else f"({expr})"
    return template.format(x=inner, c=c)


def all_steps() -> list[tuple[str, str, int | None]]:
    """Every (phrase template, expression template, constant) of the grammar."""
    return [(p, e, c) for p, e, cs in _STEPS for c in cs]


def make_problem(steps: Sequence[tuple[str, str, int | None]]) -> CodeProblem:
    """The problem for a sequence of steps (see :func:`all_steps`)."""
    expr = "x"
    for _, template, c in steps:
        expr = _apply(expr, template, c)
    doc = " then ".join(p.format(c=c) for p, _, c in steps)
    ref = eval(f"lambda x: {expr}")  # noqa: S307 - our own generated expression
    return CodeProblem(doc, expr, tuple(ref(v) for v in TEST_INPUTS))


def make_problems(n: int, seed: int, max_steps: int = 3) -> list[CodeProblem]:
    """``n`` distinct random problems of 1 to ``max_steps`` steps, in random order.

    The number of steps is drawn uniformly, then each step; a repeat is drawn again (so
    the few one-step problems are used up early). The list is shuffled at the end, so any
    split of it (:func:`split_problems`) is a random split with the same mix of lengths.
    """
    rng = random.Random(seed)
    steps = all_steps()
    total = sum(len(steps) ** k for k in range(1, max_steps + 1))
    if n > total:
        raise ValueError(f"Only {total} distinct problems have 1 to {max_steps} steps; "
                         f"asked for {n}.")
    out, seen = [], set()
    while len(out) < n:
        k = rng.randint(1, max_steps)
        prob = make_problem([rng.choice(steps) for _ in range(k)])
        if prob.doc not in seen:
            seen.add(prob.doc)
            out.append(prob)
    rng.shuffle(out)
    return out


def split_problems(problems: Sequence[CodeProblem], n_val: int, n_test: int
                   ) -> tuple[list[CodeProblem], list[CodeProblem], list[CodeProblem]]:
    """``(train, val, test)``: the first ``n_test`` problems are the test set, the next
    ``n_val`` the validation set, the rest training; the lists share no docstring."""
    if n_val + n_test >= len(problems):
        raise ValueError(f"{len(problems)} problems cannot give {n_val} validation and "
                         f"{n_test} test problems and leave any for training.")
    test = list(problems[:n_test])
    val = list(problems[n_test:n_test + n_val])
    return list(problems[n_test + n_val:]), val, test


def check_source(problem: CodeProblem, completion: str) -> str:
    """A script that defines the completed function and exits 0 iff it passes the tests.

    The completion is cut at its first newline (a one-line body).
    """
    line = completion.split("\n", 1)[0]
    return (f"{problem.prompt}{line}\n\n"
            f"_inputs = {TEST_INPUTS!r}\n_expected = {problem.expected!r}\n"
            "raise SystemExit(0 if tuple(f(v) for v in _inputs) == _expected else 1)\n")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from ``n`` samples of which ``c`` are correct.

    ``1 - C(n - c, k) / C(n, k)`` (eq. 1 of Chen et al. 2021), computed as a product to stay
    exact for large ``n``.

    Args:
        n: samples drawn for the problem (``n >= k``).
        c: samples that passed (``0 <= c <= n``).
        k: the budget.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"Need 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}.")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@torch.no_grad()
def sample_completions(model, tok, prompts: Sequence[str], n_samples: int, max_chars: int,
                       generator: torch.Generator, temperature: float = 1.0,
                       batch: int = 256) -> list[list[str]]:
    """``n_samples`` completions of each prompt by a character GPT, cut at the first newline.

    Args:
        model: a :class:`genai_report.models.gpt.GPT`.
        tok: its :class:`genai_report.data.text.CharTokenizer`.
        prompts: the problems' prompts (any lengths).
        n_samples: completions per prompt.
        max_chars: characters generated per completion at most.
        generator: draws the samples.
        temperature: 0 for greedy decoding, else the sampling temperature.
        batch: rows per forward pass.

    Returns:
        One list of ``n_samples`` strings per prompt.
    """
    dev = next(model.parameters()).device
    out: list[list[str]] = []
    # group prompts of equal length so each batch is one tensor
    rows = [(i, p) for i, p in enumerate(prompts) for _ in range(n_samples)]
    res: dict[int, list[str]] = {i: [] for i in range(len(prompts))}
    by_len: dict[int, list[tuple[int, str]]] = {}
    for r in rows:
        by_len.setdefault(len(r[1]), []).append(r)
    for group in by_len.values():
        for a in range(0, len(group), batch):
            chunk = group[a:a + batch]
            idx = torch.stack([tok.encode(p) for _, p in chunk]).to(dev)  # (B, T)
            gen = _sample(model, idx, max_chars, generator, temperature)
            for (i, _), g in zip(chunk, gen.cpu(), strict=True):
                res[i].append(tok.decode(g).split("\n", 1)[0])
    for i in range(len(prompts)):
        out.append(res[i])
    return out


def _sample(model, idx, n_new, generator, temperature):
    """Sample ``n_new`` tokens after ``idx`` ``(B, T)`` with the GPT's key/value cache,
    drawing on the CPU ``generator``; returns the new tokens ``(B, n_new)``."""
    block = model.config.block_size
    logits, cache, _ = model._run(idx[:, -block:])
    new = []
    for step in range(n_new):
        last = logits[:, -1].float().cpu()  # (B, V)
        if temperature == 0:
            nxt = last.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial((last / temperature).softmax(-1), 1, generator=generator)
        new.append(nxt)
        if step + 1 < n_new:
            if cache[0][0].size(2) >= block:  # window full: re-encode the last block
                ctx = torch.cat([idx, *[t.to(idx.device) for t in new]], dim=1)[:, -block:]
                logits, cache, _ = model._run(ctx)
            else:
                logits, cache, _ = model._run(nxt.to(idx.device), cache)
    return torch.cat(new, dim=1)


def encode_problems(problems: Sequence[CodeProblem], tok, length: int) -> torch.Tensor:
    """Each problem's source as one row of ids ``(N, length + 1)``, padded with ``-1``.

    Training on whole functions (one per row, starting at ``def``) means every body
    character is predicted with its docstring in view, which random windows of a stream
    would often cut off.
    """
    rows = torch.full((len(problems), length + 1), -1, dtype=torch.long)
    for i, p in enumerate(problems):
        ids = tok.encode(p.source)[: length + 1]
        rows[i, : len(ids)] = ids
    return rows


def function_batch(rows: torch.Tensor, batch: int, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch ``(x, y)`` of whole functions from :func:`encode_problems`' rows; padding is
    ``0`` in ``x`` and ``-1`` (ignored by the loss) in ``y``."""
    pick = torch.randint(0, len(rows), (batch,), generator=generator)
    r = rows[pick]  # (B, L + 1)
    return r[:, :-1].clamp(min=0), r[:, 1:].contiguous()


@torch.no_grad()
def gpt_bits(model, rows: torch.Tensor, from_col: torch.Tensor | None = None,
             batch: int = 256) -> tuple[float, int]:
    """Total bits a GPT assigns to the functions of :func:`encode_problems`' ``rows``.

    Every character after the first of each function is predicted from the function so far.

    Args:
        model: the GPT (its ``block_size`` at least the rows' length - 1).
        rows: ``(N, L + 1)`` ids padded with ``-1``.
        from_col: optional ``(N,)`` first target column scored per row (e.g. where the body
            starts); earlier characters are context only.
        batch: rows per forward pass.

    Returns:
        ``(bits, n_characters)``.
    """
    dev = next(model.parameters()).device
    total, n = 0.0, 0
    for a in range(0, len(rows), batch):
        r = rows[a:a + batch]
        x, y = r[:, :-1].clamp(min=0).to(dev), r[:, 1:].clone()  # (B, L)
        if from_col is not None:
            cols = torch.arange(y.size(1))[None]  # target column j is character j + 1
            y[cols + 1 < from_col[a:a + batch, None]] = -1
        logp = model(x)[0].float().log_softmax(-1).cpu()  # (B, L, V)
        keep = y >= 0
        total -= float(logp.gather(2, y.clamp(min=0)[..., None])[..., 0][keep].sum())
        n += int(keep.sum())
    return total / math.log(2), n


def kn_bits(model, problems: Sequence[CodeProblem], body_only: bool = False
            ) -> tuple[float, int]:
    """Total bits an n-gram model (:class:`genai_report.models.ngram.KneserNey`) assigns to
    the same characters as :func:`gpt_bits`: each function's characters after the first
    (or only its body, after the prompt), from the function so far."""
    total, n = 0.0, 0
    for p in problems:
        s = p.source
        start = len(p.prompt) if body_only else 1
        b, k = model.bits(s, start)
        total, n = total + b, n + k
    return total, n
