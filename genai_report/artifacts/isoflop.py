"""IsoFLOP profiles trained as Hoffmann et al. (2022, approach 2) train them.

One node per compute budget ``C`` trains every size ``N`` of a list to exactly
``D = C / c(N)`` tokens, where ``c(N)`` is the training FLOPs per token
(:func:`genai_report.metrics.scaling.flops_per_token`). Each run gets a schedule scaled to
its own length: a linear warm-up over a fixed share of its steps, then a cosine decay to a
tenth of the peak, so a model is read at the end of its own schedule rather than part-way
along a longer one (reading a constant-rate run at an intermediate step leaves a large
model on the loss plateau that every run crosses in a similar number of *steps*).

Every run takes at least ``min_steps`` optimisation steps whatever its token budget: the
batch (windows per step) is the largest that keeps the step count at or above it, and the
peak learning rate follows the square root of the tokens per step (Malladi et al. 2022's
rule for Adam). A size whose tokens would not fill ``min_steps`` windows of one sequence is
too large for the budget; it is recorded as skipped, not trained on a shorter schedule.

The figure :func:`genai_report.figures.scaling.isoflop` fits a parabola in ``log N`` to each
budget's losses and reads the compute-optimal size off its minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genai_report.artifacts._outputs import write_json
from genai_report.artifacts.scaling import corpus_file, torch_threads


@dataclass(frozen=True)
class IsoFlopBudget:
    """One compute budget of the IsoFLOP study and how each of its runs trains.

    Attributes:
        flops: training compute ``C`` every run of the budget spends (FLOPs).
        widths: widths of the one-block GPTs trained (heads of ``head_dim``).
        n_layer: transformer blocks of every size.
        head_dim: width of one attention head (at least one head).
        block_size: tokens per window.
        min_steps: fewest optimisation steps of any run.
        lr: peak learning rate at ``ref_tokens`` tokens per step; a run with ``b`` tokens per
            step uses ``lr * sqrt(b / ref_tokens)``, capped at ``lr_max``.
        ref_tokens, lr_max: see ``lr``.
        warmup_frac: share of a run's steps spent warming up.
        min_lr_ratio: the cosine decays to ``lr * min_lr_ratio`` at the run's last step.
        eval_batches, eval_batch_size: fixed validation windows (the same for every run).
        val_fraction: tail of the corpus held out for validation.
        threads: torch threads while the budget trains (0: leave torch's setting).
        max_steps: cut every run to at most this many steps at its real batch (0: no cut).
            Only a dry run sets it, to exercise full-size batches in seconds; the losses
            of a cut run are not an IsoFLOP profile.
    """

    flops: float
    widths: tuple[int, ...] = (12, 16, 24, 32, 48, 64, 96)
    n_layer: int = 1
    head_dim: int = 16
    block_size: int = 32
    min_steps: int = 1000
    lr: float = 3e-3
    ref_tokens: int = 512
    lr_max: float = 6e-3
    warmup_frac: float = 0.05
    min_lr_ratio: float = 0.1
    eval_batches: int = 16
    eval_batch_size: int = 32
    val_fraction: float = 0.1
    threads: int = 1
    max_steps: int = 0

    def __post_init__(self) -> None:
        if self.flops <= 0:
            raise ValueError(f"flops must be > 0, got {self.flops}.")
        if len(self.widths) < 3:
            raise ValueError(f"An IsoFLOP profile needs at least 3 sizes, got {self.widths}.")
        if any(w < 1 for w in self.widths) or list(self.widths) != sorted(set(self.widths)):
            raise ValueError(f"widths must be distinct positive and increasing, got "
                             f"{self.widths}.")
        if self.min_steps < 1 or self.block_size < 2:
            raise ValueError("min_steps must be >= 1 and block_size >= 2.")
        if not 0 <= self.warmup_frac < 1:
            raise ValueError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}.")


def schedule(tokens: float, p: IsoFlopBudget) -> tuple[int, int] | None:
    """``(windows per step, steps)`` that spend ``tokens`` in at least ``p.min_steps`` steps.

    Returns ``None`` when even one window per step would take fewer steps than that.
    """
    per_window = p.block_size
    batch = math.floor(tokens / (p.min_steps * per_window))
    if batch < 1:
        return None
    return batch, round(tokens / (batch * per_window))


def peak_lr(batch: int, p: IsoFlopBudget) -> float:
    """Peak learning rate of a run with ``batch`` windows per step (square-root rule)."""
    return min(p.lr_max, p.lr * math.sqrt(batch * p.block_size / p.ref_tokens))


def train_budget(ctx, p: IsoFlopBudget):
    """Train every size of the budget to ``D = C / c(N)`` tokens; record final losses."""
    with torch_threads(p.threads):
        return _train_budget(ctx, p)


def _train_budget(ctx, p: IsoFlopBudget):
    import torch

    from genai_report.data.text import CharTokenizer, get_batch, load_corpus, split
    from genai_report.metrics.scaling import count_parameters, flops_per_token
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.loop import TrainConfig, train

    text = load_corpus(corpus_file())
    tok = CharTokenizer.from_text(text)
    train_ids, val_ids = split(tok.encode(text), p.val_fraction)
    dev = ctx.device
    val_gen = torch.Generator().manual_seed(1234)  # the same windows for every run
    val_batches = [get_batch(val_ids, p.eval_batch_size, p.block_size, val_gen)
                   for _ in range(p.eval_batches)]
    runs, planned = [], []
    for i, width in enumerate(p.widths):
        config = GPTConfig(vocab_size=tok.vocab_size, block_size=p.block_size,
                           n_layer=p.n_layer, n_head=max(1, width // p.head_dim),
                           n_embd=width)
        torch.manual_seed(ctx.seed * 1000 + i)  # initial weights: one seed per size
        model = GPT(config).to(dev)
        n = count_parameters(model)["non_embedding"]
        per_token = flops_per_token(n, p.n_layer, p.block_size, width)
        tokens = p.flops / per_token
        plan = schedule(tokens, p)
        run = {"width": width, "n_layer": p.n_layer, "n": n, "tokens": tokens,
               "tokens_per_param": tokens / n}
        if plan is None:
            runs.append({**run, "trained": False,
                         "why": f"{tokens:.0f} tokens fill fewer than {p.min_steps} windows"})
            continue
        batch, steps = plan
        planned.append(steps)
        if p.max_steps:
            steps = min(steps, p.max_steps)
        lr = peak_lr(batch, p)
        gen = ctx.generator(10 + i)

        def loss_fn(m, step, batch=batch, gen=gen):
            x, y = get_batch(train_ids, batch, p.block_size, gen)  # (B, T) each
            return m(x.to(dev), y.to(dev))[1]

        cfg = TrainConfig(steps=steps, lr=lr, warmup_steps=max(1, round(p.warmup_frac * steps)),
                          min_lr_ratio=p.min_lr_ratio, weight_decay=0.0, grad_clip=1.0)
        hist = train(model, loss_fn, cfg, progress=ctx.progress, record_every=100)
        model.eval()
        with torch.no_grad():
            val = float(torch.stack([model(x.to(dev), y.to(dev))[1]
                                     for x, y in val_batches]).mean())
        runs.append({**run, "trained": True, "batch": batch, "steps": steps, "lr": lr,
                     "tokens": steps * batch * p.block_size,
                     "flops": per_token * steps * batch * p.block_size,
                     "val_loss": val, "train_loss": hist.train_loss[-1],
                     "train_s": hist.wall_time_s})
    out = {"flops": p.flops, "block_size": p.block_size, "min_steps": p.min_steps,
           "runs": runs, "trained": sum(r["trained"] for r in runs)}
    if p.max_steps:  # a dry run: tell its estimate how long each run's loop really is
        from genai_report.pipeline.dryrun import PLANNED_STEPS_KEY

        out[PLANNED_STEPS_KEY] = planned
    write_json(ctx, "budget.json", out, indent=None)
    return out
