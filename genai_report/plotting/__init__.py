"""Plotting helpers shared by every figure: the report's style and reproducible saving."""

from genai_report.plotting.save import quantize_png, save_figure
from genai_report.plotting.style import PALETTE, apply_style

__all__ = ["PALETTE", "apply_style", "quantize_png", "save_figure"]
