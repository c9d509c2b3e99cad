"""Helpers shared by the digits application figures."""

from __future__ import annotations


def load_digits_classifier(ctx):
    from genai_report.metrics.fid import load_classifier

    return load_classifier(ctx.input("digits-classifier", "classifier.pt"), ctx.device)


def load_digits_diffusion(ctx):
    import torch

    from genai_report.models.diffusion import Diffusion

    blob = torch.load(ctx.input("digits-diffusion", "diffusion.pt"), weights_only=True)
    return Diffusion.load(blob, ctx.device)


def show_digit(ax, img):
    ax.imshow(img.reshape(8, 8).cpu().numpy(), cmap="gray_r", vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# --------------------------------------------------------------------------- code completion
