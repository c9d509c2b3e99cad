"""Chain of thought, measured: the same small GPT learns binary addition with and without a
scratchpad of column steps, and is tested on numbers longer than any it was trained on.

Both models have the same architecture and initial weights, see the same problems in the
same order for the same number of steps; only the target differs (the scratchpad target
writes the column steps before the answer, see :mod:`genai_report.data.arithmetic`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from genai_report.artifacts.transformers import torch_threads as _threads
from genai_report.pipeline import figure


@dataclass(frozen=True)
class ScratchpadTrain:
    """Addition with and without a scratchpad, over seeds.

    Attributes:
        base: the number base of the operands (2: binary).
        train_min, train_max: operand lengths (digits) seen in training, uniform.
        test_max: evaluation covers lengths ``1..test_max``; those above ``train_max`` are
            "beyond the trained lengths".
        max_offset: training adds an offset uniform over ``0..max_offset`` to all position
            ids of an example; evaluation uses ``0..max_offset - (test_max - train_max)``,
            so that no evaluated id is new to the model.
        n_layer, n_head, n_embd: the GPT (the same for both models).
        batch_size, steps, lr, warmup_steps: AdamW with warm-up and cosine decay, the same
            for both models.
        eval_problems: held-out problems per operand length (the same for both models).
        seeds: independent pairs of runs (initial weights and training problems).
        control_seeds: of those seeds, how many also train the compute control: the direct
            model for as many more steps as it takes to see as many training tokens as
            the scratchpad model (``0``: none).
        threads: torch threads while training (``0``: leave the pipeline's setting).
    """

    base: int = 2
    train_min: int = 1
    train_max: int = 5
    test_max: int = 8
    max_offset: int = 4
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 48
    batch_size: int = 32
    steps: int = 700
    lr: float = 5e-3
    warmup_steps: int = 50
    eval_problems: int = 200
    seeds: int = 2
    control_seeds: int = 1
    threads: int = 1

    def __post_init__(self) -> None:
        if not 2 <= self.base <= 10:
            raise ValueError(f"base must be in 2..10, got {self.base}.")
        if not 1 <= self.train_min <= self.train_max < self.test_max:
            raise ValueError("Need 1 <= train_min <= train_max < test_max (some lengths "
                             f"beyond the trained ones); got {self.train_min}, "
                             f"{self.train_max}, {self.test_max}.")
        if self.max_offset < self.test_max - self.train_max:
            raise ValueError(f"max_offset={self.max_offset} must be >= test_max - train_max "
                             f"= {self.test_max - self.train_max}, or the longest test "
                             "problems would use position ids never trained.")
        for name in ("steps", "batch_size", "eval_problems", "seeds", "n_layer"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 0 <= self.control_seeds <= self.seeds:
            raise ValueError(f"control_seeds must be in [0, seeds={self.seeds}], got "
                             f"{self.control_seeds}.")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps]; got {self.warmup_steps}.")

    @property
    def block_size(self) -> int:
        """Position ids needed: the largest id is ``n + 1`` plus the offset."""
        return self.train_max + 2 + self.max_offset

    @property
    def eval_offset(self) -> int:
        """Largest offset used in evaluation."""
        return self.max_offset - (self.test_max - self.train_max)

    def token_ratio(self) -> float:
        """Mean tokens per training example, scratchpad over direct (prompt included)."""
        from genai_report.data.arithmetic import target_length

        ns = range(self.train_min, self.train_max + 1)
        # prompt: ^, n digits, +, n digits, =
        direct = sum(2 * n + 3 + target_length(n, False) for n in ns)
        scratch = sum(2 * n + 3 + target_length(n, True) for n in ns)
        return scratch / direct


def _logits(model, idx, pos, cache=None):
    """The GPT's forward pass with explicit position ids (and an optional key/value cache).

    Returns ``(logits (B, T, V), new_cache)``.
    """
    x = model.drop(model.wte(idx) + model.wpe(pos))  # (B, T, C)
    new_cache = []
    for i, block in enumerate(model.blocks):
        x, kv, _ = block(x, None if cache is None else cache[i])
        new_cache.append(kv)
    return model.lm_head(model.ln_f(x)), new_cache


def greedy_answers(model, x, pos, n_prompt: int):
    """Greedy decoding of the target positions of ``x``, reusing past keys and values.

    Args:
        model: a :class:`~genai_report.models.gpt.GPT`.
        x: ``(B, T)`` prompts followed by targets (only the prompt is read).
        pos: ``(B, T)`` position ids of all ``T`` positions (known from the format).
        n_prompt: prompt length, the same for the whole batch.

    Returns:
        ``(B, T - n_prompt)`` generated token ids.
    """
    import torch

    with torch.no_grad():
        logits, cache = _logits(model, x[:, :n_prompt], pos[:, :n_prompt])
        out = []
        for t in range(n_prompt, x.size(1)):
            nxt = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            out.append(nxt)
            if t + 1 < x.size(1):
                logits, cache = _logits(model, nxt, pos[:, t:t + 1], cache)
    return torch.cat(out, dim=1)


def _answer(text: str, scratchpad: bool) -> str:
    """The final answer in a generated target: after ``>`` (scratchpad), before ``$``."""
    if scratchpad:
        text = text.split(">", 1)[1] if ">" in text else ""
    return text.split("$", 1)[0]


def _answer_ok(text: str, answer: str, scratchpad: bool) -> bool:
    """Is the final answer in ``text`` exactly ``answer``, followed by the end token?"""
    tail = text.split(">", 1)[1] if scratchpad and ">" in text else ("" if scratchpad else text)
    return tail.startswith(answer + "$")


def _shown(text: str) -> str:
    """A generation for the page: up to its end token, or all of it and an ellipsis."""
    return text.split("$", 1)[0] if "$" in text else text + "…"


def _implied_answer(text: str) -> str | None:
    """The answer a scratchpad's own column steps imply (None if they are malformed)."""
    from genai_report.data.arithmetic import CARRY

    steps = text.split(">", 1)[0]
    pairs = [steps[i:i + 2] for i in range(0, len(steps), 2)]
    if not pairs or not all(len(q) == 2 and q[0].isdigit() and q[1] in CARRY for q in pairs):
        return None
    return str(CARRY.index(pairs[-1][1])) + "".join(q[0] for q in reversed(pairs))


@functools.cache
def _positioned():
    """The module class an ensemble of GPTs with explicit position ids is made of (built on
    first use, so that importing this module does not import torch)."""
    import torch

    class Positioned(torch.nn.Module):
        """A GPT whose ``forward(idx, pos)`` gives the logits at explicit position ids."""

        def __init__(self, gpt):
            super().__init__()
            self.gpt = gpt

        def forward(self, idx, pos):
            return _logits(self.gpt, idx, pos)[0]  # (B, T, V)

    return Positioned


def _train_seeds(p: ScratchpadTrain, scratchpad: bool, inits: list[int], data_gens,
                 progress=None):
    """Train one model per seed as one :class:`~genai_report.training.ensemble.Ensemble`.

    Member ``k`` is initialised after ``torch.manual_seed(inits[k])`` and trained on
    problems drawn from ``data_gens[k]``: its own initial weights, problems and batches,
    so its run is that seed's run alone, to the order of floating-point sums (a test
    checks it against the loop over seeds this replaced). On the device each step launches
    one model's kernels for all of them; each member's batch is built on the host.

    Returns:
        ``(models, history, tokens)``: the trained GPTs, the
        :class:`~genai_report.training.ensemble.EnsembleHistory` and each member's count
        of training tokens (padding excluded).
    """
    import torch
    import torch.nn.functional as F

    from genai_report.data.arithmetic import PAD, VOCAB, draw_problems, encode_problems
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    if len(inits) != len(data_gens) or not inits:
        raise ValueError(f"Need one data generator per initial seed, got {len(inits)} seeds "
                         f"and {len(data_gens)} generators.")
    models = []
    for seed in inits:
        torch.manual_seed(seed)
        models.append(GPT(GPTConfig(vocab_size=len(VOCAB), block_size=p.block_size,
                                    n_layer=p.n_layer, n_head=p.n_head, n_embd=p.n_embd)))
    members = [_positioned()(m) for m in models]
    ensemble = Ensemble(members)
    tokens = [0] * len(models)

    def loss_fn(ens, step):
        batches = [encode_problems(draw_problems(p.batch_size, p.train_min, p.train_max, gen,
                                                 base=p.base, max_offset=p.max_offset),
                                   scratchpad=scratchpad, base=p.base)  # (B, T_k) each
                   for gen in data_gens]
        # one length for all: padding after a row's end changes no earlier position
        T = max(x.size(1) for x, _, _ in batches)
        for k, (x, _, _) in enumerate(batches):
            tokens[k] += int((x != PAD).sum())
        x, y, pos = (torch.stack([F.pad(b[i], (0, T - b[i].size(1)), value=fill)
                                  for b in batches])  # (K, B, T)
                     for i, fill in ((0, PAD), (1, -1), (2, 0)))
        logits = ens(x, pos)  # (K, B, T, V)
        ce = F.cross_entropy(logits.flatten(0, 2), y.flatten(), ignore_index=-1,
                             reduction="none").view(len(models), -1)  # (K, B * T)
        return ce.sum(1) / (y != -1).flatten(1).sum(1)  # (K,): each member's mean

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps)
    hist = train_ensemble(ensemble, loss_fn, cfg, progress=progress, record_every=10)
    ensemble.unstack_into(members)
    return models, hist, tokens


def _evaluate(p: ScratchpadTrain, model, problems_by_n, scratchpad: bool):
    """Per operand length: exact match of the final answer, share of its digits right, and
    for the scratchpad the share of problems whose column steps are all right and whose
    answer is the one its own steps imply (right or wrong)."""
    from genai_report.data.arithmetic import decode, encode_problems, format_addition

    out = {}
    for n, probs in problems_by_n.items():
        x, _, pos = encode_problems(probs, scratchpad=scratchpad, base=p.base)  # (N, T)
        n_prompt = format_addition(*probs[0][:2], scratchpad=scratchpad, base=p.base)[2]
        gen = greedy_answers(model, x, pos, n_prompt)  # (N, T - n_prompt)
        exact, digits, steps_ok, follows, texts = 0, 0, 0, 0, []
        for r, (a, b, _) in enumerate(probs):
            toks, _, _ = format_addition(a, b, scratchpad=scratchpad, base=p.base)
            want, got = "".join(toks[n_prompt:]), decode(gen[r].tolist())
            answer = _answer(want, scratchpad)
            exact += _answer_ok(got, answer, scratchpad)
            digits += sum(u == v for u, v in zip(answer, _answer(got, scratchpad),
                                                 strict=False))  # top digit first
            steps_ok += got[:2 * n + 1] == want[:2 * n + 1]  # the steps and ">"
            follows += _implied_answer(got) == _answer(got, scratchpad)
            texts.append(got)
        N = len(probs)
        out[n] = {"exact": exact / N, "digits": digits / (N * (n + 1)),
                  "steps": steps_ok / N if scratchpad else None,
                  "follows": follows / N if scratchpad else None, "texts": texts}
    return out


@figure(
    "llms-chain-of-thought",
    params={
        "smoke": ScratchpadTrain(train_max=3, test_max=4, max_offset=1, n_embd=16, n_head=2,
                                 steps=20, warmup_steps=2, eval_problems=8, seeds=2),
        "quick": ScratchpadTrain(control_seeds=2),
        "full": ScratchpadTrain(steps=1500, batch_size=64, eval_problems=500, seeds=3,
                                control_seeds=3, threads=0),
    },
    outputs=("scratchpad.svg",),
    seed=90,
    title="Writing the column steps first lets a two-layer GPT add numbers longer than any "
    "it was trained on; answering directly, it fails beyond the trained lengths.",
    caption="The same GPT (architecture, initial weights, training problems, steps) trained "
    "on binary addition of 1- to 5-digit numbers, the sum written most significant digit "
    "first, either directly or after a scratchpad of column steps (sum digit and carry, from "
    "the right). Dashed: the direct model trained for more steps, on as many tokens as the "
    "scratchpad model. Left: exact match of greedy answers on held-out problems against "
    "operand length; the grey band is the trained range. Right: share of answer digits "
    "right, the per-token view of the same answers. Points are means over seeds, bars "
    "their standard deviation.",
    alt="Two line charts against operand length from 1 to 8 digits. The scratchpad model's "
    "exact match stays near one at every length, beyond the trained five digits too. The "
    "direct model's falls with length inside the trained range and is near zero beyond it; "
    "trained longer, it falls later but stays far below the scratchpad model beyond the "
    "trained lengths. Its digit accuracy falls more slowly than its exact match.",
)
def chain_of_thought(ctx, p: ScratchpadTrain):
    """Train direct and scratchpad models over seeds; exact match against operand length."""
    import dataclasses
    import time

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.data.arithmetic import draw_problems, format_addition, target_length
    from genai_report.metrics.seeds import over_seeds
    from genai_report.pipeline.dryrun import DERIVED_STEPS_KEY, derived_steps
    from genai_report.plotting import save_figure

    lengths = list(range(1, p.test_max + 1))
    ev_gen = ctx.generator(7)
    problems = {n: draw_problems(p.eval_problems, n, n, ev_gen, base=p.base,
                                 max_offset=p.eval_offset) for n in lengths}
    control_steps = derived_steps(p.token_ratio(), p.steps)
    setups = {"direct": (p, False), "scratchpad": (p, True),
              "direct_long": (dataclasses.replace(p, steps=control_steps), False)}
    runs = {name: [] for name in setups}
    loops = []  # how each trained model's step count follows from p.steps (dry run's estimate)
    t0 = time.perf_counter()
    with _threads(p.threads):
        for name, (q, scratch) in setups.items():
            seeds = range(p.control_seeds if name == "direct_long" else p.seeds)
            if not seeds:
                continue
            # seed s: the same initial weights and training problems in every setup
            models, hist, tokens = _train_seeds(
                q, scratch, [ctx.seed + 1000 * s for s in seeds],
                [ctx.generator(1000 * s + 1) for s in seeds], ctx.progress)
            loops.append(["steps", p.token_ratio()] if name == "direct_long" else None)
            for k, model in enumerate(models):
                runs[name].append({"eval": _evaluate(p, model, problems, scratch),
                                   "train_tokens": tokens[k],
                                   "final_loss": hist.member_loss[-1][k],
                                   "n_params": model.num_params()})
    wall = time.perf_counter() - t0
    runs = {name: rs for name, rs in runs.items() if rs}

    beyond = [n for n in lengths if n > p.train_max]
    inside = [n for n in lengths if p.train_min <= n <= p.train_max]

    def per_len(name, key):
        return {str(n): over_seeds([r["eval"][n][key] for r in runs[name]]) for n in lengths}

    def mean_over(name, key, ns):
        return over_seeds([float(np.mean([r["eval"][n][key] for n in ns])) for r in runs[name]])

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.8), gridspec_kw={"wspace": 0.3})
    styles = {"scratchpad": ("C0", "o", "-", "scratchpad, then answer"),
              "direct": ("C1", "s", "-", "direct answer"),
              "direct_long": ("C1", "^", "--", "direct, trained longer")}
    for ax, key, ylabel in ((axes[0], "exact", "exact match"),
                            (axes[1], "digits", "answer digits right")):
        ax.axvspan(p.train_min - 0.5, p.train_max + 0.5, color="0.9", lw=0)
        for name, (color, marker, ls, label) in styles.items():
            if name not in runs:
                continue
            v = np.array([[r["eval"][n][key] for n in lengths] for r in runs[name]])
            ax.errorbar(lengths, v.mean(0), yerr=v.std(0, ddof=1) if len(v) > 1 else None,
                        color=color, marker=marker, ms=4, lw=1.3, ls=ls, capsize=2,
                        label=label)
        ax.set_xlabel("operand length (digits)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xticks(lengths)
        ax.text(p.train_min - 0.35, 0.02, "trained", fontsize=8, color="0.35")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, 1.04))
    save_figure(fig, ctx.output("scratchpad.svg"))

    # held-out problems in and beyond the trained range, with the first seed's answers
    examples = []
    for n, count in ((inside[-1] - 1, 1), (beyond[len(beyond) // 2], 1), (lengths[-1], 2)):
        for r in range(count):
            a, b, _ = problems[n][r]
            toks, _, n_prompt = format_addition(a, b, scratchpad=True, base=p.base)
            want = "".join(toks[n_prompt:])
            d = runs["direct"][0]["eval"][n]["texts"][r]
            s = runs["scratchpad"][0]["eval"][n]["texts"][r]
            examples.append({
                "n": n, "prompt": "".join(toks[1:n_prompt]), "answer": _answer(want, True),
                "direct": _shown(d), "scratchpad": _shown(s),
                "direct_ok": "right" if _answer_ok(d, _answer(want, True), False) else "wrong",
                "scratchpad_ok": "right" if _answer_ok(s, _answer(want, True), True)
                else "wrong"})

    def gap(ns, other="direct"):
        return over_seeds([
            float(np.mean([rs["eval"][n]["exact"] - rd["eval"][n]["exact"] for n in ns]))
            for rs, rd in zip(runs["scratchpad"], runs[other], strict=False)])  # control: fewer

    control = [float(np.mean([r["eval"][n]["exact"] for n in beyond]))
               for r in runs.get("direct_long", [])]
    tokens = {name: {str(n): target_length(n, name == "scratchpad") for n in lengths}
              for name in ("direct", "scratchpad")}
    train_tokens = {name: over_seeds([r["train_tokens"] for r in rs])
                    for name, rs in runs.items()}
    return {
        "exact": {name: per_len(name, "exact") for name in runs},
        "digits": {name: per_len(name, "digits") for name in runs},
        "steps_right": per_len("scratchpad", "steps"),
        "steps_right_beyond": mean_over("scratchpad", "steps", beyond),
        "answer_follows_steps": per_len("scratchpad", "follows"),
        "answer_follows_steps_beyond": mean_over("scratchpad", "follows", beyond),
        "exact_inside": {name: mean_over(name, "exact", inside) for name in runs},
        "exact_beyond": {name: mean_over(name, "exact", beyond) for name in runs},
        "digits_inside": {name: mean_over(name, "digits", inside) for name in runs},
        "digits_beyond": {name: mean_over(name, "digits", beyond) for name in runs},
        "exact_longest": {name: over_seeds([r["eval"][p.test_max]["exact"] for r in rs])
                          for name, rs in runs.items()},
        "gap_beyond": gap(beyond),
        "gap_inside": gap(inside),
        "gap_beyond_control": gap(beyond, "direct_long") if "direct_long" in runs else None,
        # the control's seeds one by one (its spread, beyond the trained lengths)
        "control_beyond_min": min(control) if control else None,
        "control_beyond_max": max(control) if control else None,
        "gap_beyond_control_min": (min(gap(beyond, "direct_long")["values"]) if control
                                   else None),
        "tokens_per_answer": tokens,
        "tokens_longest": {name: t[str(p.test_max)] for name, t in tokens.items()},
        "token_ratio_longest": tokens["scratchpad"][str(p.test_max)]
        / tokens["direct"][str(p.test_max)],
        "train_tokens": train_tokens,
        "train_tokens_ratio": train_tokens["scratchpad"]["mean"] / train_tokens["direct"]["mean"],
        "control_steps": control_steps,
        "final_loss": {name: over_seeds([r["final_loss"] for r in rs])
                       for name, rs in runs.items()},
        "n_params": runs["direct"][0]["n_params"],
        "same_params": len({r["n_params"] for rs in runs.values() for r in rs}) == 1,
        "block_size": p.block_size,
        "eval_offset": p.eval_offset,
        "beyond_min": beyond[0],
        "examples": examples,
        "wall_s": wall,
        DERIVED_STEPS_KEY: loops,
    }
