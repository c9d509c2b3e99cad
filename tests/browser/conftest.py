"""Fixtures for the end-to-end tests: headless Chromium (Debian's ``chromium`` driven by
Playwright) against the built site served on 127.0.0.1.

* Without Chromium or Playwright the tests skip, saying what to install; under ``CI=true``
  that is a failure instead (``.ci/run`` installs Chromium, so it must be there).
* The site is the real report built in the smoke profile from the session's ``smoke_cache``
  (no node trains twice). ``GENAI_REPORT_SITE_DIR=path`` tests an already built site
  instead (e.g. the release workflow's ``site/``).
* Every request the browser makes off 127.0.0.1 is blocked and recorded, so a test never
  reaches the network and the "nothing leaves the host" test sees each attempt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from genai_report.utils import serve_directory

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    # Without these Chromium itself calls Google's hosts (component updates, sync, ...).
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    """Skip on a contributor's machine; fail in CI, where the browser must be installed."""
    if _in_ci():
        pytest.fail(f"{reason} CI=true, so the browser tests must run: .ci/run installs "
                    "Debian's chromium (apt-get install chromium).", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """``$CHROMIUM`` if set, else Debian's ``chromium`` (or ``chromium-browser``) on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"] if Path(os.environ["CHROMIUM"]).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (Debian's package, never a Playwright download)."""
    exe = chromium_path()
    if exe is None:
        _unavailable("Chromium is not installed: `sudo apt-get install chromium` (Debian/"
                     "Ubuntu) or set CHROMIUM=/path/to/chromium to run the browser tests.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Python Playwright is not installed: `pip install -e .[dev]`.")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def build_site(dest: Path, cache: Path, config: str = "mkdocs.yml") -> Path:
    """Build the report in the smoke profile from ``cache`` into ``dest``.

    Not strict: tests/test_site.py checks strictness; here a warning (say, an unplaced
    figure) must not hide what a reader would see.
    """
    env = {**os.environ, "GENAI_REPORT_PROFILE": "smoke", "GENAI_REPORT_DEVICE": "cpu",
           "GENAI_REPORT_CACHE_DIR": str(cache), "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--no-strict", "-f", config, "-d", str(dest)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=900,
    )
    assert out.returncode == 0, f"mkdocs build failed:\n{out.stderr[-5000:]}"
    return dest


@pytest.fixture(scope="session")
def built_site(tmp_path_factory, request) -> Path:
    """The built report (smoke profile), or ``$GENAI_REPORT_SITE_DIR``."""
    given = os.environ.get("GENAI_REPORT_SITE_DIR")
    if given:
        path = Path(given).resolve()
        assert (path / "index.html").is_file(), f"GENAI_REPORT_SITE_DIR={given} has no index.html"
        return path
    cache = request.getfixturevalue("smoke_cache")
    return build_site(tmp_path_factory.mktemp("browser") / "site", cache)


def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 at a free port; yields the base URL."""
    with serve_directory(directory) as url:
        yield url


@pytest.fixture(scope="session")
def site_url(built_site) -> Iterator[str]:
    """Base URL of the built site, served on localhost."""
    yield from serve(built_site)


def site_pages(site: Path) -> list[str]:
    """Every page of the built site, as URL paths relative to its root (``a/b/``)."""
    pages = []
    for html in sorted(site.rglob("*.html")):
        rel = html.relative_to(site).as_posix()
        if rel.startswith(("assets/", "figures/")):
            continue
        pages.append(rel[: -len("index.html")] if rel.endswith("index.html") else rel)
    return pages


def nav_chapters(config: Path = ROOT / "mkdocs.yml") -> list[tuple[str, str]]:
    """``(title, url path)`` of each page in mkdocs.yml's nav, the API reference left out."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # !ENV, !relative
    nav = yaml.load(config.read_text(), Loader=Loader).get("nav") or []
    out: list[tuple[str, str]] = []

    def walk(items, section: str) -> None:
        for item in items:
            if isinstance(item, str):
                out.append((section, item))
            elif isinstance(item, dict):
                for title, value in item.items():
                    if isinstance(value, str):
                        out.append((title, value))
                    elif isinstance(value, list):
                        walk(value, title)

    walk(nav, "")
    chapters = []
    for title, src in out:
        if src.startswith(("api/", "http:", "https:")) or not src.endswith(".md"):
            continue
        stem = src[: -len(".md")]
        url = stem[: -len("index")] if stem.endswith("index") else stem + "/"
        chapters.append((title or stem, "" if url == "/" else url))
    return chapters


@dataclass
class PageLog:
    """What the browser saw while a page was open."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    off_host: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def clear(self) -> None:
        for lst in (self.console_errors, self.page_errors, self.off_host, self.failed):
            lst.clear()


@pytest.fixture
def context(browser):
    """A fresh browser context that blocks (and records) every off-host request."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    log = PageLog()

    def route(route):
        url = route.request.url
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            log.off_host.append(url)
            route.abort()

    ctx.route("**/*", route)
    ctx.set_default_timeout(15_000)
    ctx.log = log  # type: ignore[attr-defined]
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    """A page whose console errors, uncaught exceptions and failed requests are logged."""
    pg = context.new_page()
    log: PageLog = context.log
    pg.on("console", lambda m: m.type == "error" and log.console_errors.append(
        f"{m.text} ({m.location.get('url', '')}:{m.location.get('lineNumber', '')})"))
    pg.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
    pg.on("response", lambda r: r.status >= 400 and log.failed.append(f"{r.status} {r.url}"))
    pg.on("requestfailed", lambda r: urlsplit(r.url).hostname == "127.0.0.1" and
          log.failed.append(f"{r.failure} {r.url}"))
    pg.log = log  # type: ignore[attr-defined]
    return pg
