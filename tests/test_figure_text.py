"""Text in the committed figures stays readable at the width of the site's text column.

Figures are SVG files that the page scales down to the column when they are wider than it.
Matplotlib writes SVG text as glyph paths (``svg.fonttype = "path"``): each run of text is a
group with ``transform="... scale(s -s)"`` where ``s`` is the font size in points over
:data:`GLYPH_SCALE`. From the figure's width in points and the column's width in CSS
pixels follows the size at which every run of text is displayed; none may fall below
:data:`MIN_TEXT_PX`. PNG figures (sample grids) hold no recoverable text sizes and are not
checked here.

Figures drawn before this rule that still break it are listed in :data:`KNOWN_TOO_SMALL`;
the list must match exactly, so a new offender fails and a fixed one must leave the list.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures" / "quick"
COLUMN_PX = 690
"""Width of Material's text column at a 1280 px window, in CSS pixels."""
MIN_TEXT_PX = 9.0
"""Smallest font size, in CSS pixels, that a figure may display at the column's width."""
GLYPH_SCALE = 100.0
"""Matplotlib's ``TextToPath.FONT_SCALE``: glyph paths are drawn at 100 points."""
PT_TO_PX = 4 / 3
"""CSS pixels per point."""
KNOWN_TOO_SMALL: set[str] = set()
"""Figures still to redraw for the column (none left; keep the mechanism for the next)."""

_WIDTH_RE = re.compile(r'<svg[^>]*\swidth="([0-9.]+)pt"')
_GLYPHS_RE = re.compile(r'scale\(([0-9.]+) -[0-9.]+\)')


def displayed_text_px(svg: str) -> tuple[float, float] | None:
    """``(smallest font in px as displayed, figure width in pt)``; ``None`` without text."""
    width = _WIDTH_RE.search(svg)
    if width is None:
        raise ValueError("no width in points on the <svg> element")
    scales = [float(s) for s in _GLYPHS_RE.findall(svg)]
    if not scales:
        return None
    width_pt = float(width.group(1))
    shrink = min(1.0, COLUMN_PX / (width_pt * PT_TO_PX))  # the page never enlarges a figure
    return min(scales) * GLYPH_SCALE * PT_TO_PX * shrink, width_pt


def test_the_measure_reads_font_sizes_from_a_matplotlib_svg(tmp_path):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    from genai_report.plotting import apply_style, save_figure

    apply_style()
    for width_in, size_pt in ((5.0, 8.0), (12.0, 8.0)):
        fig, ax = plt.subplots(figsize=(width_in, 2))
        ax.set_title("title", fontsize=size_pt)
        ax.tick_params(labelsize=size_pt)
        path = save_figure(fig, tmp_path / "f.svg")
        px, width_pt = displayed_text_px(path.read_text())
        natural_px = width_pt * PT_TO_PX
        expected = size_pt * PT_TO_PX * min(1.0, COLUMN_PX / natural_px)
        assert px == pytest.approx(expected, rel=0.02)
    assert px < MIN_TEXT_PX  # 8 pt on a 12-inch figure shrinks below the limit


def test_committed_figures_keep_their_text_readable_in_the_column():
    svgs = sorted(FIGURES.glob("*/*.svg"))
    assert svgs, f"no committed figures under {FIGURES}"
    too_small = {}
    for path in svgs:
        measured = displayed_text_px(path.read_text())
        if measured is not None and measured[0] < MIN_TEXT_PX:
            too_small[f"{path.parent.name}/{path.name}"] = round(measured[0], 1)
    new = {k: v for k, v in too_small.items() if k not in KNOWN_TOO_SMALL}
    assert not new, (f"Text displays below {MIN_TEXT_PX} px at the {COLUMN_PX} px column in "
                     f"{new} (px). Draw the figure at most 7.2 in wide with fonts of at least "
                     "8 pt (see genai_report/plotting).")
    fixed = KNOWN_TOO_SMALL - set(too_small)
    assert not fixed, f"{sorted(fixed)} now read well: remove them from KNOWN_TOO_SMALL."
