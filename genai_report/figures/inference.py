"""Figures of "What a token costs": the KV cache, quantization, speculative decoding.

Every figure reads the trained character GPT ``gpt-char``; speculative decoding also reads
the small ``inference-draft-gpt``. Timings are medians of repeated, interleaved
measurements, recorded with the number of torch threads; they go into the records only.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts.scaling import torch_threads
from genai_report.figures._inference_common import corpus_file, heldout_nats, median_time
from genai_report.pipeline import figure


@dataclass(frozen=True)
class KVCachePlot:
    """Settings of the KV-cache timing.

    Attributes:
        batch: sequences decoded side by side (a server's batch).
        repeats: timed decode steps per length and mode (the median is kept).
        warmup: untimed steps before them.
        n_lengths: context lengths measured, doubling up to the model's ``block_size``.
    """

    batch: int = 8
    repeats: int = 21
    warmup: int = 3
    n_lengths: int = 4


@figure(
    "inference-kv-cache",
    deps=("gpt-char",),
    params={"smoke": KVCachePlot(batch=2, repeats=3, warmup=1, n_lengths=2),
            "quick": KVCachePlot(), "full": KVCachePlot(n_lengths=6)},
    outputs=("kv-cache.svg",),
    seed=91,
    title="A key/value cache makes each new token cost one position, not the whole context.",
    caption="Decoding one token for a batch of sequences with the trained character GPT, "
            "with and without the key/value cache. Left: tokens per second against the "
            "context length (median of repeated steps). Right: the measured speed-up beside "
            "the ratio of matrix-multiply FLOPs that predicts it, and a fit of time as a "
            "fixed cost per forward pass plus FLOPs at a constant rate.",
    alt="Left: two lines of tokens per second; the cached one stays flat while the uncached "
        "one falls with context length. Right: the FLOP ratio grows in proportion to the "
        "length, the measured speed-up grows more slowly.",
)
def kv_cache(ctx, p: KVCachePlot):
    """Time one decode step with and without the cache at doubling context lengths.

    Timed with one torch thread: decoding steps of models this small gain nothing from
    intra-op threads, and on a shared CPU a second thread waiting for a busy core only adds
    noise to the timings.
    """
    with torch_threads(1):
        return _kv_cache(ctx, p)


def _kv_cache(ctx, p: KVCachePlot):
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter, NullLocator

    from genai_report.artifacts.applications import load_gpt
    from genai_report.metrics.inference import decode_flops
    from genai_report.models.speculative import extend
    from genai_report.plotting import save_figure

    model, tok, blob = load_gpt(ctx.input("gpt-char", "model.pt"), ctx.device)
    cfg = model.config
    bs = cfg.block_size
    lengths = [bs // 2 ** i for i in range(p.n_lengths)][::-1]
    ids = tok.encode(blob["val_text"])
    gen = ctx.generator(1)
    rows = []
    for T in lengths:
        starts = torch.randint(len(ids) - T, (p.batch,), generator=gen)
        seq = torch.stack([ids[s: s + T] for s in starts]).to(ctx.device)  # (B, T)
        _, cache = extend(model, seq[:, :-1])  # the cache of the first T - 1 positions

        def cached(seq=seq, cache=cache):
            extend(model, seq, cache)  # one new position

        def full(seq=seq):
            extend(model, seq)  # all T positions again

        # interleave the two so that a slow spell of a shared CPU hits both
        t_c, t_u = [], []
        for _ in range(3):
            t_c.append(median_time(cached, p.repeats // 3 or 1, p.warmup))
            t_u.append(median_time(full, p.repeats // 3 or 1, p.warmup))
        tc, tu = float(np.median(t_c)), float(np.median(t_u))
        fc = decode_flops(cfg.n_layer, cfg.n_embd, cfg.vocab_size, T, cached=True) * p.batch
        fu = decode_flops(cfg.n_layer, cfg.n_embd, cfg.vocab_size, T, cached=False) * p.batch
        rows.append({"length": T, "cached_ms": 1000 * tc, "uncached_ms": 1000 * tu,
                     "cached_tokens_per_s": p.batch / tc, "uncached_tokens_per_s": p.batch / tu,
                     "speedup": tu / tc, "flops_cached": fc, "flops_uncached": fu,
                     "flop_ratio": fu / fc})
    # time = overhead + flops / rate, least squares over both modes
    A = np.array([[1.0, r[k]] for r in rows for k in ("flops_cached", "flops_uncached")])
    t = np.array([r[k] / 1000 for r in rows for k in ("cached_ms", "uncached_ms")])
    (overhead, per_flop), *_ = np.linalg.lstsq(A, t, rcond=None)
    overhead, per_flop = max(float(overhead), 0.0), max(float(per_flop), 1e-15)

    L = [r["length"] for r in rows]
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(7.2, 3.0))
    a0.plot(L, [r["cached_tokens_per_s"] for r in rows], marker="o", label="with KV cache")
    a0.plot(L, [r["uncached_tokens_per_s"] for r in rows], marker="s", label="recomputed")
    a0.set_xscale("log", base=2)
    a0.set_yscale("log")
    a0.set_xlabel("context length (tokens)")
    a0.set_ylabel("tokens / s")
    a0.legend(fontsize=8)
    a1.plot(L, [r["flop_ratio"] for r in rows], marker="^", color="C5", label="FLOP ratio")
    a1.plot(L, [r["speedup"] for r in rows], marker="o", color="C2", label="measured")
    model_ratio = [(overhead + r["flops_uncached"] * per_flop)
                   / (overhead + r["flops_cached"] * per_flop) for r in rows]
    a1.plot(L, model_ratio, ls="--", color="C2", alpha=0.7, label="fixed cost + FLOPs fit")
    a1.set_xscale("log", base=2)
    a1.set_yscale("log")
    a1.set_xlabel("context length (tokens)")
    a1.set_ylabel("uncached / cached")
    a1.legend(fontsize=8)
    for ax in (a0, a1):
        ax.set_xticks(L, [str(n) for n in L])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    save_figure(fig, ctx.output("kv-cache.svg"))
    last = rows[-1]
    # end to end: generate() of a whole block with and without the cache
    prompt = ids[:1].repeat(p.batch, 1).to(ctx.device)

    def run(use_cache):
        def go():
            model.generate(prompt, bs - 1, generator=torch.Generator().manual_seed(0),
                           use_cache=use_cache)
        return go

    gen_cached = median_time(run(True), max(1, p.repeats // 7), 1)
    gen_full = median_time(run(False), max(1, p.repeats // 7), 1)
    return {
        "threads": torch.get_num_threads(),
        "batch": p.batch,
        "lengths": L,
        "rows": rows,
        "longest": last["length"],
        "speedup_longest": last["speedup"],
        "flop_ratio_longest": last["flop_ratio"],
        "speedup_shortest": rows[0]["speedup"],
        "overhead_ms": 1000 * overhead,
        "gflops_per_s": 1e-9 / per_flop,
        "generate_speedup": gen_full / gen_cached,
        "generate_tokens": bs,
        # keys and values of every layer, float32: what the cache holds per position
        "cache_bytes_per_token": 2 * cfg.n_layer * cfg.n_embd * 4,
        "cache_bytes_longest": 2 * cfg.n_layer * cfg.n_embd * 4 * last["length"] * p.batch,
    }


@dataclass(frozen=True)
class QuantPlot:
    """Settings of the quantization comparison.

    Attributes:
        calib_windows: training windows whose activations calibrate GPTQ.
        eval_chars: held-out characters the validation loss is measured on.
        n_samples: samples per model for the quality check (same random numbers for all;
            ``same_chars`` counts the characters before a sample first differs from the
            float model's).
        group_size: inputs per scale of the group-wise variants.
    """

    calib_windows: int = 128
    eval_chars: int = 10_000
    n_samples: int = 16
    group_size: int = 32


QUANT_METHODS = (("rtn", 8, False), ("rtn", 4, False), ("rtn", 4, True), ("gptq", 4, False),
                 ("gptq", 4, True), ("rtn", 3, False), ("rtn", 3, True), ("gptq", 3, False),
                 ("gptq", 3, True))
"""(method, bits, grouped) of each quantized model, besides float32."""


@figure(
    "inference-quantization",
    deps=("gpt-char",),
    params={"smoke": QuantPlot(calib_windows=8, eval_chars=1000, n_samples=2),
            "quick": QuantPlot(), "full": QuantPlot(calib_windows=256, eval_chars=40_000)},
    outputs=("quantization.svg",),
    seed=92,
    data=(corpus_file,),
    title="Eight bits per weight cost nothing; at four and three, error-aware rounding helps.",
    caption="The trained character GPT with the linear weights of its blocks quantized after "
            "training (embeddings and LayerNorms stay float32). Left: held-out loss against "
            "the bytes the model occupies. Right: the loss increase over float32 against "
            "bits per quantized weight, scales included. RTN: per-channel round to nearest; "
            "g: one scale per group of inputs; GPTQ: rounding with error feedback "
            "(Frantar et al. 2023).",
    alt="Scatter of loss against model size: float32 at the right, int8 at a quarter of the "
        "size at the same loss, int4 and int3 smaller and higher; GPTQ and grouped points "
        "lie below plain rounding at the same bits.",
)
def quantization(ctx, p: QuantPlot):
    """Quantize gpt-char's block weights with RTN and GPTQ; loss, size and samples."""
    import math

    import matplotlib.pyplot as plt
    import torch
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    from genai_report.artifacts.applications import load_gpt
    from genai_report.data.text import CharTokenizer, get_batch, load_corpus, split
    from genai_report.models.quantize import (
        QuantSpec,
        calibration_hessians,
        quantizable_linears,
        quantize_gpt,
        storage_bytes,
    )
    from genai_report.plotting import save_figure

    model, tok, blob = load_gpt(ctx.input("gpt-char", "model.pt"), ctx.device)
    bs = model.config.block_size
    text = load_corpus(corpus_file())
    if CharTokenizer.from_text(text).chars != tok.chars:
        raise ValueError("The corpus does not match gpt-char's vocabulary; re-run gpt-char.")
    train_ids, _ = split(tok.encode(text), 0.1, 10_000)  # gpt-char's split
    calib = [get_batch(train_ids, 16, bs, ctx.generator(1))[0].to(ctx.device)
             for _ in range(max(1, p.calib_windows // 16))]
    hess = calibration_hessians(model, calib)
    val = tok.encode(blob["val_text"][: p.eval_chars])
    prompt = val[:1].repeat(p.n_samples, 1).to(ctx.device)

    def evaluate(m, reference=None):
        nats, n = heldout_nats(m, val, bs, ctx.device)
        # the same random numbers for every model: samples differ only where the models do
        out = m.generate(prompt, bs - 1, generator=ctx.generator(2))  # (S, bs)
        with torch.no_grad():  # the float model judges every model's samples
            judge = float(model(out[:, :-1], out[:, 1:].contiguous())[1]) / math.log(2)
        ref = out if reference is None else reference
        differs = torch.cat([(out[:, 1:] != ref[:, 1:]), torch.ones_like(out[:, :1], dtype=bool)],
                            1)  # (S, bs): a sentinel at the end
        same = float(differs.float().argmax(1).float().mean())  # characters before the first
        return {"val_loss": nats / n, "judge_bpc": judge, "same_chars": same,
                "sample": tok.decode(out[0, 1:])}, out

    n_quant = sum(m.weight.numel() for m in quantizable_linears(model).values())
    base, ref = evaluate(model)
    loss32 = base["val_loss"]
    fp_bytes = storage_bytes(model)
    results = {"float32": {"label": "float32", "bits": 32.0, "bytes": fp_bytes,
                           "rel_increase": 0.0, **base}}
    for method, bits, grouped in QUANT_METHODS:
        spec = QuantSpec(bits, p.group_size if grouped else None, method)
        qmodel, weights = quantize_gpt(model, spec, hess)
        ev, _ = evaluate(qmodel, ref)
        w_bits = sum(8 * w.nbytes() for w in weights.values()) / n_quant
        results[spec.label.replace("-", "_")] = {
            "label": spec.label, "method": method, "bits": bits, "group_size": spec.group_size,
            "bits_per_weight": w_bits, "bytes": storage_bytes(qmodel, weights),
            "rel_increase": ev["val_loss"] / loss32 - 1, **ev}

    FLOOR = 1e-4  # increases below 0.01% are drawn at 0.01%
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(7.2, 3.1))
    style = {"rtn": ("o", "C0"), "gptq": ("s", "C1")}
    a0.axhline(loss32, color="C5", lw=1, ls=":")
    a0.axhspan(loss32, loss32 * 1.01, color="C5", alpha=0.15, lw=0)
    a0.scatter([fp_bytes / 1024], [loss32], marker="D", color="C5", label="float32", zorder=3)
    for grouped, filled in ((False, True), (True, False)):
        for method in ("rtn", "gptq"):
            pts = [r for r in results.values()
                   if r.get("method") == method and bool(r["group_size"]) == grouped]
            marker, color = style[method]
            kw = {"color": color} if filled else {"facecolors": "none", "edgecolors": color}
            name = method.upper() + (f" g{p.group_size}" if grouped else " per-channel")
            a0.scatter([r["bytes"] / 1024 for r in pts], [r["val_loss"] for r in pts],
                       marker=marker, label=name, zorder=3, **kw)
            a1.scatter([r["bits_per_weight"] for r in pts],
                       [100 * max(r["rel_increase"], FLOOR) for r in pts], marker=marker,
                       zorder=3, **kw)
    int8 = results["rtn_int8"]
    if int8["rel_increase"] < FLOOR:  # drawn on the floor of the log axis, and said so
        a1.annotate(f"int8: {100 * int8['rel_increase']:+.4f}%",
                    (int8["bits_per_weight"], 100 * FLOOR), xytext=(0, 8),
                    textcoords="offset points", ha="right", fontsize=8)
    a0.set_xscale("log")
    ticks = [t for t in (250, 500, 1000, 2000, 4000)
             if min(r["bytes"] for r in results.values()) / 1024 / 1.5 < t
             < fp_bytes / 1024 * 1.5]
    a0.set_xticks(ticks, [str(t) for t in ticks])
    a0.xaxis.set_minor_formatter(NullFormatter())
    a0.set_xlabel("model size (KiB)")
    a0.set_ylabel("held-out loss (nats/char)")
    a0.legend(fontsize=8, loc="upper right")
    a1.axhline(1.0, color="C5", lw=1, ls=":")
    a1.text(8.3, 1.1, "1%", fontsize=8, color="C5", ha="right", va="bottom")
    a1.set_yscale("log")
    a1.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    a1.set_xlabel("bits per quantized weight (scales included)")
    a1.set_ylabel("loss increase (%)")
    fig.tight_layout()
    save_figure(fig, ctx.output("quantization.svg"))
    return {"methods": results, "n_quantized_weights": n_quant, "eval_chars": len(val) - 1,
            "fp32_bytes": fp_bytes, "int8_rel_increase": results["rtn_int8"]["rel_increase"],
            "int8_size_ratio": results["rtn_int8"]["bytes"] / fp_bytes}


@dataclass(frozen=True)
class SpeculativePlot:
    """Settings of the speculative-decoding measurement.

    Attributes:
        ks: draft tokens per round.
        n_prompts: prompts (from held-out text) generated from, one sequence each.
        prompt_len: characters per prompt; each generation fills the model's context.
        repeats: timed repetitions (interleaved; medians kept).
        alpha_windows: held-out windows on which the expected acceptance is computed.
    """

    ks: tuple[int, ...] = (1, 2, 3, 4, 6)
    n_prompts: int = 6
    prompt_len: int = 8
    repeats: int = 3
    alpha_windows: int = 32


@figure(
    "inference-speculative",
    deps=("gpt-char", "inference-draft-gpt"),
    params={"smoke": SpeculativePlot(ks=(1, 2), n_prompts=1, repeats=1, alpha_windows=4),
            "quick": SpeculativePlot(), "full": SpeculativePlot(ks=(1, 2, 3, 4, 6, 8, 12))},
    outputs=("speculative.svg",),
    seed=93,
    title="A small draft model speeds up sampling from the large one without changing it.",
    caption="Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): the one-layer "
            "draft GPT proposes k characters, the four-layer GPT checks them in one pass. "
            "Left: share of proposals kept, and tokens emitted per pass of the large model "
            "against the prediction from the models' distributions. Right: wall-clock "
            "speed-up over the large model's own cached sampling (median of repeats), and "
            "the speed-up predicted from the acceptance and the measured cost ratio.",
    alt="Left: the kept share falls with k while tokens per pass rise and level off, "
        "following the predicted curve. Right: the speed-up rises above 1 for small k "
        "and falls below 1 for large k.",
)
def speculative(ctx, p: SpeculativePlot):
    """Acceptance and wall-clock speed-up of speculative sampling against k (one thread)."""
    with torch_threads(1):
        return _speculative(ctx, p)


def _speculative(ctx, p: SpeculativePlot):
    import statistics
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from genai_report.artifacts.applications import load_gpt
    from genai_report.models.speculative import speculative_generate
    from genai_report.plotting import save_figure

    target, tok, blob = load_gpt(ctx.input("gpt-char", "model.pt"), ctx.device)
    draft, dtok, _ = load_gpt(ctx.input("inference-draft-gpt", "model.pt"), ctx.device)
    if dtok.chars != tok.chars:
        raise ValueError("The draft and gpt-char have different vocabularies; re-run both.")
    bs = min(target.config.block_size, draft.config.block_size)
    val = tok.encode(blob["val_text"])
    step = max(1, (len(val) - p.prompt_len) // p.n_prompts)
    prompts = [val[i * step: i * step + p.prompt_len][None].to(ctx.device)
               for i in range(p.n_prompts)]
    new = bs - p.prompt_len

    # expected acceptance alpha = E[sum_x min(p(x), q(x))] = 1 - E[TV(p, q)] on held-out text
    with torch.no_grad():
        x = torch.stack([val[i * bs: i * bs + bs] for i in range(p.alpha_windows)])
        pt = target(x.to(ctx.device))[0].double().softmax(-1)  # (W, T, V)
        qd = draft(x.to(ctx.device))[0].double().softmax(-1)
        alpha = float(torch.minimum(pt, qd).sum(-1).mean())

    times = {k: [] for k in ("base", *p.ks)}
    stats = {k: [] for k in p.ks}
    target.generate(prompts[0], new, generator=torch.Generator().manual_seed(0))  # warm-up
    for r in range(p.repeats):
        totals = dict.fromkeys(times, 0.0)
        for i, pr in enumerate(prompts):
            # prompt by prompt, every method back to back: a slow spell of the shared CPU
            # hits all of them alike; the same seed for each method's random numbers
            seed = ctx.seed + 1000 * r + i
            t0 = time.perf_counter()
            target.generate(pr, new, generator=torch.Generator().manual_seed(seed))
            totals["base"] += time.perf_counter() - t0
            for k in p.ks:
                t0 = time.perf_counter()
                _, st = speculative_generate(target, draft, pr, new, k,
                                             generator=torch.Generator().manual_seed(seed))
                totals[k] += time.perf_counter() - t0
                stats[k].append(st)
        for k, v in totals.items():
            times[k].append(v)
    # cost ratio c of Leviathan et al.: one draft pass over one target pass, as they ran
    every = [s for k in p.ks for s in stats[k]]
    draft_step = sum(s.draft_s for s in every) / sum(s.proposed for s in every)
    target_step = sum(s.target_s for s in every) / sum(s.rounds for s in every)
    cost_ratio = draft_step / target_step
    rows = []
    for k in p.ks:
        st = stats[k]
        speedups = [b / s for b, s in zip(times["base"], times[k], strict=True)]
        proposed = sum(s.proposed for s in st)
        rows.append({
            "k": k,
            "acceptance": sum(s.accepted for s in st) / proposed,
            "tokens_per_round": sum(s.emitted for s in st) / sum(s.rounds for s in st),
            "predicted_tokens_per_round": (1 - alpha ** (k + 1)) / (1 - alpha),
            "speedup": statistics.median(speedups),
            "speedups": speedups,
            # Leviathan et al., Theorem 3.8: (1 - alpha^(k+1)) / ((1 - alpha)(k c + 1))
            "predicted_speedup": (1 - alpha ** (k + 1)) / ((1 - alpha) * (k * cost_ratio + 1)),
        })
    best = max(rows, key=lambda r: r["speedup"])

    ks = list(p.ks)
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(7.2, 3.0))
    a0.plot(ks, [r["tokens_per_round"] for r in rows], marker="o", label="tokens per pass")
    a0.plot(ks, [r["predicted_tokens_per_round"] for r in rows], ls="--", color="C0",
            alpha=0.7, label="predicted from \u03b1")
    a0.plot(ks, [r["acceptance"] for r in rows], marker="s", color="C1",
            label="share of drafts kept")
    a0.set_xlabel("draft tokens per round k")
    a0.set_ylabel("tokens / share")
    a0.legend(fontsize=8)
    spread = np.array([[r["speedup"] - min(r["speedups"]), max(r["speedups"]) - r["speedup"]]
                       for r in rows]).T
    a1.errorbar(ks, [r["speedup"] for r in rows], yerr=spread, marker="o", color="C2",
                capsize=3, label="measured (median, range)")
    a1.plot(ks, [r["predicted_speedup"] for r in rows], ls="--", color="C2", alpha=0.7,
            label="predicted")
    a1.axhline(1.0, color="C5", lw=1, ls=":")
    a1.set_xlabel("draft tokens per round k")
    a1.set_ylabel("speed-up over plain sampling")
    a1.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, ctx.output("speculative.svg"))
    return {"threads": torch.get_num_threads(), "alpha": alpha, "cost_ratio": cost_ratio,
            "rows": rows, "best_k": best["k"], "best_speedup": best["speedup"],
            "best_predicted_speedup": best["predicted_speedup"],
            "speedup_k1": rows[0]["speedup"], "worst_speedup": min(r["speedup"] for r in rows),
            "new_tokens": new, "n_prompts": p.n_prompts,
            "target_params": target.num_params(), "draft_params": draft.num_params(),
            "target_step_ms": 1000 * target_step, "draft_step_ms": 1000 * draft_step,
            "base_ms_per_token": 1000 * statistics.median(times["base"]) / (new * p.n_prompts)}
