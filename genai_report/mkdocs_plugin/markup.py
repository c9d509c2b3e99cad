"""The report's Markdown extensions, as a pure text transform (no MkDocs needed).

* ``[[figure:NAME]]`` on a line of its own places a figure (its first image) with caption,
  provenance line and a "reproduce" command; ``[[figure:NAME:FILE]]`` picks another image.
* ``[[metric:NAME.key.sub]]`` or ``[[metric:NAME.key:FORMAT]]`` quotes a number from a node's
  record (``FORMAT`` is a Python format spec such as ``.2f``; list items by index).
* ``[[param:NAME.field]]`` quotes a setting the node ran with under the current profile
  (training steps, a temperature), so settings are never typed by hand either.
* ``[@key]`` or ``[@key1; @key2]`` cites BibTeX entries; ``[[bibliography]]`` prints them all.
* ``[[provenance-table]]`` lists every figure of the current build with its record.

Fenced code blocks and inline code are left alone, so these forms can be documented.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FIGURE_RE = re.compile(r"^(?P<indent>[ \t]*)\[\[figure:(?P<name>[^\]:]+)(?::(?P<file>[^\]]+))?\]\]\s*$")
METRIC_RE = re.compile(r"\[\[(?P<kind>metric|param):(?P<path>[^\]:]+)(?::(?P<fmt>[^\]]*))?\]\]")
CITE_RE = re.compile(r"\[(?P<body>@[\w:.\-/]+(?:\s*;\s*@[\w:.\-/]+)*)\](?![(\[])")
BLOCK_RE = re.compile(r"^\s*\[\[(?P<what>bibliography|provenance-table)\]\]\s*$")
FENCE_RE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})")
INLINE_CODE_RE = re.compile(r"(`+)(?:.+?)\1")


@dataclass
class MarkupError:
    """A reference the build cannot resolve, with where it is."""

    page: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.message}"


@dataclass
class Resolvers:
    """Callbacks the transform uses; each raises ``LookupError`` with a message if unknown.

    Attributes:
        figure: ``(name, file | None, number) -> HTML`` for a placed figure.
        metric: ``(path, fmt | None) -> text`` for a quoted number.
        param: ``(path, fmt | None) -> text`` for a quoted setting.
        cite: ``(keys) -> HTML`` for an in-text citation.
        block: ``(what) -> Markdown/HTML`` for ``bibliography`` and ``provenance-table``.
    """

    figure: Callable[[str, str | None, int], str]
    metric: Callable[[str, str | None], str]
    param: Callable[[str, str | None], str]
    cite: Callable[[list[str]], str]
    block: Callable[[str], str]


@dataclass
class TransformResult:
    """The transformed Markdown and what it referenced."""

    markdown: str
    errors: list[MarkupError] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)


def transform(markdown: str, page: str, resolve: Resolvers) -> TransformResult:
    """Replace the report's forms in ``markdown`` (see the module docstring).

    Args:
        markdown: the page's Markdown source.
        page: the page's path, for error messages.
        resolve: how to render each form.

    Returns:
        The new Markdown, plus every unresolved reference as a :class:`MarkupError`
        (rendered in place as a visible error so `mkdocs serve` keeps going).
    """
    result = TransformResult(markdown="")
    out: list[str] = []
    fence: str | None = None
    number = 0
    for lineno, line in enumerate(markdown.split("\n"), start=1):
        m = FENCE_RE.match(line)
        if fence is not None:
            if m and m.group("fence")[0] == fence[0] and len(m.group("fence")) >= len(fence):
                fence = None
            out.append(line)
            continue
        if m:
            fence = m.group("fence")
            out.append(line)
            continue
        fig = FIGURE_RE.match(line)
        if fig:
            name = fig.group("name").strip()
            number += 1
            result.figures.append(name)
            try:
                rendered = resolve.figure(name, (fig.group("file") or "").strip() or None, number)
            except LookupError as exc:
                rendered = _error_html(_message(exc))
                result.errors.append(MarkupError(page, lineno, _message(exc)))
            out.extend(["", rendered, ""])
            continue
        blk = BLOCK_RE.match(line)
        if blk:
            out.append(resolve.block(blk.group("what")))
            continue
        out.append(_inline(line, page, lineno, resolve, result))
    result.markdown = "\n".join(out)
    return result


def _inline(line: str, page: str, lineno: int, resolve: Resolvers, result: TransformResult) -> str:
    """Replace metrics and citations in one line, outside inline code spans."""
    pieces: list[str] = []
    pos = 0
    for code in INLINE_CODE_RE.finditer(line):
        pieces.append(_inline_text(line[pos : code.start()], page, lineno, resolve, result))
        pieces.append(code.group(0))
        pos = code.end()
    pieces.append(_inline_text(line[pos:], page, lineno, resolve, result))
    return "".join(pieces)


def _inline_text(text: str, page: str, lineno: int, resolve: Resolvers, result: TransformResult) -> str:
    def metric(m: re.Match) -> str:
        path = m.group("path").strip()
        result.metrics.append(path)
        resolver = resolve.metric if m.group("kind") == "metric" else resolve.param
        try:
            return resolver(path, m.group("fmt"))
        except LookupError as exc:
            result.errors.append(MarkupError(page, lineno, _message(exc)))
            return _error_html(_message(exc), inline=True)

    def cite(m: re.Match) -> str:
        keys = [k.strip().lstrip("@") for k in m.group("body").split(";")]
        result.citations.extend(keys)
        try:
            return resolve.cite(keys)
        except LookupError as exc:
            result.errors.append(MarkupError(page, lineno, _message(exc)))
            return _error_html(_message(exc), inline=True)

    return CITE_RE.sub(cite, METRIC_RE.sub(metric, text))


def _message(exc: LookupError) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def _error_html(message: str, inline: bool = False) -> str:
    text = html.escape(message)
    if inline:
        return f'<span class="genai-error" title="{text}">⚠ {text}</span>'
    return (
        '<div class="admonition failure genai-error"><p class="admonition-title">'
        f"Reference error</p><p>{text}</p></div>"
    )


def lookup_path(metrics: dict[str, Any], path: list[str], node: str) -> Any:
    """Follow ``path`` (dict keys or list indices) into a record's metrics.

    Raises:
        LookupError: naming the missing step and what is available there.
    """
    value: Any = metrics
    walked: list[str] = []
    for step in path:
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.lstrip("-").isdigit() and -len(value) <= int(step) < len(value):
            value = value[int(step)]
        else:
            where = ".".join([node, *walked]) or node
            if isinstance(value, dict):
                avail = ", ".join(sorted(value)) or "none"
            elif isinstance(value, list):
                avail = f"indices 0..{len(value) - 1}"
            else:
                avail = "none (it is a value)"
            raise LookupError(f"Metric '{node}.{'.'.join(path)}' not found: '{where}' has no "
                              f"'{step}'. Available: {avail}.")
        walked.append(step)
    return value


def format_value(value: Any, fmt: str | None) -> str:
    """Format a metric: with ``fmt`` as given, floats to 3 significant digits otherwise."""
    if fmt:
        try:
            return format(value, fmt)
        except (TypeError, ValueError) as exc:
            raise LookupError(f"Format '{fmt}' does not apply to value {value!r}: {exc}") from None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if isinstance(value, (dict, list)):
        raise LookupError("Metric is a collection, not a value; quote one of its items "
                          "(add .key or .index to the path).")
    return str(value)
