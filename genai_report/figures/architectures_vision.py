"""Figures of the vision architectures: neural fields and the vision transformer.

The trained artifacts are ``fields-fit`` (:mod:`genai_report.artifacts.fields`) and
``vit-digits`` (:mod:`genai_report.artifacts.vit`); these figures only read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure


@dataclass(frozen=True)
class Plain:
    """Figures without parameters of their own."""


_PLAIN = {"smoke": Plain(), "quick": Plain(), "full": Plain()}


def _label(name: str, rec: dict) -> str:
    if name == "none":
        return "raw (x, y)"
    if name == "positional":
        return f"positional, L={rec['n_freqs']}"
    return f"Fourier, σ={rec['encodings'][name]['sigma']:g}"


def _listing(items: list[str]) -> str:
    """``"a, b and c"`` (for prose that quotes a list)."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- neural fields
@figure(
    "fields-reconstructions",
    deps=("fields-fit",),
    params=_PLAIN,
    outputs=("reconstructions.svg",),
    title="A neural field sees only every other pixel: raw coordinates blur, Fourier "
          "features of the right bandwidth interpolate, too-high frequencies alias",
    caption="The target (a crop of scikit-learn's `china.jpg`), the nearest training pixel "
            "copied into each gap, and the same coordinate MLP with three input encodings, "
            "rendered at every pixel after the same number of full-batch Adam steps. The MLP "
            "was fitted to the pixels of the even rows and columns only; the numbers are the "
            "PSNR on held-out pixels between them (first seed).",
    alt="Five small square images of a pagoda roof against the sky: the sharp target, a "
        "blocky copy, a blurry reconstruction from raw coordinates, a sharp one from Fourier "
        "features, and a noisy, speckled one from too-high Fourier frequencies.",
)
def fields_reconstructions(ctx, p: Plain):
    """Target and renders of the first seed, with test PSNR in each title."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.models.fields import psnr
    from genai_report.plotting import save_figure

    rec = ctx.input_metrics("fields-fit")
    blob = torch.load(ctx.input("fields-fit", "renders.pt"), weights_only=True)
    target, test = blob["target"], blob["masks"]["test"]
    panels = [("target", target, None), ("nearest pixel", blob["nearest"], None)]
    for name in ("none", rec["best"], rec["highest"]):
        panels.append((_label(name, rec), blob["renders"][name], name))
    fig, axes = plt.subplots(1, len(panels), figsize=(7.2, 1.95))
    scores = {}
    for ax, (title, img, name) in zip(axes, panels, strict=True):
        ax.imshow(img.numpy(), interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
        if title != "target":
            scores[name or "nearest"] = psnr(img[test], target[test])
            title += f"\n{scores[name or 'nearest']:.1f} dB"
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, ctx.output("reconstructions.svg"))
    return {"render_test_psnr": scores, "best": rec["best"], "highest": rec["highest"]}


@figure(
    "fields-psnr",
    deps=("fields-fit",),
    params=_PLAIN,
    outputs=("psnr.svg",),
    title="Fourier features fit an image faster, and their bandwidth trades fitting "
          "against interpolating",
    caption="Left: PSNR against full-batch Adam step on the training pixels (dashed) and on "
            "the held-out pixels between them (solid), mean and spread over seeds, each "
            "encoding at its own learning rate (picked on validation pixels). Right: final "
            "PSNR against the Fourier features' bandwidth σ (cycles per image width); raw "
            "coordinates and NeRF's positional encoding as horizontal lines. The grey band "
            "marks frequencies above what the half-resolution training grid can represent.",
    alt="Left: rising PSNR curves; the Fourier-feature curve climbs far above the raw "
        "coordinate one on both pixel sets. Right: training PSNR rises with sigma while "
        "held-out PSNR peaks at a small sigma and collapses for large ones.",
)
def fields_psnr(ctx, p: Plain):
    """PSNR curves of selected encodings, and final PSNR against sigma."""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.plotting import save_figure

    rec = ctx.input_metrics("fields-fit")
    res = json.loads(ctx.input("fields-fit", "fields.json").read_text())
    enc = rec["encodings"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.0))
    shown = ["none", rec["best"], "positional", rec["highest"]]
    for i, name in enumerate(dict.fromkeys(shown)):
        curves = res[name]["curves"]
        steps = np.array([c["step"] for c in curves[0]])
        for split, ls in (("test", "-"), ("train", "--")):
            v = np.array([[c[split] for c in cv] for cv in curves])  # (seeds, evals)
            mean, sd = v.mean(0), v.std(0, ddof=1) if len(v) > 1 else 0 * v[0]
            ax.plot(steps, mean, ls, color=f"C{i}", label=_label(name, rec) if ls == "-"
                    else None)
            ax.fill_between(steps, mean - sd, mean + sd, color=f"C{i}", alpha=0.2, lw=0)
    ax.plot([], [], "k-", label="held-out pixels")
    ax.plot([], [], "k--", label="training pixels")
    ax.set(xscale="log", xlabel="Adam step", ylabel="PSNR (dB)", title="Training")
    ax.legend(fontsize=8, ncol=1, loc="upper left")
    sig = np.array(rec["sigmas"])
    fourier = [n for n in enc if n.startswith("fourier-")]
    fourier.sort(key=lambda n: enc[n]["sigma"])
    for split, ls, m in (("test", "-", "o"), ("train", "--", "s")):
        mean = np.array([enc[n][split]["mean"] for n in fourier])
        sd = np.array([enc[n][split]["sd"] for n in fourier])
        ax2.errorbar(sig, mean, yerr=sd, fmt=ls + m, color="C1", ms=4, capsize=2,
                     label=f"Fourier, {'held-out' if split == 'test' else 'training'}")
    for name, c in (("none", "C0"), ("positional", "C2")):
        ax2.axhline(enc[name]["test"]["mean"], color=c, lw=1.2,
                    label=f"{_label(name, rec)}, held-out")
    nyquist = rec["size"] / 4  # cycles per width the training grid (size / 2) resolves
    ax2.axvspan(nyquist, sig.max() * 1.5, color="0.5", alpha=0.15, lw=0)
    ax2.set(xscale="log", xlabel="Fourier bandwidth σ (cycles per width)", ylabel="PSNR (dB)",
            title="Bandwidth", xlim=(sig.min() / 1.5, sig.max() * 1.5))
    ax2.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    save_figure(fig, ctx.output("psnr.svg"))
    best, none = enc[rec["best"]], enc["none"]
    test_by_sigma = [enc[n]["test"]["mean"] for n in fourier]
    train_by_sigma = [enc[n]["train"]["mean"] for n in fourier]
    return {
        **rec,
        "best_fit": best, "none_fit": none, "highest_fit": enc[rec["highest"]],
        "sigmas_text": _listing([f"{v:g}" for v in rec["sigmas"]]),
        "lrs_text": _listing([f"{v:g}" for v in rec["lrs"]]),
        "test_gain_in_sd": rec["gain_best_over_none"]["test"]["mean"]
        / max(best["test"]["sd"], none["test"]["sd"], 1e-12),
        "best_is_interior": 0 < fourier.index(rec["best"]) < len(fourier) - 1,
        "highest_test_drop": best["test"]["mean"] - enc[rec["highest"]]["test"]["mean"],
        "highest_train_minus_best_train": enc[rec["highest"]]["train"]["mean"]
        - best["train"]["mean"],
        "test_peak_then_falls": bool(test_by_sigma.index(max(test_by_sigma))
                                     < len(test_by_sigma) - 1),
        "train_rises_past_best": max(train_by_sigma[fourier.index(rec["best"]):])
        > best["train"]["mean"],
        "nyquist_cycles": nyquist,
    }


# --------------------------------------------------------------------------- ViT
@figure(
    "vit-accuracy",
    deps=("vit-digits",),
    params=_PLAIN,
    outputs=("accuracy.svg",),
    title="A vision transformer against a convolutional network of the same size",
    caption="Left: test accuracy on the 450 held-out digits against the number of training "
            "digits, mean and spread over seeds (each seed its own subset, initial weights "
            "and batches), for the same steps and batch; dashed, the same models on test "
            "digits shifted by one pixel. Right: the ViT's mean attention distance (pixels "
            "between a patch and the patches it attends to) per head and layer, trained on "
            "the largest set.",
    alt="Left: two rising accuracy curves, the CNN above the ViT, with the gap narrowing "
        "as the training set grows; dashed shifted-digit curves below, the ViT's lower. "
        "Right: attention distance per head in two layers.",
)
def vit_accuracy(ctx, p: Plain):
    """Accuracy against training-set size; attention distance per head."""
    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.artifacts.vit import MODELS
    from genai_report.plotting import save_figure

    rec = ctx.input_metrics("vit-digits")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.4),
                                  gridspec_kw={"width_ratios": [1.8, 1]})
    n = np.array(rec["sizes"])
    labels = {"cnn": "CNN", "vit": "ViT"}
    for i, name in enumerate(MODELS):
        m = rec["models"][name]
        for key, ls in (("test_acc", "-o"), ("shifted_acc", "--s")):
            mean = np.array([b[key]["mean"] for b in m["by_size"]])
            sd = np.array([b[key]["sd"] for b in m["by_size"]])
            lab = (f"{labels[name]} ({m['params']:,} params)" if key == "test_acc"
                   else f"{labels[name]}, shifted 1 px")
            ax.errorbar(n, mean, yerr=sd, fmt=ls, color=f"C{i}", ms=4, capsize=3, label=lab)
    ax.set(xscale="log", xlabel="training digits", ylabel="test accuracy",
           title="Accuracy")
    ax.set_xticks(n, [f"{v:,}" for v in n])
    ax.minorticks_off()
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    dist = np.array(rec["attention_distance"])  # (L, H)
    for layer in range(dist.shape[0]):
        ax2.plot([layer + 1] * dist.shape[1], dist[layer], "o", color="C1", alpha=0.8)
    ax2.axhline(rec["attention_distance_uniform"], color="0.4", ls="--", lw=1,
                label="uniform attention")
    ax2.legend(fontsize=8, loc="lower center")
    ax2.set(xticks=range(1, dist.shape[0] + 1), xlim=(0.5, dist.shape[0] + 0.5),
            ylim=(0, 1.25 * max(dist.max(), rec["attention_distance_uniform"])),
            xlabel="layer", ylabel="mean attention distance (px)", title="ViT heads")
    fig.tight_layout()
    save_figure(fig, ctx.output("accuracy.svg"))
    gap = rec["gap_cnn_minus_vit"]
    cnn, vit = rec["models"]["cnn"]["by_size"], rec["models"]["vit"]["by_size"]
    return {
        **rec,
        "gap_first": gap[0]["mean"], "gap_last": gap[-1]["mean"],
        "gap_narrows": gap[-1]["mean"] < gap[0]["mean"],
        "cnn_wins_smallest_every_seed": all(v > 0 for v in gap[0]["values"]),
        "gap_last_min": min(gap[-1]["values"]),  # the CNN's smallest lead over seeds
        "param_ratio": rec["models"]["vit"]["params"] / rec["models"]["cnn"]["params"],
        "vit_gain": vit[-1]["test_acc"]["mean"] - vit[0]["test_acc"]["mean"],
        "cnn_gain": cnn[-1]["test_acc"]["mean"] - cnn[0]["test_acc"]["mean"],
        "shift_drop_last": {"cnn": cnn[-1]["shift_drop"]["mean"],
                            "vit": vit[-1]["shift_drop"]["mean"]},
        "head_distance_min": float(dist.min()), "head_distance_max": float(dist.max()),
    }


@figure(
    "vit-attention",
    deps=("vit-digits",),
    params=_PLAIN,
    outputs=("attention.svg",),
    title="Where the [CLS] token looks: attention over the 16 patches of a digit",
    caption="Top row: test digits. Below, for each layer, the attention weight from the "
            "[CLS] token to each 2x2 patch (averaged over heads), drawn at the patch's "
            "place; the weight on [CLS] itself is left out. ViT trained on the largest set, "
            "first seed.",
    alt="A grid of small images: digits 0 to 5 in the top row, and under each a 4x4 map of "
        "attention weights per layer.",
)
def vit_attention(ctx, p: Plain):
    """[CLS]-to-patch attention maps per layer for a few test digits."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.plotting import save_figure

    blob = torch.load(ctx.input("vit-digits", "attention.pt"), weights_only=True)
    cls = blob["cls"]  # (L, n, N)
    L, n, N = cls.shape
    g = blob["grid"]
    fig, axes = plt.subplots(L + 1, n, figsize=(min(7.2, 1.1 * n + 0.8), 1.15 * (L + 1)),
                             squeeze=False)
    for j in range(n):
        axes[0, j].imshow(blob["images"][j, 0].numpy(), cmap="gray_r", vmin=-1, vmax=1)
        axes[0, j].set_title(f"digit {int(blob['labels'][j])}", fontsize=9)
        for layer in range(L):
            w = cls[layer, j].reshape(g, g)
            axes[layer + 1, j].imshow((w / w.sum()).numpy(), cmap="magma", vmin=0)
    for layer in range(L):
        axes[layer + 1, 0].set_ylabel(f"layer {layer + 1}", fontsize=9)
    axes[0, 0].set_ylabel("input", fontsize=9)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
    fig.tight_layout()
    save_figure(fig, ctx.output("attention.svg"))
    # how concentrated the attention is: the largest patch's share, per layer
    top = (cls / cls.sum(-1, keepdim=True)).max(-1).values.mean(-1)  # (L,)
    return {"top_patch_share": top.tolist(), "uniform_share": 1 / N}
