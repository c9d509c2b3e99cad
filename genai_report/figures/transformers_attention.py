"""Transformers chapter, attention made visible: attention maps of every head, induction
heads, the encoder-decoder's cross-attention alignment and the position embeddings.

The figures read the trained artifacts ``gpt-char`` and ``encdec-numbers``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from genai_report.figures._transformers_common import (
    SHOW_CHARS,
    first_sentence,
    load_encdec,
    load_gpt,
)
from genai_report.pipeline import figure


@dataclass(frozen=True)
class AttentionPlot:
    """Parameters of the attention-map figure.

    Attributes:
        n_chars: length of the sentence shown (at most the model's context).
    """

    n_chars: int = 40


@figure(
    "transformers-attention-maps",
    deps=("gpt-char",),
    params={"smoke": AttentionPlot(n_chars=16), "quick": AttentionPlot(),
            "full": AttentionPlot(n_chars=48)},
    outputs=("attention.png",),
    seed=40,
    title="Every attention head of the character-level GPT on a sentence it never trained on.",
    caption="Rows are layers, columns are heads. In each map, row i shows how the character "
    "at position i (vertical axis) spreads its attention over positions 0..i (horizontal "
    "axis); the upper triangle is empty because attention is causal. Spaces are shown as "
    "\u00b7.",
    alt="A grid of small lower-triangular heat maps, one per layer and head, over a sentence "
    "from the validation text. Some heads form a bright diagonal (attending to the current "
    "or previous character), others attend to the first position or to spaces between words.",
)
def attention_maps(ctx, p: AttentionPlot):
    """Plot all layers x heads of attention weights on a validation sentence."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.plotting import save_figure

    model, tok, val_text = load_gpt(ctx.input("gpt-char", "model.pt"))
    n = min(p.n_chars, model.config.block_size)
    sentence = first_sentence(val_text, n)
    idx = tok.encode(sentence)[None]  # (1, T)
    with torch.no_grad():
        _, maps = model.attention_maps(idx)  # (L, 1, H, T, T)
    maps = maps[:, 0]  # (L, H, T, T)
    L, H, T, _ = maps.shape
    labels = [SHOW_CHARS.get(c, c) for c in sentence]
    fig, axes = plt.subplots(L, H, figsize=(2.9 * H, 2.9 * L), squeeze=False,
                             sharex=True, sharey=True)
    for li in range(L):
        for hi in range(H):
            ax = axes[li][hi]
            ax.imshow(maps[li, hi].numpy(), cmap="viridis", vmin=0, vmax=1, rasterized=True)
            ax.grid(False)
            ax.set_xticks(range(T))
            ax.set_yticks(range(T))
            ax.set_xticklabels(labels, fontsize=5, family="monospace")
            ax.set_yticklabels(labels, fontsize=5, family="monospace")
            ax.tick_params(length=0, pad=1)
            if li == 0:
                ax.set_title(f"head {hi}", fontsize=9)
            if hi == 0:
                ax.set_ylabel(f"layer {li}", fontsize=9)
    save_figure(fig, ctx.output("attention.png"))
    # mean attention distance sum_j a_ij |i - j|, averaged over query positions i
    pos = torch.arange(T)
    dist = (maps * (pos[:, None] - pos[None, :]).abs()).sum(-1).mean(-1)  # (L, H)
    ent = -(maps * maps.clamp_min(1e-12).log()).sum(-1).mean(-1)  # (L, H)
    return {"sentence": sentence, "mean_distance": dist.tolist(), "mean_entropy_nats":
            ent.tolist(), "row_sum_max_error": float((maps.sum(-1) - 1).abs().max())}


@dataclass(frozen=True)
class InductionPlot:
    """Parameters of the induction-head figure.

    Attributes:
        n_sequences: random sequences the scores are averaged over.
        half: length of the random sequence that is repeated (0: half the context).
    """

    n_sequences: int = 32
    half: int = 0


@figure(
    "transformers-induction",
    deps=("gpt-char",),
    params={"smoke": InductionPlot(n_sequences=4), "quick": InductionPlot(),
            "full": InductionPlot(n_sequences=64)},
    outputs=("induction.svg",),
    seed=41,
    title="Induction heads: on a random sequence seen twice, does a head look up what came "
    "next last time?",
    caption="Left: the induction score of each head, the attention that position i in the "
    "second copy pays to the position just after the earlier occurrence of its token, "
    "averaged over random letter sequences (a head attending uniformly would score about "
    "the reciprocal of the position). Right: the attention map of the highest-scoring head "
    "on one sequence. The dotted red line marks where an induction head would attend: one "
    "position after the earlier occurrence of each token of the second copy.",
    alt="A heat map of induction scores, one cell per layer and head with its value "
    "written in it, and next to it the lower-triangular attention map of the "
    "highest-scoring head on a random sequence repeated twice, with dashed lines where "
    "the repeat begins.",
)
def induction(ctx, p: InductionPlot):
    """Score every head for induction behaviour on repeated random character sequences."""
    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F

    from genai_report.plotting import save_figure

    model, tok, _ = load_gpt(ctx.input("gpt-char", "model.pt"))
    half = p.half or model.config.block_size // 2
    letters = torch.tensor([i for i, c in enumerate(tok.chars) if c.islower()])
    if len(letters) < 10:  # a corpus without many lower-case letters: use every token
        letters = torch.arange(tok.vocab_size)
    gen = ctx.generator()
    r = letters[torch.randint(len(letters), (p.n_sequences, half), generator=gen)]  # (N, S)
    x = torch.cat([r, r], dim=1)  # (N, 2S)
    with torch.no_grad():
        logits, maps = model.attention_maps(x)  # (N, 2S, V), (L, N, H, 2S, 2S)
    i = torch.arange(half, 2 * half)
    # induction score: attention from i (second copy) to i - S + 1 (after the earlier copy)
    score = maps[..., i, i - half + 1].mean(dim=(1, 3))  # (L, H)
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:], reduction="none")
    first, second = float(nll[:, : half - 1].mean()), float(nll[:, half:].mean())
    li, hi = divmod(int(score.argmax()), score.size(1))

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
    im = a0.imshow(score.numpy(), cmap="magma", vmin=0, vmax=max(0.5, float(score.max())))
    for (r_, c_), v in zip(torch.cartesian_prod(torch.arange(score.size(0)),
                                                torch.arange(score.size(1))).tolist(),
                           score.flatten().tolist(), strict=True):
        a0.text(c_, r_, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="white" if v < 0.6 * max(0.5, float(score.max())) else "black")
    a0.set_xticks(range(score.size(1)))
    a0.set_yticks(range(score.size(0)))
    a0.set_xlabel("head")
    a0.set_ylabel("layer")
    a0.set_title("induction score")
    a0.grid(False)
    fig.colorbar(im, ax=a0, fraction=0.046, pad=0.04)
    a1.imshow(maps[li, 0, hi].numpy(), cmap="viridis", vmin=0, vmax=1, rasterized=True)
    a1.set_title(f"layer {li}, head {hi} on a repeated random sequence")
    a1.set_xlabel("key position")
    a1.set_ylabel("query position")
    a1.plot((i - half + 1).tolist(), i.tolist(), color="C3", lw=1, ls=":")
    a1.axvline(half - 0.5, color="white", lw=0.6, ls="--")
    a1.axhline(half - 0.5, color="white", lw=0.6, ls="--")
    a1.grid(False)
    save_figure(fig, ctx.output("induction.svg"))
    chance = float((1.0 / (i + 1).float()).mean())
    return {"scores": score.tolist(), "best": {"layer": li, "head": hi,
            "score": float(score.max())}, "uniform_score": chance, "half_length": half,
            "loss_first_copy_nats": first, "loss_second_copy_nats": second}


@dataclass(frozen=True)
class CrossAttentionPlot:
    """Parameters of the cross-attention figure.

    Attributes:
        n_examples: held-out numbers shown.
        min_digits: show numbers with at least this many digits.
    """

    n_examples: int = 4
    min_digits: int = 4


@figure(
    "transformers-cross-attention",
    deps=("encdec-numbers",),
    params={"smoke": CrossAttentionPlot(n_examples=2), "quick": CrossAttentionPlot(),
            "full": CrossAttentionPlot()},
    outputs=("cross_attention.svg",),
    seed=42,
    title="Cross-attention aligns each spelled-out word with the digit it reads.",
    caption="The encoder-decoder's last-layer cross-attention, averaged over heads, on "
    "held-out numbers. Each row is one output word (the word the decoder produced at "
    "that step); columns are the input digits. Titles give the model's greedy output and "
    "whether it is exactly right.",
    alt="Four small heat maps, each with digits of a number along the horizontal axis and "
    "the English words of its spelling down the vertical axis; the bright cells run from "
    "the top left to the bottom right, pairing words like 'four' and 'thousand' with the "
    "digit they come from.",
)
def cross_attention(ctx, p: CrossAttentionPlot):
    """Plot the encoder-decoder's cross-attention on held-out numbers."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import transduction as td
    from genai_report.plotting import save_figure

    model = load_encdec(ctx.input("encdec-numbers", "model.pt"))
    history = json.loads(ctx.input("encdec-numbers", "history.json").read_text())
    src, _, numbers = td.make_dataset(200, "val", ctx.generator())
    chosen = [k for k, n in enumerate(numbers) if len(str(n)) >= p.min_digits][: p.n_examples]
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.6 * len(chosen), 3.8), squeeze=False,
                             gridspec_kw={"wspace": 0.45})
    shown = []
    for ax, k in zip(axes[0], chosen, strict=True):
        s = src[k : k + 1, : len(str(numbers[k]))]  # (1, S)
        with torch.no_grad():
            out = model.greedy_decode(s, td.MAX_TGT_LEN, td.BOS, td.EOS)  # (1, T)
            words = td.decode_words(out[0])
            tgt_in = out[:, : len(words) + 1]  # <bos> + words: row t predicts word t
            _, maps = model.attention_maps(s, tgt_in)
        cross = maps["cross"][-1, 0].mean(0)  # (T, S)
        rows = [*words, "<eos>"]
        ax.imshow(cross.numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(s.size(1)), list(str(numbers[k])))
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.grid(False)
        ok = words == td.spell(numbers[k])
        ax.set_title(f"{numbers[k]:,}: {'correct' if ok else 'wrong'}", fontsize=9)
        shown.append({"number": numbers[k], "output": " ".join(words), "correct": ok})
    save_figure(fig, ctx.output("cross_attention.svg"))
    last = history["evals"][-1]
    return {"examples": shown, "val_exact_match": last["val_exact_match"],
            "val_loss_nats": last["val_loss"]}


@dataclass(frozen=True)
class PositionPlot:
    """The position figure has no parameters beyond its input; kept for the key."""

    version: int = 1


@figure(
    "transformers-positions",
    deps=("gpt-char",),
    params={"smoke": PositionPlot(), "quick": PositionPlot(), "full": PositionPlot()},
    outputs=("positions.svg",),
    seed=43,
    title="Learned position embeddings rediscover a notion of distance.",
    caption="Cosine similarity between the position vectors of every pair of positions. "
    "Left: the GPT's learned position embeddings after training. Right: the fixed "
    "sinusoidal encodings of Vaswani et al. (2017) at the same width, for comparison.",
    alt="Two square heat maps of similarity between positions. Both are brightest along "
    "the diagonal and fade away from it; the sinusoidal one is smooth and regular, the "
    "learned one noisier, especially for late positions.",
)
def positions(ctx, p: PositionPlot):
    """Compare the cosine similarity of learned and sinusoidal position encodings."""
    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F

    from genai_report.models.encdec import sinusoidal_positions
    from genai_report.plotting import save_figure

    model, _, _ = load_gpt(ctx.input("gpt-char", "model.pt"))
    learned = F.normalize(model.wpe.weight.detach(), dim=1)  # (T, C)
    T, C = learned.shape
    sinus = F.normalize(sinusoidal_positions(T, C), dim=1)  # (T, C)
    sims = {"learned": learned @ learned.T, "sinusoidal": sinus @ sinus.T}  # (T, T)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (name, sim) in zip(axes, sims.items(), strict=True):
        im = ax.imshow(sim.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, rasterized=True)
        ax.set_title(f"{name} (width {C})")
        ax.set_xlabel("position")
        ax.set_ylabel("position")
        ax.grid(False)
    fig.colorbar(im, ax=axes, fraction=0.03, pad=0.02, label="cosine similarity")
    save_figure(fig, ctx.output("positions.svg"))
    out = {}
    for name, sim in sims.items():
        near = sim.diagonal(1).mean()
        far = sim[torch.ones(T, T, dtype=torch.bool).triu(T // 4)].mean()
        out[name] = {"adjacent_cosine": float(near), "far_cosine": float(far)}
    out["far_offset"] = T // 4
    return out
