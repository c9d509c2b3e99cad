"""The MkDocs plugin on a small site of its own, and the real report in the smoke profile."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
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


def _build(site: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(site), "NO_MKDOCS_2_WARNING": "1"}
    for var in ("GENAI_REPORT_PROFILE", "GENAI_REPORT_DEVICE", "GENAI_REPORT_CACHE_DIR"):
        full_env.pop(var, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", *extra], cwd=site,
        capture_output=True, text=True, env=full_env, timeout=300,
    )


def test_small_site_places_figures_metrics_citations_and_maths(small_site):
    out = _build(small_site)
    assert out.returncode == 0, out.stderr
    html = (small_site / "site" / "index.html").read_text()
    assert '<img src="figures/good/good.svg" alt="a test image"' in html
    assert (small_site / "site" / "figures" / "good" / "good.svg").is_file()
    assert (small_site / "site" / "figures" / "good" / "record.json").is_file()
    assert ">42.1</span>" in html and ">3</span>" in html
    assert "(param, smoke" in html
    assert "Knuth, 1984" in html
    assert html.count("<math") >= 2  # the page's maths and the caption's
    assert "smoke profile · cpu" in html
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
    figs = small_site / "sitepkg" / "nodes" / "figs.py"
    figs.write_text(figs.read_text() + "\n# edited\n")
    out = _build(small_site, env={"SITE_FAIL": "1"})
    assert out.returncode != 0
    assert "1 node(s) failed" in out.stderr and "--- good ---" in out.stderr
    assert "good exploded on purpose" in out.stderr
    assert cached.read_bytes() == before


def test_serve_shows_a_placeholder_instead_of_dying(small_site):
    assert _build(small_site).returncode == 0
    figs = small_site / "sitepkg" / "nodes" / "figs.py"
    figs.write_text(figs.read_text() + "\n# edited\n")
    script = textwrap.dedent("""
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
        cfg = load_config("mkdocs.yml", strict=False)
        cfg.plugins.on_startup(command="serve", dirty=False)
        cfg = cfg.plugins.on_config(cfg)
        build(cfg, serve_url="http://127.0.0.1:8000/")
    """)
    env = {**os.environ, "PYTHONPATH": str(small_site), "SITE_FAIL": "1",
           "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([sys.executable, "-c", script], cwd=small_site, capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    html = (small_site / "site" / "index.html").read_text()
    assert "Figure &#x27;good&#x27; failed to build" in html or "Figure 'good' failed" in html
    assert "good exploded on purpose" in html
    assert "Showing its previous output." in html and "figures/good/good.svg" in html


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


def test_committed_quick_outputs_are_fresh():
    """A fresh clone must build without training: figures/quick matches the code."""
    from genai_report.pipeline import Pipeline, load_registry

    pipeline = Pipeline(load_registry(), cache_dir=ROOT / "figures", root=ROOT)
    stale = [f"{s.node.name} ({s.reason})" for s in pipeline.status("quick") if not s.fresh]
    assert not stale, ("committed quick-profile outputs are stale; run `genai-report figures "
                       f"--profile quick` and commit figures/quick: {stale}")
