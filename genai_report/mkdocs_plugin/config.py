"""The plugin's settings in ``mkdocs.yml``::

    plugins:
      - genai-report:
          profile: quick          # overridden by $GENAI_REPORT_PROFILE
          device: auto            # overridden by $GENAI_REPORT_DEVICE
          cache_dir: figures      # relative to mkdocs.yml
          bibliography: docs/references.bib.d
"""

from __future__ import annotations

from mkdocs.config import config_options as c
from mkdocs.config.base import Config


class PluginConfig(Config):
    """Typed schema of the plugin's options."""

    enabled = c.Type(bool, default=True)
    """Turn the plugin off (the Markdown forms are then left as they are)."""
    run_pipeline = c.Type(bool, default=True)
    """Run stale nodes before the build; off: only render what the cache holds."""
    profile = c.Optional(c.Choice(("smoke", "quick", "full")))
    """Profile (default quick); ``$GENAI_REPORT_PROFILE`` wins."""
    device = c.Optional(c.Choice(("auto", "cpu", "cuda", "mps")))
    """Device (default auto); ``$GENAI_REPORT_DEVICE`` wins."""
    cache_dir = c.Type(str, default="figures")
    """Cache folder, relative to mkdocs.yml; ``$GENAI_REPORT_CACHE_DIR`` wins."""
    jobs = c.Type(int, default=1)
    """Nodes run in parallel."""
    lock_timeout = c.Type(float, default=0.0)
    """Seconds to wait for another build's lock."""
    estimate = c.Type(str, default="benchmarks/results/dry-run-full.json")
    """The committed dry run of the ``full`` profile (``genai-report figures --profile full
    --dry-run --estimate-out FILE``) that ``[[estimate-table]]`` shows; relative to
    mkdocs.yml."""
    bibliography = c.Type(str, default="docs/references.bib.d")
    """A .bib file, or a folder whose .bib files are all read; relative to mkdocs.yml."""
    node_packages = c.ListOfItems(c.Type(str), default=["genai_report.artifacts", "genai_report.figures"])
    """Packages whose modules register the pipeline's nodes."""
    glossary = c.Type(str, default="glossary.md")
    """The glossary page (a definition list), relative to ``docs_dir``: the first mention of
    each of its terms on every other page links to its entry. Empty: no links."""
    require_all_figures_placed = c.Type(bool, default=True)
    """Warn (an error under --strict) when a registered figure is placed on no page."""
