"""Helpers shared by the families-of-models figures (loading artifacts, drawing digit grids)."""

from __future__ import annotations

DIGIT_FAMILIES = {
    "digits-gan": "GAN (DCGAN)",
    "digits-vae": "VAE",
    "digits-diffusion": "Diffusion (DDPM)",
    "digits-pixelcnn": "Autoregressive (PixelCNN)",
    "digits-latent-diffusion": "Latent diffusion (hybrid)",
}
"""Artifact node -> family label, in the order the gallery shows them."""


def load_eval(ctx, node: str) -> dict:
    """The metrics an artifact recorded: its ``eval.json`` and its timings."""
    ctx.input(node, "eval.json")  # declared and present
    return ctx.input_metrics(node)


def seed_scores(ctx) -> dict:
    """Every digits model scored over several sampling seeds (the ``digits-scores`` node).

    Returns ``{model: {"fid": {"mean", "sd", "n", "values"}, "precision": ..., ...}}`` with
    models named like their nodes without ``digits-`` (``"gan"``, ``"diffusion-uncond"``...).
    """
    ctx.input("digits-scores", "eval.json")
    return ctx.input_metrics("digits-scores")["models"]


def fid_floor(ctx) -> float:
    """The digits FID between real training and test digits (from ``digits-classifier``)."""
    return float(load_eval(ctx, "digits-classifier")["fid_floor"])


def classifier(ctx):
    """The trained digits classifier, on the node's device."""
    from genai_report.metrics.fid import load_classifier

    return load_classifier(ctx.input("digits-classifier", "classifier.pt"), ctx.device)


def evaluator(ctx):
    """A :class:`DigitsEvaluator` against the test split."""
    from genai_report.data import digits
    from genai_report.metrics.fid import DigitsEvaluator

    return DigitsEvaluator(classifier(ctx), digits.load().x_test)


def diffusion(ctx):
    """The trained pixel diffusion model."""
    import torch

    from genai_report.models.diffusion import Diffusion

    blob = torch.load(ctx.input("digits-diffusion", "diffusion.pt"), weights_only=True)
    return Diffusion.load(blob, ctx.device)


def digit_grid(images, rows: int, cols: int, pad: int = 1):
    """Tile ``(N, 1, 8, 8)`` images in [-1, 1] into one ``(H, W)`` array, white gaps."""
    import torch

    imgs = images[: rows * cols].detach().cpu().clamp(-1, 1).reshape(-1, 8, 8)
    out = torch.ones(rows * (8 + pad) + pad, cols * (8 + pad) + pad)
    for k, im in enumerate(imgs):
        r, c = divmod(k, cols)
        y0, x0 = pad + r * (8 + pad), pad + c * (8 + pad)
        out[y0:y0 + 8, x0:x0 + 8] = -im  # dark ink on white paper
    return out.numpy()


def show_grid(ax, images, rows: int, cols: int, title: str = "") -> None:
    """Draw a digit grid on ``ax`` without axes."""
    ax.imshow(digit_grid(images, rows, cols), cmap="gray", vmin=-1, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)


def score_line(m: dict) -> str:
    """A one-line summary of digit-sample metrics for a panel title.

    Metrics measured over seeds (``{"mean", "sd", ...}``) show the FID as mean ± sd and
    the rest as means.
    """
    def mean(v):
        return v["mean"] if isinstance(v, dict) else v

    fid = m["fid"]
    fid_text = (f"FID {fid['mean']:.1f} ± {fid['sd']:.1f}" if isinstance(fid, dict)
                else f"FID {fid:.1f}")
    return (f"{fid_text} · P {mean(m['precision']):.2f} / R {mean(m['recall']):.2f} · "
            f"{mean(m['classes_covered']):.0f}/10 classes")
