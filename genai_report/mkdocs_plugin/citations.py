"""The bibliography: BibTeX files in, in-text citations and a references list out."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from genai_report.utils import did_you_mean


@dataclass(frozen=True)
class Reference:
    """One bibliography entry, reduced to what the site shows."""

    key: str
    authors: tuple[str, ...]  # last names
    full_authors: str
    year: str
    title: str
    venue: str
    url: str

    @property
    def label(self) -> str:
        """In-text label: ``Vaswani et al., 2017`` / ``Kingma & Welling, 2014``."""
        if not self.authors:
            names = "Anon."
        elif len(self.authors) == 1:
            names = self.authors[0]
        elif len(self.authors) == 2:
            names = f"{self.authors[0]} & {self.authors[1]}"
        else:
            names = f"{self.authors[0]} et al."
        return f"{names}, {self.year}"


def _clean(text: str) -> str:
    """Strip BibTeX braces and a few escapes."""
    text = re.sub(r"\\[`'^\"~=.]\{?(\w)\}?", r"\1", text)
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "").replace("\\&", "&")).strip()


class Bibliography:
    """Entries parsed from one or more ``.bib`` files.

    Args:
        files: BibTeX files; a key defined twice is an error naming both files.
    """

    def __init__(self, files: list[Path]):
        from pybtex.database import parse_file
        from pybtex.scanner import PybtexError

        self.files = list(files)
        self.entries: dict[str, Reference] = {}
        origin: dict[str, Path] = {}
        for path in self.files:
            try:
                db = parse_file(str(path), bib_format="bibtex")
            except (PybtexError, OSError) as exc:
                raise ValueError(f"Cannot read bibliography '{path}': {exc}. Fix the BibTeX "
                                 "syntax (each entry: @type{key, field = {...}, ...}).") from None
            for key, entry in db.entries.items():
                if key in self.entries:
                    raise ValueError(f"Citation key '{key}' is defined in both {origin[key]} and "
                                     f"{path}; keep one.")
                origin[key] = path
                self.entries[key] = _reference(key, entry)

    def get(self, key: str) -> Reference:
        """The entry for ``key``; ``LookupError`` with a hint if there is none."""
        try:
            return self.entries[key]
        except KeyError:
            raise LookupError(
                f"Unknown citation key '{key}'.{did_you_mean(key, self.entries)} Add it to a "
                f".bib file under {', '.join(sorted({str(f.parent) for f in self.files})) or 'the bibliography folder'}."
            ) from None

    def sorted(self) -> list[Reference]:
        """Entries by first author's last name, then year."""
        return sorted(self.entries.values(), key=lambda r: (r.authors[:1], r.year, r.key))

    def render_list(self) -> str:
        """The references list as HTML, one anchor ``ref-KEY`` per entry."""
        items = []
        for ref in self.sorted():
            title = html.escape(ref.title)
            if ref.url:
                title = f'<a href="{html.escape(ref.url)}">{title}</a>'
            venue = f" <em>{html.escape(ref.venue)}</em>." if ref.venue else ""
            items.append(
                f'<li id="ref-{html.escape(ref.key)}"><span class="genai-ref-authors">'
                f"{html.escape(ref.full_authors)}</span> ({html.escape(ref.year)}). "
                f"{title}.{venue} <code>{html.escape(ref.key)}</code></li>"
            )
        return '<ol class="genai-references">\n' + "\n".join(items) + "\n</ol>"


def _reference(key: str, entry) -> Reference:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    last = tuple(_clean(" ".join(p.last_names)) for p in people)
    full = [
        _clean(" ".join(p.first_names + p.middle_names + p.prelast_names + p.last_names))
        for p in people
    ]
    if len(full) > 6:
        full = full[:6] + ["et al."]
    fields = entry.fields
    venue = next((fields[f] for f in ("journal", "booktitle", "publisher", "howpublished",
                                      "institution") if f in fields), "")
    url = fields.get("url", "")
    if not url and "doi" in fields:
        url = f"https://doi.org/{fields['doi']}"
    if not url and "eprint" in fields:
        url = f"https://arxiv.org/abs/{fields['eprint']}"
    return Reference(
        key=key,
        authors=last,
        full_authors=", ".join(full),
        year=_clean(fields.get("year", "n.d.")),
        title=_clean(fields.get("title", key)),
        venue=_clean(venue),
        url=url,
    )
