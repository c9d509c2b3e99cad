"""One training loop for every model that minimises a single loss.

AdamW with linear warm-up and cosine decay (as in Loshchilov & Hutter, 2017, "SGDR", and
nanoGPT), gradient-norm clipping, periodic evaluation and a progress bar. The caller owns
the data: ``loss_fn(model, step)`` draws its own batch (from its own ``torch.Generator``) and
returns the scalar loss. GANs, with two players, keep their own loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        steps: optimisation steps (>= 1).
        lr: peak learning rate (> 0).
        weight_decay: AdamW decay, applied to matrices only (not biases, norms, embeddings
            of rank 1).
        betas: AdamW's moment coefficients.
        warmup_steps: linear warm-up from 0 to ``lr``.
        min_lr_ratio: the cosine decays to ``lr * min_lr_ratio`` at the last step.
        grad_clip: clip the global gradient norm to this (``0`` disables).
        eval_every: evaluate every this many steps (``0``: only after the last step).
    """

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}.")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps={self.steps}], got "
                             f"{self.warmup_steps}.")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}.")
        if self.grad_clip < 0 or self.eval_every < 0 or self.weight_decay < 0:
            raise ValueError("grad_clip, eval_every and weight_decay must be >= 0.")


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine decay to the floor."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps - 1)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    # lr = floor + (peak - floor) * (1 + cos(pi * progress)) / 2
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters, decaying only those of rank >= 2."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr,
                             betas=config.betas)


@dataclass
class TrainHistory:
    """What a training run measured.

    Attributes:
        steps: the step index of each recorded training loss.
        train_loss: training loss at each of those steps.
        evals: ``(step, metrics)`` for each evaluation.
        grad_norm: global gradient norm before clipping, at the recorded steps (empty when
            ``grad_clip`` is 0).
        wall_time_s: seconds spent in the loop (evaluation included).
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    evals: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    wall_time_s: float = 0.0

    def last_eval(self) -> dict[str, float]:
        """Metrics of the final evaluation (empty if none ran)."""
        return self.evals[-1][1] if self.evals else {}


Progress = Callable[[Iterable[int], int, str], Iterator[int]]


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, int], torch.Tensor],
    config: TrainConfig,
    *,
    eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    progress: Progress | None = None,
    record_every: int = 1,
) -> TrainHistory:
    """Minimise ``loss_fn`` over ``model``'s parameters.

    Args:
        model: the module to train (put it on its device first).
        loss_fn: ``loss_fn(model, step) -> scalar tensor``; draws its own batch.
        config: optimisation settings.
        eval_fn: called in ``eval()`` mode under ``no_grad`` every ``config.eval_every``
            steps and after the last one; returns named metrics.
        progress: wraps the step range in a progress bar (``ctx.progress`` in a node).
        record_every: keep the training loss of every this many steps.

    Returns:
        The :class:`TrainHistory`.
    """
    opt = make_optimizer(model, config)
    history = TrainHistory()
    steps: Iterable[int] = range(config.steps)
    if progress is not None:
        steps = progress(steps, config.steps, "train")
    t0 = time.perf_counter()
    model.train()
    for step in steps:
        lr = lr_at(step, config)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_fn(model, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = None
        if config.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        if step % record_every == 0 or step == config.steps - 1:
            history.steps.append(step)
            history.train_loss.append(loss.item())
            if norm is not None:
                history.grad_norm.append(norm.item())
        last = step == config.steps - 1
        if eval_fn is not None and (last or (config.eval_every and (step + 1) % config.eval_every == 0)):
            model.eval()
            with torch.no_grad():
                history.evals.append((step + 1, dict(eval_fn(model))))
            model.train()
    model.eval()
    history.wall_time_s = time.perf_counter() - t0
    return history
