"""Server-side maths: TeX from ``pymdownx.arithmatex`` (generic mode) becomes MathML.

Browsers render MathML natively, so the site loads no maths library and makes no request
off the host. A formula that does not convert is reported with its page and kept as code.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

_SPAN_RE = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">(?P<body>.*?)</(?P=tag)>', re.DOTALL
)
_DELIMS = ((r"\(", r"\)", "inline"), (r"\[", r"\]", "block"), ("$$", "$$", "block"), ("$", "$", "inline"))


def _strip(body: str) -> tuple[str, str]:
    body = html.unescape(body.strip())
    for start, end, display in _DELIMS:
        if body.startswith(start) and body.endswith(end) and len(body) >= len(start) + len(end):
            return body[len(start) : len(body) - len(end)].strip(), display
    return body, "inline"


def tex_to_mathml(tex: str, display: str = "inline") -> str:
    """Convert one TeX formula to a ``<math>`` element.

    Raises:
        ValueError: the formula uses TeX the converter does not understand.
    """
    from latex2mathml.converter import convert

    try:
        return convert(tex, display=display)
    except Exception as exc:  # latex2mathml raises a variety of types
        raise ValueError(f"cannot convert TeX '{tex}': {exc}") from None


def render_math(page_html: str, on_error: Callable[[str], None]) -> str:
    """Replace every arithmatex span/div in ``page_html`` with MathML.

    Args:
        page_html: a page's HTML as produced by Markdown.
        on_error: called with a message for each formula that fails (it stays as code).
    """

    def repl(m: re.Match) -> str:
        tex, display = _strip(m.group("body"))
        try:
            mathml = tex_to_mathml(tex, display)
        except ValueError as exc:
            on_error(str(exc))
            return f'<code class="genai-math-error">{html.escape(tex)}</code>'
        if m.group("tag") == "div":
            return f'<div class="genai-math">{mathml}</div>'
        return f'<span class="genai-math">{mathml}</span>'

    return _SPAN_RE.sub(repl, page_html)
