"""Server-side maths: TeX from ``pymdownx.arithmatex`` (generic mode) becomes MathML.

Browsers render MathML natively, so the site loads no maths library and makes no request
off the host. Each formula keeps its TeX source as a MathML annotation, so that search finds
it by its TeX. A formula that does not convert is reported with its page and kept as code.
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
        mathml = convert(tex, display=display)
    except Exception as exc:  # latex2mathml raises a variety of types
        raise ValueError(f"cannot convert TeX '{tex}': {exc}") from None
    return with_tex_source(mathml, tex)


_MATH_RE = re.compile(r"^(<math[^>]*>)(.*)(</math>)$", re.DOTALL)


def with_tex_source(mathml: str, tex: str) -> str:
    """``<math>`` with its TeX source kept as an annotation (not shown; read by search,
    copy and assistive tools): ``<semantics>presentation<annotation>TeX</annotation>``."""
    m = _MATH_RE.match(mathml.strip())
    if m is None:
        return mathml
    head, body, tail = m.groups()
    if not (body.startswith("<mrow>") and _single_element(body)):
        body = f"<mrow>{body}</mrow>"
    note = f'<annotation encoding="application/x-tex">{html.escape(tex)}</annotation>'
    return f"{head}<semantics>{body}{note}</semantics>{tail}"


def _single_element(body: str) -> bool:
    """Whether ``body`` (starting with ``<mrow>``) is one ``<mrow>`` element."""
    depth = 0
    for m in re.finditer(r"<(/?)mrow\b[^>]*>", body):
        depth += -1 if m.group(1) else 1
        if depth == 0:
            return m.end() == len(body)
    return False


EQ_LABEL_RE = re.compile(r"\\label\{(eq:[^{}\s]+)\}")
"""``\\label{eq:NAME}`` inside a display equation: ``[[ref:eq:NAME]]`` then links to it."""


def equation_id(label: str | None, number: str) -> str:
    """The HTML id of a numbered equation: ``eq-NAME`` for ``\\label{eq:NAME}``, else
    ``eq-C-K`` from its number ``C.K``."""
    return "eq-" + (label[len("eq:"):] if label else number.replace(".", "-"))


def render_math(page_html: str, on_error: Callable[[str], None],
                numbers: list[str] | None = None) -> str:
    """Replace every arithmatex span/div in ``page_html`` with MathML.

    Args:
        page_html: a page's HTML as produced by Markdown.
        on_error: called with a message for each formula that fails (it stays as code).
        numbers: the page's display equations' numbers (``C.K``), in order
            (:func:`~genai_report.mkdocs_plugin.markup.number_report`); each display
            equation then shows its number, with an anchor (its ``\\label{eq:NAME}``
            or its number) that ``[[ref:eq:NAME]]`` and readers link to.
    """
    queue = list(numbers or [])
    shown = 0

    def repl(m: re.Match) -> str:
        nonlocal shown
        tex, display = _strip(m.group("body"))
        label = EQ_LABEL_RE.search(tex)
        tex = EQ_LABEL_RE.sub("", tex).strip()
        try:
            mathml = tex_to_mathml(tex, display)
        except ValueError as exc:
            on_error(str(exc))
            mathml = None
        if m.group("tag") != "div":
            return (f'<span class="genai-math">{mathml}</span>' if mathml else
                    f'<code class="genai-math-error">{html.escape(tex)}</code>')
        shown += 1
        body = (f'<div class="genai-math">{mathml}</div>' if mathml else
                f'<code class="genai-math-error">{html.escape(tex)}</code>')
        if not queue:
            return body
        number = queue.pop(0)
        anchor = equation_id(label.group(1) if label else None, number)
        return (f'<div class="genai-equation" id="{anchor}">{body}'
                f'<a class="genai-equation-number" href="#{anchor}" '
                f'title="Link to this equation">({number})</a></div>')

    out = _SPAN_RE.sub(repl, page_html)
    if numbers is not None and (queue or shown != len(numbers)):
        on_error(f"the page shows {shown} display equation(s) but its Markdown has "
                 f"{len(numbers)} $$ ... $$ block(s); write each display equation as its own "
                 "$$ ... $$ block.")
    return out


_NB_MARKDOWN_RE = re.compile(
    r'(<div class="[^"]*jp-RenderedMarkdown[^"]*"[^>]*>)(.*?)(</div>)', re.DOTALL
)
_NB_DISPLAY_RE = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_NB_INLINE_RE = re.compile(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\$)")
_OFF_HOST_SCRIPT_RE = re.compile(
    # MathJax (loaded from a CDN, or with an empty URL) and its configuration, and module
    # scripts that import from another host (nbconvert's Mermaid loader).
    r'<script[^>]*(?:src="[^"]*mathjax[^"]*"|src=""|type="text/x-mathjax-config")[^>]*>.*?'
    r'</script>\s*|<script type="module">(?:(?!</script>).)*?https?://(?:(?!</script>).)*'
    r'</script>\s*',
    re.DOTALL | re.IGNORECASE,
)


def render_notebook_math(page_html: str, on_error: Callable[[str], None]) -> str:
    """MathML for the ``$...$`` / ``$$...$$`` of a notebook page's Markdown cells.

    nbconvert leaves TeX for MathJax, which it loads from a CDN; the script tags that load
    and configure MathJax, and nbconvert's Mermaid loader (which imports from a CDN), are
    removed, so the page makes no request off the host.
    """

    def convert(tex: str, display: str) -> str:
        try:
            mathml = tex_to_mathml(html.unescape(tex.strip()), display)
        except ValueError as exc:
            on_error(str(exc))
            return f'<code class="genai-math-error">{tex}</code>'
        tag = "div" if display == "block" else "span"
        return f'<{tag} class="genai-math">{mathml}</{tag}>'

    def cell(m: re.Match) -> str:
        body = _NB_DISPLAY_RE.sub(lambda d: convert(d.group(1), "block"), m.group(2))
        body = _NB_INLINE_RE.sub(lambda i: convert(i.group(1), "inline"), body)
        return m.group(1) + body + m.group(3)

    page_html = _OFF_HOST_SCRIPT_RE.sub("", page_html)
    return _NB_MARKDOWN_RE.sub(cell, page_html)
