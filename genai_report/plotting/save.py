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
