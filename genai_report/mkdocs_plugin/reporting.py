"""What the plugin tells the author: the build's error summary, messages and notes."""

from __future__ import annotations

import html
import logging
import re
from collections import Counter

from genai_report.mkdocs_plugin.markup import MarkupError

#: Shown like MkDocs' own lines but outside its strict-mode warning count: what ``mkdocs
#: serve`` reports (so ``strict: true`` never stops a preview) and claims a ``smoke`` build
#: could not verify.
soft_log = logging.getLogger("genai_report.mkdocs_plugin")


def code_error_banner(error: str) -> str:
    """The note every page shows while serving code that does not import."""
    return (
        '<div class="admonition failure genai-figure-error"><p class="admonition-title">'
        "The figure code failed to import; this page shows the last good build</p>"
        f"<pre>{html.escape(error)}</pre></div>\n\n"
    )


def first_body_line(source: str, markdown: str) -> int:
    """Source line of the first line of ``markdown``, the page ``source`` without its front
    matter: MkDocs strips it (and the blank lines after it) before plugins see a page."""
    if markdown and source.endswith(markdown):
        return source[: len(source) - len(markdown)].count("\n") + 1
    return 1


_FIXES = {
    "reference": ("unresolved reference(s)",
                  "Fix the name (see `genai-report list` for nodes, the node's record.json "
                  "for metrics, the .bib files for citations)."),
    "claim": ("false claim(s)",
              "Correct the sentence to say what the records show; if the effect needs "
              "scale, restrict its check with `| profiles=full`."),
    "markup": ("malformed form(s)",
               "Write one of the valid forms, or put the text in inline code to show it "
               "literally."),
}


def summary(errors: list[MarkupError]) -> str:
    """One message listing every problem of the build, grouped by kind, with the fixes."""
    counts = Counter(e.kind for e in errors)
    head = ", ".join(f"{counts[k]} {label}" for k, (label, _) in _FIXES.items() if counts[k])
    listing = "\n".join(f"  {e}" for e in errors)
    fixes = "\n".join(fix for k, (_, fix) in _FIXES.items() if counts[k])
    return f"{head}:\n{listing}\n{fixes}"


def lock_message(message: str) -> str:
    """The pipeline's lock message, with the fix MkDocs users have: the plugin option."""
    message = re.sub(r";?\s*pass --lock-timeout[^.]*\.", ".", message)
    return (f"{message} To wait for it automatically, set `lock_timeout: SECONDS` under "
            "`- genai-report:` in the `plugins` of mkdocs.yml.")
