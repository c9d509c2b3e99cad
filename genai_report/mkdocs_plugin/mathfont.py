"""A math font served by the site itself, cut down to the characters its formulas use.

Browsers lay out MathML with whatever math font the reader's system has, and many systems
have none: fractions, roots and large operators then come out cramped or with mismatched
glyphs. The site therefore ships one, STIX Two Math (SIL Open Font License 1.1), taken from
the ``ziamath`` package where it lies on disk, so the build needs no network. The full font
is 1.5 MB; the build keeps only the characters that occur in the site's formulas (plus
ASCII letters and digits, for formulas a reader's search highlights), with the glyph
variants and the OpenType ``MATH`` table that stretchy brackets and big operators need,
and writes it as WOFF (under 100 kB for this whole report).

The plugin collects the characters page by page (:func:`math_characters`) and writes the
font once, after the build (:func:`write_math_font`); the stylesheet names it
``"GenAI Math"`` ahead of the generic ``math`` family.
"""

from __future__ import annotations

import html
import importlib.util
import io
import os
import re
import string
import tempfile
from collections.abc import Iterable
from pathlib import Path

FONT_PATH = "assets/fonts/math.woff"
"""Where the font lies in the built site (the stylesheet's ``url()`` is relative to it)."""

BASE_CHARACTERS = string.ascii_letters + string.digits + "+-=()[]{}|,.:;/<>!'*"
"""Characters the font always covers, whatever the formulas hold."""

_MATH_RE = re.compile(r"<math\b.*?</math>", re.DOTALL)
_ANNOTATION_RE = re.compile(r"<annotation\b.*?</annotation>", re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")
_RADICAL_RE = re.compile(r"<m(?:sqrt|root)\b")


class MathFontError(RuntimeError):
    """The math font cannot be found or written."""


def source_font() -> Path:
    """The full STIX Two Math font that ``ziamath`` ships.

    Raises:
        MathFontError: ``ziamath`` is not installed (it is a dependency of this project).
    """
    # Located without importing ziamath (its import loads and parses the whole font).
    spec = importlib.util.find_spec("ziamath")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = next((p for f in folders
                 if (p := Path(f) / "fonts" / "STIXTwoMath-Regular.ttf").is_file()), None)
    if path is None:
        raise MathFontError(
            "The math font STIX Two Math was not found: it comes with the 'ziamath' package, "
            "a dependency of genai-report. Reinstall the project (make .venv/.installed, or "
            "pip install -e .).")
    return path


def math_characters(page_html: str) -> set[str]:
    """The characters that the ``<math>`` elements of ``page_html`` display (their TeX
    annotations excluded), with the radical sign that ``<msqrt>`` and ``<mroot>`` draw."""
    chars: set[str] = set()
    for m in _MATH_RE.finditer(page_html):
        mathml = _ANNOTATION_RE.sub("", m.group(0))
        chars.update(html.unescape(_TAG_RE.sub("", mathml)))
        if _RADICAL_RE.search(mathml):  # drawn by the browser with the font's radical sign
            chars.add("\u221a")
    return {c for c in chars if not c.isspace()}


def with_italic_forms(characters: Iterable[str]) -> set[str]:
    """``characters`` plus the Mathematical Italic form of each Latin and Greek letter:
    browsers draw a one-letter ``<mi>x</mi>`` with the character U+1D465, not ``x``."""
    out = set(characters)
    for c in list(out):
        o = ord(c)
        if "a" <= c <= "z":
            out.add("\u210e" if c == "h" else chr(0x1D44E + o - ord("a")))
        elif "A" <= c <= "Z":
            out.add(chr(0x1D434 + o - ord("A")))
        elif 0x3B1 <= o <= 0x3C9:  # alpha..omega
            out.add(chr(0x1D6FC + o - 0x3B1))
        elif 0x391 <= o <= 0x3A9:  # Alpha..Omega
            out.add(chr(0x1D6E2 + o - 0x391))
    return out


def subset_font(characters: Iterable[str], source: Path | None = None) -> bytes:
    """STIX Two Math cut down to ``characters`` and :data:`BASE_CHARACTERS` (with their
    italic forms, :func:`with_italic_forms`), as WOFF bytes.

    The subset keeps every layout feature and the ``MATH`` table with the glyphs it
    reaches (size variants and assembly parts of stretchy operators).
    """
    from fontTools import subset

    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]  # keep the copyright and licence records (OFL)
    options.notdef_outline = True
    options.drop_tables = [t for t in options.drop_tables if t != "MATH"] + ["DSIG"]
    font = subset.load_font(str(source or source_font()), options)
    subsetter = subset.Subsetter(options)
    keep = with_italic_forms({*characters, *BASE_CHARACTERS})
    subsetter.populate(unicodes=sorted(ord(c) for c in keep))
    subsetter.subset(font)
    buf = io.BytesIO()
    subset.save_font(font, buf, options)
    return buf.getvalue()


def write_math_font(site_dir: Path, characters: Iterable[str]) -> Path:
    """Write the subset font to ``site_dir / FONT_PATH`` atomically; return its path."""
    target = Path(site_dir) / FONT_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = subset_font(characters)
    except MathFontError:
        raise
    except Exception as exc:  # fontTools raises many types on a damaged font file
        raise MathFontError(f"Could not cut down the math font ({type(exc).__name__}: "
                            f"{exc}). Reinstall the 'ziamath' package.") from exc
    fd, tmp = tempfile.mkstemp(prefix=".math-", suffix=".woff", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a web server must read it
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
