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
        n_texts: texts generated per delta.
        n_tokens: characters generated per text.
        lengths: text lengths at which detection is measured.
        prompt_len: characters of held-out text that prompt each sample.
        threshold: z above which a text is called watermarked.
        substitutions: shares of characters replaced at random (an "edit attack") before
            detecting the strongest watermark at full length.
    """

    deltas: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    gamma: float = 0.5
    n_texts: int = 64
    n_tokens: int = 200
    lengths: tuple[int, ...] = (10, 25, 50, 100, 200)
    prompt_len: int = 16
    threshold: float = 4.0
    substitutions: tuple[float, ...] = (0.1, 0.25, 0.5)


@figure(
    "ethics-watermark",
    deps=("gpt-char",),
    params={"smoke": Watermark(n_texts=4),
            "quick": Watermark(),
            "full": Watermark(n_texts=500, n_tokens=400, lengths=(10, 25, 50, 100, 200, 400))},
    outputs=("watermark.svg",),
    seed=80,
    title="A green-list watermark is invisible to a reader and obvious to its detector.",
    caption="The character GPT samples with a bias delta added to a key-dependent \"green\" half "
    "of the vocabulary (Kirchenbauer et al. 2023). Left: the detector's z-score (each distinct "
    "pair of consecutive characters counted once) against text length (median and 10-90% band), for unwatermarked samples, human-written held-out text "
    "and watermarked samples. Middle: share of texts with z above the threshold. Right: the "
    "cost, the perplexity of the samples under the unbiased model.",
    alt="Three panels: z-scores that stay near zero for unwatermarked and human text but grow "
    "with length for watermarked text; detection rate rising to one with length for larger "
    "deltas; perplexity rising slowly with delta.",
)
def watermark(ctx, p: Watermark):
    """Sample watermarked and plain text from the GPT; z-scores, detection rates, perplexity."""
    import math

    import matplotlib.pyplot as plt
    import torch

    from genai_report.artifacts.applications import load_gpt
    from genai_report.ethics.watermark import (
        GPTNextLogits,
        detect,
        green_counts,
        green_lists,
        sample,
    )
    from genai_report.plotting import save_figure

    model, tok, blob = load_gpt(ctx.input("gpt-char", "model.pt"), ctx.device)
    val = tok.encode(blob["val_text"])
    green = green_lists(tok.vocab_size, p.gamma)
    starts = torch.randint(0, len(val) - p.prompt_len - p.n_tokens - 1, (p.n_texts,),
                           generator=ctx.generator(1))
    prompts = val[starts[:, None] + torch.arange(p.prompt_len)].to(ctx.device)  # (B, P)
    human = val[starts[:, None] + p.prompt_len - 1 + torch.arange(p.n_tokens + 1)]
    lengths = [n for n in p.lengths if n <= p.n_tokens]
    series, out = {}, {}
    for k, delta in enumerate(p.deltas):
        ids, nll = sample(GPTNextLogits(model), prompts, p.n_tokens, green, delta,
                          ctx.generator(10 + k))
        gen = ids[:, p.prompt_len - 1:].cpu()  # last prompt token seeds the first green list
        zs = torch.stack([detect(gen[:, : n + 1], green, p.gamma) for n in lengths])  # (L, B)
        name = "no watermark" if delta == 0 else f"delta = {delta:g}"
        series[name] = zs
        out[f"delta_{delta:g}"] = {
            "z_mean": {str(n): float(z.mean()) for n, z in zip(lengths, zs, strict=True)},
            "detection_rate": {str(n): float((z > p.threshold).double().mean())
                               for n, z in zip(lengths, zs, strict=True)},
            "perplexity": math.exp(float(nll.mean())),
            "green_fraction": float(green_counts(gen, green, unique=False)[0].sum()
                                    / (gen.numel() - len(gen))),
        }
        if delta == max(p.deltas) and delta > 0:  # robustness: random character edits
            g = ctx.generator(50)
            out["substitution"] = {"delta": delta, "length": p.n_tokens}
            for frac in p.substitutions:
                hit = torch.rand(gen.shape, generator=g) < frac
                hit[:, 0] = False
                edited = torch.where(hit, torch.randint(0, tok.vocab_size, gen.shape,
                                                        generator=g), gen)
                z = detect(edited, green, p.gamma)
                out["substitution"][f"{round(100 * frac)}pct"] = {
                    "z_mean": float(z.mean()),
                    "detection_rate": float((z > p.threshold).double().mean())}
    zh = torch.stack([detect(human[:, : n + 1], green, p.gamma) for n in lengths])
    series["human text"] = zh
    out["human"] = {"z_mean": {str(n): float(z.mean()) for n, z in zip(lengths, zh, strict=True)},
                    "detection_rate": {str(n): float((z > p.threshold).double().mean())
                                       for n, z in zip(lengths, zh, strict=True)}}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for i, (name, zs) in enumerate(series.items()):
        color = "0.4" if name == "human text" else f"C{i}"
        q = torch.quantile(zs.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64), dim=1)
        axes[0].plot(lengths, q[1], marker="o", color=color, label=name)
        axes[0].fill_between(lengths, q[0], q[2], color=color, alpha=0.15)
        axes[1].plot(lengths, (zs > p.threshold).double().mean(1), marker="o", color=color,
                     label=name)
    axes[0].axhline(p.threshold, color="0.5", ls="--", lw=1)
    axes[0].set_ylabel("detector z-score")
    axes[1].set_ylabel(f"share of texts with z > {p.threshold:g}")
    axes[1].set_ylim(-0.03, 1.03)
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xlabel("text length (characters)")
    axes[0].legend(fontsize=7)
    axes[2].bar(range(len(p.deltas)), [out[f"delta_{d:g}"]["perplexity"] for d in p.deltas],
                color="C0")
    axes[2].set_xticks(range(len(p.deltas)), [f"{d:g}" for d in p.deltas])
    axes[2].set_xlabel("green-list bias delta")
    axes[2].set_ylabel("perplexity under the plain model")
    save_figure(fig, ctx.output("watermark.svg"))
    return {**out, "gamma": p.gamma, "threshold": p.threshold, "n_texts": p.n_texts,
            "n_tokens": p.n_tokens, "vocab_size": tok.vocab_size}


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
    title="Bigger models trained longer reproduce more of their training text verbatim.",
    caption="Share of prompts, taken from the training text (solid) or from held-out text of "
    "the same corpus (dashed), whose greedy continuation reproduces the next characters "
    "exactly, for character GPTs of three widths along training (Carlini et al. 2021's "
    "extraction test at toy scale).",
    alt="Line chart of the extractable share against epochs over the training text, one solid "
    "line per model width rising with training and width, and flat dashed lines near zero for "
    "held-out text.",
)
def memorization(ctx, p: MemorizationPlot):
    """Plot the extractable share of training vs held-out prompts over training, per width."""
    import json

    import matplotlib.pyplot as plt

    from genai_report.plotting import save_figure

    runs = json.loads(ctx.input("memorization-gpts", "runs.json").read_text())
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, r in enumerate(runs):
        ep = [e["epochs"] for e in r["evals"]]
        ax.plot(ep, [e["train_extractable"] for e in r["evals"]], marker="o", color=f"C{i}",
                label=f"width {r['width']} ({r['n_params'] / 1e3:.0f}k params)")
        ax.plot(ep, [e["held_extractable"] for e in r["evals"]], ls="--", marker=".",
                color=f"C{i}")
    ax.set_xlabel("epochs over the training text")
    ax.set_ylabel("share of prompts continued verbatim")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, title="solid: training text, dashed: held-out", title_fontsize=8)
    save_figure(fig, ctx.output("memorization.svg"))
    return {f"w{r['width']}": {"train_extractable": r["evals"][-1]["train_extractable"],
                               "held_extractable": r["evals"][-1]["held_extractable"],
                               "train_mean_match": r["evals"][-1]["train_mean_match"],
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
    seed=81,
    title="A skewed training set comes back out: the generated class mix follows the data.",
    caption="A class-conditional diffusion model trained on digits drawn with a geometric class "
    "skew (class k with probability proportional to 0.7^k). Left: class shares in training, "
    "in unconditional samples labelled by the digits classifier (bars: samples it labels with "
    "confidence of at least 0.9; dashes: all samples) and, for reference, in the real test "
    "digits labelled the same way. Right: asked for each class explicitly, how often "
    "the sample is read as that class: the rare classes are drawn worse.",
    alt="Left: grouped bars of class share for digits 0 to 9, falling from 0 to 9 for both the "
    "training mix and the generated mix, flat for the test set. Right: per-class accuracy of "
    "conditional samples, lower for the rare classes.",
)
def bias(ctx, p: BiasPlot):
    """Compare the generated class mix of the skew-trained model with its training mix."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import digits
    from genai_report.metrics.fid import load_classifier
    from genai_report.models.diffusion import Diffusion
    from genai_report.plotting import save_figure

    blob = torch.load(ctx.input("skewed-diffusion", "diffusion.pt"), weights_only=True)
    model = Diffusion.load(blob, ctx.device)
    clf = load_classifier(ctx.input("digits-classifier", "classifier.pt"), ctx.device)
    train_mix = torch.tensor(blob["mix"])
    x = model.sample(p.n, generator=ctx.generator(1), method="ddim", steps=p.ddim_steps)
    y_cond = torch.arange(10).repeat_interleave(p.per_class)
    xc = model.sample(len(y_cond), generator=ctx.generator(2), y=y_cond, method="ddim",
                      steps=p.ddim_steps)
    with torch.no_grad():
        prob = clf(x.clamp(-1, 1)).softmax(-1).cpu()  # (n, 10)
        conf, pred = prob.max(-1)
        pred_c = clf(xc.clamp(-1, 1)).argmax(-1).cpu()
        pred_test = clf(digits.load().x_test.to(ctx.device)).argmax(-1).cpu()
    gen_mix = torch.bincount(pred, minlength=10).double() / len(pred)
    sure = conf >= p.confidence  # malformed samples tend to be read, unsurely, as an 8
    sure_mix = torch.bincount(pred[sure], minlength=10).double() / max(1, int(sure.sum()))
    test_mix = torch.bincount(pred_test, minlength=10).double() / len(pred_test)
    hit = [(pred_c[y_cond == k] == k).double().mean().item() for k in range(10)]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    ks = torch.arange(10)
    ax.bar(ks - 0.27, train_mix, 0.27, label="training mix", color="0.45")
    ax.bar(ks, sure_mix, 0.27, label=f"generated (classifier confidence >= {p.confidence:g})",
           color="C1")
    ax.scatter(ks, gen_mix, marker="_", s=120, color="k", zorder=3,
               label="generated (all samples)")
    ax.bar(ks + 0.27, test_mix, 0.27, label="real test digits", color="C0", alpha=0.6)
    ax.set_xticks(range(10))
    ax.set_xlabel("digit class")
    ax.set_ylabel("share")
    ax.legend(fontsize=8)
    ax2.bar(range(10), hit, color="C1")
    ax2.set_xticks(range(10))
    ax2.set_xlabel("requested digit (rarer to the right)")
    ax2.set_ylabel("classified as requested")
    ax2.set_ylim(0, 1.05)
    save_figure(fig, ctx.output("bias.svg"))
    tv = 0.5 * float((sure_mix - train_mix.double()).abs().sum())
    uniform = torch.full((10,), 0.1, dtype=torch.float64)
    return {"train_mix": train_mix.tolist(), "generated_mix": sure_mix.tolist(),
            "generated_mix_all": gen_mix.tolist(), "confident_share": float(sure.double().mean()),
            "tv_generated_vs_train": tv,
            "tv_generated_all_vs_train": 0.5 * float((gen_mix - train_mix.double()).abs().sum()),
            "tv_generated_vs_uniform": 0.5 * float((sure_mix - uniform).abs().sum()),
            "tv_train_vs_uniform": 0.5 * float((train_mix.double() - uniform).abs().sum()),
            "majority_share": {"train": float(train_mix[0]), "generated": float(sure_mix[0])},
            "rarest_share": {"train": float(train_mix[9]), "generated": float(sure_mix[9])},
            "conditional_accuracy": hit,
            "conditional_accuracy_common": sum(hit[:3]) / 3,
            "conditional_accuracy_rare": sum(hit[7:]) / 3}
