"""Site weight: what a reader downloads for each chapter page of the built site.

Usage::

    python benchmarks/bench_site_weight.py [SITE_DIR] [--all] [--json] [--check]
        [--scheme light|dark]

For each chapter of mkdocs.yml's nav (``--all``: every page) it sums the page's HTML and
everything the page loads from the site: stylesheets, scripts, images (``<img>``, also
lazy ones, but of a figure only the variant the reader's colour scheme shows) and the
search index the search worker fetches. It reports the total, the
image bytes, the gzip-compressed total (what a server with compression sends), the
page's largest image, and lists heavy images with a hint (an SVG of many points should
rasterize them; a PNG of line art is better as SVG, which also gets a dark variant).

Goal: no chapter page over 2 MB (``--check`` exits 1 if one is).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 2 * 1024 * 1024
HEAVY_IMAGE = 300 * 1024

ASSET_RE = re.compile(
    r'<(?:script|img|source)\b[^>]*?\bsrc="([^"]+)"'
    r'|<link\b(?=[^>]*\brel="(?:stylesheet|preload|modulepreload|icon)")[^>]*?\bhref="([^"]+)"',
    re.I,
)
IMG_RE = re.compile(r'<img\b[^>]*?\bsrc="([^"]+)"[^>]*>', re.I)


def nav_pages(config: Path) -> list[str]:
    """URL paths of the nav's pages, the API reference left out."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    nav = yaml.load(config.read_text(), Loader=Loader).get("nav") or []
    srcs: list[str] = []

    def walk(items) -> None:
        for item in items:
            values = item.values() if isinstance(item, dict) else [item]
            for v in values:
                if isinstance(v, str):
                    srcs.append(v)
                elif isinstance(v, list):
                    walk(v)

    walk(nav)
    out = []
    for src in srcs:
        if src.startswith("api/") or not src.endswith(".md"):
            continue
        stem = src[:-3]
        out.append(stem[: -len("index")] if stem.endswith("index") else stem + "/")
    return out


@cache
def _sizes(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    return len(data), len(gzip.compress(data, 6))


def _local(site: Path, page_url: str, ref: str) -> Path | None:
    """The file in ``site`` that ``ref`` (on page ``page_url``) loads; None if off-site."""
    if ref.startswith(("data:", "#")):
        return None
    url = urlsplit(urljoin("http://site/" + page_url, ref))
    if url.netloc != "site":
        return None
    path = site / unquote(url.path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


def _shown(tags: list[str], scheme: str) -> list[bool]:
    """Which of a page's ``<img>`` tags (in document order) a reader of ``scheme`` loads: a
    figure's dark variant (``genai-dark``) is a lazy image shown only under the dark scheme,
    in place of the light image just before it."""
    dark = ["genai-dark" in re.findall(r'\bclass="([^"]*)"', t)[0].split()
            if 'class="' in t else False for t in tags]
    if scheme == "light":
        return [not d for d in dark]
    return [d or not (i + 1 < len(dark) and dark[i + 1]) for i, d in enumerate(dark)]


def weigh(site: Path, page_url: str, scheme: str = "light") -> dict:
    """Bytes a reader of the ``light`` or ``dark`` scheme downloads for one page."""
    html_path = site / page_url / "index.html" if not page_url.endswith(".html") else site / page_url
    html = html_path.read_text()
    files: dict[Path, str] = {html_path: "html"}
    for m in ASSET_RE.finditer(html):
        if m.group(0).lower().startswith("<img"):
            continue  # images are counted below, by scheme
        path = _local(site, page_url, m.group(1) or m.group(2))
        if path is not None:
            files.setdefault(path, "asset")
    images = {}
    found = list(IMG_RE.finditer(html))
    for m, shown in zip(found, _shown([m.group(0) for m in found], scheme), strict=True):
        path = _local(site, page_url, m.group(1)) if shown else None
        if path is not None:
            files[path] = "image"
            images[path] = _sizes(path)[0]
    index = site / "search" / "search_index.json"
    if index.is_file():
        files.setdefault(index, "search")
    total = sum(_sizes(p)[0] for p in files)
    gz = sum(_sizes(p)[1] for p in files)
    largest = max(images.items(), key=lambda kv: kv[1], default=(None, 0))
    return {
        "page": "/" + page_url,
        "scheme": scheme,
        "total_bytes": total,
        "gzip_bytes": gz,
        "image_bytes": sum(images.values()),
        "images": len(images),
        "largest_image": str(largest[0].relative_to(site)) if largest[0] else None,
        "largest_image_bytes": largest[1],
        "heavy_images": {str(p.relative_to(site)): b for p, b in images.items()
                         if b > HEAVY_IMAGE},
        "over_limit": total > LIMIT,
    }


def _hint(path: str, site: Path) -> str:
    if path.endswith(".svg"):
        text = (site / path).read_text(errors="replace")
        embedded = sum(len(m) for m in re.findall(r"base64,[^\"']*", text))
        if embedded > len(text) / 2:
            return ("SVG mostly of embedded pictures: draw them at a lower resolution "
                    "(savefig dpi, or fewer pixels in the image)")
        return ("SVG with many elements: draw dense artists with rasterized=True (they embed "
                "as one picture; the text stays vector and the dark variant still works)")
    if path.endswith(".png"):
        return "large PNG: lower dpi, quantize colours, or draw line art as SVG"
    return "large image"


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:6.2f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", type=Path, default=ROOT / "site")
    parser.add_argument("--config", type=Path, default=ROOT / "mkdocs.yml")
    parser.add_argument("--all", action="store_true", help="every page, not only chapters")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is over 2 MB")
    parser.add_argument("--scheme", choices=("light", "dark"), default="light",
                        help="count the images a reader of this colour scheme loads "
                             "(figures have a dark variant; default: light)")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    if not (site / "index.html").is_file():
        print(f"No built site at {site}: run `mkdocs build` (or pass its folder).",
              file=sys.stderr)
        return 2
    if args.all:
        urls = sorted(
            p.relative_to(site).as_posix()[: -len("index.html")]
            for p in site.rglob("index.html")
            if not p.relative_to(site).as_posix().startswith(("assets/", "figures/")))
    else:
        urls = [u for u in nav_pages(args.config) if (site / u / "index.html").is_file()]
    rows = [weigh(site, u, args.scheme) for u in urls]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max((len(r["page"]) for r in rows), default=4)
        print(f"{'page':<{width}}  {'total':>9}  {'gzip':>9}  {'images':>9}  n  largest image")
        for r in rows:
            flag = "  OVER 2 MB" if r["over_limit"] else ""
            print(f"{r['page']:<{width}}  {_mb(r['total_bytes'])}  {_mb(r['gzip_bytes'])}  "
                  f"{_mb(r['image_bytes'])}  {r['images']:>2}  "
                  f"{r['largest_image'] or '-'} ({r['largest_image_bytes'] // 1024} KB){flag}")
        heavy = {p: b for r in rows for p, b in r["heavy_images"].items()}
        if heavy:
            print(f"\nImages over {HEAVY_IMAGE // 1024} KB:")
            for p, b in sorted(heavy.items(), key=lambda kv: -kv[1]):
                print(f"  {p} ({b // 1024} KB): {_hint(p, site)}")
        over = [r["page"] for r in rows if r["over_limit"]]
        print(f"\n{len(rows)} page(s); heaviest {_mb(max((r['total_bytes'] for r in rows), default=0)).strip()}; "
              f"{len(over)} over 2 MB{': ' + ', '.join(over) if over else ''}.")
    if args.check and any(r["over_limit"] for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
