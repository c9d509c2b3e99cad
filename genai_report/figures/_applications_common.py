"""Helpers shared by the digits application figures (the trained models are loaded with
:mod:`genai_report.figures._families_common`)."""

from __future__ import annotations


def show_digit(ax, img):
    ax.imshow(img.reshape(8, 8).cpu().numpy(), cmap="gray_r", vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# --------------------------------------------------------------------------- code completion
