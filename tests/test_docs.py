"""The report's pages against the code: figures, metrics, citations and hand-typed numbers.

These tests read every Markdown page under ``docs/`` (including pages other contributors
are writing) without building the site, so they are fast and name the page and line of
each problem:

1. every registered figure is placed on some page, and every placed figure is registered;
2. every ``[@key]`` resolves against ``docs/references.bib.d/*.bib`` (keys unique);
3. no number that looks measured (a decimal point or a percentage) appears in prose
   without a citation in the same sentence, list item or table row: numbers from our own
   experiments must be quoted with ``[[metric:...]]``, numbers from papers must be cited;
4. every ``[[metric:NODE.path]]`` names a registered node and, where the node's quick
   record is committed, a path that exists in it;
5. every ``[[check:...]]`` parses and holds on the committed quick records, and no
   malformed form (``[[metrc:...]]``, a figure mid-sentence) is left.

Pages are read with the plugin's own parser (:func:`genai_report.mkdocs_plugin.markup.scan`),
so a form counts here exactly when the build would act on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from genai_report.mkdocs_plugin.checks import CheckError, parse_check
from genai_report.mkdocs_plugin.citations import Bibliography
from genai_report.mkdocs_plugin.markup import (
    CHECK_RE,
    CITE_RE,
    METRIC_RE,
    Form,
    format_value,
    lookup_path,
    prose_lines,
    scan,
    unknown_form_message,
)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BIB_DIR = DOCS / "references.bib.d"
QUICK = ROOT / "figures" / "quick"


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@dataclass
class Line:
    """One line of a page outside fenced code, with inline code spans removed."""

    page: str
    number: int
    text: str


def _front_matter_lines(markdown: str) -> int:
    """How many lines a leading YAML front matter block (``---`` ... ``---``) takes; 0 if none."""
    lines = markdown.split("\n")
    if not lines or lines[0].strip() != "---":
        return 0
    for i, line in enumerate(lines[1:], start=2):
        if line.strip() in ("---", "..."):
            return i
    return 0


def _lines_of(page: str, markdown: str) -> Iterator[Line]:
    """The page's lines outside fenced code blocks and front matter, inline code blanked out
    (the plugin's own reading of a page, :func:`genai_report.mkdocs_plugin.markup.prose_lines`)."""
    skip = _front_matter_lines(markdown)
    for line in prose_lines(markdown):
        if line.number > skip:
            yield Line(page, line.number, line.text)


def _forms(kind: str | None = None) -> Iterator[tuple[str, Form]]:
    """Every form of every page, as the plugin parses it, with the page's name."""
    for path in _pages():
        for form in scan(path.read_text(encoding="utf-8")):
            if kind is None or form.kind == kind:
                yield _rel(path), form


# -- 1. figures ----------------------------------------------------------------------------
def _placed_figures() -> dict[str, list[str]]:
    placed: dict[str, list[str]] = {}
    for page, form in _forms("figure"):
        placed.setdefault(form.target, []).append(f"{page}:{form.line}")
    return placed


@pytest.fixture(scope="module")
def registry():
    from genai_report.pipeline import load_registry

    return load_registry()


def test_every_placed_figure_is_registered(registry):
    names = {node.name for node in registry.figures()}
    unknown = [f"{where}: [[figure:{name}]] is not a registered figure"
               for name, places in _placed_figures().items() if name not in names
               for where in places]
    assert not unknown, "\n".join(unknown)


def test_every_registered_figure_is_placed(registry):
    placed = _placed_figures()
    missing = sorted(node.name for node in registry.figures() if node.name not in placed)
    assert not missing, (
        "registered figures placed on no page under docs/ (add a line [[figure:NAME]]):\n  "
        + "\n  ".join(missing))


# -- 2. citations --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bibliography() -> Bibliography:
    files = sorted(BIB_DIR.glob("*.bib"))
    assert files, f"no .bib files in {BIB_DIR}"
    return Bibliography(files)  # raises, naming both files, if a key is defined twice


def test_every_citation_resolves(bibliography):
    unknown = [f"{page}:{form.line}: unknown citation key '{key}'"
               for page, form in _forms("cite") for key in form.keys
               if key not in bibliography.entries]
    assert not unknown, "\n".join(unknown)


def test_bibliography_entries_have_authors_year_and_title(bibliography):
    incomplete = [key for key, ref in bibliography.entries.items()
                  if not ref.authors or ref.year == "n.d." or ref.title == key]
    assert not incomplete, f"entries missing author, year or title: {incomplete}"


# -- 3. no hand-typed experimental numbers --------------------------------------------------
#: A number that looks measured: with a decimal point (0.93, 1.4) or a percentage (40%,
#: 12.2 %). Integers are not flagged: years, counts and sizes would drown the signal.
NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:\.\d+)\s*%?|(?<![\w.])\d+(?:\.\d+)?\s*%")
#: Things that are not prose: display maths, inline maths, the report's forms, link
#: targets, HTML comments and tags, raw URLs, version strings.
DISPLAY_MATH_RE = re.compile(r"\$\$.*?\$\$", re.DOTALL)
INLINE_MATH_RE = re.compile(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$")
FORM_RE = re.compile(rf"{CHECK_RE.pattern}|{METRIC_RE.pattern}|\[\[[^\]\n]*\]\]")
LINK_TARGET_RE = re.compile(r"\]\([^)]*\)|\]\[[^\]]*\]|^\s*\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
TAG_RE = re.compile(r"<[^>\n]+>")
URL_RE = re.compile(r"https?://\S+")
#: A confidence level names a convention, not a measurement ("a 95 % interval").
CONFIDENCE_RE = re.compile(r"\b\d{2}(?:\.\d)?\s?%\s(?:(?:confidence|bootstrap|credible)\s)?interval",
                           re.IGNORECASE)
VERSION_RE = re.compile(r"\b(?:v|version |Python |torch |PyTorch |MkDocs |CUDA |cu)\d+(?:\.\d+)+\+?",
                        re.IGNORECASE)
#: Where a prose unit ends: a sentence end followed by a capital, a bracket or a citation.
SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[*_\"'])")
ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "vs.", "cf.", "Fig.", "Eq.", "approx.", "resp.")
BLOCK_START_RE = re.compile(r"^\s*(?:[*+-]|\d+[.)]|:|>)\s+")


@dataclass
class Unit:
    """A sentence, list-item sentence, or table row, with where it starts."""

    page: str
    line: int
    text: str


def _prose_blocks(page: str, markdown: str) -> Iterator[tuple[int, str]]:
    """Paragraphs, list items and table rows of a page, with their first line number.

    Fenced code and inline code are removed first (by :func:`_lines`), then headings.
    Multi-line constructs (display maths, comments) are removed per block after joining.
    """
    block: list[str] = []
    start = 0

    def flush():
        nonlocal block
        if block:
            yield start, "\n".join(block)
        block = []

    in_math = in_comment = False
    for line in _lines_of(page, markdown):
        text = line.text
        # Track display maths and comments that span lines so blocks never split them.
        if in_math or in_comment:
            block.append(text)
            if in_math and text.count("$$") % 2 == 1:
                in_math = False
            if in_comment and "-->" in text:
                in_comment = False
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            yield from flush()
            continue
        if stripped.startswith("|") or BLOCK_START_RE.match(text):
            yield from flush()
            start = line.number
        elif not block:
            start = line.number
        block.append(text)
        if stripped.startswith("|"):
            yield from flush()
            continue
        if text.count("$$") % 2 == 1:
            in_math = True
        if "<!--" in text and "-->" not in text.split("<!--")[-1]:
            in_comment = True
    yield from flush()


def _clean(text: str) -> str:
    """Blank out what is not prose, keeping line breaks so line numbers stay right."""
    for pattern in (COMMENT_RE, DISPLAY_MATH_RE, INLINE_MATH_RE, FORM_RE, LINK_TARGET_RE,
                    TAG_RE, URL_RE, VERSION_RE, CONFIDENCE_RE):
        text = pattern.sub(lambda m: " " + "\n" * m.group(0).count("\n"), text)
    return text


def _units(page: str, first_line: int, block: str) -> Iterator[Unit]:
    """Split a block into sentences (a table row is one unit), each with its line."""
    text = _clean(block)
    if block.lstrip().startswith("|"):
        yield Unit(page, first_line, text)
        return
    merged: list[tuple[int, str]] = []  # (offset in text, sentence)
    pos = 0
    for piece in SENTENCE_END_RE.split(text):
        offset = text.index(piece, pos) if piece else pos
        pos = offset + len(piece)
        if merged and merged[-1][1].rstrip().endswith(ABBREVIATIONS):
            merged[-1] = (merged[-1][0], merged[-1][1] + " " + piece)
        else:
            merged.append((offset, piece))
    for offset, piece in merged:
        yield Unit(page, first_line + text.count("\n", 0, offset), piece)


def uncited_numbers(page: str, markdown: str) -> list[str]:
    """Each prose unit of a page with a decimal or percentage number and no citation.

    Args:
        page: the page's name, for messages.
        markdown: its Markdown source.

    Returns:
        Messages ``page:line: 'number' in "sentence"``; empty when the page is clean.
    """
    problems = []
    for first_line, block in _prose_blocks(page, markdown):
        for unit in _units(page, first_line, block):
            if CITE_RE.search(unit.text):
                continue
            numbers = NUMBER_RE.findall(unit.text)
            if numbers:
                sentence = " ".join(unit.text.split())
                problems.append(f"{page}:{unit.line}: {', '.join(repr(n.strip()) for n in numbers)}"
                                f" in \"{sentence[:160]}\"")
    return problems


def test_the_number_check_catches_what_it_should():
    page = """---
search:
  boost: 0.25
---
# Heading with 0.5 in it

Our model reaches 0.93 nats per point. Another sentence [[metric:n.v:.2f]] is fine.
A claim [[check: a-b.c[0] < 0.5 * a-b.d["x"]]] is checked, not typed.
The paper reports 28.8% [@chen2021codex]. Maths $x = 0.5$ and
$$
y = 1.5
$$
are not prose, nor is `code 2.5` or a [link](page-1.2.md).

* A list item with 40% and no citation.
* A cited list item with 12.2% [@x].

| model | score |
|---|---|
| ours | 0.71 |
| theirs [@y] | 0.80 |

```python
print(3.14)
```

<!-- demo: a hidden 9.9 note -->
Kaplan et al. report 0.076 for parameters [@kaplan2020scaling]. The rest is words.
"""
    problems = uncited_numbers("t.md", page)
    flagged = [p.split(": ", 1)[1].split(" in ")[0] for p in problems]
    assert flagged == ["'0.93'", "'40%'", "'0.71'"], problems


def test_no_hand_typed_experimental_numbers():
    problems = []
    for page in _pages():
        problems.extend(uncited_numbers(_rel(page), page.read_text(encoding="utf-8")))
    assert not problems, (
        "numbers with a decimal point or % in prose without a citation in the same sentence. "
        "Quote numbers from our experiments with [[metric:NODE.key:FORMAT]]; cite numbers "
        "from papers with [@key]:\n" + "\n".join(problems))


# -- 4. metrics ----------------------------------------------------------------------------
def test_every_metric_names_a_registered_node_and_an_existing_path(registry):
    problems = []
    for page, form in _forms():
        if form.kind not in ("metric", "param"):
            continue
        node, *steps = form.target.split(".")
        where = f"{page}:{form.line}: {form.source}"
        if node not in registry.nodes:
            problems.append(f"{where}: '{node}' is not a registered node")
            continue
        if not steps:
            problems.append(f"{where}: names a node but no key in its record")
            continue
        record = QUICK / node / "record.json"
        if not record.is_file():
            continue  # not yet run in the quick profile; the build reports it
        data = json.loads(record.read_text(encoding="utf-8"))
        values = (data.get("metrics", {}) if form.kind == "metric"
                  else data.get("key_parts", {}).get("params", {}))
        try:
            format_value(lookup_path(values, steps, node), form.option)
        except LookupError as exc:
            problems.append(f"{where}: {exc}")
    assert not problems, "\n".join(problems)


# -- 5. checks and malformed forms ------------------------------------------------------------
def test_no_malformed_forms_are_left():
    problems = [f"{page}:{form.line}: {unknown_form_message(form)}"
                for page, form in _forms("unknown")]
    assert not problems, "\n".join(problems)


def _quick_metrics(node: str) -> dict:
    record = QUICK / node / "record.json"
    if not record.is_file():
        raise LookupError(f"Node '{node}' has no committed quick record ({record}).")
    return json.loads(record.read_text(encoding="utf-8"))["metrics"]


def test_every_check_holds_on_the_committed_quick_records(registry):
    """The fast twin of tests/test_claims.py: no build, the same parser and evaluator."""
    problems = []
    for page, form in _forms("check"):
        where = f"{page}:{form.line}: {form.source}"
        try:
            claim = parse_check(form.target)
            unknown = [n for n in claim.nodes() if n not in registry.nodes]
            if unknown:
                problems.append(f"{where}: unknown node(s) {unknown}")
            elif claim.applies_to("quick"):
                outcome = claim.evaluate(_quick_metrics)
                if not outcome.holds:
                    problems.append(f"{where}: false on the quick records: {outcome.explain()}")
        except (CheckError, LookupError) as exc:
            problems.append(f"{where}: {exc}")
    assert not problems, "\n".join(problems)
