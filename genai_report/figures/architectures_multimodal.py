"""Multimodal architectures on the digits: the tiny CLIP and text-to-image with guidance.

The models are trained by ``digits-clip`` and ``digits-text-to-image``
(:mod:`genai_report.artifacts.multimodal`); these figures only read their records and
samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure


@dataclass(frozen=True)
class Panels:
    """Figures without parameters of their own (everything is measured upstream)."""


PANELS = {"smoke": Panels(), "quick": Panels(), "full": Panels()}


def _mean_sd(v) -> tuple[float, float]:
    return float(v["mean"]), float(v["sd"])


@figure(
    "multimodal-clip",
    deps=("digits-clip",),
    params=PANELS,
    outputs=("clip.svg",),
    title="A tiny CLIP: text prompts classify digits it was never trained to label.",
    caption="Left: test accuracy of zero-shot classification from the prompts \"a zero\" to "
            "\"a nine\", of a linear probe on CLIP's frozen image features, and of a supervised "
            "classifier with the same image network, steps and batches; mean and spread over "
            "training seeds, dots for each seed. Middle: retrieval recall@k on the test split, "
            "image to caption and caption to image, against a random ranking (grey ticks). "
            "Right: the joint embedding (first two principal components) of test images, "
            "coloured by digit, and of the ten prompts (numbered circles).",
    alt="Three panels: accuracy dots near the top of the axis for zero-shot, probe and "
        "supervised; retrieval bars far above chance ticks; a scatter of coloured clusters "
        "with a numbered marker for each prompt inside its cluster.",
)
def clip_figure(ctx, p: Panels):
    """Zero-shot against supervised accuracy, retrieval, and the joint embedding."""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.plotting import save_figure

    rec = ctx.input_metrics("digits-clip")
    res = json.loads(ctx.input("digits-clip", "clip.json").read_text())
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(7.2, 2.8),
                                       gridspec_kw={"width_ratios": [1, 1.15, 1.2]})
    arms = (("zero-shot", "zero_shot_accuracy"), ("linear\nprobe", "linear_probe_accuracy"),
            ("super-\nvised", "supervised_accuracy"))
    for i, (_, key) in enumerate(arms):
        m, sd = _mean_sd(rec[key])
        ax.plot([i] * len(rec[key]["values"]), rec[key]["values"], "o", color=f"C{i}", ms=3,
                alpha=0.6)
        ax.errorbar(i + 0.2, m, yerr=sd, fmt="_", color="k", capsize=3)
    ax.set(xticks=range(len(arms)), xlim=(-0.5, len(arms) - 0.3),
           ylabel="test accuracy", title="Classification")
    ax.set_xticklabels([a for a, _ in arms], fontsize=8)

    width = 0.38
    labels = []
    for j, direction in enumerate(("image_to_text", "text_to_image")):
        r = rec[direction]
        for i, k in enumerate((1, 5)):
            m, sd = _mean_sd(r[f"recall_at_{k}"])
            x = i + (j - 0.5) * width
            ax2.bar(x, m, width * 0.9, yerr=sd, color=f"C{3 + j}", capsize=2,
                    label=("image → caption" if j == 0 else "caption → image") if i == 0
                    else None)
            ax2.plot([x - width * 0.45, x + width * 0.45], [r[f"chance_at_{k}"]] * 2,
                     color="0.35", lw=2)
        labels = ["recall@1", "recall@5"]
    ax2.set(xticks=[0, 1], ylim=(0, 1.35), yticks=[0, 0.25, 0.5, 0.75, 1.0], title="Retrieval",
            ylabel="share of queries")
    ax2.set_xticklabels(labels)
    ax2.legend(fontsize=8, loc="upper left", frameon=False)

    emb = res["embedding"]
    xy, lab = np.array(emb["images"]), np.array(emb["labels"])
    cmap = plt.get_cmap("tab10")
    ax3.scatter(xy[:, 0], xy[:, 1], c=[cmap(k) for k in lab], s=5, alpha=0.5, lw=0)
    for k, (px, py) in enumerate(emb["prompts"]):
        ax3.scatter(px, py, s=110, color="white", edgecolor=cmap(k), lw=1.5, zorder=3)
        ax3.text(px, py, str(k), ha="center", va="center", fontsize=8, zorder=4)
    ax3.set(xticks=[], yticks=[], title="Joint embedding", xlabel="PC 1", ylabel="PC 2")
    fig.tight_layout()
    save_figure(fig, ctx.output("clip.svg"))
    zs, sup = rec["zero_shot_accuracy"], rec["supervised_accuracy"]
    return {
        **rec,
        "zero_shot_error": 1 - zs["mean"],
        "supervised_error": 1 - sup["mean"],
        "retrieval_over_chance": min(rec[d][f"recall_at_{k}"]["mean"] / rec[d][f"chance_at_{k}"]
                                     for d in ("image_to_text", "text_to_image")
                                     for k in (1, 5)),
    }


@figure(
    "multimodal-text-to-image",
    deps=("digits-text-to-image",),
    params=PANELS,
    outputs=("text_to_image.svg",),
    title="Text to image: digits drawn from captions, with attributes no label names.",
    caption="Samples of the diffusion model conditioned on our CLIP's caption embedding, "
            "at the chosen classifier-free guidance scale. Left: eight samples for each of "
            "the prompts \"a zero\" to \"a nine\". Right: one sample per digit for each "
            "attribute prompt (\"a thick seven\", \"a seven leaning left\", …).",
    alt="Left: a ten-by-eight grid of generated digits, one row per digit. Right: four rows "
        "of ten digits, the first row with heavy strokes, the second with thin strokes, the "
        "third leaning left and the fourth leaning right.",
)
def text_to_image_figure(ctx, p: Panels):
    """Sample grids of the digit prompts and of the attribute prompts."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.artifacts.multimodal import ATTRIBUTE_PROMPTS
    from genai_report.figures._families_common import show_grid
    from genai_report.plotting import save_figure

    rec = ctx.input_metrics("digits-text-to-image")
    saved = torch.load(ctx.input("digits-text-to-image", "samples.pt"), weights_only=True)
    chosen = saved["guidance"][str(float(rec["chosen_guidance"]))]  # (10, k, 1, 8, 8)
    cols = chosen.shape[1]
    attr = saved["attributes"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.6),
                                  gridspec_kw={"width_ratios": [cols, 10.8]})
    show_grid(ax, chosen.reshape(-1, 1, 8, 8), 10, cols,
              title=f"\"a zero\" … \"a nine\" (guidance {rec['chosen_guidance']:g})")
    ax.set_yticks([4.5 + 9 * k for k in range(10)], [str(k) for k in range(10)], fontsize=8)
    rows = torch.stack([attr[name][:, 0] for name, _, _ in ATTRIBUTE_PROMPTS])  # (4, 10, 1, 8, 8)
    show_grid(ax2, rows.reshape(-1, 1, 8, 8), len(ATTRIBUTE_PROMPTS), 10,
              title="\"a thick …\", \"a thin …\", \"a … leaning left / right\"")
    names = {"left": "leaning left", "right": "leaning right"}
    ax2.set_yticks([4.5 + 9 * k for k in range(len(ATTRIBUTE_PROMPTS))],
                   [names.get(name, name) for name, _, _ in ATTRIBUTE_PROMPTS], fontsize=8)
    ax2.set_xticks([4.5 + 9 * k for k in range(10)], [str(k) for k in range(10)], fontsize=8)
    fig.tight_layout()
    save_figure(fig, ctx.output("text_to_image.svg"))
    return {"chosen_guidance": rec["chosen_guidance"], "samples_per_prompt": cols}


@figure(
    "multimodal-guidance",
    deps=("digits-text-to-image",),
    params=PANELS,
    outputs=("guidance.svg", "guidance-samples.png", "interactive.json"),
    title="Guidance trades variety for adherence to the prompt.",
    caption="The text-to-image model asked for each digit by its caption, at classifier-free "
            "guidance scales from 0 (the unconditional model) upwards. Left: how often a "
            "supervised classifier reads the sample as the digit asked for. Middle: the CLIP "
            "score (cosine similarity of our CLIP's image and prompt embeddings). Right: FID in that "
            "classifier's features against the test split (dotted: real training digits) and recall (the share of real test digits near some "
            "sample). Mean and spread over sampling seeds. On the site, a slider below shows "
            "the samples themselves at each scale (columns: the prompts \"a zero\" to "
            "\"a nine\").",
    alt="Left: agreement rising from near chance at scale 0 to near one. Middle: the CLIP score "
        "rising and levelling off. Right: FID falling then rising, recall falling at large "
        "scales.",
)
def guidance_figure(ctx, p: Panels):
    """Adherence, quality and diversity against the guidance scale."""
    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.plotting import save_figure

    rec = ctx.input_metrics("digits-text-to-image")
    rows = rec["by_scale"]
    s = np.array([r["guidance"] for r in rows])

    def series(key):
        return (np.array([r[key]["mean"] for r in rows]),
                np.array([r[key]["sd"] for r in rows]))

    fig, (ax, ax1, ax2) = plt.subplots(1, 3, figsize=(7.2, 2.6))
    acc, acc_sd = series("accuracy")
    ax.errorbar(s, acc, yerr=acc_sd, marker="o", ms=4, capsize=2, color="C0")
    ax.axhline(rec["chance_accuracy"], color="0.5", ls=":", lw=1)
    ax.text(s[-1], rec["chance_accuracy"] + 0.03, "chance", ha="right", fontsize=8, color="0.4")
    ax.set(xlabel="guidance scale", ylabel="share read as the digit asked", ylim=(0, 1.05),
           title="Classifier agreement")
    cs, cs_sd = series("clip_score")
    ax1.errorbar(s, cs, yerr=cs_sd, marker="s", ms=4, capsize=2, color="C1")
    ax1.set(xlabel="guidance scale", ylabel="cosine similarity", title="CLIP score")
    ticks = [f"{v:g}" for v in s]
    for a in (ax, ax1):
        a.set_xticks(s, ticks)

    fid, fid_sd = series("fid")
    ax2.errorbar(s, fid, yerr=fid_sd, marker="o", ms=4, capsize=2, color="C3", label="FID")
    ax2.axhline(rec["fid_floor"], color="C3", ls=":", lw=1)
    ax2.set(xlabel="guidance scale", ylabel="FID (lower is better)",
            title="Quality and variety")
    rc, rc_sd = series("recall")
    ax2r = ax2.twinx()
    ax2r.errorbar(s, rc, yerr=rc_sd, marker="s", ms=4, capsize=2, color="C2", label="recall")
    ax2r.set_ylabel("recall", color="C2")
    ax2r.set_ylim(0, 1.05)
    ax2r.grid(False)
    lines = ax2.get_legend_handles_labels()
    lines_r = ax2r.get_legend_handles_labels()
    ax2.legend(lines[0] + lines_r[0], lines[1] + lines_r[1], fontsize=8, loc="upper center")
    ax2.set_xticks(s, ticks)
    fig.tight_layout()
    save_figure(fig, ctx.output("guidance.svg"))

    _guidance_slider(ctx, rec)
    best = int(np.argmin(fid))
    top = rows[-1]
    return {
        "best_fid_guidance": float(s[best]),
        "best_fid": rows[best]["fid"],
        "largest_guidance": float(s[-1]),
        "largest": top,
        "accuracy_monotone": bool(np.all(np.diff(acc) >= -2 * np.maximum(acc_sd[1:], 0.005))),
        "recall_drop_largest": rec["unguided"]["recall"]["mean"] - top["recall"]["mean"],
        "clip_score_change_beyond_chosen": top["clip_score"]["mean"]
        - rec["chosen"]["clip_score"]["mean"],
    }


def _guidance_slider(ctx, rec: dict, scale_px: int = 5) -> None:
    """Samples at every guidance scale as one PNG of stacked frames, and the slider view
    that shows one frame at a time (columns: the digits asked for; rows: samples)."""
    import matplotlib.image
    import numpy as np
    import torch

    from genai_report.figures._families_common import digit_grid
    from genai_report.plotting.interactive import INTERACTIVE, slider_view, write_view

    saved = torch.load(ctx.input("digits-text-to-image", "samples.pt"), weights_only=True)
    rows = sorted(rec["by_scale"], key=lambda r: r["guidance"])
    frames, captions = [], []
    for r in rows:
        grid = saved["guidance"][str(float(r["guidance"]))]  # (10 digits, k, 1, 8, 8)
        k = grid.shape[1]
        by_sample = grid.transpose(0, 1).reshape(-1, 1, 8, 8)  # row = sample, col = digit
        tile = digit_grid(by_sample, k, 10, pad=1)  # (H, W) in [-1, 1], ink dark
        frames.append(np.kron((tile + 1) / 2, np.ones((scale_px, scale_px))))
        captions.append(
            f"Guidance {r['guidance']:g}: {r['accuracy']['mean']:.0%} read as the digit asked, "
            f"FID {r['fid']['mean']:.1f}, recall {r['recall']['mean']:.2f} (means over "
            f"{r['fid']['n']} sampling seeds).")
    gap = np.ones((2 * scale_px, frames[0].shape[1]))
    sprite = np.concatenate([np.concatenate([f, gap]) for f in frames])  # equal-height frames
    matplotlib.image.imsave(ctx.output("guidance-samples.png"), sprite, cmap="gray", vmin=0,
                            vmax=1, metadata={"Software": None})
    start = next(i for i, r in enumerate(rows)
                 if float(r["guidance"]) == float(rec["chosen_guidance"]))
    write_view(ctx.output(INTERACTIVE), slider_view(
        "guidance scale", [r["guidance"] for r in rows], "guidance-samples.png", captions,
        start=start, hint="Drag the slider: at 0 the prompt is ignored; as the scale grows "
                          "the samples obey the prompt and grow alike."))
