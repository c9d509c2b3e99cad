"""Render the built site as one PDF: every chapter in reading order, figures numbered.

Examples::

    make site && .venv/bin/python scripts/pdf.py                 # site/ -> genai-report.pdf
    .venv/bin/python scripts/pdf.py --site /tmp/site --out report.pdf --skip api/

The script serves the built site on localhost, opens its home page in headless Chromium to
read the navigation (the reading order), takes the article of every page (figures with
their numbers and captions, maths as MathML, links made absolute), lays them out as one
print document with the site's own stylesheets, a title page naming the build's commit,
and a page break before every page, and prints it with Chromium's PDF engine. Nothing is
fetched from off the host. It needs Chromium (Debian's ``chromium``, or
``$CHROMIUM``, as for the browser tests) and the ``playwright`` package (``pip install -e .[dev]``).
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("pdf")

#: Every link of the primary navigation, in order, made absolute (run in the page).
NAV_LINKS = """
() => Array.from(document.querySelectorAll('nav.md-nav--primary a.md-nav__link[href]'))
  .map(a => a.href.split('#')[0])
"""
#: The page's article with lazy images made eager and every URL made absolute.
ARTICLE = """
() => {
  const article = document.querySelector('article.md-content__inner');
  if (!article) return null;
  article.querySelectorAll('img').forEach(img => { img.loading = 'eager'; img.src = img.src; });
  article.querySelectorAll('a[href]').forEach(a => { a.href = a.href; });
  article.querySelectorAll('audio, .headerlink, .md-content__button, .genai-copy')
    .forEach(el => el.remove());
  article.querySelectorAll('details').forEach(d => d.setAttribute('open', ''));
  return article.innerHTML;
}
"""
PRINT_CSS = """
@page { size: A4; margin: 18mm 16mm; }
body { background: #fff; }
.md-typeset { font-size: 10pt; }
.pdf-page { break-before: page; }
.pdf-title { text-align: center; margin-top: 35vh; }
.pdf-title h1 { font-size: 28pt; margin-bottom: 0.3em; }
.genai-figure { break-inside: avoid; }
.genai-figure img { max-height: 190mm; }
.genai-reproduce { display: none !important; }
"""


class PdfError(Exception):
    """The PDF cannot be made; the message says why and what to do."""


def chromium_path() -> str:
    """The Chromium to drive: ``$CHROMIUM``, else ``chromium`` on the PATH."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if not found:
        raise PdfError("No Chromium found: install Debian's `chromium` (apt) or set "
                       "$CHROMIUM to a Chromium executable.")
    return found


def reading_order(links: list[str], base: str, skip: tuple[str, ...]) -> list[str]:
    """Unique page URLs of the site in navigation order, without skipped prefixes.

    Args:
        links: absolute URLs of the navigation's links, in order (with repeats).
        base: the site's base URL.
        skip: site-relative prefixes to leave out (``api/``).
    """
    pages: list[str] = []
    for url in links:
        if not url.startswith(base):
            continue
        rel = url[len(base):]
        if any(rel.startswith(s) for s in skip) or url in pages:
            continue
        pages.append(url)
    return pages


def print_document(title: str, subtitle: str, stylesheets: list[str],
                   articles: list[tuple[str, str]]) -> str:
    """One HTML document: a title page, then each ``(url, article HTML)`` on new pages."""
    links = "".join(f'<link rel="stylesheet" href="{html.escape(s)}">' for s in stylesheets)
    body = "".join(f'<section class="pdf-page md-typeset" data-source="{html.escape(url)}">'
                   f"{article}</section>" for url, article in articles)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>{links}<style>{PRINT_CSS}</style></head>"
            f'<body><div class="md-typeset pdf-title"><h1>{html.escape(title)}</h1>'
            f"<p>{html.escape(subtitle)}</p></div>{body}</body></html>")


def make_pdf(site: Path, out: Path, skip: tuple[str, ...] = ("api/",),
             only: tuple[str, ...] = ()) -> int:
    """Render ``site`` (a built site folder) as ``out``; returns the number of pages taken.

    Args:
        site: the built site (``mkdocs build`` output).
        out: the PDF to write (replaced only once the new one is complete).
        skip: site-relative prefixes of pages to leave out.
        only: if given, only pages whose site-relative path starts with one of these.
    """
    from playwright.sync_api import sync_playwright

    from genai_report.utils import serve_directory

    if not (site / "index.html").is_file():
        raise PdfError(f"{site} holds no built site (no index.html): run `make site` first.")
    with serve_directory(site) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(base, wait_until="load")
            urls = reading_order([base, *page.evaluate(NAV_LINKS)], base, skip)
            if only:
                urls = [u for u in urls if u[len(base):].startswith(only)]
            if not urls:
                raise PdfError(f"No page of {site} to print (skip={skip}, only={only}).")
            site_name = page.title().split(" - ")[-1]
            stylesheets = page.evaluate(
                "() => Array.from(document.querySelectorAll('link[rel=stylesheet]'))"
                ".map(l => l.href)")
            footer = page.evaluate(
                "() => (document.querySelector('.md-copyright__highlight') || {}).textContent"
                " || ''")
            articles = []
            for url in urls:
                page.goto(url, wait_until="load")
                article = page.evaluate(ARTICLE)
                if article:
                    articles.append((url, article))
                log.info("took %s", url[len(base):] or "index")
            document = print_document(site_name, " ".join(footer.split()), stylesheets,
                                      articles)
            page.set_content(document, wait_until="load")
            page.wait_for_load_state("networkidle")
            page.emulate_media(media="print")
            tmp = out.with_name(out.name + ".part")
            page.pdf(path=str(tmp), format="A4", print_background=True,
                     display_header_footer=True, header_template="<span></span>",
                     footer_template='<div style="font-size:8px;width:100%;text-align:center;">'
                                     '<span class="pageNumber"></span></div>',
                     margin={"top": "18mm", "bottom": "18mm", "left": "16mm", "right": "16mm"})
            tmp.replace(out)
        finally:
            browser.close()
    return len(articles)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pdf.py", description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site",
                        help="the built site (default: site/)")
    parser.add_argument("--out", type=Path, default=ROOT / "genai-report.pdf",
                        help="the PDF to write (default: genai-report.pdf)")
    parser.add_argument("--skip", action="append", default=None, metavar="PREFIX",
                        help="leave out pages under PREFIX (repeatable; default: api/)")
    parser.add_argument("--only", action="append", default=[], metavar="PREFIX",
                        help="print only pages under PREFIX (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        n = make_pdf(args.site, args.out, tuple(args.skip or ["api/"]), tuple(args.only))
    except PdfError as exc:
        print(f"pdf.py: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {args.out} ({n} pages of the site).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
