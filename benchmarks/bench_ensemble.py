"""Benchmark: K diffusion models trained one after the other against one Ensemble of K.

A GPU runs models of our size at the speed it launches kernels, so the number of operators
a training step dispatches is what its time follows (see
:mod:`genai_report.pipeline.dryrun`). This script builds ``K`` class-conditional digits
diffusion models (the ``skewed-diffusion`` architecture), and for each ``K`` measures one
*round* (every model takes one optimiser step) both ways:

* **apart**: ``K`` separate steps (``Diffusion.loss``, backward, clipping, AdamW);
* **ensemble**: one step of the :class:`~genai_report.training.ensemble.Ensemble`
  (:func:`~genai_report.models.diffusion.ensemble_loss`, backward, per-member clipping,
  one AdamW over the stacked parameters).

It prints the operators per round, the FLOPs, the round's predicted time on an H100 (the
dry run's model: operators times the calibrated per-operator overhead, plus FLOPs at the
sustained rate) and the measured CPU time per round here. AdamW runs with ``foreach`` in
both, as it does on a GPU.

Run: ``.venv/bin/python benchmarks/bench_ensemble.py`` (``--help`` for options). Timings
on a shared machine are noisy; the operator counts are exact.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch

from genai_report.models.diffusion import Diffusion, DiffusionConfig, ensemble_loss
from genai_report.pipeline.dryrun import _counter_mode, gpu_class
from genai_report.training.ensemble import Ensemble


def _models(k: int, args: argparse.Namespace) -> list[Diffusion]:
    out = []
    for s in range(k):
        torch.manual_seed(s)
        out.append(Diffusion(DiffusionConfig(data_shape=(1, 8, 8), timesteps=args.timesteps,
                                             hidden=args.hidden, depth=args.depth,
                                             n_classes=10, clip=1.0)))
    return out


def _round_apart(models, opts, x, y, gens):
    for m, opt, g in zip(models, opts, gens, strict=True):
        loss = m.loss(x, y, generator=g, p_uncond=0.3)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()


def _round_ensemble(ens, model, opt, xk, yk, gens):
    loss = ensemble_loss(ens, model, xk, gens, yk, p_uncond=0.3).sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    ens.clip_grad_norm_(1.0)
    opt.step()


def _measure(step, rounds: int) -> tuple[float, int, int]:
    """(median seconds per round, operators, FLOPs) after one warm-up round."""
    step()
    counter = _counter_mode()
    with counter:
        step()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), counter.step.ops, counter.step.flops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 6, 10])
    parser.add_argument("--hidden", type=int, default=512, help="the full profile's width")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--timesteps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gpu", default="h100")
    args = parser.parse_args()
    gpu = gpu_class(args.gpu)
    x = torch.randn(args.batch, 1, 8, 8)
    y = torch.randint(0, 10, (args.batch,))
    print(f"{torch.get_num_threads()} thread(s); hidden {args.hidden}, depth {args.depth}, "
          f"batch {args.batch}; predicted for {gpu.name}, {gpu.op_overhead_us} us per operator")
    print(f"{'K':>3} {'way':9} {'ops/round':>9} {'GFLOP':>7} {'pred. ms':>9} {'CPU ms':>8}")
    for k in args.ks:
        models = _models(k, args)
        opts = [torch.optim.AdamW(m.parameters(), lr=1e-3, foreach=True) for m in models]
        gens = [torch.Generator().manual_seed(i) for i in range(k)]
        apart = _measure(partial(_round_apart, models, opts, x, y, gens), args.rounds)
        ens = Ensemble([m.denoiser for m in _models(k, args)])
        opt = torch.optim.AdamW(ens.parameters(), lr=1e-3, foreach=True)
        xk, yk = x.expand(k, *x.shape), y.expand(k, *y.shape)
        together = _measure(partial(_round_ensemble, ens, models[0], opt, xk, yk, gens),
                            args.rounds)
        for way, (sec, ops, flops) in (("apart", apart), ("ensemble", together)):
            pred = gpu.step_seconds(ops, flops)
            print(f"{k:3d} {way:9} {ops:9d} {flops / 1e9:7.1f} {pred * 1e3:9.2f} "
                  f"{sec * 1e3:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
