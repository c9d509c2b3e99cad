"""The MkDocs plugin on a small site of its own, and the real report in the smoke profile."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NODES = '''
from dataclasses import dataclass

from genai_report.pipeline import figure


@dataclass(frozen=True)
class P:
    n: int = 3


@figure("good", params={"smoke": P(), "quick": P(), "full": P()}, outputs=("good.svg",),
        alt="a test image", title="A test figure with $x^2$.")
def good(ctx, p):
    import os
    if os.environ.get("SITE_FAIL"):
        raise RuntimeError("good exploded on purpose")
    ctx.output("good.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
    return {"answer": 42.123, "rows": [{"k": p.n}]}
'''

CONFIG = """
site_name: plugin test
plugins:
  - genai-report:
      profile: smoke
      device: cpu
      cache_dir: cache
      bibliography: refs.bib
      node_packages: [sitepkg.nodes]
markdown_extensions:
  - pymdownx.arithmatex:
      generic: true
"""

INDEX = """# Test

The answer is [[metric:good.answer:.1f]] and k is [[metric:good.rows.0.k]] [@knuth1984].
It ran with n = [[param:good.n]].
Inline maths $a^2 + b^2$.

[[figure:good]]

As [[ref:good]] shows.
"""


@pytest.fixture
def small_site(tmp_path):
    (tmp_path / "sitepkg" / "nodes").mkdir(parents=True)
    (tmp_path / "sitepkg" / "__init__.py").write_text("")
    (tmp_path / "sitepkg" / "nodes" / "__init__.py").write_text("")
    (tmp_path / "sitepkg" / "nodes" / "figs.py").write_text(NODES)
    (tmp_path / "mkdocs.yml").write_text(CONFIG)
    (tmp_path / "refs.bib").write_text(
        "@article{knuth1984, author={Knuth, Donald E.}, title={Literate Programming}, "
        "journal={The Computer Journal}, year={1984}}\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(INDEX)
    return tmp_path


def _env(site: Path, env: dict | None = None) -> dict:
    full_env = {**os.environ, "PYTHONPATH": str(site), "NO_MKDOCS_2_WARNING": "1"}
    for var in ("GENAI_REPORT_PROFILE", "GENAI_REPORT_DEVICE", "GENAI_REPORT_CACHE_DIR"):
        full_env.pop(var, None)
    full_env.update(env or {})
    return full_env


def _build(site: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", *extra], cwd=site,
        capture_output=True, text=True, env=_env(site, env), timeout=300,
    )


def _make_stale(site: Path) -> None:
    """Change code the node runs (a comment would not do: keys ignore comments)."""
    figs = site / "sitepkg" / "nodes" / "figs.py"
    figs.write_text(figs.read_text().replace("on purpose", "on purpose!", 1))


def test_small_site_places_figures_metrics_citations_and_maths(small_site):
    out = _build(small_site)
    assert out.returncode == 0, out.stderr
    html = (small_site / "site" / "index.html").read_text()
    assert '<img class="genai-light" src="figures/good/good.svg" alt="a test image"' in html
    assert (small_site / "site" / "figures" / "good" / "good.svg").is_file()
    # Its dark variant: derived at build time, served beside it, swapped in by the scheme.
    assert 'class="genai-figure genai-figure--dark"' in html
    assert '<img class="genai-dark" src="figures/good/good.dark.svg" alt="a test image"' in html
    dark = (small_site / "site" / "figures" / "good" / "good.dark.svg").read_text()
    assert dark.startswith('<svg fill="#bfc0c6"') and "good.dark.svg" not in os.listdir(
        small_site / "cache" / "smoke" / "good")  # nothing written into the cache
    assert (small_site / "site" / "figures" / "good" / "record.json").is_file()
    assert ">42.1</span>" in html and ">3</span>" in html
    assert "(param, smoke" in html
    assert "Knuth, 1984" in html
    assert html.count("<math") >= 2  # the page's maths and the caption's
    assert (small_site / "site" / "assets" / "fonts" / "math.woff").is_file()
    assert "smoke profile · cpu" in html
    assert '<strong>Figure 1.1.</strong>' in html and 'id="figure-good"' in html
    assert "Built from commit" not in html  # not a git checkout: no commit to name
    assert '<a class="genai-ref" href="#figure-good">Figure 1.1</a> shows' in html
    assert "genai-report figures --profile smoke --only good --force" in html
    # Nothing was written into docs/ (mkdocs serve would loop).
    assert sorted(p.name for p in (small_site / "docs").iterdir()) == ["index.md"]
    # A second build re-runs nothing.
    again = _build(small_site)
    assert again.returncode == 0 and "Running good" not in again.stderr


def test_unknown_figure_or_metric_fails_with_page_and_line(small_site):
    (small_site / "docs" / "bad.md").write_text(
        "# Bad\n\n[[figure:godo]]\n\nLoss: [[metric:good.nope]] and [@nobody2020].\n")
    out = _build(small_site)
    assert out.returncode != 0
    assert "docs/bad.md:3: Unknown figure 'godo'. Did you mean 'good'?" in out.stderr
    assert "docs/bad.md:5: Metric 'good.nope' not found" in out.stderr
    assert "docs/bad.md:5: Unknown citation key 'nobody2020'" in out.stderr


def test_failing_figure_fails_build_and_keeps_previous_output(small_site):
    assert _build(small_site).returncode == 0
    cached = small_site / "cache" / "smoke" / "good" / "good.svg"
    before = cached.read_bytes()
    _make_stale(small_site)
    out = _build(small_site, env={"SITE_FAIL": "1"})
    assert out.returncode != 0
    assert "1 node(s) failed" in out.stderr and "--- good ---" in out.stderr
    assert "good exploded on purpose" in out.stderr
    assert cached.read_bytes() == before


def test_malformed_forms_fail_with_page_line_and_the_valid_forms(small_site):
    (small_site / "docs" / "bad.md").write_text(
        "---\ntitle: Bad\n---\n\n# Bad\n\nSee [[figure:good]] here.\n"
        "Loss [[metrc:good.answer]] and [[figures:good]].\n\n"
        "`[[metrc:fine]]` in code is fine.\n\n```\n[[figures:also-fine]]\n```\n"
        "[[metric:good.nope]]\n")
    out = _build(small_site)
    assert out.returncode != 0
    err = out.stderr
    assert ("docs/bad.md:7: A figure goes on a line of its own: move `[[figure:good]]` to "
            "its own line") in err
    assert "docs/bad.md:8: Unknown form `[[metrc:good.answer]]`. Did you mean 'metric'?" in err
    assert "docs/bad.md:8: Unknown form `[[figures:good]]`. Did you mean 'figure'?" in err
    assert "Valid forms: [[figure:NAME]] (on a line of its own), [[metric:NODE.KEY]]" in err
    assert "docs/bad.md:15: Metric 'good.nope' not found" in err  # front matter counted
    assert "fine" not in err
    assert "3 malformed form(s)" in err and "1 unresolved reference(s)" in err


def test_a_held_lock_names_the_plugin_option(small_site):
    from genai_report.pipeline import CacheStore

    with CacheStore(small_site / "cache").lock():
        out = _build(small_site)
    assert out.returncode != 0
    assert "Another genai-report build is running on this checkout" in out.stderr
    assert "set `lock_timeout: SECONDS` under `- genai-report:`" in out.stderr
    assert "--lock-timeout" not in out.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except (urllib.error.URLError, OSError):
        return None


def _wait_for(url: str, predicate, deadline: float) -> str | None:
    """The page at ``url`` once ``predicate(html)`` holds, or None at the deadline."""
    while time.monotonic() < deadline:
        html = _get(url, timeout=min(20, max(1, deadline - time.monotonic())))
        if html is not None and predicate(html):
            return html
        time.sleep(0.5)
    return None


def test_serve_under_strict_shows_placeholders_instead_of_hanging(small_site):
    """The real `mkdocs serve`, with `strict: true` as in the project's mkdocs.yml."""
    config = small_site / "mkdocs.yml"
    config.write_text("strict: true\n" + config.read_text())
    quick = {"GENAI_REPORT_PROFILE": "quick"}  # where a false claim is an error
    assert _build(small_site, env=quick).returncode == 0  # cache the good output
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{port}"], cwd=small_site,
        env=_env(small_site, {"SITE_FAIL": "1", **quick}), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        first = _wait_for(url, lambda html: "genai-figure" in html, time.monotonic() + 120)
        assert first is not None, "the server did not come up"
        # Break the figure's code and the page; the watcher rebuilds.
        _make_stale(small_site)
        page = small_site / "docs" / "index.md"
        page.write_text(page.read_text() + "\nBroken: [[metric:good.nope]], [[metrc:x]].\n"
                        "Wrong: [[check: good.answer > 100]]\n")
        html = _wait_for(url, lambda html: "failed to build" in html, time.monotonic() + 150)
        assert html is not None, "the rebuild never served the placeholder (stuck?)"
        assert "good exploded on purpose" in html
        assert "Showing its previous output." in html and "figures/good/good.svg" in html
        assert "Metric &#x27;good.nope&#x27; not found" in html or "Metric 'good.nope'" in html
        assert "Unknown form <code>[[metrc:x]]</code>" in html and "claim-failed" in html
        assert "42.12 &gt; 100 (false)" in html
        # An edit that breaks the figure code keeps the last good build, with a note.
        figs = small_site / "sitepkg" / "nodes" / "figs.py"
        figs.write_text(figs.read_text() + "\ndef broken(:\n")
        page.write_text(page.read_text() + "\nEdited again.\n")
        html = _wait_for(url, lambda html: "failed to import" in html, time.monotonic() + 150)
        assert html is not None, "the rebuild with broken code never served a page"
        assert "SyntaxError" in html and "genai-figure" in html
        assert server.poll() is None
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            log, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            log, _ = server.communicate()
    assert "Aborted" not in log and "will appear stuck" not in log, log[-3000:]
    assert "1 node(s) failed" in log


def test_every_node_of_the_report_runs_in_the_smoke_profile(smoke_cache):
    from genai_report.pipeline import CacheStore, load_registry

    store = CacheStore(smoke_cache)
    registry = load_registry()
    missing = [n.name for n in registry if store.read_record("smoke", n.name) is None]
    assert not missing
    for node in registry.figures():
        rec = store.read_record("smoke", node.name)
        assert set(rec.outputs) == set(node.outputs)
        assert store.verify_outputs("smoke", rec) is None


@pytest.mark.slow
def test_real_site_builds_strictly_in_the_smoke_profile(smoke_cache, tmp_path):
    env = {**os.environ, "GENAI_REPORT_PROFILE": "smoke", "GENAI_REPORT_CACHE_DIR": str(smoke_cache),
           "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=900,
    )
    assert out.returncode == 0, out.stderr[-5000:]
    assert "Running " not in out.stderr  # the smoke fixture already built every node
    pages = list((tmp_path / "site").rglob("*.html"))
    assert len(pages) > 10
    external = re.compile(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="(?:https?:)?//', re.I)
    offenders = [str(p.relative_to(tmp_path)) for p in pages if external.search(p.read_text())]
    assert not offenders, f"pages load assets from off the host: {offenders}"
    home = (tmp_path / "site" / "index.html").read_text()
    # Named once, in the footer (linked to the repository where the build knows it).
    assert re.search(r"Built from commit (?:<a [^>]+><code>)?[0-9a-f]{12}", home)


def test_committed_quick_outputs_are_fresh():
    """A fresh clone must build without training: figures/quick matches the code."""
    from genai_report.pipeline import Pipeline, load_registry

    pipeline = Pipeline(load_registry(), cache_dir=ROOT / "figures", root=ROOT)
    stale = [f"{s.node.name} ({s.reason})" for s in pipeline.status("quick") if not s.fresh]
    assert not stale, ("committed quick-profile outputs are stale; run `genai-report figures "
                       f"--profile quick` and commit figures/quick: {stale}")


def test_a_custom_corpus_builds_into_its_own_cache_never_the_committed_one(tmp_path, monkeypatch):
    from mkdocs.exceptions import PluginError

    from genai_report.data.corpora import corpus_cache_dir
    from genai_report.mkdocs_plugin.plugin import GenAIReportPlugin

    corpus = tmp_path / "mine.txt"
    corpus.write_text("a corpus of words, " * 100)
    monkeypatch.setenv("GENAI_REPORT_TEXT_CORPUS", str(corpus))
    monkeypatch.delenv("GENAI_REPORT_CACHE_DIR", raising=False)
    plugin = GenAIReportPlugin()
    plugin.load_config({})
    plugin.root = tmp_path
    plugin.cache_dir = (tmp_path / "figures").resolve()
    plugin._use_corpus_cache(explicit=False)
    assert plugin.cache_dir == corpus_cache_dir(tmp_path, corpus).resolve()
    plugin.cache_dir = (tmp_path / "figures").resolve()
    with pytest.raises(PluginError, match="never writes into the committed outputs"):
        plugin._use_corpus_cache(explicit=True)


def test_pages_show_the_date_git_last_changed_them(tmp_path):
    from genai_report.mkdocs_plugin.plugin import _last_updated

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={**os.environ, "GIT_COMMITTER_DATE": "2024-05-06T12:00:00",
                            "GIT_AUTHOR_DATE": "2024-05-06T12:00:00"})

    (tmp_path / "page.md").write_text("# A page\n")
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "page.md")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "x")
    (tmp_path / "new.md").write_text("# Not committed\n")
    assert _last_updated(str(tmp_path / "page.md")) == "2024-05-06"
    assert _last_updated(str(tmp_path / "new.md")) is None
    assert _last_updated(None) is None


def test_repository_links_only_where_the_build_knows_the_repository(small_site):
    """No repository: no edit/view links (and no strict-mode warning about a relative
    edit_uri). With one: edit and view links per page, and the footer's commit links to it."""
    base = CONFIG + f"""theme:
  name: material
  custom_dir: {ROOT / "overrides"}
  features: [content.action.edit, content.action.view]
edit_uri: edit/main/docs/
"""
    (small_site / "mkdocs.yml").write_text(base)
    out = _build(small_site)
    assert out.returncode == 0, out.stderr
    html = (small_site / "site" / "index.html").read_text()
    assert 'rel="edit"' not in html and "/raw/main/docs/" not in html

    for cmd in (["init", "-q"], ["add", "-A"],
                ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=small_site, check=True, capture_output=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=small_site, check=True,
                         capture_output=True, text=True).stdout.strip()
    (small_site / "mkdocs.yml").write_text(base + "repo_url: https://github.com/acme/report\n")
    out = _build(small_site)
    assert out.returncode == 0, out.stderr
    html = (small_site / "site" / "index.html").read_text()
    assert 'href="https://github.com/acme/report/edit/main/docs/index.md"' in html
    assert 'href="https://github.com/acme/report/raw/main/docs/index.md"' in html
    assert f'href="https://github.com/acme/report/commit/{sha[:12]}"' in html
    # The header links to the repository without asking its API for stars and forks.
    assert 'class="md-source"' in html and 'data-md-component="source"' not in html


def test_the_reports_repository_comes_from_the_environment(monkeypatch):
    """mkdocs.yml takes the repository from $GENAI_REPORT_REPO_URL (CI sets it)."""
    from mkdocs.config import load_config

    monkeypatch.delenv("GENAI_REPORT_REPO_URL", raising=False)
    monkeypatch.delenv("GENAI_REPORT_EDIT_URI", raising=False)
    assert load_config(str(ROOT / "mkdocs.yml")).repo_url is None
    monkeypatch.setenv("GENAI_REPORT_REPO_URL", "https://github.com/acme/genai-report")
    config = load_config(str(ROOT / "mkdocs.yml"))
    assert config.repo_url == "https://github.com/acme/genai-report"
    assert config.edit_uri == "edit/main/docs/"


VIEW_NODES = '''
import os
from dataclasses import dataclass

from genai_report.pipeline import figure


@dataclass(frozen=True)
class P:
    n: int = 3


@figure("explore", params={"smoke": P(), "quick": P(), "full": P()},
        outputs=("explore.svg", "interactive.json"), alt="a static plot", title="Explore.")
def explore(ctx, p):
    from genai_report.plotting import interactive as iv
    ctx.output("explore.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
    if os.environ.get("SITE_BAD_VIEW"):
        ctx.output("interactive.json").write_text('{"kind": "pie"}')
        return {}
    iv.write_view(ctx.output("interactive.json"), iv.lines_view([iv.panel(
        [iv.series("run", [1, 2], [3.0, 2.0], color="#000000")], x_label="x", y_label="y")]))
    return {}
'''


def test_an_interactive_view_is_placed_with_its_static_image_and_checked(small_site):
    (small_site / "sitepkg" / "nodes" / "views.py").write_text(VIEW_NODES)
    (small_site / "docs" / "index.md").write_text(INDEX + "\n[[figure:explore]]\n")
    out = _build(small_site)
    assert out.returncode == 0, out.stderr
    html = (small_site / "site" / "index.html").read_text()
    holder = re.search(r'<div class="genai-interactive"[^>]*>', html).group(0)
    assert 'data-kind="lines"' in holder and 'data-replaces="true"' in holder
    assert 'data-view="figures/explore/interactive.json"' in holder
    assert 'data-lib="assets/vendor/uplot/uPlot.iife.min.js"' in holder
    assert '<img class="genai-light" src="figures/explore/explore.svg" alt="a static plot"' \
        in html  # the fallback
    assert 'data-dark="{&quot;#000000&quot;:&quot;#bfc0c6&quot;}"' in holder  # its dark twins
    assert '<a href="figures/explore/explore.svg">static image</a>' in html
    site = small_site / "site"
    for served in ("figures/explore/interactive.json", "assets/genai-interactive.js",
                   "assets/vendor/uplot/uPlot.iife.min.js", "assets/vendor/uplot/LICENSE"):
        assert (site / served).is_file(), served

    # A malformed view fails the build, naming the figure and the fix.
    bad = _build(small_site, env={"SITE_BAD_VIEW": "1", "GENAI_REPORT_CACHE_DIR": str(
        small_site / "cache-bad")})
    assert bad.returncode != 0
    assert "Figure 'explore' has an unusable interactive view" in bad.stderr
    assert "--only explore --force" in bad.stderr


def test_display_equations_are_numbered_and_referred_to(small_site):
    (small_site / "docs" / "index.md").write_text(
        INDEX + "\n$$a^2 + b^2 = c^2 \\label{eq:pythagoras}$$\n\n$$e = m c^2$$\n\n"
        "By [[ref:eq:pythagoras]], the square sums.\n")
    out = _build(small_site)
    assert out.returncode == 0, out.stderr
    html = (small_site / "site" / "index.html").read_text()
    assert '<div class="genai-equation" id="eq-pythagoras">' in html and ">(1.1)</a>" in html
    assert '<div class="genai-equation" id="eq-1-2">' in html and ">(1.2)</a>" in html
    assert '<a class="genai-ref" href="#eq-pythagoras">Eq. 1.1</a>, the square' in html
    assert "\\label" not in html

    (small_site / "docs" / "index.md").write_text(INDEX + "\nSee [[ref:eq:pythagoras]].\n")
    bad = _build(small_site)
    assert bad.returncode != 0
    assert "No display equation is labelled 'eq:pythagoras'" in bad.stderr
    assert "\\label{eq:pythagoras}" in bad.stderr
