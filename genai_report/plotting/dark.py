"""Dark variants of the report's SVG figures, derived from the light ones.

A matplotlib SVG names every colour it paints in a ``style`` (or presentation) attribute,
and leaves black, the default fill, unnamed. So a dark variant needs no second render: it
is the same file with each named colour mapped by :func:`dark_colour` and the default fill
set to the dark palette's ink:

* **neutral colours swap ends**: white paper becomes the dark page, black ink becomes
  light grey, and the greys of grids and frames fall in between in reverse order;
* **light tints** (shaded bands, pale fills) become dark tints of the same hue;
* **every other colour keeps its hue and saturation** and is lightened only as far as it
  needs to stand out from the dark paper (a 3:1 contrast, WCAG's bar for graphics), so the
  report's palette stays recognisable and a legend still matches its lines.

Embedded pictures (``<image>``: samples, heat maps, colour bars) are kept exactly as drawn,
because their colours are data. So are artists drawn *on* a picture, such as a white label
on a heat map, once a figure marks them with :func:`keep_colours`: the transform cannot see
what lies under a line. The plugin serves ``NAME.dark.svg`` beside every SVG figure and the
site swaps it in under the dark scheme; nothing is committed twice.
"""

from __future__ import annotations

import colorsys
import re
from functools import lru_cache

PAPER = "#1e2029"
"""The dark paper: Material's slate background (``hsl(232, 15%, 14%)``)."""

INK = "#bfc0c6"
"""The dark palette's ink, for text, axes and ticks: Material's slate text colour on :data:`PAPER`."""

MIN_CONTRAST = 3.0
"""Contrast against :data:`PAPER` that a coloured line or mark is lightened to reach."""

NEUTRAL_CHROMA = 0.08
"""Largest channel spread (0-1) of a colour treated as a grey."""

TINT_LIGHTNESS = 0.82
"""Lightness above which a coloured fill counts as a pale tint (and is darkened)."""

DARK_SUFFIX = ".dark.svg"

KEEP_PREFIX = "genai-keep-colours"
"""SVG group id prefix of artists whose colours the dark variant keeps (:func:`keep_colours`)."""

# A colour in a style declaration (`fill: #fff`) or a presentation attribute (`fill="#fff"`).
# The look-behind keeps `stop-color` whole and `fill-opacity` out; base64 image data has
# neither `:` nor `#`, so embedded pictures are never touched.
_COLOUR = re.compile(
    r'(?<![\w-])(fill|stroke|stop-color|flood-color|color)(\s*:\s*|=")'
    r"(#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b)"
)
_ROOT = re.compile(r"<svg\b")
_KEEP = re.compile(rf'<g\b[^>]*\bid="{KEEP_PREFIX}[^"]*"')
_GROUP = re.compile(r"<g\b|</g>")


def keep_colours(*artists) -> None:
    """Mark matplotlib artists drawn on a picture (a label on a heat map, an arrow on a
    sample) so that the dark variant keeps their colours: what lies under them is not
    the paper."""
    for i, artist in enumerate(artists):
        artist.set_gid(f"{KEEP_PREFIX}-{i}")


def dark_name(name: str) -> str:
    """The dark variant's file name: ``laws.svg`` → ``laws.dark.svg``.

    Raises:
        ValueError: ``name`` is not an SVG file name.
    """
    if not name.endswith(".svg"):
        raise ValueError(f"Only SVG figures have a derived dark variant, not '{name}'.")
    return name[: -len(".svg")] + DARK_SUFFIX


def dark_svg(svg: str) -> str:
    """The dark variant of a light SVG figure (see the module docstring).

    Args:
        svg: the text of an SVG file, as matplotlib writes it.

    Returns:
        The same document with its colours mapped and its default fill set to :data:`INK`.

    Raises:
        ValueError: ``svg`` has no ``<svg`` element.
    """
    match = _ROOT.search(svg)
    if match is None:
        raise ValueError("Not an SVG document: no <svg> element.")

    def recolour(m: re.Match[str]) -> str:
        return f"{m.group(1)}{m.group(2)}{dark_colour(m.group(3))}"

    # Unnamed fills are black (text drawn as glyph paths, for one): set the root's fill so
    # that they inherit the ink instead. Elements that name a fill keep theirs.
    out, at = [_COLOUR.sub(recolour, svg[: match.end()]), f' fill="{INK}"'], match.end()
    for start, end in _kept_spans(svg, at):
        out += [_COLOUR.sub(recolour, svg[at:start]), _kept(svg[start:end])]
        at = end
    out.append(_COLOUR.sub(recolour, svg[at:]))
    return "".join(out)


def _kept_spans(svg: str, at: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each group marked by :func:`keep_colours`, its subgroups in."""
    spans = []
    for m in _KEEP.finditer(svg, at):
        if spans and m.start() < spans[-1][1]:
            continue  # inside the previous kept group
        depth = 0
        for g in _GROUP.finditer(svg, m.start()):
            depth += 1 if g.group() == "<g" else -1
            if depth == 0:
                spans.append((m.start(), g.end()))
                break
        else:
            raise ValueError(f"Unclosed group {m.group()!r} in the SVG.")
    return spans


def _kept(group: str) -> str:
    """A kept group, with its unnamed fill pinned to black (the root's ink is not for it)."""
    return group.replace(">", ' fill="#000000">', 1)


@lru_cache(maxsize=4096)
def dark_colour(colour: str) -> str:
    """Map one ``#rrggbb`` (or ``#rgb``) colour of a light figure to the dark palette.

    >>> dark_colour("#ffffff") == PAPER, dark_colour("#000000") == INK
    (True, True)
    """
    r, g, b = _rgb(colour)
    h, lightness, s = colorsys.rgb_to_hls(r, g, b)
    if max(r, g, b) - min(r, g, b) < NEUTRAL_CHROMA:
        return _mix(PAPER, INK, 1.0 - lightness)  # white → paper, black → ink
    if lightness > TINT_LIGHTNESS:
        # A pale tint: the same hue, as far from the paper as the light tint was from white.
        paper_l = colorsys.rgb_to_hls(*_rgb(PAPER))[1]
        return _hex(colorsys.hls_to_rgb(h, paper_l + (1.0 - lightness), s))
    paper = _luminance(_rgb(PAPER))
    while _contrast(_luminance(colorsys.hls_to_rgb(h, lightness, s)), paper) < MIN_CONTRAST \
            and lightness < 0.9:
        lightness = min(0.9, lightness + 0.01)
    return _hex(colorsys.hls_to_rgb(h, lightness, s))


def _rgb(colour: str) -> tuple[float, float, float]:
    """``#rrggbb`` or ``#rgb`` as three floats in [0, 1]."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) != 6:
        raise ValueError(f"Not a #rrggbb colour: '{colour}'.")
    return tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(min(1.0, max(0.0, c)) * 255):02x}" for c in rgb)


def _mix(a: str, b: str, t: float) -> str:
    """The colour ``t`` of the way from ``a`` to ``b``."""
    ra, rb = _rgb(a), _rgb(b)
    return _hex(tuple(x + (y - x) * t for x, y in zip(ra, rb, strict=True)))  # type: ignore[arg-type]


def _luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG relative luminance of an sRGB colour."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(l1: float, l2: float) -> float:
    """WCAG contrast ratio of two relative luminances."""
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)
