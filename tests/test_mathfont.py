"""The site's own math font: the characters its formulas use, cut from STIX Two Math."""

from __future__ import annotations

import importlib.util
import io

import pytest
from fontTools.ttLib import TTFont

from genai_report.mkdocs_plugin import mathfont
from genai_report.mkdocs_plugin.math import tex_to_mathml


def test_the_characters_are_those_displayed_not_the_tex_source():
    page = ("<p>x</p>" + tex_to_mathml(r"\sum_i \alpha_i \leq \sqrt{z}", "block")
            + "<p>" + tex_to_mathml("a^2", "inline") + "</p>")
    chars = mathfont.math_characters(page)
    assert {"∑", "i", "α", "≤", "√", "z", "a", "2"} <= chars
    assert not {"\\", "{", "}", "s", "q", "r", "t", "x"} & chars  # TeX and text outside


def test_the_subset_is_small_keeps_the_math_table_and_covers_italic_forms():
    data = mathfont.subset_font("∑√αθ∂")
    font = TTFont(io.BytesIO(data))
    assert font.flavor == "woff" and "MATH" in font
    cmap = font.getBestCmap()
    for c in "∑√αθ∂xy+=":
        assert ord(c) in cmap, c
    assert 0x1D465 in cmap and 0x1D6FC in cmap and 0x210E in cmap  # 𝑥, 𝛼, ℎ (italic h)
    assert "∫" not in {chr(u) for u in cmap}  # not asked for: cut
    assert len(data) < mathfont.source_font().stat().st_size / 10
    assert "Open Font License" in font["name"].getDebugName(13)


def test_the_font_is_written_atomically_into_the_site(tmp_path):
    path = mathfont.write_math_font(tmp_path, {"∑"})
    assert path == tmp_path / mathfont.FONT_PATH and path.stat().st_size > 1000
    assert [p.name for p in path.parent.iterdir()] == ["math.woff"]  # no temporary left
    assert path.stat().st_mode & 0o444 == 0o444  # readable by the web server


def test_a_missing_font_package_is_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(mathfont.MathFontError, match="ziamath.*Reinstall"):
        mathfont.write_math_font(tmp_path, {"∑"})
    assert not (tmp_path / mathfont.FONT_PATH).exists()
