"""Transformers chapter, attention made visible: attention maps of every head, the
encoder-decoder's cross-attention alignment and the position embeddings (induction heads
are in ``transformers_synthetic.py``).

The figures read the trained artifacts ``gpt-char`` and ``encdec-numbers``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from genai_report.figures._transformers_common import (
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
    outputs=("attention.png", "interactive.json"),
    seed=40,
    title="Every attention head of the character-level GPT on a sentence it never trained on.",
    caption="Rows are layers, columns are heads. In each map, row i shows how the character "
    "at position i (top to bottom) spreads its attention over positions 0..i (left to "
    "right); the upper triangle is empty because attention is causal. The sentence is "
    "quoted in the text. On the site, the sentence itself is shown: hover a character to "
    "shade the characters it attends to, for any layer and head.",
    alt="A grid of small lower-triangular heat maps, one per layer and head, over a sentence "
    "from the validation text. Some heads form a bright diagonal (attending to the current "
    "or previous character), others attend to the first position or to spaces between words.",
)
def attention_maps(ctx, p: AttentionPlot):
    """Plot all layers x heads of attention weights on a validation sentence."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.plotting import save_figure
    from genai_report.plotting.interactive import INTERACTIVE, attention_view, write_view

    model, tok, val_text = load_gpt(ctx.input("gpt-char", "model.pt"))
    n = min(p.n_chars, model.config.block_size)
    sentence = first_sentence(val_text, n)
    idx = tok.encode(sentence)[None]  # (1, T)
    with torch.no_grad():
        _, maps = model.attention_maps(idx)  # (L, 1, H, T, T)
    maps = maps[:, 0]  # (L, H, T, T)
    L, H, T, _ = maps.shape
    side = min(1.8, 7.2 / H)  # inches per map: the grid fits the text column
    fig, axes = plt.subplots(L, H, figsize=(side * H, side * L + 0.2), squeeze=False,
                             sharex=True, sharey=True, gridspec_kw={"wspace": 0.08,
                                                                    "hspace": 0.12})
    for li in range(L):
        for hi in range(H):
            ax = axes[li][hi]
            ax.imshow(maps[li, hi].numpy(), cmap="viridis", vmin=0, vmax=1, rasterized=True)
            ax.grid(False)
            ax.set_xticks([])
            ax.set_yticks([])
            if li == 0:
                ax.set_title(f"head {hi}", fontsize=9)
            if hi == 0:
                ax.set_ylabel(f"layer {li}", fontsize=9)
    save_figure(fig, ctx.output("attention.png"))
    write_view(ctx.output(INTERACTIVE), attention_view(
        list(sentence), maps,
        hint="Choose a layer and a head, then hover (or tab to) a character: the shading "
             "shows how much attention it gives each earlier character."))
    # mean attention distance sum_j a_ij |i - j|, averaged over query positions i
    pos = torch.arange(T)
    dist = (maps * (pos[:, None] - pos[None, :]).abs()).sum(-1).mean(-1)  # (L, H)
    ent = -(maps * maps.clamp_min(1e-12).log()).sum(-1).mean(-1)  # (L, H)
    layer_dist = dist.mean(-1)  # (L,)
    return {"sentence": sentence, "mean_distance": dist.tolist(), "mean_entropy_nats":
            ent.tolist(), "row_sum_max_error": float((maps.sum(-1) - 1).abs().max()),
            "layer_mean_distance": layer_dist.tolist(),
            "first_layer_mean_distance": float(layer_dist[0]),
            "last_layer_mean_distance": float(layer_dist[-1])}


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
    cols = min(2, len(chosen))
    rows_ = -(-len(chosen) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(7.2, 2.6 * rows_), squeeze=False,
                             gridspec_kw={"wspace": 0.5, "hspace": 0.45})
    shown = []
    for ax, k in zip(axes.flat, chosen, strict=False):
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
    # how diagonal the alignment is: correlation between a word's index and the
    # attention-weighted position of the digits it reads, over the words of many numbers
    corrs = []
    for k in [k for k, n in enumerate(numbers) if len(str(n)) >= p.min_digits][:50]:
        s = src[k : k + 1, : len(str(numbers[k]))]  # (1, S)
        with torch.no_grad():
            out = model.greedy_decode(s, td.MAX_TGT_LEN, td.BOS, td.EOS)
            n_words = len(td.decode_words(out[0]))
            _, maps = model.attention_maps(s, out[:, : n_words + 1])
        cross = maps["cross"][-1, 0].mean(0)[:n_words]  # (W, S): word rows, no <eos>
        centroid = cross @ torch.arange(s.size(1), dtype=cross.dtype)  # (W,)
        t = torch.arange(n_words, dtype=cross.dtype)
        if n_words > 2 and float(centroid.std()) > 0:
            corrs.append(float(torch.corrcoef(torch.stack([t, centroid]))[0, 1]))
    last = history["evals"][-1]
    return {"examples": shown, "val_loss_nats": last["val_loss"],
            "diagonal_correlation": sum(corrs) / max(1, len(corrs)), "n_correlated": len(corrs)}


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
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.2))
    for ax, (name, sim) in zip(axes, sims.items(), strict=True):
        im = ax.imshow(sim.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, rasterized=True)
        ax.set_title(f"{name} (width {C})", fontsize=10)
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
