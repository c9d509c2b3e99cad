"""The shared training loop: schedule, clipping, evaluation, progress."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from genai_report.training.loop import TrainConfig, lr_at, make_optimizer, train


def test_lr_schedule_warmup_then_cosine_to_floor():
    cfg = TrainConfig(steps=110, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(cfg.steps)]
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[9] == pytest.approx(1e-3)  # end of warm-up is the peak
    assert lrs[:10] == sorted(lrs[:10])
    after = lrs[10:]
    assert after == sorted(after, reverse=True)
    assert after[-1] == pytest.approx(1e-4)  # floor at the last step
    mid = 10 + 99 // 2
    assert lrs[mid] == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 49 / 99)))
    assert lr_at(0, TrainConfig(steps=5, lr=0.1)) == pytest.approx(0.1)  # no warm-up


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps"), ({"steps": 5, "lr": 0}, "lr"),
    ({"steps": 5, "warmup_steps": 6}, "warmup"), ({"steps": 5, "min_lr_ratio": 2}, "min_lr"),
    ({"steps": 5, "grad_clip": -1}, ">= 0"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def _clip_probe():
    """Record the global gradient norm the optimiser sees at each step."""
    seen = []

    def hook(opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g) for g in grads]))))

    return seen, register_optimizer_step_pre_hook(hook)


@pytest.mark.parametrize("clip", [0.0, 0.5])
def test_gradient_clipping(clip):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x = torch.randn(16, 4)
    seen, handle = _clip_probe()
    try:
        hist = train(model, lambda m, s: (m(x) * 100).pow(2).mean(),
                     TrainConfig(steps=3, lr=1e-3, grad_clip=clip))
    finally:
        handle.remove()
    assert len(seen) == 3
    if clip:
        assert max(seen) <= clip * (1 + 1e-5)
        assert len(hist.grad_norm) == 3 and min(hist.grad_norm) > clip  # norms before clipping
    else:
        assert max(seen) > 1.0 and hist.grad_norm == []


def test_weight_decay_only_on_matrices():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    opt = make_optimizer(model, TrainConfig(steps=1, weight_decay=0.1))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[0].weight)}


def test_train_minimises_evaluates_and_reports_progress():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    x = torch.randn(64, 2)
    y = x @ torch.tensor([[2.0], [-1.0]]) + 0.5
    modes = []

    def evaluate(m):
        modes.append((m.training, torch.is_grad_enabled()))
        return {"mse": float((m(x) - y).pow(2).mean())}

    bars = []

    def progress(it, total, desc):
        bars.append((total, desc))
        return iter(it)

    hist = train(model, lambda m, s: (m(x) - y).pow(2).mean(),
                 TrainConfig(steps=300, lr=0.05, warmup_steps=10, eval_every=100),
                 eval_fn=evaluate, progress=progress, record_every=10)
    assert [s for s, _ in hist.evals] == [100, 200, 300]
    assert modes == [(False, False)] * 3
    assert hist.last_eval()["mse"] < 1e-3
    assert hist.steps[:3] == [0, 10, 20] and hist.steps[-1] == 299
    assert bars == [(300, "train")]
    assert not model.training and hist.wall_time_s > 0
