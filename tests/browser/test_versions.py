"""Material's version selector on a site published twice with scripts/release.py (mike)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from .conftest import ROOT, nav_chapters, serve

pytestmark = pytest.mark.browser


def copy_working_tree(dest: Path) -> None:
    """Copy the checkout's files (tracked and new, not ignored; figures/ left out: the
    release gets its cache with --cache-dir) to ``dest``, as a fresh clone would have them."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if rel.startswith("figures/") or not src.is_file():
            continue  # figures come from the cache; a listed file may have been deleted
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


def deploy_two_versions(base: Path, cache: Path) -> Path:
    """Publish the working tree as ``dev`` and as ``0.1`` (+ ``latest``) into a scratch git
    repository with scripts/release.py, and export its gh-pages branch. Returns the folder
    holding the exported branch (what GitHub Pages would serve)."""
    repo = base / "checkout"
    copy_working_tree(repo)

    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout

    git("init", "-q", "-b", "main")
    git("config", "user.email", "release-test@example.invalid")
    git("config", "user.name", "release test")
    git("add", ".")
    git("commit", "-q", "-m", "scratch")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_REPORT_")}
    for version in ("dev", "0.1"):
        out = subprocess.run(
            [sys.executable, "scripts/release.py", version, "--profile", "smoke",
             "--device", "cpu", "--cache-dir", str(cache)],
            cwd=repo, env=env, capture_output=True, text=True, timeout=900,
        )
        assert out.returncode == 0, f"release {version} failed:\n{out.stderr[-5000:]}"
    served = base / "gh-pages"
    served.mkdir()
    with tarfile.open(fileobj=BytesIO(git("archive", "gh-pages"))) as tar:
        tar.extractall(served, filter="tar")  # keeps mike's "latest" symlink
    return served


@pytest.fixture(scope="module")
def versioned_url(browser, tmp_path_factory, smoke_cache):
    served = deploy_two_versions(tmp_path_factory.mktemp("versions"), smoke_cache)
    yield from serve(served)


def _chapter() -> str:
    chapters = [url for _title, url in nav_chapters() if url]
    assert chapters, "mkdocs.yml's nav lists no chapter"
    return chapters[0]


def test_version_selector_lists_both_and_switching_keeps_the_page(page, versioned_url):
    chapter = _chapter()
    page.goto(f"{versioned_url}0.1/{chapter}", wait_until="load")
    selector = page.locator(".md-header__topic .md-version")
    selector.wait_for(timeout=20_000)
    current = page.locator(".md-version__current").inner_text()
    assert current.startswith("0.1"), current
    titles = [t.strip() for t in page.locator(".md-version__link").all_inner_texts()]
    assert any(t.startswith("0.1") for t in titles), titles
    assert any(t.startswith("dev") for t in titles), titles

    selector.hover()
    page.locator(".md-version__link", has_text="dev").click()
    page.wait_for_url(f"{versioned_url}dev/{chapter}", timeout=20_000)
    assert page.locator(".md-version__current").inner_text().startswith("dev")
    # And back, via the alias's target.
    page.locator(".md-header__topic .md-version").hover()
    page.locator(".md-version__link", has_text="0.1").click()
    page.wait_for_url(f"{versioned_url}0.1/{chapter}", timeout=20_000)

    assert not page.log.console_errors and not page.log.page_errors, page.log
    assert not page.log.off_host and not page.log.failed, page.log

    # The root redirects to the default version ("latest", an alias of 0.1).
    page.goto(versioned_url, wait_until="load")
    page.wait_for_url(f"{versioned_url}latest/", timeout=20_000)
    page.locator(".md-version__current").wait_for(timeout=20_000)
    assert page.locator(".md-version__current").inner_text().startswith("0.1")
    assert not page.log.console_errors and not page.log.page_errors, page.log
