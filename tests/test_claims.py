"""The report's claims, checked by building the quick site strictly from the committed records.

Every qualitative sentence about our own results carries a ``[[check: ...]]`` right after it
(see ``docs/how-it-is-built.md``). A strict build of the ``quick`` profile evaluates them all
against ``figures/quick/*/record.json`` and fails, naming page, line, expression and values,
when a retrained model makes one false. The build reads the committed outputs and trains
nothing (``run_pipeline`` is off here; ``test_committed_quick_outputs_are_fresh`` checks that
they match the code), and it writes its site into a temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genai_report.mkdocs_plugin.checks import parse_check
from genai_report.mkdocs_plugin.markup import scan

ROOT = Path(__file__).resolve().parents[1]

BUILD = textwrap.dedent("""
    import logging
    import sys
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    logging.basicConfig(level=logging.WARNING, format="%(levelname)-7s - %(message)s")
    cfg = load_config(sys.argv[1], site_dir=sys.argv[2])
    assert cfg.strict, "mkdocs.yml must set strict: true"
    cfg.plugins["genai-report"].config["run_pipeline"] = False  # read figures/quick only
    cfg.plugins.on_startup(command="build", dirty=False)
    try:
        build(cfg)
    except Abort as exc:
        sys.exit(f"mkdocs: {exc}")
    finally:
        cfg.plugins.on_shutdown()
""")


def _checks_in_docs() -> list[tuple[str, int, str]]:
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for form in scan(page.read_text(encoding="utf-8")):
            if form.kind == "check":
                found.append((str(page.relative_to(ROOT)), form.line, form.target))
    return found


@pytest.mark.slow
def test_the_quick_site_builds_strictly_with_every_claim_true(tmp_path):
    env = {**os.environ, "GENAI_REPORT_PROFILE": "quick", "NO_MKDOCS_2_WARNING": "1"}
    env.pop("GENAI_REPORT_CACHE_DIR", None)
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(ROOT / "mkdocs.yml"), str(site)], cwd=ROOT,
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-8000:]
    html = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    marks = re.findall(r'class="claim-check (claim-[a-z]+)"', html)
    checks = _checks_in_docs()
    in_quick = sum(parse_check(body).applies_to("quick") for _, _, body in checks)
    assert "claim-failed" not in marks and "claim-unverified" not in marks
    assert marks.count("claim-verified") == in_quick
    assert marks.count("claim-elsewhere") == len(checks) - in_quick


def test_the_report_checks_its_claims():
    """Claims live next to their sentences now; there are many of them."""
    assert len(_checks_in_docs()) >= 60
