"""Training code of the Scaling chapter's sweep: one run of it.

This module defines *how* a run trains; the sweep itself (which shapes, under which
profile) is listed and registered in :mod:`genai_report.figures.scaling`. The split is
deliberate: a node's cache key covers the source of the module that defines its function,
so listing the sizes here would make adding one size retrain every size. With the list
elsewhere, each ``scaling-run-d<width>-l<depth>`` node is keyed by its own parameters and
this code only: a killed sweep resumes at the first unfinished size, and a new size trains
alone.

A run trains a character-level GPT on the embedded English corpus (optionally with a share
of every batch given to two-digit addition, :mod:`genai_report.data.tasks`) at a constant
learning rate after warm-up, scores held-out word completions (the emergence task), and evaluates the English validation loss at
log-spaced steps: each run is then a curve of loss against tokens and compute, from which
the chapter reads ``L(N)``, ``L(D)``, ``L(C)`` and IsoFLOP profiles.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from genai_report.artifacts._outputs import write_json


def corpus_file():
    """The corpus the runs train on (declared in the nodes' ``data=``)."""
    from genai_report.data.corpora import default_corpus_path

    return default_corpus_path()


@dataclass(frozen=True)
class ScalingRun:
    """One model of the sweep and how it trains.

    Attributes:
        n_embd, n_layer: width and depth; heads are ``n_embd // head_dim`` (at least 1).
        head_dim: width of one attention head.
        active: ``False`` for a shape that belongs to another profile's sweep (the node
            then writes empty outputs at once).
        block_size, batch_size: tokens per window and windows per step.
        steps, lr, warmup_steps: AdamW at a constant rate after a linear warm-up (no decay,
            so every intermediate evaluation is comparable to a run that stopped there).
        evals: evaluations at log-spaced steps (the last one after the final step).
        eval_batches: fixed validation batches per evaluation (the same for every size).
        task_fraction: share of each batch's windows drawn from the addition stream (0: none).
        task_digits: operand width of the addition task.
        n_task_eval: held-out word completions (and additions) scored after training.
        val_fraction: tail of the corpus held out for validation.
        threads: torch threads while the run trains (0: leave torch's setting). Models this
            small gain nothing from intra-op threads, and on a shared CPU extra threads
            mostly wait; use ``genai-report figures --jobs N`` to train runs side by side.
    """

    n_embd: int
    n_layer: int
    head_dim: int = 16
    active: bool = True
    block_size: int = 64
    batch_size: int = 16
    steps: int = 2000
    lr: float = 3e-3
    warmup_steps: int = 50
    evals: int = 10
    eval_batches: int = 8
    task_fraction: float = 0.25
    task_digits: int = 2
    n_task_eval: int = 500
    val_fraction: float = 0.1
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.task_fraction < 1:
            raise ValueError(f"task_fraction must be in [0, 1), got {self.task_fraction}.")
        if self.block_size < 3 * self.task_digits + 4:
            raise ValueError(f"block_size={self.block_size} is shorter than one addition "
                             f"example; use at least {3 * self.task_digits + 4}.")
        if self.evals < 2:
            raise ValueError(f"evals must be >= 2 to draw a curve, got {self.evals}.")


def _eval_steps(steps: int, evals: int) -> list[int]:
    """Log-spaced steps in ``[max(1, steps // 64), steps]``, distinct, ending at ``steps``."""
    import numpy as np

    first = max(1, steps // 64)
    grid = np.unique(np.round(np.geomspace(first, steps, evals)).astype(int)).tolist()
    return sorted(set(grid) | {steps})


def _task_data(tok, p: ScalingRun, gen):
    """Training stream (token ids), its line length and held-out examples of the task."""
    from genai_report.data import tasks

    train_ex, held_out = tasks.addition_split(p.task_digits, 0.2, gen)
    line = len(train_ex[0][0]) + len(train_ex[0][1]) + 1
    chars = p.steps * p.batch_size * p.block_size * p.task_fraction
    n_lines = int(chars / line) + 2 * p.block_size
    ids = tok.encode(tasks.stream(train_ex, n_lines, gen))
    return ids, line, held_out[:p.n_task_eval]


def _line_batch(ids, n: int, block_size: int, line: int, gen):
    """``n`` windows of a stream of fixed-length lines, each starting at a newline.

    Starting every window where a line starts puts each character of a problem at the same
    positions in training as in evaluation (which feeds ``"\n" + prompt``).
    """
    import torch

    n_lines = (len(ids) - block_size - 1) // line
    starts = line * torch.randint(1, n_lines, (n,), generator=gen) - 1  # (n,) at a "\n"
    offsets = starts[:, None] + torch.arange(block_size + 1)  # (n, T+1)
    windows = ids[offsets]
    return windows[:, :-1], windows[:, 1:]


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads (``0``: unchanged), then restore the setting."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_run(ctx, p: ScalingRun):
    """Train one GPT of the sweep; record its parameter counts, compute and loss curve."""
    with torch_threads(p.threads):
        return _train_run(ctx, p)


def _train_run(ctx, p: ScalingRun):
    import time

    import torch

    from genai_report.data import tasks
    from genai_report.data.text import CharTokenizer, get_batch, load_corpus, sha256_of, split
    from genai_report.metrics.scaling import count_parameters, flops_per_token
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.loop import TrainConfig, train

    if not p.active:
        torch.save({}, ctx.output("model.pt"))
        write_json(ctx, "run.json", {"active": False}, indent=None)
        return {"active": False}
    path = corpus_file()
    text = load_corpus(path)
    tok = CharTokenizer.from_text(text)
    train_ids, val_ids = split(tok.encode(text), p.val_fraction)
    task_ids, task_line, task_eval = _task_data(tok, p, ctx.generator(3))
    n_head = max(1, p.n_embd // p.head_dim)
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=p.block_size, n_layer=p.n_layer,
                       n_head=n_head, n_embd=p.n_embd)
    dev = ctx.device
    model = GPT(config).to(dev)
    counts = count_parameters(model)
    per_token = flops_per_token(counts["non_embedding"], p.n_layer, p.block_size, p.n_embd)
    tokens_per_step = p.batch_size * p.block_size
    n_task = round(p.batch_size * p.task_fraction)
    gen = ctx.generator(1)
    # The same validation windows for every size of the sweep (a fixed seed, not the node's).
    val_gen = torch.Generator().manual_seed(1234)
    val_batches = [get_batch(val_ids, p.batch_size, p.block_size, val_gen)
                   for _ in range(p.eval_batches)]

    def val_loss(m) -> float:
        losses = [m(x.to(dev), y.to(dev))[1] for x, y in val_batches]
        return float(torch.stack(losses).mean())

    eval_at = set(_eval_steps(p.steps, p.evals))
    curve: list[dict] = []
    eval_s = [0.0]

    def record(m, step: int) -> None:
        t0 = time.perf_counter()
        tokens = step * tokens_per_step
        curve.append({"step": step, "tokens": tokens, "flops": per_token * tokens,
                      "val_loss": val_loss(m)})
        eval_s[0] += time.perf_counter() - t0

    def loss_fn(m, step):
        if step in eval_at:  # the model after `step` updates, before the next one
            m.eval()
            with torch.no_grad():
                record(m, step)
            m.train()
        x, y = get_batch(train_ids, p.batch_size - n_task, p.block_size, gen)  # (B', T)
        if n_task:
            tx, ty = _line_batch(task_ids, n_task, p.block_size, task_line, gen)  # (B-B', T)
            x, y = torch.cat([x, tx]), torch.cat([y, ty])
        return m(x.to(dev), y.to(dev))[1]

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps, min_lr_ratio=1.0,
                      weight_decay=0.0, grad_clip=1.0)
    hist = train(model, loss_fn, cfg, eval_fn=lambda m: record(m, p.steps) or {},
                 progress=ctx.progress)
    n_val_text = len(text) - int(len(text) * (1 - p.val_fraction))
    words = tasks.word_completion_examples(text[-n_val_text:], p.n_task_eval,
                                           torch.Generator().manual_seed(4321),
                                           context=min(24, p.block_size - 7))
    completion = tasks.score_answers(model, tok.encode, words, dev)
    task = tasks.score_answers(model, tok.encode, task_eval, dev) if n_task else None
    torch.save({"config": {"vocab_size": tok.vocab_size, "block_size": p.block_size,
                           "n_layer": p.n_layer, "n_head": n_head, "n_embd": p.n_embd},
                "state": model.state_dict(), "chars": tok.chars}, ctx.output("model.pt"))
    train_s = hist.wall_time_s - eval_s[0]
    tokens = p.steps * tokens_per_step
    out = {
        "active": True,
        "n_embd": p.n_embd,
        "n_layer": p.n_layer,
        "n_head": n_head,
        "params": {**counts, "gpt_num_params": model.num_params()},
        "flops_per_token": per_token,
        "tokens": tokens,
        "task_tokens": p.steps * n_task * p.block_size,
        "flops": per_token * tokens,
        "val_loss": curve[-1]["val_loss"],
        "curve": curve,
        "task": task,
        "completion": completion,
        "corpus": {"file": path.name, "sha256": sha256_of(path)},
        "train_s": train_s,
        "ms_per_step": 1000 * train_s / p.steps,
        "device": str(dev),
        "warmup_steps": p.warmup_steps,
        "block_size": p.block_size,
    }
    write_json(ctx, "run.json", out, indent=None)
    return out
