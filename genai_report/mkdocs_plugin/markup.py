"""The report's Markdown extensions, as a pure text transform (no MkDocs needed).

* ``[[figure:NAME]]`` on a line of its own places a figure (its first image) with caption,
  provenance line and a "reproduce" command; ``[[figure:NAME:FILE]]`` picks another image.
* ``[[audio:NAME]]`` on a line of its own lists a figure's ``.wav`` outputs as audio
  players (``<audio controls preload="none">``, served from the site itself): files named
  ``KIND-LABEL.wav`` form a table with a row per label and a column per kind (say
  ``real-low-tone.wav``, ``model-low-tone.wav``), other names one row each.
  ``[[audio:NAME:FILE.wav]]`` places one player.
* ``[[ref:NAME]]`` in a sentence refers to a placed figure by its number ("Figure 3.2"), as
  a link to it wherever it is placed; figures are numbered by chapter across the report.
  ``[[ref:eq:NAME]]`` refers the same way to the display equation (``$$ ... $$``) that
  holds ``\\label{eq:NAME}`` ("Eq. 2.1"); display equations are numbered by chapter too.
* ``[[metric:NAME.key.sub]]`` or ``[[metric:NAME.key:FORMAT]]`` quotes a number from a node's
  record (``FORMAT`` is a Python format spec such as ``.2f``; list items by index). A
  metric measured over seeds renders as ``mean ± sd (n seeds)``.
* ``[[param:NAME.field]]`` quotes a setting the node ran with under the current profile
  (training steps, a temperature), so settings are never typed by hand either.
* ``[[check: EXPR]]`` right after a sentence verifies it against the records (see
  :mod:`genai_report.mkdocs_plugin.checks`); ``[[check: EXPR | profiles=full]]`` only in
  those profiles.
* ``[@key]`` or ``[@key1; @key2]`` cites BibTeX entries; ``[[bibliography]]`` prints them all.
* ``[[provenance-table]]`` lists every figure of the current build with its record.
* ``[[estimate-table]]`` shows the committed dry run of the ``full`` profile: each node's
  predicted time on a GPU class (:mod:`~genai_report.pipeline.dryrun`).

Fenced code blocks and inline code are left alone, so these forms can be documented. Any
other ``[[...]]`` outside code (a misspelt form, a figure in the middle of a sentence) is
an error naming the valid forms. :func:`scan` is the parser; :func:`transform` renders
what it finds.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from genai_report.metrics.seeds import is_over_seeds
from genai_report.mkdocs_plugin.math import EQ_LABEL_RE
from genai_report.utils import did_you_mean

FIGURE_RE = re.compile(r"^(?P<indent>[ \t]*)\[\[figure:(?P<name>[^\]:]+)(?::(?P<file>[^\]]+))?\]\]\s*$")
AUDIO_RE = re.compile(r"^\s*\[\[audio:(?P<name>[^\]:]+)(?::(?P<file>[^\]]+))?\]\]\s*$")
BLOCK_NAMES = ("bibliography", "provenance-table", "estimate-table")
BLOCK_RE = re.compile(r"^\s*\[\[(?P<what>" + "|".join(BLOCK_NAMES) + r")\]\]\s*$")
_METRIC = r"\[\[(?P<kind>metric|param):(?P<path>[^\]:]+)(?::(?P<fmt>[^\]]*))?\]\]"
#: A check's body may hold ``[0]`` / ``["a"]`` indexes and quoted strings.
_STRING = r"\"[^\"\n]*\"|'[^'\n]*'"
_CHECK = (rf"\[\[check:(?P<body>(?:{_STRING}|\[(?:{_STRING}|[^\[\]\n])*\]|[^\[\]\n\"'])*)\]\]")
_REF = r"\[\[ref:(?P<ref>(?:eq:)?[^\]\s:]+)\]\]"
_CITE = r"\[(?P<cite>@[\w:.\-/]+(?:\s*;\s*@[\w:.\-/]+)*)\](?![(\[])"
METRIC_RE = re.compile(_METRIC)
CHECK_RE = re.compile(_CHECK)
CITE_RE = re.compile(_CITE.replace("?P<cite>", "?P<body>"))
#: One inline form; anything else in double brackets is ``unknown`` (an error).
INLINE_RE = re.compile(rf"(?P<check>{_CHECK})|(?P<metric>{_METRIC})|{_REF}|{_CITE}"
                       r"|\[\[(?P<unknown>[^\n]*?)\]\]")
FENCE_RE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})")
INLINE_CODE_RE = re.compile(r"(`+)(?:.+?)\1")

#: The forms, as listed in error messages.
VALID_FORMS = (
    "[[figure:NAME]] (on a line of its own), [[metric:NODE.KEY]] or "
    "[[metric:NODE.KEY:FORMAT]], [[param:NODE.FIELD]], [[check: EXPR]] or "
    "[[check: EXPR | profiles=P1,P2]], [[ref:FIGURE]], [[audio:NAME]] or [[audio:NAME:FILE.wav]] (audio "
    "players, on a line of its own), and [[bibliography]] / [[provenance-table]] / "
    "[[estimate-table]] "
    "(on lines of their own)"
)
FORM_NAMES = ("figure", "audio", "ref", "metric", "param", "check", *BLOCK_NAMES)


@dataclass
class MarkupError:
    """A problem with a form on a page, with where it is.

    Attributes:
        page: the page's path (``docs/...``).
        line: the line in the page's source file, front matter included.
        message: what is wrong and how to fix it.
        kind: ``reference`` (unknown name), ``claim`` (a false check) or ``markup``
            (a malformed form).
    """

    page: str
    line: int
    message: str
    kind: str = "reference"

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.message}"


class FormError(LookupError):
    """Raised by a resolver for a form it cannot render.

    Args:
        message: what is wrong and how to fix it.
        html: what to show in its place (default: a red error mark with the message).
        kind: as in :class:`MarkupError`.
    """

    def __init__(self, message: str, *, html: str | None = None, kind: str = "reference"):
        super().__init__(message)
        self.html = html
        self.kind = kind


class FormWarning(Exception):
    """Raised by a resolver for a form it rendered (``html``) but wants reported as a warning."""

    def __init__(self, message: str, *, html: str, kind: str = "claim"):
        super().__init__(message)
        self.html = html
        self.kind = kind


@dataclass
class Resolvers:
    """Callbacks the transform uses; each raises ``LookupError`` with a message if unknown.

    Attributes:
        figure: ``(name, file | None, number) -> HTML`` for a placed figure.
        metric: ``(path, fmt | None) -> text`` for a quoted number.
        param: ``(path, fmt | None) -> text`` for a quoted setting.
        cite: ``(keys) -> HTML`` for an in-text citation.
        block: ``(what) -> Markdown/HTML`` for ``bibliography``, ``provenance-table`` and
            ``estimate-table``.
        check: ``(body) -> HTML`` for a ``[[check: ...]]`` (may raise :class:`FormWarning`);
            without it, checks are errors.
        audio: ``(name, file | None) -> HTML`` for ``[[audio:...]]`` players; without it,
            audio forms are errors.
        ref: ``(figure name) -> HTML`` for a ``[[ref:...]]`` cross-reference; without it,
            references are errors.
    """

    figure: Callable[[str, str | None, int], str]
    metric: Callable[[str, str | None], str]
    param: Callable[[str, str | None], str]
    cite: Callable[[list[str]], str]
    block: Callable[[str], str]
    check: Callable[[str], str] | None = None
    audio: Callable[[str, str | None], str] | None = None
    ref: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Form:
    """One form found on a page by :func:`scan`.

    Attributes:
        kind: ``figure``, ``audio``, ``block``, ``ref``, ``metric``, ``param``, ``check``,
            ``cite`` or ``unknown`` (double brackets that are no valid form: an error).
        line: its line in the source file.
        source: the form as written.
        target: the figure name (placed or referred to), metric or param path, check body,
            block name, or (for
            ``unknown``) the text between the brackets.
        option: the figure's image file, the audio form's WAV file or the metric's format,
            if given.
        keys: the citation keys.
    """

    kind: str
    line: int
    source: str
    target: str = ""
    option: str | None = None
    keys: tuple[str, ...] = ()


@dataclass
class TransformResult:
    """The transformed Markdown and what it referenced."""

    markdown: str
    errors: list[MarkupError] = field(default_factory=list)
    warnings: list[MarkupError] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceLine:
    """A line of a page: its number in the source file and whether it is fenced code."""

    number: int
    text: str
    in_code: bool


def source_lines(markdown: str, first_line: int = 1) -> Iterator[SourceLine]:
    """The page's lines, each marked as fenced code or not.

    Args:
        markdown: the page's Markdown (after its front matter).
        first_line: the line number of its first line in the source file (front matter
            and the blank lines MkDocs strips after it count).
    """
    fence: str | None = None
    for number, line in enumerate(markdown.split("\n"), start=first_line):
        m = FENCE_RE.match(line)
        if fence is not None:
            if m and m.group("fence")[0] == fence[0] and len(m.group("fence")) >= len(fence):
                fence = None
            yield SourceLine(number, line, True)
            continue
        if m:
            fence = m.group("fence")
            yield SourceLine(number, line, True)
            continue
        yield SourceLine(number, line, False)


def prose_lines(markdown: str, first_line: int = 1) -> Iterator[SourceLine]:
    """The lines outside fenced code, inline code spans blanked out (for text checks)."""
    for line in source_lines(markdown, first_line):
        if not line.in_code:
            yield SourceLine(line.number, INLINE_CODE_RE.sub(" ", line.text), False)


def _line_forms(number: int, line: str) -> list[str | Form]:
    """A line outside fenced code as text pieces and forms (inline code kept as text)."""
    fig = FIGURE_RE.match(line)
    if fig:
        return [Form("figure", number, line.strip(), fig.group("name").strip(),
                     (fig.group("file") or "").strip() or None)]
    snd = AUDIO_RE.match(line)
    if snd:
        return [Form("audio", number, line.strip(), snd.group("name").strip(),
                     (snd.group("file") or "").strip() or None)]
    blk = BLOCK_RE.match(line)
    if blk:
        return [Form("block", number, line.strip(), blk.group("what"))]
    pieces: list[str | Form] = []
    pos = 0
    for code in INLINE_CODE_RE.finditer(line):
        pieces.extend(_inline_forms(number, line[pos : code.start()]))
        pieces.append(code.group(0))
        pos = code.end()
    pieces.extend(_inline_forms(number, line[pos:]))
    return pieces


def _inline_forms(number: int, text: str) -> list[str | Form]:
    pieces: list[str | Form] = []
    pos = 0
    for m in INLINE_RE.finditer(text):
        pieces.append(text[pos : m.start()])
        source = m.group(0)
        if m.group("check") is not None:
            form = Form("check", number, source, m.group("body").strip())
        elif m.group("metric") is not None:
            form = Form(m.group("kind"), number, source, m.group("path").strip(), m.group("fmt"))
        elif m.group("ref") is not None:
            form = Form("ref", number, source, m.group("ref").strip())
        elif m.group("cite") is not None:
            keys = tuple(k.strip().lstrip("@") for k in m.group("cite").split(";"))
            form = Form("cite", number, source, keys=keys)
        else:
            form = Form("unknown", number, source, m.group("unknown"))
        pieces.append(form)
        pos = m.end()
    pieces.append(text[pos:])
    return [p for p in pieces if p != ""]


def scan(markdown: str, first_line: int = 1) -> list[Form]:
    """Every form on a page outside code, in order: the parser :func:`transform` uses.

    Args:
        markdown: the page's Markdown.
        first_line: the source line number of its first line (see :func:`source_lines`).

    Returns:
        The :class:`Form` s, ``unknown`` ones included.
    """
    forms: list[Form] = []
    for line in source_lines(markdown, first_line):
        if not line.in_code:
            forms.extend(p for p in _line_forms(line.number, line.text) if isinstance(p, Form))
    return forms


def unknown_form_message(form: Form) -> str:
    """Why an ``unknown`` form is not one of the report's forms, and the valid forms."""
    head = form.target.split(":", 1)[0].strip()
    if head in ("figure", "audio"):
        what = "A figure" if head == "figure" else "An audio player list"
        why = (f"{what} goes on a line of its own: move `{form.source}` to its own line, "
               "with blank lines around it.")
    elif head in BLOCK_NAMES:
        why = f"`{form.source}` goes on a line of its own."
    elif head == "check":
        why = f"Malformed check `{form.source}`: its brackets or quotes do not balance."
    elif head in ("metric", "param"):
        why = (f"Malformed {head} reference `{form.source}`: write [[{head}:NODE.KEY]] or "
               f"[[{head}:NODE.KEY:FORMAT]].")
    else:
        why = f"Unknown form `{form.source}`.{did_you_mean(head, FORM_NAMES)}"
    return (f"{why} Valid forms: {VALID_FORMS}. To show double brackets literally, put them "
            "in inline code.")


def transform(markdown: str, page: str, resolve: Resolvers, first_line: int = 1) -> TransformResult:
    """Replace the report's forms in ``markdown`` (see the module docstring).

    Args:
        markdown: the page's Markdown source.
        page: the page's path, for error messages.
        resolve: how to render each form.
        first_line: the source line number of the first line of ``markdown`` (MkDocs
            strips the front matter before plugins see the page).

    Returns:
        The new Markdown, plus every problem as a :class:`MarkupError` in ``errors``
        (rendered in place as a visible error so `mkdocs serve` keeps going) or in
        ``warnings`` (a resolver's :class:`FormWarning`).
    """
    result = TransformResult(markdown="")
    out: list[str] = []
    number = 0
    for line in source_lines(markdown, first_line):
        if line.in_code:
            out.append(line.text)
            continue
        pieces = _line_forms(line.number, line.text)
        head = pieces[0] if len(pieces) == 1 else None
        if isinstance(head, Form) and head.kind == "figure":
            number += 1
            result.figures.append(head.target)
            rendered = _render(result, page, head, True,
                               lambda f=head, n=number: resolve.figure(f.target, f.option, n))
            out.extend(["", rendered, ""])
        elif isinstance(head, Form) and head.kind == "audio":
            out.extend(["", _render(result, page, head, True,
                                    lambda f=head: _audio_players(resolve, f)), ""])
        elif isinstance(head, Form) and head.kind == "block":
            out.append(resolve.block(head.target))
        else:
            out.append("".join(p if isinstance(p, str) else _render_inline(p, page, resolve, result)
                               for p in pieces))
    result.markdown = "\n".join(out)
    return result


def _render_inline(form: Form, page: str, resolve: Resolvers, result: TransformResult) -> str:
    if form.kind in ("metric", "param"):
        result.metrics.append(form.target)
        resolver = resolve.metric if form.kind == "metric" else resolve.param
        return _render(result, page, form, False, lambda: resolver(form.target, form.option))
    if form.kind == "ref":
        result.refs.append(form.target)
        return _render(result, page, form, False, lambda: _reference(resolve, form))
    if form.kind == "cite":
        result.citations.extend(form.keys)
        return _render(result, page, form, False, lambda: resolve.cite(list(form.keys)))
    if form.kind == "check":
        result.checks.append(form.target)
        check = resolve.check
        if check is None:
            return _render(result, page, form, False, lambda: _raise(FormError(
                "Checks are not evaluated here (no check resolver).", kind="markup")))
        return _render(result, page, form, False, lambda: check(form.target))
    message = unknown_form_message(form)
    result.errors.append(MarkupError(page, form.line, message, "markup"))
    return _error_html(message, inline=True)


def _reference(resolve: Resolvers, form: Form) -> str:
    if resolve.ref is None:
        raise FormError("Figure references are not rendered here (no ref resolver).",
                        kind="markup")
    return resolve.ref(form.target)



_DISPLAY_OPEN = "$$"


def display_equations(markdown: str) -> list[str | None]:
    """The display equations (``$$ ... $$`` blocks) of a page outside fenced code, in order:
    each one's ``eq:NAME`` label, or None.

    Raises:
        ValueError: a ``\\label`` that is not ``eq:NAME``, or two labels in one equation.
    """
    out: list[str | None] = []
    block: list[str] | None = None
    for line in source_lines(markdown):
        text = line.text.strip()
        if line.in_code:
            continue
        if block is None and text.startswith(_DISPLAY_OPEN):
            block = []
        if block is None:
            continue
        block.append(text)
        joined = " ".join(block)
        if len(joined) >= 4 and joined.endswith(_DISPLAY_OPEN):
            labels = EQ_LABEL_RE.findall(joined)
            if len(labels) > 1 or joined.count("\\label{") != len(labels):
                raise ValueError(f"line {line.number}: an equation takes at most one label, "
                                 "written \\label{eq:NAME}.")
            out.append(labels[0] if labels else None)
            block = None
    return out


@dataclass
class Numbering:
    """Figure and equation numbers of the whole report (see :func:`number_report`).

    Attributes:
        figures: figure name -> ``("C.K", page path)``.
        equations: page path -> the number of each of its display equations, in order.
        equation_labels: ``eq:NAME`` -> ``("C.K", page path)``.
    """

    figures: dict[str, tuple[str, str]] = field(default_factory=dict)
    equations: dict[str, list[str]] = field(default_factory=dict)
    equation_labels: dict[str, tuple[str, str]] = field(default_factory=dict)


def number_report(pages: list[tuple[str, str]]) -> Numbering:
    """Number the report's figures and display equations by chapter.

    Args:
        pages: ``(chapter key, page path)`` for every page in reading order, with the Markdown
            of each readable at ``page path``; the chapter key groups pages into chapters
            (say the top-level navigation entry).

    Returns:
        ``C`` counts the chapters that place a figure or show a display equation, in order;
        figures and equations are counted apart within a chapter (Figure 2.3, Eq. 2.1). A
        figure placed on several pages keeps the number of its first placement.

    Raises:
        ValueError: an equation label is used twice, or malformed (page and line named).
    """
    from pathlib import Path

    out = Numbering()
    chapters: dict[str, int] = {}
    figures: dict[str, int] = {}
    equations: dict[str, int] = {}
    for chapter, path in pages:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for form in scan(text):
            if form.kind != "figure" or form.target in out.figures:
                continue
            number = chapters.setdefault(chapter, len(chapters) + 1)
            figures[chapter] = figures.get(chapter, 0) + 1
            out.figures[form.target] = (f"{number}.{figures[chapter]}", path)
        try:
            labels = display_equations(text)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        numbers = []
        for label in labels:
            number = chapters.setdefault(chapter, len(chapters) + 1)
            equations[chapter] = equations.get(chapter, 0) + 1
            numbers.append(f"{number}.{equations[chapter]}")
            if label is not None:
                if label in out.equation_labels:
                    raise ValueError(f"{path}: equation label '{label}' is already used on "
                                     f"{out.equation_labels[label][1]}; labels are unique.")
                out.equation_labels[label] = (numbers[-1], path)
        if numbers:
            out.equations[path] = numbers
    return out



def _audio_players(resolve: Resolvers, form: Form) -> str:
    if resolve.audio is None:
        raise FormError("Audio players are not rendered here (no audio resolver).",
                        kind="markup")
    return resolve.audio(form.target, form.option)


def _raise(exc: Exception) -> Any:
    raise exc


def _render(result: TransformResult, page: str, form: Form, block: bool,
            render: Callable[[], str]) -> str:
    """Call a resolver; record its error or warning against the form's page and line."""
    try:
        return render()
    except FormWarning as warn:
        result.warnings.append(MarkupError(page, form.line, _message(warn), warn.kind))
        return warn.html
    except LookupError as exc:
        kind = getattr(exc, "kind", "reference")
        result.errors.append(MarkupError(page, form.line, _message(exc), kind))
        return getattr(exc, "html", None) or _error_html(_message(exc), inline=not block)


def _message(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


#: Characters Markdown, tables or maths act on even inside an HTML attribute.
_ATTR_ESCAPES = str.maketrans({c: f"&#{ord(c)};" for c in "*_`[]|\\$~^"})


def attr_escape(text: str) -> str:
    """``text`` for an HTML attribute in Markdown: quoted, and inert to Markdown (which
    processes ``*``, backticks and ``$`` inside attributes) and to table pipes."""
    return html.escape(text, quote=True).translate(_ATTR_ESCAPES).replace("\n", "&#10;")


def _error_html(message: str, inline: bool = False) -> str:
    text = html.escape(message)
    if inline:
        return f'<span class="genai-error" title="{attr_escape(message)}">⚠ {text}</span>'
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
    """Format a metric: with ``fmt`` as given, floats to 3 significant digits otherwise.

    A metric measured over seeds (:func:`genai_report.metrics.seeds.over_seeds`) renders as
    ``mean ± sd (n seeds)``, ``fmt`` applied to the mean and the sd: ``3.12 ± 0.19 (5 seeds)``.
    """
    if is_over_seeds(value):
        n = value["n"]
        return (f"{format_value(value['mean'], fmt)} ± {format_value(value['sd'], fmt)} "
                f"({n} seed{'' if n == 1 else 's'})")
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


def audio_table(files: list[tuple[str, str]]) -> str:
    """HTML of labelled audio players for ``(file name, URL)`` pairs.

    Files all named ``KIND-LABEL.wav`` form a grid (a row per label, a column per kind, in
    order of first appearance); otherwise each file is a row labelled with its name. Every
    player is ``<audio controls preload="none">``, so nothing loads until it is played.
    """
    def player(name: str, url: str, label: str) -> str:
        return (f'<audio controls preload="none" src="{attr_escape(url)}" '
                f'aria-label="{attr_escape(label)}" data-file="{attr_escape(name)}"></audio>')

    stems = [name.rsplit(".", 1)[0] for name, _ in files]
    if files and all("-" in s.strip("-") for s in stems):
        split = [s.split("-", 1) for s in stems]
        kinds = list(dict.fromkeys(k for k, _ in split))
        labels = list(dict.fromkeys(lab for _, lab in split))
        cell = {(k, lab): (name, url) for (k, lab), (name, url) in zip(split, files, strict=True)}
        head = "".join(f"<th>{html.escape(k)}</th>" for k in kinds)
        rows = []
        for lab in labels:
            words = lab.replace("-", " ")
            tds = "".join(f"<td>{player(*cell[k, lab], f'{k}: {words}')}</td>"
                          if (k, lab) in cell else "<td></td>" for k in kinds)
            rows.append(f"<tr><th>{html.escape(words)}</th>{tds}</tr>")
        return (f'<table class="genai-audio"><thead><tr><th></th>{head}</tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table>")
    rows = [f"<tr><th>{html.escape(name)}</th><td>{player(name, url, name)}</td></tr>"
            for name, url in files]
    return f'<table class="genai-audio"><tbody>{"".join(rows)}</tbody></table>'
