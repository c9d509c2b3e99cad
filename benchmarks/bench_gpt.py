"""Benchmark the character-level GPT: training speed, memory and validation loss.

The configuration is the one nanoGPT's README runs on a CPU: 4 layers, 4 heads, width 128,
context 64, batch 12, no dropout. The script times iterations of the project's shared
training loop (forward, backward, clipping, AdamW step), eager and under ``torch.compile``,
records the resident memory as it goes, and optionally trains for ``--loss-iters`` steps to
report the validation loss at fixed iterations.

Usage::

    python benchmarks/bench_gpt.py                    # timing, eager and compiled
    python benchmarks/bench_gpt.py --compile off --loss-iters 2000
    python benchmarks/bench_gpt.py --corpus my_text.txt --json out.json
    python benchmarks/bench_gpt.py --threads 1        # on a machine shared with other jobs

For scale: nanoGPT runs this configuration at about 36 ms per iteration (~21k tokens/s) with
torch 2.13 on the 2-core CPU, and reports validation loss 1.88 after 2000 iterations on its
Shakespeare text (a different corpus, so the loss is a rough reference only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genai_report.data.text import CharTokenizer, get_batch, load_corpus, split  # noqa: E402
from genai_report.models.gpt import GPT, GPTConfig  # noqa: E402
from genai_report.training.loop import TrainConfig, train  # noqa: E402

BATCH, BLOCK = 12, 64


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_model(vocab: int, device: str) -> GPT:
    cfg = GPTConfig(vocab_size=vocab, block_size=BLOCK, n_layer=4, n_head=4, n_embd=128,
                    dropout=0.0, bias=False)
    torch.manual_seed(1337)
    return GPT(cfg).to(device)


def time_training(train_ids, vocab, iters, warmup, compiled, device):
    """Run ``warmup + iters`` steps of the shared loop; per-step times and RSS samples."""
    model = make_model(vocab, device)
    fwd = torch.compile(model) if compiled else model
    gen = torch.Generator().manual_seed(0)
    stamps, rss = [], []

    def loss_fn(m, step):
        stamps.append(time.perf_counter())
        if step % 25 == 0:
            rss.append((step, rss_mib()))
        x, y = get_batch(train_ids, BATCH, BLOCK, gen)
        return fwd(x.to(device), y.to(device))[1]

    t0 = time.perf_counter()
    train(model, loss_fn, TrainConfig(steps=warmup + iters + 1, lr=1e-3, warmup_steps=10,
                                      weight_decay=0.1, grad_clip=1.0))
    first = stamps[1] - t0 if len(stamps) > 1 else float("nan")
    steps_ms = [1000 * (b - a) for a, b in zip(stamps[warmup:], stamps[warmup + 1:],
                                               strict=False)]
    return steps_ms, rss, first


def loss_run(train_ids, val_ids, vocab, iters, eval_every, device):
    """Train for ``iters`` steps with nanoGPT's schedule; validation loss at intervals."""
    model = make_model(vocab, device)
    gen = torch.Generator().manual_seed(0)

    def loss_fn(m, step):
        x, y = get_batch(train_ids, BATCH, BLOCK, gen)
        return m(x.to(device), y.to(device))[1]

    def evaluate(m):
        g = torch.Generator().manual_seed(123)
        losses = [m(*(t.to(device) for t in get_batch(val_ids, BATCH, BLOCK, g)))[1]
                  for _ in range(50)]
        return {"val_loss": float(torch.stack(losses).mean())}

    cfg = TrainConfig(steps=iters, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99),
                      warmup_steps=100, min_lr_ratio=0.1, grad_clip=1.0, eval_every=eval_every)
    hist = train(model, loss_fn, cfg, eval_fn=evaluate)
    return [(s, m["val_loss"]) for s, m in hist.evals], hist.wall_time_s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="english",
                    help="embedded corpus name (english, python) or a UTF-8 text file")
    ap.add_argument("--iters", type=int, default=200, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=20, help="untimed iterations first")
    ap.add_argument("--compile", choices=("off", "on", "both"), default="both")
    ap.add_argument("--loss-iters", type=int, default=0,
                    help="also train this many iterations and report validation loss")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (0: torch's default, one per core)")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    text = load_corpus(args.corpus)
    tok = CharTokenizer.from_text(text)
    train_ids, val_ids = split(tok.encode(text), 0.1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device "
          f"{args.device}; corpus {args.corpus}: {len(text):,} chars, vocab {tok.vocab_size}")
    print(f"config: n_layer=4 n_head=4 n_embd=128 block_size={BLOCK} batch={BATCH} "
          f"dropout=0, {make_model(tok.vocab_size, 'cpu').num_params() / 1e6:.2f}M params")
    results: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    for compiled in modes:
        name = "compiled" if compiled else "eager"
        steps_ms, rss, first = time_training(train_ids, tok.vocab_size, args.iters,
                                             args.warmup, compiled, args.device)
        med, mean = statistics.median(steps_ms), statistics.fmean(steps_ms)
        later = [r for s, r in rss if s >= args.warmup]
        growth = later[-1] - later[0] if len(later) > 1 else 0.0
        results[name] = {"ms_per_iter_median": med, "ms_per_iter_mean": mean,
                         "tokens_per_s": BATCH * BLOCK / (med / 1000),
                         "first_iter_s": first, "rss_mib": rss,
                         "rss_growth_after_warmup_mib": growth}
        print(f"{name:9s} {med:7.1f} ms/iter (median; mean {mean:.1f}), "
              f"{BATCH * BLOCK / (med / 1000):8.0f} tokens/s, first iteration {first:.1f} s, "
              f"RSS {later[0] if later else 0:.0f} -> {later[-1] if later else 0:.0f} MiB "
              f"({growth:+.1f} MiB after warm-up)")
    if len(modes) == 2:
        speedup = results["eager"]["ms_per_iter_median"] / results["compiled"]["ms_per_iter_median"]
        results["compile_speedup"] = speedup
        saved_ms = results["eager"]["ms_per_iter_median"] - results["compiled"]["ms_per_iter_median"]
        overhead_s = results["compiled"]["first_iter_s"] - results["eager"]["first_iter_s"]
        break_even = 1000 * overhead_s / saved_ms if saved_ms > 0 else float("inf")
        results["compile_break_even_iters"] = break_even
        print(f"torch.compile speed-up per iteration: {speedup:.2f}x; compiling costs "
              f"{overhead_s:.0f} s, repaid after ~{break_even:.0f} iterations "
              f"({'worth it for longer runs' if speedup > 1.05 else 'not worth it'} here)")
    if args.loss_iters:
        curve, wall = loss_run(train_ids, val_ids, tok.vocab_size, args.loss_iters,
                               args.eval_every, args.device)
        results["val_curve"] = curve
        for s, v in curve:
            print(f"step {s:5d}: val loss {v:.3f} nats ({v / math.log(2):.3f} bits) per char")
        print(f"loss run: {wall:.0f} s for {args.loss_iters} iterations "
              f"({1000 * wall / args.loss_iters:.1f} ms/iter including evaluation)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
