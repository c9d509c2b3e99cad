"""The dark variants of SVG figures (genai_report.plotting.dark)."""

from __future__ import annotations

import colorsys
import io
import re
import xml.etree.ElementTree as ET

import pytest

from genai_report.plotting.dark import (
    INK,
    MIN_CONTRAST,
    PAPER,
    _contrast,
    _luminance,
    _rgb,
    dark_colour,
    dark_name,
    dark_svg,
    keep_colours,
)
from genai_report.plotting.style import PALETTE


def _contrast_on_paper(colour: str) -> float:
    return _contrast(_luminance(_rgb(colour)), _luminance(_rgb(PAPER)))


def test_neutral_colours_swap_ends_and_keep_their_order():
    assert dark_colour("#ffffff") == PAPER and dark_colour("#fff") == PAPER
    assert dark_colour("#000000") == INK
    greys = [f"#{v:02x}{v:02x}{v:02x}" for v in range(0, 256, 15)]  # black → white
    mapped = [_luminance(_rgb(dark_colour(g))) for g in greys]
    assert mapped == sorted(mapped, reverse=True)  # light figure's dark greys are now light


def test_the_palette_stands_out_from_the_dark_paper_with_its_hues_kept():
    for colour in (*PALETTE, "#440154", "#1f77b4", "#083c7d"):
        out = dark_colour(colour)
        assert _contrast_on_paper(out) >= MIN_CONTRAST - 0.05, (colour, out)
        h0, _, s0 = colorsys.rgb_to_hls(*_rgb(colour))
        h1 = colorsys.rgb_to_hls(*_rgb(out))[0]
        if s0 > 0.1:  # the palette's grey is a grey either way
            assert min(abs(h0 - h1), 1 - abs(h0 - h1)) < 0.02, (colour, out)
    # Colours already clear of the paper are left alone: a legend still matches its line.
    assert dark_colour("#e07b39") == "#e07b39"


def test_pale_tints_become_dark_tints_of_the_same_hue():
    out = dark_colour("#dbe9f6")  # a pale blue band
    assert _luminance(_rgb(out)) < 0.1
    assert abs(colorsys.rgb_to_hls(*_rgb(out))[0] - colorsys.rgb_to_hls(*_rgb("#dbe9f6"))[0]) < 0.02


SVG = """<?xml version="1.0" encoding="utf-8" standalone="no"?>
<svg xmlns:xlink="http://www.w3.org/1999/xlink" width="10pt" height="10pt" xmlns="http://www.w3.org/2000/svg">
 <path d="M 0 0 L 1 1" style="fill: #ffffff; fill-opacity: 0.5; stroke: #000000"/>
 <rect fill="#3B6FB6" width="1" height="1"/>
 <stop offset="0" style="stop-color: #ffffff"/>
 <image xlink:href="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAE=" width="1" height="1"/>
</svg>
"""


def test_every_named_colour_is_mapped_and_pictures_are_not_touched():
    out = dark_svg(SVG)
    assert f'style="fill: {PAPER}; fill-opacity: 0.5; stroke: {INK}"' in out
    assert f'fill="{dark_colour("#3b6fb6")}"' in out
    assert f"stop-color: {PAPER}" in out
    assert 'xlink:href="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAE="' in out
    assert f'<svg fill="{INK}" xmlns:xlink=' in out  # unnamed fills (glyphs) take the ink
    assert out.count("\n") == SVG.count("\n")  # nothing else moved


def test_a_matplotlib_figure_with_a_picture_keeps_its_picture_and_loses_its_white():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.plotting.style import apply_style

    with matplotlib.rc_context():
        apply_style()
        fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))
        a.plot([0, 1], [1, 0], label="a line")
        a.legend(frameon=True)
        a.set_title("Title")
        b.imshow(np.arange(16.0).reshape(4, 4), cmap="gray")
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
    light = buf.getvalue()
    dark = dark_svg(light)
    ET.fromstring(dark.encode())  # still a well-formed document
    images = re.findall(r"<image\b[^>]*>", light)
    assert images and images == re.findall(r"<image\b[^>]*>", dark)
    assert re.search(r"(fill|stroke): #ffffff", dark) is None
    assert re.search(r"(fill|stroke): #ffffff", light) is not None


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="no <svg> element"):
        dark_svg("<html></html>")
    with pytest.raises(ValueError, match="Only SVG figures"):
        dark_name("samples.png")
    assert dark_name("laws.svg") == "laws.dark.svg"


def test_artists_drawn_on_a_picture_keep_their_colours_when_marked():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with matplotlib.rc_context({"svg.fonttype": "path"}):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.imshow(np.zeros((4, 4)), cmap="magma")
        ax.set_title("paper text")
        label = ax.annotate("on the picture", xy=(1, 1), xytext=(2, 3), color="white",
                            arrowprops={"arrowstyle": "->", "color": "white"})
        keep_colours(label, label.arrow_patch)
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
    dark = dark_svg(buf.getvalue())
    ET.fromstring(dark.encode())
    kept = re.findall(r'<g id="genai-keep-colours-\d+" fill="#000000">', dark)
    assert len(kept) == 2  # the label and its arrow, each pinned to its own colours
    # Their white survives; everything else's white became the paper.
    assert dark.count("#ffffff") >= 2 and f"fill: {PAPER}" in dark


def test_an_unclosed_kept_group_is_named():
    with pytest.raises(ValueError, match="Unclosed group"):
        dark_svg('<svg><g id="genai-keep-colours-0"><path style="fill: #ffffff"/></svg>')
