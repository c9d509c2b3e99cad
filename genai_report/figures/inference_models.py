"""Figures of "What a token costs" that train their own small models, several seeds each.

* ``inference-tokenization``: the same GPT on characters and on BPE tokens at equal
  training FLOPs; bits per character, sequence length, embedding parameters.
* ``inference-masked``: the same blocks trained causally and bidirectionally with BERT's
  15% masking; fill-in-the-blank accuracy against left-to-right prediction and sampling.
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


def _train(ctx, model, loss_fn, p: SmallLM, steps: int, desc: str) -> float:
    """Train with AdamW and cosine decay; returns the loop's wall time."""
    from genai_report.training.loop import TrainConfig, train

    cfg = TrainConfig(steps=steps, lr=p.lr, warmup_steps=min(p.warmup_steps, steps),
                      weight_decay=0.1)
    return train(model, loss_fn, cfg, progress=lambda it, total, d: ctx.progress(
        it, total, desc)).wall_time_s


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
    steps = {"char": p.steps, "bpe": max(1, round(p.steps * fpt["char"] / fpt["bpe"]))}
    results = {k: {"bpc": [], "train_s": []} for k in data}
    for seed in range(p.seeds):
        for kind, (train_ids, val_ids, vocab) in data.items():
            torch.manual_seed(ctx.seed + seed)
            model = GPT(config(vocab)).to(ctx.device)
            gen = ctx.generator(100 + seed)

            def loss_fn(m, step, train_ids=train_ids, gen=gen):
                x, y = get_batch(train_ids, p.batch_size, p.block_size, gen)  # (B, T)
                return m(x.to(ctx.device), y.to(ctx.device))[1]

            results[kind]["train_s"].append(
                _train(ctx, model, loss_fn, p, steps[kind], f"{kind} seed {seed}"))
            model.eval()
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
            "threads": torch.get_num_threads()}


@dataclass(frozen=True)
class MaskedLM(SmallLM):
    """The masked-versus-causal comparison: :class:`SmallLM` plus its evaluations.

    Attributes:
        n_blanks: held-out windows with one character blanked out.
        rescore_blanks: of those, windows the causal model also fills by scoring every
            candidate character with the whole window (one pass per candidate).
        l2r_windows: held-out windows predicted left to right.
        n_samples: samples per model, judged by ``gpt-char``.
    """

    n_blanks: int = 512
    rescore_blanks: int = 96
    l2r_windows: int = 32
    n_samples: int = 16


@figure(
    "inference-masked",
    deps=("gpt-char",),
    params={"smoke": MaskedLM(**{**SMOKE.__dict__, "eval_chars": 800}, n_blanks=16,
                              rescore_blanks=4, l2r_windows=4, n_samples=2),
            "quick": MaskedLM(steps=500, rescore_blanks=64),
            "full": MaskedLM(n_layer=4, n_embd=128, block_size=128, batch_size=32, steps=3000,
                             lr=1e-3, warmup_steps=100, seeds=3, n_blanks=2000,
                             rescore_blanks=300, l2r_windows=64, n_samples=32)},
    outputs=("masked.svg",),
    seed=95,
    data=(corpus_file,),
    title="Trained for the same steps, the masked model writes far worse and, at this "
          "budget, does not yet fill blanks better.",
    caption="The same two-layer blocks trained on the same windows for the same steps, "
            "causally (next character) and bidirectionally with BERT's 15% masking; "
            "mean and seeds. Left: accuracy at guessing one blanked-out character of "
            "held-out text: the masked model in one pass; the causal model from the left "
            "context only, and by scoring every candidate character with the whole window "
            "(one pass per candidate). Right: bits per character predicting held-out text "
            "left to right, and of each model's samples as judged by the four-layer GPT "
            "(lower is more like the corpus); the line is the judge on real text.",
    alt="Left: the causal model scoring every candidate is most accurate, the causal model "
        "reading left context next, the masked model lowest. Right: the masked model's bars "
        "are higher than the causal model's.",
)
def masked(ctx, p: MaskedLM):
    """Train causal and masked twins; fill-in-the-blank, left-to-right loss, samples."""
    import math

    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F

    from genai_report.artifacts.applications import load_gpt
    from genai_report.data.text import get_batch, load_corpus, split
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.models.masked import bidirectional, mask_tokens
    from genai_report.plotting import save_figure

    dev = ctx.device
    judge, tok, _ = load_gpt(ctx.input("gpt-char", "model.pt"), dev)
    train_ids, val_ids = split(tok.encode(load_corpus(corpus_file())), 0.1, 10_000)
    train_ids, val_ids = train_ids[: p.train_chars], val_ids[: p.eval_chars]
    V = tok.vocab_size
    MASK = V  # one extra id, in both models' vocabularies for a like-for-like comparison
    T = p.block_size
    config = GPTConfig(vocab_size=V + 1, block_size=T, n_layer=p.n_layer, n_head=p.n_head,
                       n_embd=p.n_embd)
    g = ctx.generator(1)
    n_win = (len(val_ids) - 1) // T
    x_val = val_ids[: n_win * T].view(n_win, T)  # (W, T)
    blanks = x_val[torch.arange(p.n_blanks) % n_win]  # (N, T)
    pos = torch.randint(T // 4, 3 * T // 4, (p.n_blanks,), generator=g)  # (N,)
    rows = torch.arange(p.n_blanks)
    answer = blanks[rows, pos]  # (N,)
    l2r = x_val[: p.l2r_windows].to(dev)  # (W, T)
    prompts = x_val[torch.arange(p.n_samples) % n_win, :1].to(dev)  # (S, 1)

    def no_mask(logits):
        return logits[..., :V]

    @torch.no_grad()
    def sample(next_logits, gen):
        x = prompts
        for _ in range(T - 1):
            probs = no_mask(next_logits(x)).softmax(-1)  # (S, V)
            x = torch.cat([x, torch.multinomial(probs.cpu(), 1, generator=gen).to(dev)], 1)
        return x

    @torch.no_grad()
    def judge_bpc(x):
        return float(judge(x[:, :-1], x[:, 1:].contiguous())[1]) / math.log(2)

    keys = ("blank_masked", "blank_causal_left", "blank_causal_rescore", "l2r_bpc_causal",
            "l2r_bpc_masked", "judge_bpc_causal", "judge_bpc_masked")
    res = {k: [] for k in keys}
    texts, train_s = {}, 0.0
    for seed in range(p.seeds):
        models = {}
        for kind in ("causal", "masked"):
            torch.manual_seed(ctx.seed + seed)  # the same initial weights for both
            model = GPT(config).to(dev)
            if kind == "masked":
                bidirectional(model)
            batches = ctx.generator(100 + seed)  # the same windows for both
            masks = ctx.generator(200 + seed)

            def loss_fn(m, step, kind=kind, batches=batches, masks=masks):
                x, y = get_batch(train_ids, p.batch_size, T, batches)  # (B, T)
                if kind == "causal":
                    return m(x.to(dev), y.to(dev))[1]
                inp, tgt = mask_tokens(x, MASK, V, masks)
                tgt[0, 0] = x[0, 0] if (tgt < 0).all() else tgt[0, 0]
                return m(inp.to(dev), tgt.to(dev))[1]

            train_s += _train(ctx, model, loss_fn, p, p.steps, f"{kind} seed {seed}")
            models[kind] = model.eval()
        causal, mlm = models["causal"], models["masked"]
        with torch.no_grad():
            inp = blanks.clone()
            inp[rows, pos] = MASK
            guess = no_mask(mlm(inp.to(dev))[0])[rows, pos].argmax(-1).cpu()
            res["blank_masked"].append(float((guess == answer).float().mean()))
            guess = no_mask(causal(blanks.to(dev))[0])[rows, pos - 1].argmax(-1).cpu()
            res["blank_causal_left"].append(float((guess == answer).float().mean()))
            hits = 0
            for i in range(p.rescore_blanks):
                cand = blanks[i].repeat(V, 1)  # (V, T): every character in the blank
                cand[:, pos[i]] = torch.arange(V)
                cand = cand.to(dev)
                logp = F.log_softmax(causal(cand[:, :-1])[0], -1)  # (V, T-1, V+1)
                score = logp.gather(-1, cand[:, 1:, None])[..., 0][:, pos[i] - 1:].sum(-1)
                hits += int(int(score.argmax()) == int(answer[i]))
            res["blank_causal_rescore"].append(hits / p.rescore_blanks)
            nll_c = F.cross_entropy(causal(l2r[:, :-1])[0].flatten(0, 1), l2r[:, 1:].flatten())
            nll_m = []
            for t in range(1, T):  # x_t from x_<t alone: [MASK] at t, nothing to its right
                inp = torch.cat([l2r[:, :t], torch.full_like(l2r[:, :1], MASK)], 1)
                nll_m.append(F.cross_entropy(mlm(inp)[0][:, t], l2r[:, t], reduction="none"))
            res["l2r_bpc_causal"].append(float(nll_c) / math.log(2))
            res["l2r_bpc_masked"].append(float(torch.stack(nll_m).mean()) / math.log(2))
        gen = ctx.generator(300 + seed)
        s_c = sample(lambda x, m=causal: m(x[:, -T:])[0][:, -1], gen)
        # the masked model predicts a [MASK] appended after the text, nothing to its right
        s_m = sample(lambda x, m=mlm: m(torch.cat([x[:, -(T - 1):],
                                                   torch.full_like(x[:, :1], MASK)], 1))[0][:, -1],
                     gen)
        res["judge_bpc_causal"].append(judge_bpc(s_c))
        res["judge_bpc_masked"].append(judge_bpc(s_m))
        if seed == 0:
            texts = {"causal": tok.decode(s_c[0].cpu()), "masked": tok.decode(s_m[0].cpu())}
    real = judge_bpc(x_val[: p.n_samples].to(dev))
    out = {k: over_seeds(v) for k, v in res.items()}

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(7.2, 3.0))
    bars = [("masked\n(1 pass)", "blank_masked", "C1"),
            ("causal,\nleft only", "blank_causal_left", "C0"),
            (f"causal, rescore\n({V} passes)", "blank_causal_rescore", "C5")]
    for i, (_, k, color) in enumerate(bars):
        a0.bar(i, out[k]["mean"], color=color, alpha=0.8, width=0.6)
        a0.scatter([i] * len(out[k]["values"]), out[k]["values"], color="black", s=10,
                   zorder=3)
    a0.set_xticks(range(3), [b[0] for b in bars], fontsize=8)
    a0.set_ylabel("blank filled correctly")
    a0.set_ylim(0, 1)
    groups = [("held-out text,\nleft to right", "l2r_bpc"), ("own samples,\njudged", "judge_bpc")]
    for j, (_, k) in enumerate(groups):
        for i, (kind, color) in enumerate((("causal", "C0"), ("masked", "C1"))):
            o = out[f"{k}_{kind}"]
            a1.bar(j + (i - 0.5) * 0.35, o["mean"], width=0.35, color=color, alpha=0.8,
                   label=kind if j == 0 else None)
            a1.scatter([j + (i - 0.5) * 0.35] * len(o["values"]), o["values"], color="black",
                       s=10, zorder=3)
    a1.axhline(real, color="C5", ls=":", lw=1, label="judge on real text")
    a1.set_xticks(range(2), [g_[0] for g_ in groups], fontsize=8)
    a1.set_ylabel("bits per character")
    a1.legend(fontsize=8, loc="upper left")
    a1.set_ylim(0, 1.3 * max(o["mean"] for o in out.values() if o["mean"] > 1))
    fig.tight_layout()
    save_figure(fig, ctx.output("masked.svg"))
    return {**out, "judge_bpc_real": real, "samples": texts, "train_s": train_s,
            "vocab_size": V, "seeds": p.seeds, "n_blanks": p.n_blanks,
            "rescore_blanks": p.rescore_blanks, "threads": torch.get_num_threads()}
