"""Benchmark: our 2-D diffusion model against tiny-diffusion's recipe, on two moons.

tiny-diffusion (github.com/tanelp/tiny-diffusion) is a public minimal DDPM: a 3-block MLP of
width 128 over sinusoidal embeddings of x and t, T = 50 steps, batch 32, Adam at 1e-3, and
50,000 steps (about 125 s on the reference 2-core machine). This script re-implements that
baseline, times a slice of its training and extrapolates to 50,000 steps, then trains our
:class:`~genai_report.models.diffusion.Diffusion` (larger batches, a shorter run, vectorised
sampling) and reports, for both, the kernel MMD of 2,000 samples to 2,000 held-out points.

Run: ``.venv/bin/python benchmarks/bench_diffusion2d.py`` (``--help`` for options). Timings on
a shared machine are noisy; compare the ratio, and re-run on a quiet machine.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

from genai_report.data import toy2d
from genai_report.metrics.mmd import mmd
from genai_report.models.diffusion import Diffusion, DiffusionConfig
from genai_report.training.loop import TrainConfig, train


class _Sinusoidal(nn.Module):
    def __init__(self, size: int, scale: float = 1.0):
        super().__init__()
        self.size, self.scale = size, scale

    def forward(self, x):
        half = self.size // 2
        f = torch.exp(-math.log(10000.0) * torch.arange(half) / (half - 1))
        a = (x * self.scale)[:, None] * f[None]
        return torch.cat([a.sin(), a.cos()], dim=-1)


class TinyMLP(nn.Module):
    """tiny-diffusion's network: embeddings of x1, x2 (scale 25) and t, 3 residual GELU blocks."""

    def __init__(self, hidden: int = 128, layers: int = 3, emb: int = 128):
        super().__init__()
        self.ex, self.et = _Sinusoidal(emb, 25.0), _Sinusoidal(emb)
        self.inp = nn.Sequential(nn.Linear(3 * emb, hidden), nn.GELU())
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(hidden, hidden), nn.GELU())
                                    for _ in range(layers))
        self.out = nn.Linear(hidden, 2)

    def forward(self, x, t):
        h = self.inp(torch.cat([self.ex(x[:, 0]), self.ex(x[:, 1]), self.et(t.float())], -1))
        for b in self.blocks:
            h = h + b(h)
        return self.out(h)


def tiny_baseline(train_x, steps: int, gen: torch.Generator, T: int = 50):
    """Train tiny-diffusion's recipe for ``steps`` steps; return (model, seconds, tables)."""
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    ab = torch.cumprod(1 - betas, 0)
    net = TinyMLP()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(steps):
        x0 = train_x[torch.randint(0, len(train_x), (32,), generator=gen)]
        t = torch.randint(0, T, (32,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        xt = ab[t].sqrt().float()[:, None] * x0 + (1 - ab[t]).sqrt().float()[:, None] * noise
        loss = nn.functional.mse_loss(net(xt, t), noise)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    return net, time.perf_counter() - t0, (betas.float(), ab.float())


@torch.no_grad()
def tiny_sample(net, tables, n: int, gen: torch.Generator):
    """tiny-diffusion's ancestral sampler."""
    betas, ab = tables
    x = torch.randn(n, 2, generator=gen)
    for t in range(len(betas) - 1, -1, -1):
        eps = net(x, torch.full((n,), t))
        x = (x - betas[t] / (1 - ab[t]).sqrt() * eps) / (1 - betas[t]).sqrt()
        if t > 0:
            var = betas[t] * (1 - ab[t - 1]) / (1 - ab[t])
            x = x + var.sqrt() * torch.randn(x.shape, generator=gen)
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="two-moons")
    ap.add_argument("--baseline-probe-steps", type=int, default=2000,
                    help="tiny-diffusion steps actually timed (extrapolated to 50,000)")
    ap.add_argument("--baseline-full", action="store_true", help="train all 50,000 baseline steps")
    ap.add_argument("--steps", type=int, default=2000, help="our training steps")
    ap.add_argument("--batch", type=int, default=1024, help="our batch size")
    ap.add_argument("--timesteps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    train_x = toy2d.sample(args.dataset, 8000, gen)
    test_x = toy2d.sample(args.dataset, 2000, gen)
    floor = mmd(toy2d.sample(args.dataset, 2000, gen), test_x)

    base_steps = 50_000 if args.baseline_full else args.baseline_probe_steps
    net, secs, tables = tiny_baseline(train_x, base_steps, gen)
    est_full = secs * 50_000 / base_steps
    t0 = time.perf_counter()
    base_samples = tiny_sample(net, tables, 2000, gen)
    base_sample_s = time.perf_counter() - t0

    model = Diffusion(DiffusionConfig(data_shape=(2,), timesteps=args.timesteps, hidden=128,
                                      depth=2))
    x = train_x

    def loss_fn(m, step):
        return m.loss(x[torch.randint(0, len(x), (args.batch,), generator=gen)], generator=gen)

    hist = train(model, loss_fn, TrainConfig(steps=args.steps, lr=2e-3,
                                             warmup_steps=args.steps // 20))
    t0 = time.perf_counter()
    ours = model.sample(2000, generator=gen)
    ours_sample_s = time.perf_counter() - t0

    rows = [
        ("tiny-diffusion", f"{base_steps} x 32", secs, est_full, base_sample_s,
         mmd(base_samples, test_x)),
        ("ours", f"{args.steps} x {args.batch}", hist.wall_time_s, hist.wall_time_s,
         ours_sample_s, mmd(ours, test_x)),
    ]
    print(f"data: {args.dataset}; MMD floor (fresh real points vs held-out): {floor:.5f}")
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'model':<16}{'steps x batch':>16}{'train s':>10}{'est. 50k s':>12}"
          f"{'sample s':>10}{'MMD':>10}")
    for name, sb, s, est, ss, m in rows:
        print(f"{name:<16}{sb:>16}{s:>10.1f}{est:>12.1f}{ss:>10.2f}{m:>10.5f}")
    print(f"our training time / tiny-diffusion's (est. 50k steps): "
          f"{hist.wall_time_s / est_full:.2f}")
    print("note: the baseline MMD is after the probed steps only unless --baseline-full.")


if __name__ == "__main__":
    main()
