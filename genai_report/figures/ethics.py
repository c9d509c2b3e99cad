"""Ethics, measured: a text watermark and its detector, verbatim memorization, and how a
skewed training set shows up in what a model generates."""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure


# --------------------------------------------------------------------------- watermark
@dataclass(frozen=True)
class Watermark:
    """Parameters of the watermark demo.

    Attributes:
        deltas: green-list biases compared (0 = no watermark).
        gamma: green fraction of the vocabulary.
        context: previous characters hashed to seed the green list (h).
        buckets: green lists per key (contexts are hashed into them).
        n_keys: keys over which the false-positive rate on human text is measured.
        n_human: human-written texts per corpus (English and Python) scored with every key.
        human_lengths: lengths (characters) of the human texts scored.
        n_texts: texts generated per delta (each with one of ``sample_keys`` keys).
        sample_keys: keys used for the generated texts.
        n_tokens: characters generated per text.
        lengths: text lengths at which detection is measured.
        prompt_len: characters of held-out text that prompt each sample.
        threshold: z above which a text is called watermarked.
        substitutions: shares of characters replaced at random (an "edit attack") before
            detecting the strongest watermark at full length.
    """

    deltas: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    gamma: float = 0.5
    context: int = 4
    buckets: int = 4096
    n_keys: int = 24
    n_human: int = 100
    human_lengths: tuple[int, ...] = (25, 50, 100, 200, 400)
    n_texts: int = 64
    sample_keys: int = 4
    n_tokens: int = 200
    lengths: tuple[int, ...] = (10, 25, 50, 100, 200)
    prompt_len: int = 16
    threshold: float = 4.0
    substitutions: tuple[float, ...] = (0.1, 0.25, 0.5)

    def __post_init__(self) -> None:
        if self.n_keys < 1 or self.sample_keys < 1 or self.n_texts % self.sample_keys:
            raise ValueError("n_keys and sample_keys must be >= 1 and n_texts a multiple of "
                             f"sample_keys; got {self.n_keys}, {self.sample_keys}, "
                             f"{self.n_texts}.")
        if self.prompt_len < self.context:
            raise ValueError(f"prompt_len ({self.prompt_len}) must be >= context "
                             f"({self.context}).")


@figure(
    "ethics-watermark",
    deps=("gpt-char",),
    params={"smoke": Watermark(n_keys=3, n_human=8, n_texts=4, sample_keys=2),
            "quick": Watermark(),
            "full": Watermark(n_keys=100, n_human=500, n_texts=500,
                              human_lengths=(25, 50, 100, 200, 400, 800),
                              n_tokens=400, lengths=(10, 25, 50, 100, 200, 400))},
    outputs=("watermark.svg",),
    seed=80,
    dry_run={"n_keys": 3, "n_human": 8, "n_texts": 4, "sample_keys": 2},
    title="A green-list watermark: calibrated on human text, detected in a few dozen "
    "characters of watermarked text.",
    caption="Left: mean detector z on human-written English and Python text, one line per "
    "secret key, for a green list seeded by the previous character (grey) and by a hash of "
    "the previous four (blue); the null is z ~ N(0, 1) for every key only with the longer "
    "context. Middle: share of texts the detector flags (z > 4) against length, for the "
    "character GPT's samples with bias delta and for human text. Right: the cost, the "
    "perplexity of the samples under the unbiased model.",
    alt="Three panels: per-key mean z lines that fan out with length for the one-character "
    "context and stay near zero for the four-character context; detection rate rising with "
    "length, faster for larger delta, zero for human text; perplexity rising with delta.",
)
def watermark(ctx, p: Watermark):
    """Calibrate the detector on human text over many keys; detection rate, perplexity and
    robustness of watermarked samples from the character GPT."""
    import math

    import matplotlib.pyplot as plt
    import torch

    from genai_report.artifacts.applications import load_gpt
    from genai_report.data.text import load_corpus
    from genai_report.ethics.watermark import (
        GPTNextLogits,
        GreenList,
        detect,
        green_counts,
        green_lists,
        sample,
    )
    from genai_report.plotting import save_figure

    model, tok, blob = load_gpt(ctx.input("gpt-char", "model.pt"), ctx.device)
    V = tok.vocab_size

    def key_of(i):
        return 7919 * (i + 1) + ctx.seed

    def scheme(i, context):
        return GreenList(V, p.gamma, key_of(i), context=context,
                         buckets=p.buckets) if context > 1 else green_lists(V, p.gamma, key_of(i))

    # the null: human text (both shipped corpora), every key, several lengths
    g = ctx.generator(3)
    known = set(tok.chars)
    longest = max(p.human_lengths) + p.context
    human = []
    for name in ("english", "python"):
        text = "".join(c for c in load_corpus(name) if c in known)
        st = torch.randint(0, len(text) - longest, (p.n_human,), generator=g).tolist()
        human += [tok.encode(text[s:s + longest]) for s in st]
    human = torch.stack(human)  # (2 n_human, longest)
    null = {}
    key_means = {}
    for label, h in (("previous_char", 1), ("context", p.context)):
        zs = torch.stack([torch.stack([detect(human[:, p.context - h: p.context + n], scheme(k, h))
                                       for n in p.human_lengths]) for k in range(p.n_keys)])
        # zs: (keys, lengths, texts)
        key_means[label] = zs.mean(2)  # (keys, lengths)
        null[label] = {str(n): {
            "z_mean": float(zs[:, i].mean()), "z_sd": float(zs[:, i].std()),
            "key_mean_sd": float(zs[:, i].mean(1).std()),
            "key_mean_max_abs": float(zs[:, i].mean(1).abs().max()),
            "fpr_at_threshold": float((zs[:, i] > p.threshold).double().mean()),
            "fpr_at_2_33": float((zs[:, i] > 2.326).double().mean()),
            "fpr_at_1_64": float((zs[:, i] > 1.645).double().mean())}
            for i, n in enumerate(p.human_lengths)}
    n_null = p.n_keys * len(human)
    worst_fpr = max(v["fpr_at_threshold"] for v in null["context"].values())

    # watermarked samples: each text with one of sample_keys keys
    val = tok.encode(blob["val_text"])
    starts = torch.randint(0, len(val) - p.prompt_len - 1, (p.n_texts,),
                           generator=ctx.generator(1))
    prompts = val[starts[:, None] + torch.arange(p.prompt_len)].to(ctx.device)  # (B, P)
    per = p.n_texts // p.sample_keys
    lengths = [n for n in p.lengths if n <= p.n_tokens]
    out, rates = {}, {}
    for k, delta in enumerate(p.deltas):
        gens, zs, nlls = [], [], []
        for j in range(p.sample_keys):
            green = scheme(j, p.context)
            ids, nll = sample(GPTNextLogits(model), prompts[j * per:(j + 1) * per], p.n_tokens,
                              green, delta, ctx.generator(10 + 10 * k + j))
            gen = ids[:, p.prompt_len - p.context:].cpu()  # the prompt's tail seeds the lists
            gens.append((gen, green))
            zs.append(torch.stack([detect(gen[:, : n + p.context], green) for n in lengths]))
            nlls.append(nll)
        zs = torch.cat(zs, 1)  # (L, B)
        rate = (zs > p.threshold).double().mean(1)
        rates[delta] = rate
        green_frac = sum(float(green_counts(gn, gr, unique=False)[0].sum()) for gn, gr in gens)
        out[f"delta_{delta:g}"] = {
            "z_mean": {str(n): float(z.mean()) for n, z in zip(lengths, zs, strict=True)},
            "detection_rate": {str(n): float(r) for n, r in zip(lengths, rate, strict=True)},
            "perplexity": math.exp(float(torch.cat(nlls).mean())),
            "green_fraction": green_frac / (p.n_texts * p.n_tokens)}
        if delta == max(p.deltas) and delta > 0:  # robustness: random character edits
            ge = ctx.generator(50)
            out["substitution"] = {"delta": delta, "length": p.n_tokens}
            for frac in p.substitutions:
                zsub = []
                for gen, green in gens:
                    hit = torch.rand(gen.shape, generator=ge) < frac
                    hit[:, : p.context] = False
                    edited = torch.where(hit, torch.randint(0, V, gen.shape, generator=ge), gen)
                    zsub.append(detect(edited, green))
                z = torch.cat(zsub)
                out["substitution"][f"{round(100 * frac)}pct"] = {
                    "z_mean": float(z.mean()),
                    "detection_rate": float((z > p.threshold).double().mean())}
    first = {}
    for delta in p.deltas:
        hit = [n for n, r in zip(lengths, rates[delta], strict=True) if r >= 0.9]
        first[f"delta_{delta:g}"] = hit[0] if hit else None

    fig, axes = plt.subplots(1, 3, figsize=(7.2, 3.0),
                             gridspec_kw={"width_ratios": [1.1, 1.1, 0.8]})
    ax = axes[0]
    for label, color, name in (("previous_char", "0.6", "previous char"),
                               ("context", "C0", f"previous {p.context} chars")):
        for k, row in enumerate(key_means[label]):
            ax.plot(p.human_lengths, row, color=color, lw=0.8, alpha=0.7,
                    label=name if k == 0 else None)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_xticks(list(p.human_lengths), [str(n) for n in p.human_lengths])
    ax.minorticks_off()
    ax.set_xlabel("human text length (chars)")
    ax.set_ylabel("mean z over texts, per key")
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1]
    for i, delta in enumerate(p.deltas):
        name = "no watermark" if delta == 0 else f"delta = {delta:g}"
        ax.plot(lengths, rates[delta], marker="o", ms=3, color=f"C{i + 1}", label=name)
    hum = [null["context"][str(n)]["fpr_at_threshold"] for n in p.human_lengths]
    ax.plot(p.human_lengths, hum, color="0.3", ls="--", label="human text")
    ax.set_xscale("log")
    ticks = sorted(set(lengths) | set(p.human_lengths))
    ax.set_xticks(ticks, [str(n) for n in ticks], fontsize=8)
    ax.minorticks_off()
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("text length (chars)")
    ax.set_ylabel(f"share flagged (z > {p.threshold:g})")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
              handlelength=1.5, columnspacing=0.8)
    ax = axes[2]
    ax.bar(range(len(p.deltas)), [out[f"delta_{d:g}"]["perplexity"] for d in p.deltas],
           color=[f"C{i + 1}" for i in range(len(p.deltas))])
    ax.set_xticks(range(len(p.deltas)), [f"{d:g}" for d in p.deltas])
    ax.set_xlabel("bias delta")
    ax.set_ylabel("perplexity (plain model)")
    fig.tight_layout()
    save_figure(fig, ctx.output("watermark.svg"))
    return {**out, "null": null, "null_texts_per_length": n_null,
            "worst_fpr_at_threshold": worst_fpr,
            "first_length_detected_90pct": first, "gamma": p.gamma,
            "gamma_effective": scheme(0, p.context).gamma_eff, "context": p.context,
            "threshold": p.threshold, "n_keys": p.n_keys, "n_texts": p.n_texts,
            "n_tokens": p.n_tokens, "vocab_size": V}


# --------------------------------------------------------------------------- memorization
@dataclass(frozen=True)
class MemorizationPlot:
    """No parameters beyond the input; kept for the key."""

    version: int = 1


@figure(
    "ethics-memorization",
    deps=("memorization-gpts",),
    params={"smoke": MemorizationPlot(), "quick": MemorizationPlot(), "full": MemorizationPlot()},
    outputs=("memorization.svg",),
    title="Bigger models trained longer reproduce more of their training text verbatim; "
    "held-out text they do not.",
    caption="Character GPTs of three widths along training (Carlini et al. 2021's extraction "
    "test at toy scale). Left: share of prompts whose greedy continuation reproduces the next "
    "characters exactly, for prompts from the training text (filled markers, solid) and from "
    "held-out text of the same corpus (open markers, dashed; nudged sideways so the three "
    "widths stay visible at zero). Right: how many characters the continuation gets right "
    "before it departs from the true text, on a log scale.",
    alt="Left: extractable share against epochs, rising with training and width for training "
    "prompts and zero for held-out prompts. Right: mean matched characters, growing to about "
    "twenty for the widest model on training text and staying near one on held-out text.",
)
def memorization(ctx, p: MemorizationPlot):
    """Plot verbatim extraction of training vs held-out prompts over training, per width."""
    import json

    import matplotlib.pyplot as plt

    from genai_report.plotting import save_figure

    runs = json.loads(ctx.input("memorization-gpts", "runs.json").read_text())
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 2.9))
    span = max(e["epochs"] for r in runs for e in r["evals"])
    for i, r in enumerate(runs):
        ep = [e["epochs"] for e in r["evals"]]
        nudge = (i - (len(runs) - 1) / 2) * 0.015 * span
        c = f"C{i}"
        ax.plot(ep, [e["train_extractable"] for e in r["evals"]], marker="o", ms=4, color=c,
                label=f"width {r['width']} ({r['n_params'] / 1e3:.0f}k)")
        ax.plot([x + nudge for x in ep], [e["held_extractable"] for e in r["evals"]], ls="--",
                marker="o", ms=4, mfc="none", color=c)
        ax2.plot(ep, [e["train_mean_match"] for e in r["evals"]], marker="o", ms=4, color=c)
        ax2.plot(ep, [e["held_mean_match"] for e in r["evals"]], ls="--", marker="o", ms=4,
                 mfc="none", color=c)
    ax.set_xlabel("epochs over the training text")
    ax.set_ylabel("share continued verbatim")
    ax.set_ylim(-0.05, 1.02)
    ax.legend(fontsize=8, loc="upper left", title="solid: training, dashed: held-out",
              title_fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xlabel("epochs over the training text")
    ax2.set_ylabel("mean characters matched")
    fig.tight_layout()
    save_figure(fig, ctx.output("memorization.svg"))
    return {f"w{r['width']}": {"train_extractable": r["evals"][-1]["train_extractable"],
                               "held_extractable": r["evals"][-1]["held_extractable"],
                               "train_mean_match": r["evals"][-1]["train_mean_match"],
                               "held_mean_match": r["evals"][-1]["held_mean_match"],
                               "first_train_extractable": r["evals"][0]["train_extractable"],
                               "first_epochs": r["evals"][0]["epochs"],
                               "max_held_extractable": max(e["held_extractable"]
                                                           for e in r["evals"]),
                               "epochs": r["evals"][-1]["epochs"], "n_params": r["n_params"]}
            for r in runs}


# --------------------------------------------------------------------------- bias
@dataclass(frozen=True)
class BiasPlot:
    """Samples drawn unconditionally (``n``) and per class conditionally (``per_class``),
    sampler steps, and the classifier confidence above which a sample's label is counted."""

    n: int = 2000
    per_class: int = 100
    ddim_steps: int = 50
    confidence: float = 0.9


@figure(
    "ethics-bias",
    deps=("skewed-diffusion", "digits-classifier"),
    params={"smoke": BiasPlot(n=50, per_class=5, ddim_steps=5), "quick": BiasPlot(),
            "full": BiasPlot(n=10000, per_class=500, ddim_steps=100)},
    outputs=("bias.svg",),
    dry_run={"n": 200, "per_class": 10},
    seed=81,
    title="A skewed training set comes back out: the generated class mix follows the data.",
    caption="Class-conditional diffusion models trained on digits drawn with a geometric class "
    "skew (class k with probability proportional to r^k), and the same models trained on a "
    "balanced mix as the control; bars are means over independent models, whiskers one "
    "standard deviation. Left: class shares in the skewed training mix and in unconditional "
    "samples of each kind of model, as labelled by the digits classifier (samples it labels "
    "with high confidence). Right: asked for each class explicitly, how often the sample is "
    "read as that class.",
    alt="Left: grouped bars of class share for digits 0 to 9: the skewed training mix and the "
    "skewed models' samples fall from 0 to 9, the balanced models' samples are roughly flat. "
    "Right: per-class accuracy of conditional samples for both kinds of model.",
)
def bias(ctx, p: BiasPlot):
    """Generated class mix and per-class fidelity of skew-trained models and their control."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.metrics.fid import load_classifier
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.diffusion import Diffusion
    from genai_report.plotting import save_figure

    blob = torch.load(ctx.input("skewed-diffusion", "diffusion.pt"), weights_only=True)
    clf = load_classifier(ctx.input("digits-classifier", "classifier.pt"), ctx.device)
    train_mix = torch.tensor(blob["mixes"]["skewed"], dtype=torch.float64)
    uniform = torch.full((10,), 0.1, dtype=torch.float64)
    y_cond = torch.arange(10).repeat_interleave(p.per_class)
    per = {}  # kind -> metric -> one value (or list) per seed
    for kind, ckpts in blob["models"].items():
        rows = per.setdefault(kind, {"mix": [], "hit": [], "confident": []})
        for s, ckpt in enumerate(ckpts):
            model = Diffusion.load(ckpt, ctx.device)
            x = model.sample(p.n, generator=ctx.generator(10 * s + 1), method="ddim",
                             steps=p.ddim_steps)
            xc = model.sample(len(y_cond), generator=ctx.generator(10 * s + 2), y=y_cond,
                              method="ddim", steps=p.ddim_steps)
            with torch.no_grad():
                conf, pred = clf(x.clamp(-1, 1)).softmax(-1).cpu().max(-1)  # (n,), (n,)
                pred_c = clf(xc.clamp(-1, 1)).argmax(-1).cpu()
            sure = conf >= p.confidence  # malformed samples are read unsurely
            rows["mix"].append((torch.bincount(pred[sure], minlength=10).double()
                                / max(1, int(sure.sum()))).tolist())
            rows["hit"].append([(pred_c[y_cond == k] == k).double().mean().item()
                                for k in range(10)])
            rows["confident"].append(float(sure.double().mean()))

    def tv(a, b):
        return 0.5 * float((torch.tensor(a, dtype=torch.float64) - b).abs().sum())

    out = {"train_mix": train_mix.tolist(), "seeds": len(per["skewed"]["mix"])}
    for kind, rows in per.items():
        own = train_mix if kind == "skewed" else uniform
        out[kind] = {
            "generated_mix": [over_seeds([m[k] for m in rows["mix"]]) for k in range(10)],
            "conditional_accuracy": [over_seeds([h[k] for h in rows["hit"]])
                                     for k in range(10)],
            "confident_share": over_seeds(rows["confident"]),
            "majority_share": over_seeds([m[0] for m in rows["mix"]]),
            "rarest_share": over_seeds([m[9] for m in rows["mix"]]),
            "tv_vs_own_training_mix": over_seeds([tv(m, own) for m in rows["mix"]]),
            "tv_vs_skewed_mix": over_seeds([tv(m, train_mix) for m in rows["mix"]]),
            "tv_vs_uniform": over_seeds([tv(m, uniform) for m in rows["mix"]]),
            "accuracy_common": over_seeds([sum(h[:3]) / 3 for h in rows["hit"]]),
            "accuracy_rare": over_seeds([sum(h[7:]) / 3 for h in rows["hit"]]),
            "accuracy_gap": over_seeds([sum(h[:3]) / 3 - sum(h[7:]) / 3 for h in rows["hit"]]),
        }
    out["majority_share_train"] = float(train_mix[0])
    out["rarest_share_train"] = float(train_mix[9])

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(6.4, 2.8))
    ks = torch.arange(10)
    ax.bar(ks - 0.27, train_mix, 0.27, label="skewed training mix", color="0.45")
    for off, kind, color, label in ((0.0, "skewed", "C1", "skewed models"),
                                    (0.27, "balanced", "C0", "balanced control")):
        mix = out[kind]["generated_mix"]
        ax.bar(ks + off, [m["mean"] for m in mix], 0.27, yerr=[m["sd"] for m in mix],
               color=color, label=label, error_kw={"lw": 0.8})
        acc = out[kind]["conditional_accuracy"]
        ax2.bar(ks + off - 0.135, [a["mean"] for a in acc], 0.27, yerr=[a["sd"] for a in acc],
                color=color, label=label, error_kw={"lw": 0.8})
    ax.set_xticks(range(10))
    ax.set_xlabel("digit class")
    ax.set_ylabel("share of samples")
    ax.legend(fontsize=8)
    ax2.set_xticks(range(10))
    ax2.set_xlabel("requested digit (rarer to the right in the skew)")
    ax2.set_ylabel("read as requested")
    ax2.set_ylim(0, 1.05)
    fig.tight_layout()
    save_figure(fig, ctx.output("bias.svg"))
    return out
