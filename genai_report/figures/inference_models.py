"""Figures of "What a token costs" that train their own small models, several seeds each.

* ``inference-tokenization``: the same GPT on characters and on BPE tokens at equal
  training FLOPs; bits per character, sequence length, embedding parameters.

:class:`SmallLM` and :func:`_train` are shared with :mod:`.inference_masked`.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.figures._inference_common import corpus_file, heldout_nats
from genai_report.pipeline import figure


@dataclass(frozen=True)
class SmallLM:
    """The small GPT both figures train (see ``GPTConfig`` and ``TrainConfig``).

    Attributes:
        n_layer, n_head, n_embd, block_size: the model.
        batch_size, steps, lr, warmup_steps: optimisation (``steps`` of the character or
            causal model; the other one's steps follow from the comparison).
        seeds: training runs per model.
        eval_chars: held-out characters for the losses.
        train_chars: characters of the training split used (None: all of it).
    """

    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    block_size: int = 64
    batch_size: int = 16
    steps: int = 500
    lr: float = 3e-3
    warmup_steps: int = 30
    seeds: int = 2
    eval_chars: int = 20_000
    train_chars: int | None = None


SMOKE = SmallLM(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, steps=6,
                warmup_steps=1, seeds=2, eval_chars=800, train_chars=20_000)


def _train_together(ctx, models, loss_fn, p: SmallLM, steps: int, desc: str) -> float:
    """Train several models of one architecture (one per seed) with AdamW and cosine decay,
    as one :class:`~genai_report.training.ensemble.Ensemble`: ``loss_fn(ensemble, step)``
    returns each member's loss, ``(K,)``. The trained weights are written back into
    ``models`` (left in ``eval()`` mode); returns the loop's wall time."""
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    cfg = TrainConfig(steps=steps, lr=p.lr, warmup_steps=min(p.warmup_steps, steps),
                      weight_decay=0.1)
    ensemble = Ensemble(models)
    hist = train_ensemble(ensemble, loss_fn, cfg, progress=lambda it, total, d: ctx.progress(
        it, total, desc))
    ensemble.unstack_into(models)
    for model in models:
        model.eval()
    return hist.wall_time_s


def _split_text(text: str):
    """gpt-char's split at the character level: every 10th 10,000-character chunk held out."""
    chunks = [text[i: i + 10_000] for i in range(0, len(text), 10_000)]
    if len(chunks) < 20:
        n = int(len(text) * 0.9)
        return text[:n], text[n:]
    return ("".join(c for i, c in enumerate(chunks) if i % 10 != 9),
            "".join(c for i, c in enumerate(chunks) if i % 10 == 9))


@figure(
    "inference-tokenization",
    deps=("bpe-english",),
    params={"smoke": SMOKE, "quick": SmallLM(steps=400),
            "full": SmallLM(n_layer=4, n_embd=128, block_size=128, batch_size=32,
                            steps=3000, lr=1e-3, warmup_steps=100, seeds=3,
                            eval_chars=50_000)},
    outputs=("tokenization.svg",),
    seed=94,
    data=(corpus_file,),
    title="At equal training compute, BPE tokens buy more text per step, at a price in "
          "embedding parameters.",
    caption="The same two-layer GPT trained on characters and on the report's BPE tokens "
            "for the same training FLOPs (the larger output layer of BPE counted), mean and "
            "range over seeds. Left: held-out bits per character. Middle: tokens per "
            "character and characters in one context window. Right: parameters of the "
            "token embedding (shared with the output layer) against vocabulary size, beside "
            "the model's other parameters.",
    alt="Three panels: bars of bits per character for characters and BPE; bars of tokens "
        "per character; a rising line of embedding parameters against vocabulary size "
        "crossing the horizontal line of the other parameters.",
)
def tokenization(ctx, p: SmallLM):
    """Characters against BPE at equal training FLOPs: bits per character and costs."""
    import json
    import math

    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from genai_report.data.bpe import BPETokenizer
    from genai_report.data.text import get_batch, load_corpus
    from genai_report.metrics.scaling import count_parameters, flops_per_token
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.pipeline.dryrun import DERIVED_STEPS_KEY, derived_steps
    from genai_report.plotting import save_figure

    blob = json.loads(ctx.input("bpe-english", "bpe.json").read_text())
    bpe = BPETokenizer(tuple(blob["alphabet"]), tuple(tuple(m) for m in blob["merges"]))
    alphabet = set(bpe.alphabet)
    text = "".join(c for c in load_corpus(corpus_file()) if c in alphabet)
    train_text, val_text = _split_text(text)
    # the tail of the held-out text: the BPE merges were learned on the corpus's start
    train_text, val_text = train_text[: p.train_chars], val_text[-p.eval_chars:]
    chars = "".join(bpe.alphabet)
    cindex = {c: i for i, c in enumerate(chars)}
    data = {
        "char": (torch.tensor([cindex[c] for c in train_text]),
                 torch.tensor([cindex[c] for c in val_text]), len(chars)),
        "bpe": (torch.tensor(bpe.encode(train_text)), torch.tensor(bpe.encode(val_text)),
                bpe.vocab_size),
    }
    table = list(bpe.alphabet) + [a + b for a, b in bpe.merges]
    # characters each BPE target stands for: bits per character = nats / chars / ln 2
    weights = {"char": None,
               "bpe": torch.tensor([len(table[i]) for i in data["bpe"][1].tolist()],
                                   dtype=torch.float64)}

    def config(vocab):
        return GPTConfig(vocab_size=vocab, block_size=p.block_size, n_layer=p.n_layer,
                         n_head=p.n_head, n_embd=p.n_embd)

    def train_flops_per_token(vocab):
        counts = count_parameters(GPT(config(vocab)))
        # the output layer's matmul is compute even though its weights are the embedding's
        return flops_per_token(counts["non_embedding"] + vocab * p.n_embd, p.n_layer,
                               p.block_size, p.n_embd)

    fpt = {k: train_flops_per_token(v[2]) for k, v in data.items()}
    tokens_per_step = p.batch_size * p.block_size
    # BPE trains for the character model's FLOPs: its step count follows from p.steps
    derived = {"char": None, "bpe": ["steps", fpt["char"] / fpt["bpe"]]}
    steps = {"char": p.steps, "bpe": derived_steps(derived["bpe"][1], p.steps)}
    results = {k: {"bpc": [], "train_s": []} for k in data}
    for kind, (train_ids, val_ids, vocab) in data.items():  # each kind's seeds at once
        models, gens = [], []
        for seed in range(p.seeds):
            torch.manual_seed(ctx.seed + seed)
            models.append(GPT(config(vocab)).to(ctx.device))
            gens.append(ctx.generator(100 + seed))

        def loss_fn(ens, step, train_ids=train_ids, gens=gens):
            xs, ys = zip(*(get_batch(train_ids, p.batch_size, p.block_size, gen)
                           for gen in gens), strict=True)  # (B, T) each
            return ens(torch.stack(xs).to(ctx.device), torch.stack(ys).to(ctx.device))[1]

        results[kind]["train_s"].append(_train_together(
            ctx, models, loss_fn, p, steps[kind], f"{kind}, {p.seeds} seeds"))
        for model in models:
            nats, n_chars = heldout_nats(model, val_ids, p.block_size, ctx.device,
                                         weights=weights[kind])
            results[kind]["bpc"].append(nats / n_chars / math.log(2))
    n_val_chars = len(val_text)
    summary = {}
    for kind, (_, val_ids, vocab) in data.items():
        counts = count_parameters(GPT(config(vocab)))
        tpc = len(val_ids) / n_val_chars
        summary[kind] = {
            "bpc": over_seeds(results[kind]["bpc"]),
            "train_s": sum(results[kind]["train_s"]),
            "vocab_size": vocab,
            "steps": steps[kind],
            "train_flops": fpt[kind] * tokens_per_step * steps[kind],
            "train_chars": tokens_per_step * steps[kind] / tpc,
            "tokens_per_char": tpc,
            "chars_per_token": 1 / tpc,
            "chars_per_window": p.block_size / tpc,
            "embedding_params": vocab * p.n_embd,
            "position_params": p.block_size * p.n_embd,
            "non_embedding_params": counts["non_embedding"],
            "embedding_share": vocab * p.n_embd / (counts["total"]),
        }
    c, b = summary["char"], summary["bpe"]

    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(7.2, 2.8))
    kinds = ["char", "bpe"]
    names = [f"characters\n(V={c['vocab_size']})", f"BPE\n(V={b['vocab_size']})"]
    for i, k in enumerate(kinds):
        vals = summary[k]["bpc"]["values"]
        a0.bar(i, summary[k]["bpc"]["mean"], color=f"C{i}", alpha=0.8, width=0.6)
        a0.scatter([i] * len(vals), vals, color="black", s=10, zorder=3)
    a0.set_xticks(range(2), names, fontsize=8)
    a0.set_ylabel("held-out bits per character")
    a0.set_ylim(0, max(c["bpc"]["mean"], b["bpc"]["mean"]) * 1.15)
    a1.bar(range(2), [summary[k]["tokens_per_char"] for k in kinds], color=["C0", "C1"],
           alpha=0.8, width=0.6)
    for i, k in enumerate(kinds):
        a1.text(i, summary[k]["tokens_per_char"], f"{summary[k]['chars_per_window']:.0f} chars\n"
                "per window", ha="center", va="bottom", fontsize=8)
    a1.set_xticks(range(2), names, fontsize=8)
    a1.set_ylabel("tokens per character")
    a1.set_ylim(0, 1.35)
    v = np.geomspace(50, 60_000, 100)
    a2.plot(v, v * p.n_embd, color="C4", label=f"embedding (d={p.n_embd})")
    a2.axhline(c["non_embedding_params"], color="C5", ls=":", lw=1, label="rest of the model")
    for i, k in enumerate(kinds):
        a2.scatter([summary[k]["vocab_size"]], [summary[k]["embedding_params"]], color=f"C{i}",
                   zorder=3)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("vocabulary size")
    a2.set_ylabel("parameters")
    a2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    save_figure(fig, ctx.output("tokenization.svg"))
    return {"char": c, "bpe": b, "n_val_chars": n_val_chars, "seeds": p.seeds,
            "bpc_gain": c["bpc"]["mean"] - b["bpc"]["mean"],
            "flops_ratio": b["train_flops"] / c["train_flops"],
            "text_ratio": b["train_chars"] / c["train_chars"],
            "embedding_ratio": b["embedding_params"] / c["embedding_params"],
            "threads": torch.get_num_threads(),
            DERIVED_STEPS_KEY: [derived[kind] for kind in data]}
