"""The report's matplotlib style: readable in the site's light and dark palettes."""

from __future__ import annotations

PALETTE = ("#3b6fb6", "#e07b39", "#3a9e6f", "#c4455a", "#8a63b8", "#7a7a7a", "#c9a227", "#2aa3b8")
"""Colour cycle: distinguishable, and legible on white and on dark grey."""


def apply_style() -> None:
    """Set rcParams for every figure (called by the pipeline after ``rcdefaults()``)."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "savefig.facecolor": "white",
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "axes.prop_cycle": cycler(color=list(PALETTE)),
            "legend.frameon": False,
            "image.cmap": "viridis",
            # Text as paths: the SVG needs no font on the reader's machine.
            "svg.fonttype": "path",
            # Stable ids so re-running a figure gives byte-identical SVG.
            "svg.hashsalt": "genai-report",
        }
    )
