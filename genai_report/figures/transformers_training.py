"""Transformers chapter, training and use: loss curves, samples at several temperatures,
the timing argument for parallel training, and what tokenization does.

The figures read the trained artifacts ``gpt-char`` and ``bpe-english``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from genai_report.figures._transformers_common import (
    SHOW_CHARS,
    corpus_file,
    first_sentence,
    load_gpt,
)
from genai_report.pipeline import figure


@dataclass(frozen=True)
class LossPlot:
    """Parameters of the loss-curve figure.

    Attributes:
        smooth: window of the moving average over the per-step training loss.
    """

    smooth: int = 25


@figure(
    "transformers-loss",
    deps=("gpt-char",),
    params={"smoke": LossPlot(smooth=3), "quick": LossPlot(), "full": LossPlot(smooth=50)},
    outputs=("loss.svg",),
    seed=44,
    title="Training and validation loss of the character-level GPT.",
    caption="Cross-entropy per character in nats (left axis) and bits (right axis). The "
    "thin line is the loss of each training batch (moving average); markers are "
    "estimates on fixed batches of the training and validation splits. The dashed line "
    "is the entropy of the validation text's character frequencies: what a model that "
    "ignores context could reach at best.",
    alt="Line chart of loss against training step, falling steeply in the first few "
    "hundred steps and then slowly; the training and validation estimates end well below "
    "the dashed unigram-entropy line.",
)
def loss_curves(ctx, p: LossPlot):
    """Plot training and validation loss in nats and bits per character."""
    import math
    from collections import Counter

    import matplotlib.pyplot as plt
    import torch

    from genai_report.plotting import save_figure

    _, _, val_text = load_gpt(ctx.input("gpt-char", "model.pt"))
    h = json.loads(ctx.input("gpt-char", "history.json").read_text())
    counts = torch.tensor(list(Counter(val_text).values()), dtype=torch.float64)
    probs = counts / counts.sum()
    unigram = float(-(probs * probs.log()).sum())
    loss = torch.tensor(h["train_loss"])
    w = max(1, min(p.smooth, len(loss)))
    smooth = loss.unfold(0, w, 1).mean(1)  # (N - w + 1,)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(h["steps"][w - 1:], smooth.tolist(), lw=1, alpha=0.6, label="training batches")
    ev = h["evals"]
    ax.plot([e["step"] for e in ev], [e["train_loss"] for e in ev], marker="o", ms=3,
            label="training split")
    ax.plot([e["step"] for e in ev], [e["val_loss"] for e in ev], marker="s", ms=3,
            label="validation split")
    ax.axhline(unigram, color="0.5", ls="--", lw=1, label="unigram entropy")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / character)")
    lo, hi = ax.get_ylim()
    ax.set_ylim(max(0.0, min(lo, ev[-1]["val_loss"] - 0.2)), min(hi, 4.8))
    sec = ax.secondary_yaxis("right", functions=(lambda x: x / math.log(2),
                                                 lambda x: x * math.log(2)))
    sec.set_ylabel("bits / character")
    ax.legend()
    save_figure(fig, ctx.output("loss.svg"))
    last = ev[-1]
    return {"val_loss_nats": last["val_loss"], "val_bpc": last["val_loss"] / math.log(2),
            "train_loss_nats": last["train_loss"], "unigram_entropy_nats": unigram,
            "unigram_entropy_bits": unigram / math.log(2), "steps": last["step"]}


@dataclass(frozen=True)
class SamplePlot:
    """Parameters of the samples figure.

    Attributes:
        temperatures: sampling temperatures, one sample each.
        n_tokens: characters generated per sample.
        prompt_chars: length of the prompt taken from a validation sentence.
        line: characters per line in the figure.
        n_prompts: held-out prompts over which samples and the real text are averaged.
    """

    temperatures: tuple[float, ...] = (0.5, 0.8, 1.0, 1.5)
    n_tokens: int = 240
    prompt_chars: int = 12
    line: int = 72
    n_prompts: int = 64


def _token_logprobs(model, ids):
    """log p(ids[t] | previous <= block_size ids) for t >= 1, under temperature 1."""
    import torch

    bs = model.config.block_size
    out = []
    with torch.no_grad():
        logits, _ = model(ids[None, :bs])  # (1, T, V)
        lp = logits[0].log_softmax(-1)
        out += lp[:-1].gather(1, ids[1:bs, None])[:, 0].tolist()
        for t in range(bs, len(ids)):
            logits, _ = model(ids[None, t - bs + 1 : t])
            out.append(float(logits[0, -1].log_softmax(-1)[ids[t]]))
    return out


@figure(
    "transformers-samples",
    deps=("gpt-char",),
    params={"smoke": SamplePlot(n_tokens=20, n_prompts=4),
            "quick": SamplePlot(), "full": SamplePlot(n_tokens=400)},
    outputs=("samples.png", "interactive.json"),
    seed=45,
    title="Samples from the GPT at several temperatures, coloured by their log-likelihood.",
    caption="Each block continues the same prompt (bold) at the temperature given. Each "
    "character is coloured by its log-likelihood under the model at temperature 1: dark "
    "characters were likely, orange ones surprising. The title gives the average in "
    "nats per character. On the site the samples are shown as text: hover a character "
    "for its log-likelihood.",
    alt="Four blocks of generated text, one per temperature. At low temperature the text "
    "is repetitive and uniformly dark (likely); at temperature 1.5 it is full of bright, "
    "unlikely characters and broken words.",
)
def samples(ctx, p: SamplePlot):
    """Sample at several temperatures and score each character under the model."""
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib import cm, colors

    from genai_report.plotting import quantize_png, save_figure
    from genai_report.plotting.interactive import INTERACTIVE, text_block, text_view, write_view

    model, tok, val_text = load_gpt(ctx.input("gpt-char", "model.pt"))
    prompt = first_sentence(val_text, p.prompt_chars)
    ids = tok.encode(prompt)[None]  # (1, P)
    rows = []
    for k, temp in enumerate(p.temperatures):
        out = model.generate(ids, p.n_tokens, temperature=temp, generator=ctx.generator(k))[0]
        lp = _token_logprobs(model, out)
        gen_lp = lp[len(prompt) - 1:]
        rows.append({"temperature": temp, "text": tok.decode(out),
                     "mean_logprob_nats": sum(gen_lp) / len(gen_lp), "logprobs": lp})
    norm = colors.Normalize(vmin=-6, vmax=0)
    # plasma without its pale-yellow end, which would vanish as text on white
    cmap = colors.ListedColormap(matplotlib.colormaps["plasma_r"](np.linspace(0.2, 1.0, 256)))
    n_lines = -(-(len(prompt) + p.n_tokens) // p.line)
    height = len(rows) * (n_lines + 1.6)  # in text lines
    fig, ax = plt.subplots(figsize=(0.083 * p.line + 1.2, 0.2 * height + 0.3))
    ax.set_axis_off()
    ax.set_xlim(0, p.line)
    ax.set_ylim(height, 0)
    y = 0.0
    for row in rows:
        ax.text(0, y + 0.5, f"temperature {row['temperature']}: "
                f"{row['mean_logprob_nats']:.2f} nats/char", fontsize=9, va="center")
        y += 1.3
        for t, ch in enumerate(row["text"]):
            color = "black" if t < len(prompt) else cmap(norm(row["logprobs"][t - 1]))
            ax.text(t % p.line, y + t // p.line + 0.5, SHOW_CHARS.get(ch, ch) if ch == "\n" else ch,
                    family="monospace", fontsize=8, va="center", color=color,
                    weight="bold" if t < len(prompt) else "normal")
        y += n_lines + 0.3
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.02, pad=0.01,
                 label="log p(char) (nats)")
    save_figure(fig, ctx.output("samples.png"))
    quantize_png(ctx.output("samples.png"), colors=96)  # text in few colours: a third the bytes
    write_view(ctx.output(INTERACTIVE), text_view(
        [text_block(f"temperature {r['temperature']}: {r['mean_logprob_nats']:.2f} nats/char",
                    r["text"],
                    ["#000000" if t < len(prompt) else colors.to_hex(cmap(norm(r["logprobs"][t - 1])))
                     for t in range(len(r["text"]))],
                    ["prompt" if t < len(prompt) else f"log p = {r['logprobs'][t - 1]:.2f} nats"
                     for t in range(len(r["text"]))], bold=len(prompt)) for r in rows],
        legend="Colour: log-likelihood of each character under the model at temperature 1, "
               "from dark blue (likely, 0 nats) to orange (surprising, -6 nats or less).",
        hint="Hover a character for its log-likelihood. The prompt is in bold."))
    return {"prompt": prompt,
            "reference": _sample_likelihoods(ctx, model, tok, val_text, p),
            "validation_loss_nats": ctx.input_metrics("gpt-char")["val_loss_nats"],
            "samples": {f"t{round(100 * r['temperature']):03d}": {"text": r["text"],
                        "temperature": r["temperature"],
                        "mean_logprob_nats": r["mean_logprob_nats"]} for r in rows}}


def _sample_likelihoods(ctx, model, tok, val_text: str, p: SamplePlot) -> dict:
    """Mean log-likelihood per character (under the model at temperature 1) of samples at
    each temperature and of the real text, over ``p.n_prompts`` held-out prompts.

    Each prompt is the start of a held-out window of ``block_size`` characters; the samples
    continue it to the same length, and the real text is the window's own continuation, so
    every number averages the same positions. Returns ``{"real" | "tNNN": {"mean", "sem",
    "n"}}`` with the standard error of the mean over prompts.
    """
    import torch

    bs = model.config.block_size
    ids = tok.encode(val_text)  # (L,)
    starts = torch.linspace(0, len(ids) - bs - 1, p.n_prompts).long().tolist()
    windows = torch.stack([ids[s: s + bs] for s in starts])  # (N, bs)

    def continuation_logprob(x):  # (N, bs) -> (N,)
        with torch.no_grad():
            lp = model(x)[0].log_softmax(-1)[:, :-1]  # (N, bs - 1, V)
        lp = lp.gather(-1, x[:, 1:, None])[..., 0]  # (N, bs - 1)
        return lp[:, p.prompt_chars - 1:].mean(1)

    def summary(v):
        return {"mean": float(v.mean()), "sem": float(v.std() / len(v) ** 0.5), "n": len(v)}

    out = {"real": summary(continuation_logprob(windows))}
    for k, temp in enumerate(p.temperatures):
        gen = model.generate(windows[:, : p.prompt_chars], bs - p.prompt_chars,
                             temperature=temp, generator=ctx.generator(100 + k))  # (N, bs)
        out[f"t{round(100 * temp):03d}"] = summary(continuation_logprob(gen))
    return out


@dataclass(frozen=True)
class ParallelPlot:
    """Parameters of the parallel-vs-sequential timing figure.

    Attributes:
        lengths: sequence lengths timed.
        batch_size: sequences per forward pass.
        repeats: timed runs per point (the median is kept).
    """

    lengths: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    batch_size: int = 12
    repeats: int = 5


@figure(
    "transformers-parallel",
    params={"smoke": ParallelPlot(lengths=(4, 8), batch_size=2, repeats=1),
            "quick": ParallelPlot(), "full": ParallelPlot(lengths=(16, 32, 64, 128, 256,
                                                                   512, 1024, 2048))},
    outputs=("parallel.svg",),
    seed=46,
    title="A transformer reads a whole sequence at once; a recurrent network must step "
    "through it.",
    caption="Left: time for one forward pass over a batch of sequences against sequence "
    "length (log-log), for a 4-layer GPT of width 128 and a 2-layer GRU of similar size, "
    "measured on the machine and with the torch threads named in its title. 'GRU, step by "
    "step' calls the network once per position; 'GRU, fused loop' is PyTorch's own loop in "
    "C++, still sequential. Right: the number of steps that must run one after another, "
    "which is what parallel hardware cannot overlap. The full profile of the report runs "
    "the same timing on a GPU.",
    alt="Two log-log line charts against sequence length. Left, measured milliseconds "
    "for the transformer and for two ways of running a GRU, all growing with length. "
    "Right, sequential steps: flat at four for the transformer, growing in proportion to "
    "the length for the GRU.",
)
def parallel(ctx, p: ParallelPlot):
    """Time a transformer's parallel forward pass against a GRU stepping token by token."""
    import statistics
    import time

    import matplotlib.pyplot as plt
    import torch

    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.models.rnn import CharGRU
    from genai_report.plotting import save_figure

    torch.manual_seed(ctx.seed)
    V = 96
    dev = ctx.device
    gpt = GPT(GPTConfig(vocab_size=V, block_size=max(p.lengths), n_layer=4, n_head=4,
                        n_embd=128)).to(dev).eval()
    gru = CharGRU(V, n_embd=128, hidden=256, n_layer=2).to(dev).eval()

    def timed(fn, x):
        runs = []
        for _ in range(p.repeats + 1):  # the first run warms up
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.no_grad():
                fn(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            runs.append(1000 * (time.perf_counter() - t0))
        return statistics.median(runs[1:])

    rows = []
    for T in ctx.progress(p.lengths, total=len(p.lengths), desc="lengths"):
        x = torch.randint(V, (p.batch_size, T), generator=ctx.generator()).to(dev)
        rows.append({"length": T, "gpt_ms": timed(gpt, x),
                     "gru_step_ms": timed(gru.forward_stepwise, x),
                     "gru_fused_ms": timed(gru, x)})
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.0), gridspec_kw={"wspace": 0.35})
    Ls = [r["length"] for r in rows]
    ax.plot(Ls, [r["gpt_ms"] for r in rows], marker="o", label="GPT, all positions at once")
    ax.plot(Ls, [r["gru_step_ms"] for r in rows], marker="s", label="GRU, step by step")
    ax.plot(Ls, [r["gru_fused_ms"] for r in rows], marker="^", label="GRU, fused loop")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length")
    ax.set_ylabel(f"forward pass, batch {p.batch_size} (ms)")
    ax.set_title(f"measured here ({dev.type}, {torch.get_num_threads()} threads)", fontsize=9)
    ax.legend(fontsize=8)
    # the longest chain of operations that must run one after another
    ax2.plot(Ls, [gpt.config.n_layer] * len(Ls), marker="o", label="GPT: one step per layer")
    ax2.plot(Ls, [T * gru.gru.num_layers for T in Ls], marker="s", color="C1",
             label="GRU: one step per layer and position")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("sequence length")
    ax2.set_ylabel("sequential steps per forward pass")
    ax2.set_title("what parallel hardware cannot overlap", fontsize=9)
    ax2.legend(fontsize=8)
    save_figure(fig, ctx.output("parallel.svg"))
    last = rows[-1]
    return {"rows": rows, "gpt_params": gpt.num_params(), "gru_params": gru.num_params(),
            "longest": last["length"], "speedup_vs_step": last["gru_step_ms"] / last["gpt_ms"],
            "speedup_vs_fused": last["gru_fused_ms"] / last["gpt_ms"],
            "longest_gpt_ms": last["gpt_ms"], "longest_gru_fused_ms": last["gru_fused_ms"],
            "longest_gru_step_ms": last["gru_step_ms"],
            "device": str(dev), "torch_threads": torch.get_num_threads()}


@dataclass(frozen=True)
class TokenizationPlot:
    """Parameters of the tokenization figure.

    Attributes:
        eval_chars: characters of validation text the sequence lengths are measured on.
        n_points: vocabulary sizes on the curve.
        example: characters of the example sentence segmented in the right panel.
    """

    eval_chars: int = 50_000
    n_points: int = 12
    example: int = 56


@figure(
    "transformers-tokenization",
    deps=("bpe-english",),
    params={"smoke": TokenizationPlot(eval_chars=2000, n_points=4), "quick": TokenizationPlot(),
            "full": TokenizationPlot(n_points=20)},
    outputs=("tokenization.svg", "interactive.json"),
    seed=47,
    data=(corpus_file,),
    title="A bigger vocabulary makes sequences shorter.",
    caption="Byte-pair encoding learned on the start of the corpus, measured on its "
    "validation tail. Left: characters per token (how much shorter the sequence gets) "
    "against vocabulary size; the leftmost point, with no merges, is the character "
    "tokenizer. Right: one sentence cut into tokens at three vocabulary sizes (on the site, "
    "as text: hover a character to see its token).",
    alt="A rising curve of characters per token against vocabulary size, steep at first "
    "and then flattening; beside it the same sentence split into many single-character "
    "tokens, then fewer, then mostly whole words.",
)
def tokenization(ctx, p: TokenizationPlot):
    """Plot BPE's compression against vocabulary size and show a segmented sentence."""
    import matplotlib.pyplot as plt

    from genai_report.data.bpe import BPETokenizer
    from genai_report.data.text import load_corpus
    from genai_report.plotting import save_figure
    from genai_report.plotting.interactive import (
        INTERACTIVE,
        lines_view,
        panel,
        parts_view,
        series,
        text_view,
        token_block,
        write_view,
    )

    blob = json.loads(ctx.input("bpe-english", "bpe.json").read_text())
    bpe = BPETokenizer(tuple(blob["alphabet"]), tuple(tuple(m) for m in blob["merges"]))
    text = load_corpus(corpus_file())
    val = text[-p.eval_chars:]
    val = "".join(c for c in val if c in set(bpe.alphabet))
    M = len(bpe.merges)
    merges = sorted({round(M * (k / (p.n_points - 1)) ** 2) for k in range(p.n_points)})
    curve = [{"vocab_size": len(bpe.alphabet) + m,
              "chars_per_token": len(val) / len(bpe.tokenize(val, m))} for m in merges]
    sentence = first_sentence(val, p.example)
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(7.2, 3.2), gridspec_kw={"width_ratios": [1, 1.9]})
    a0.plot([c["vocab_size"] for c in curve], [c["chars_per_token"] for c in curve], marker="o")
    a0.set_xlabel("vocabulary size")
    a0.set_ylabel("characters per token")
    a1.set_axis_off()
    examples = {}
    for row, m in enumerate(sorted({0, M // 10, M})):
        toks = bpe.tokenize(sentence, m)
        examples[f"v{len(bpe.alphabet) + m}"] = toks
        a1.text(0, 0.95 - 0.33 * row, f"vocabulary {len(bpe.alphabet) + m}: {len(toks)} tokens",
                fontsize=9, transform=a1.transAxes, va="top")
        shown = "|".join(t.replace(" ", "\u00b7") for t in toks)
        wrapped = "\n".join(shown[i : i + 52] for i in range(0, len(shown), 52))
        a1.text(0, 0.86 - 0.33 * row, wrapped, fontsize=8, family="monospace",
                transform=a1.transAxes, va="top", linespacing=1.4)
    save_figure(fig, ctx.output("tokenization.svg"))
    vocab = [c["vocab_size"] for c in curve]
    write_view(ctx.output(INTERACTIVE), parts_view([
        lines_view([panel([series("characters per token", vocab,
                                  [c["chars_per_token"] for c in curve], color="#3b6fb6")],
                          x_label="vocabulary size", y_label="characters per token")]),
        text_view([token_block(f"vocabulary {name[1:]}: {len(toks)} tokens", toks)
                   for name, toks in examples.items()],
                  legend="Tokens alternate in colour; hover a character to see its token."),
    ], hint="The sentence as text, cut into tokens at three vocabulary sizes."))
    return {"curve": curve, "chars_per_token_max": curve[-1]["chars_per_token"],
            "vocab_size_max": curve[-1]["vocab_size"], "sentence": sentence,
            "examples": examples}
