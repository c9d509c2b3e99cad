"""Save a matplotlib figure reproducibly (no timestamps in the file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: Path, **kwargs: Any) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix) without volatile metadata.

    Args:
        fig: a ``matplotlib.figure.Figure``.
        path: target file, usually ``ctx.output("name.svg")``.
        **kwargs: passed to ``Figure.savefig``.

    Returns:
        ``path``.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    metadata = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None}}.get(fmt)
    fig.savefig(path, format=fmt, metadata=metadata, **kwargs)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def quantize_png(path: Path, colors: int = 64) -> Path:
    """Rewrite the PNG at ``path`` with a palette of at most ``colors`` colours, no
    dithering (deterministic, and often a third of the size for plots and text drawn in a
    few colours). Use it for pictures of many flat colours, not for photographs.

    Returns:
        ``path``.
    """
    from PIL import Image

    if not 2 <= colors <= 256:
        raise ValueError(f"colors must be in [2, 256], got {colors}.")
    path = Path(path)
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    pal = rgb.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.save(path, format="PNG", optimize=True)
    return path
