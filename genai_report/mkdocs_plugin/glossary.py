"""Glossary terms in the prose link to their definitions, with the definition as tooltip.

The glossary page is a Markdown definition list (``Term`` on a line, ``:   definition``
indented below). :func:`parse_glossary` reads its terms and the names a term goes by:
``Evidence lower bound (ELBO)`` is found as "evidence lower bound" and as "ELBO",
``Token and tokenizer`` as "token" and as "tokenizer". :func:`link_terms` then links the
first mention of each term on a page (in running text only: never inside a heading, a link,
code, maths, a caption's provenance line or a button) to the term's entry, with the start of
its definition as the link's title; :func:`add_term_ids` gives each entry of the glossary
page the anchor those links point to.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

#: Elements whose text is never linked (their end tags close the exclusion again).
SKIP_TAGS = frozenset({"a", "code", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "math",
                       "script", "style", "button", "summary", "dt", "abbr", "sup", "kbd",
                       "label", "title", "svg", "select", "textarea", "audio", "th"})
#: Classes whose elements' text is never linked (provenance lines, error boxes).
SKIP_CLASSES = ("genai-provenance", "genai-error", "genai-figure-error", "md-source")
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                       "meta", "source", "track", "wbr"})
_TAG_RE = re.compile(r"(<[^>]*>)")
_NAME_RE = re.compile(r"^</?\s*([a-zA-Z][a-zA-Z0-9-]*)")
_LINK_RE = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class Term:
    """One glossary entry.

    Attributes:
        name: the entry as written (``Evidence lower bound (ELBO)``).
        slug: its anchor on the glossary page (``term-evidence-lower-bound-elbo``).
        aliases: the names it is found by in prose.
        summary: the start of its definition, plain text (the links' tooltip).
    """

    name: str
    slug: str
    aliases: tuple[str, ...]
    summary: str


def slugify(name: str) -> str:
    """``term-`` and the name in lowercase ASCII, runs of other characters as hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "term-" + re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def aliases_of(name: str) -> tuple[str, ...]:
    """The names a glossary entry goes by in prose (see the module docstring).

    Names under three letters are dropped (``IS`` would match the verb), except ``KL``.
    """
    found: list[str] = []
    main, _, paren = name.partition(" (")
    for part in (main, paren.rstrip(")")):
        for alias in re.split(r"\s+and\s+", part.strip()):
            alias = alias.strip()
            if alias and (len(alias) >= 3 or alias == "KL") and alias not in found:
                found.append(alias)
    return tuple(found)


def _summary(definition: str, limit: int = 200) -> str:
    text = " ".join(_LINK_RE.sub(r"\1", definition).split())
    text = re.sub(r"\(\s*\)", "", text).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def parse_glossary(markdown: str) -> list[Term]:
    """The entries of a glossary written as a Markdown definition list."""
    lines = markdown.split("\n")
    terms: list[Term] = []
    i = 0
    while i < len(lines) - 1:
        name, nxt = lines[i].strip(), lines[i + 1]
        if name and not name.startswith(("#", ":", "-", "*", ">")) and nxt.startswith(":"):
            body = [nxt[1:].strip()]
            j = i + 2
            while j < len(lines) and lines[j].startswith((" ", "\t")) and lines[j].strip():
                body.append(lines[j].strip())
                j += 1
            terms.append(Term(name, slugify(name), aliases_of(name), _summary(" ".join(body))))
            i = j
        else:
            i += 1
    return terms


def _pattern(alias: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(w) for w in alias.split())
    acronym = alias.upper() == alias
    # whole words; a plural "s"/"es" may follow
    return re.compile(rf"(?<![\w-]){words}(?:e?s)?(?![\w-])", 0 if acronym else re.IGNORECASE)


def link_terms(page_html: str, terms: list[Term], href: Callable[[Term], str]) -> str:
    """Link the first mention of each term in running text (see the module docstring).

    Args:
        page_html: a page's content HTML.
        terms: the glossary's entries.
        href: the link target of a term's entry, relative to the page.

    Returns:
        The HTML with ``<a class="genai-term" href=... title=...>`` around first mentions.
    """
    patterns = [(t, _pattern(a)) for t in terms for a in t.aliases]
    linked: set[str] = set()
    stack: list[tuple[str, bool]] = []  # open elements: (tag, suppresses linking?)
    out: list[str] = []
    for piece in _TAG_RE.split(page_html):
        if piece.startswith("<"):
            out.append(piece)
            m = _NAME_RE.match(piece)
            if not m or piece.startswith(("<!", "<?")):
                continue
            tag = m.group(1).lower()
            if piece.startswith("</"):
                # close up to the matching element (tolerates unclosed ones inside it)
                while stack and any(t == tag for t, _ in stack):
                    if stack.pop()[0] == tag:
                        break
            elif tag not in VOID_TAGS and not piece.endswith("/>"):
                classes = re.search(r'class="([^"]*)"', piece)
                skip = tag in SKIP_TAGS or bool(
                    classes and any(c in classes.group(1).split() for c in SKIP_CLASSES))
                stack.append((tag, skip))
            continue
        if any(skip for _, skip in stack) or not piece.strip():
            out.append(piece)
            continue
        out.append(_link_text(piece, patterns, linked, href))
    return "".join(out)


def _link_text(text: str, patterns, linked: set[str], href) -> str:
    out, pos = [], 0
    while True:
        best = None
        for term, pat in patterns:
            if term.slug in linked:
                continue
            m = pat.search(text, pos)
            if m and (best is None or m.start() < best[1].start()
                      or (m.start() == best[1].start() and m.end() > best[1].end())):
                best = (term, m)
        if best is None:
            out.append(text[pos:])
            return "".join(out)
        term, m = best
        linked.add(term.slug)
        out.append(text[pos:m.start()])
        out.append(f'<a class="genai-term" href="{html.escape(href(term), quote=True)}" '
                   f'title="{html.escape(term.summary, quote=True)}">{m.group(0)}</a>')
        pos = m.end()


def add_term_ids(page_html: str, terms: list[Term]) -> str:
    """Give each ``<dt>`` of the glossary page the anchor of its entry."""
    slugs = {t.name: t.slug for t in terms}

    def one(m: re.Match[str]) -> str:
        name = html.unescape(re.sub(r"<[^>]+>", "", m.group(2))).strip()
        slug = slugs.get(name)
        return f'<dt id="{slug}"{m.group(1)}>{m.group(2)}</dt>' if slug else m.group(0)

    return re.sub(r"<dt((?:\s[^>]*)?)>(.*?)</dt>", one, page_html, flags=re.S)
