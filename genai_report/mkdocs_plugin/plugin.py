"""``genai-report`` MkDocs plugin: a thin adapter over :mod:`genai_report.pipeline`.

* ``on_pre_build`` runs the stale nodes (profile and device from ``mkdocs.yml`` or the
  environment). ``mkdocs build`` fails once, naming every failed figure; ``mkdocs serve``
  keeps serving and shows each failed figure as a visible placeholder.
* ``on_files`` serves figure outputs straight from the cache (``File.generated``), so
  nothing is written into ``docs/`` and ``mkdocs serve`` does not rebuild in a loop; beside
  each SVG figure it serves a dark variant derived from it (:mod:`genai_report.plotting.dark`)
  that the site shows under the dark scheme.
* ``on_page_markdown`` renders ``[[figure:...]]``, ``[[audio:...]]`` (a figure's WAV outputs
  as audio players), ``[[metric:...]]``, ``[[param:...]]``,
  ``[[check:...]]``, ``[@key]`` and the ``[[bibliography]]`` / ``[[provenance-table]]``
  blocks. An unknown reference or a malformed form fails the build with its page and line
  (front matter counted); so does a false claim in the ``quick`` and ``full`` profiles
  (under ``smoke`` it is a warning and a "not verified" mark).
* ``on_page_content`` turns TeX into MathML (no maths library is loaded by the site);
  ``on_post_build`` writes the math font, cut down to the characters the formulas use
  (:mod:`~genai_report.mkdocs_plugin.mathfont`).
* ``on_serve`` watches the package's source, so editing a model re-runs its figures.

Under ``mkdocs serve`` every problem the plugin finds is shown on the page (a red
placeholder, an error mark, a note that the figure code does not import and the last good
build is shown) and logged on a logger outside MkDocs' strict-mode count, so
``strict: true`` in ``mkdocs.yml`` never stops the preview; ``mkdocs build`` fails instead.
A claim that is false in the ``smoke`` profile is logged the same way, so a strict smoke
build (the tests, CI) passes while showing the claims it could not verify.
"""

from __future__ import annotations

import html
import json
import logging
import os
import posixpath
import re
import sys
import traceback
from functools import partial
from pathlib import Path
from typing import Any

import markdown as md
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

import genai_report
from genai_report.mkdocs_plugin.checks import (
    CheckError,
    CheckReferenceError,
    CheckSyntaxError,
    parse_check,
    render_mark,
)
from genai_report.mkdocs_plugin.citations import Bibliography
from genai_report.mkdocs_plugin.config import PluginConfig
from genai_report.mkdocs_plugin.glossary import Term, add_term_ids, link_terms, parse_glossary
from genai_report.mkdocs_plugin.markup import (
    FormError,
    FormWarning,
    MarkupError,
    Resolvers,
    attr_escape,
    audio_table,
    format_value,
    lookup_path,
    number_report,
    transform,
)
from genai_report.mkdocs_plugin.math import equation_id, render_math, render_notebook_math
from genai_report.mkdocs_plugin.mathfont import MathFontError, math_characters, write_math_font
from genai_report.mkdocs_plugin.reporting import (
    code_error_banner,
    first_body_line,
    lock_message,
    soft_log,
    summary,
)
from genai_report.pipeline import (
    ConfigError,
    LockBusyError,
    Pipeline,
    PipelineFailedError,
    Record,
    RunOptions,
    keys,
    resolve_settings,
)
from genai_report.pipeline.registry import REGISTRY, Node, load_registry
from genai_report.pipeline.runner import git_commit
from genai_report.plotting.dark import dark_colour, dark_name, dark_svg
from genai_report.plotting.interactive import validate_view
from genai_report.utils import did_you_mean

log = get_plugin_logger(__name__)

ASSETS = Path(__file__).parent / "assets"
CSS = "assets/genai-report.css"
JS = "assets/genai-report.js"
"""Click-to-zoom for figures (a small lightbox of our own: no script from off the host)."""
INTERACTIVE_JS = "assets/genai-interactive.js"
"""Draws the figures' interactive views (:mod:`genai_report.plotting.interactive`)."""
UPLOT = ("assets/vendor/uplot/uPlot.iife.min.js", "assets/vendor/uplot/uPlot.min.css",
         "assets/vendor/uplot/LICENSE")
"""uPlot, served by the site; ``genai-interactive.js`` loads it on pages that need it."""
TUTORIALS = "tutorials"
PACKAGE_DIR = Path(genai_report.__file__).parent


class GenAIReportPlugin(BasePlugin[PluginConfig]):
    """Runs the figure pipeline before each build and renders the report's Markdown forms."""

    supports_multiple_instances = False

    def __init__(self) -> None:
        self.is_serve = False
        self.pipeline: Pipeline | None = None
        self.profile = "quick"
        self.device = "auto"
        self.records: dict[str, Record] = {}
        self.failures: dict[str, str] = {}
        self.errors: list[MarkupError] = []
        self.code_error: str | None = None
        self.unverified: list[MarkupError] = []
        self.placed: dict[str, list[str]] = {}
        self.figure_labels: dict[str, tuple[str, str]] = {}
        self.equation_numbers: dict[str, list[str]] = {}  # page path -> its equations' numbers
        self.equation_labels: dict[str, tuple[str, str]] = {}  # eq:NAME -> (number, page path)
        self.build_commit: str | None = None
        self.glossary_terms: list[Term] = []
        self.glossary_url: str | None = None
        self.repo_url: str | None = None
        self.page_urls: dict[str, str] = {}
        self.bibliography: Bibliography | None = None
        self.math_chars: set[str] = set()
        self.dark_images: set[tuple[str, str]] = set()  # (figure, image) with a dark variant

    # -- configuration -------------------------------------------------------------------
    def on_startup(self, *, command: str, dirty: bool) -> None:
        self.is_serve = command == "serve"

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        _route_library_logs()
        self.root = Path(config.config_file_path or ".").resolve().parent
        try:
            self.profile, self.device = resolve_settings(self.config.profile, self.config.device)
        except ConfigError as exc:
            raise PluginError(f"genai-report: {exc}") from None
        cache = os.environ.get("GENAI_REPORT_CACHE_DIR") or self.config.cache_dir
        self.cache_dir = (self.root / cache).resolve()
        self._use_corpus_cache(explicit="GENAI_REPORT_CACHE_DIR" in os.environ)
        self.bibliography = self._load_bibliography()
        if CSS not in config.extra_css:
            config.extra_css.append(CSS)
        # The build names its commit once, in the footer; a figure names its own only where
        # it was made at another one.
        self.repo_url = config.repo_url or None
        if self.repo_url is None:
            # No repository known (a local build): no "edit this page" / "view source"
            # links, whose edit_uri would otherwise be a relative, broken address.
            config.edit_uri = None
        commit = git_commit(self.root)
        self.build_commit = None if commit == "unknown" else commit  # outside git: unnamed
        built = f"Built from commit {self.build_commit}"
        if self.build_commit and self.repo_url:
            built = f"Built from commit {_commit_link(self.build_commit, self.repo_url)}"
        if self.build_commit and "Built from commit" not in (config.copyright or ""):
            config.copyright = " · ".join(x for x in (config.copyright, built) if x)
        for script in (JS, INTERACTIVE_JS):
            if script not in [str(x) for x in config.extra_javascript]:
                config.extra_javascript.append(script)
        log.info("Figures: profile '%s', device '%s', cache %s.", self.profile, self.device,
                 self.cache_dir)
        return config

    def _use_corpus_cache(self, *, explicit: bool) -> None:
        """A custom corpus ($GENAI_REPORT_TEXT_CORPUS) never writes into the committed
        outputs: its figures go to the corpus's own cache, as with ``genai-report``."""
        from genai_report.data.corpora import CorpusError, corpus_cache_dir, custom_corpus

        try:
            corpus = custom_corpus()
        except CorpusError as exc:
            raise PluginError(f"genai-report: {exc}") from None
        if corpus is None:
            return
        own = corpus_cache_dir(self.root, corpus)
        if explicit and self.cache_dir == (self.root / "figures").resolve():
            raise PluginError(
                f"genai-report: a custom corpus ({corpus}) never writes into the committed "
                f"outputs under {self.cache_dir}. Unset $GENAI_REPORT_CACHE_DIR to use the "
                f"corpus's own cache ({own}), or point it at another folder.")
        if explicit:
            log.info("Custom corpus %s: figures go to $GENAI_REPORT_CACHE_DIR (%s).", corpus,
                     self.cache_dir)
            return
        log.info("Custom corpus %s: its figures go to their own cache %s, never the committed "
                 "outputs; set $GENAI_REPORT_CACHE_DIR to choose another folder.", corpus, own)
        self.cache_dir = own.resolve()

    def _load_bibliography(self) -> Bibliography:
        path = self.root / self.config.bibliography
        if path.is_dir():
            files = sorted(path.glob("*.bib"))
        elif path.is_file():
            files = [path]
        else:
            files = []
            log.warning("Bibliography '%s' not found; citations will not resolve.", path)
        try:
            return Bibliography(files)
        except ValueError as exc:
            raise PluginError(f"genai-report: {exc}") from None

    # -- the pipeline --------------------------------------------------------------------
    def on_pre_build(self, *, config: MkDocsConfig) -> None:
        if not self.config.enabled:
            return
        self.errors, self.unverified, self.placed, self.failures = [], [], {}, {}
        self.code_error = None
        self.math_chars, self.dark_images = set(), set()
        previous = dict(REGISTRY.nodes)
        if self.is_serve:
            _forget_project_modules(self.config.node_packages)
            self.bibliography = self._load_bibliography()
        try:
            registry = load_registry(self.config.node_packages)
        except ConfigError as exc:
            raise PluginError(f"genai-report: {exc}") from None
        except Exception as exc:
            if not (self.is_serve and previous and self.pipeline is not None):
                raise
            # An edit broke the figure code: keep serving the last good build, and say so.
            REGISTRY.nodes.clear()
            REGISTRY.nodes.update(previous)
            self.code_error = "".join(traceback.format_exception_only(exc)).strip()
            soft_log.error("The figure code failed to import; serving the last good figures. "
                           "%s", self.code_error)
            registry = self.pipeline.registry
        else:
            self.pipeline = Pipeline(registry, cache_dir=self.cache_dir, root=self.root)
            if self.config.run_pipeline:
                self._run_pipeline()
        assert self.pipeline is not None
        self.records = {}
        for node in registry:
            rec = self.pipeline.store.read_record(self.profile, node.name)
            if rec is not None:
                self.records[node.name] = rec

    def _run_pipeline(self) -> None:
        """Run the stale nodes; a build fails on a failed node, a serve shows placeholders."""
        assert self.pipeline is not None
        options = RunOptions(
            profile=self.profile, device=self.device, jobs=self.config.jobs,
            lock_timeout=self.config.lock_timeout, show_progress=sys.stderr.isatty(),
        )
        try:
            report = self.pipeline.run(options, raise_on_failure=False)
        except LockBusyError as exc:
            if not self.is_serve:
                raise PluginError(f"genai-report: {lock_message(str(exc))}") from None
            soft_log.warning("%s\n(serving the cached figures meanwhile)", lock_message(str(exc)))
            return
        except ConfigError as exc:
            raise PluginError(f"genai-report: {exc}") from None
        self.failures = {**report.failed, **report.skipped}
        if self.failures:
            summary = str(PipelineFailedError(report.failed, report.skipped))
            if not self.is_serve:
                raise PluginError(f"genai-report: {summary}")
            soft_log.error("%s\n(serving placeholders for the failed figures)", summary)

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        if not self.config.enabled or self.pipeline is None:
            return files
        glossary = files.get_file_from_path(self.config.glossary) if self.config.glossary else None
        if glossary is not None:
            self.glossary_terms = parse_glossary(glossary.content_string)
            self.glossary_url = glossary.url
        files.append(File.generated(config, CSS, abs_src_path=str(ASSETS / "genai-report.css")))
        for asset in (JS, INTERACTIVE_JS, *UPLOT):
            files.append(File.generated(config, asset,
                                        abs_src_path=str(ASSETS / asset.removeprefix("assets/"))))
        for name in self.records:
            node = self.pipeline.registry.nodes.get(name)
            if node is None:
                continue
            entry = self.pipeline.store.entry_dir(self.profile, name)
            for out in node.outputs:
                if out.endswith(".ipynb") and (entry / out).is_file():
                    # Executed tutorial notebooks become pages (rendered by mkdocs-jupyter).
                    files.append(File.generated(config, f"{TUTORIALS}/{out}",
                                                abs_src_path=str(entry / out)))
            if node.kind != "figure":
                continue
            for out in (*node.images, *node.sounds, *filter(None, [node.interactive]),
                        "record.json"):
                if (entry / out).is_file():
                    files.append(File.generated(config, f"figures/{name}/{out}",
                                                abs_src_path=str(entry / out)))
            for out in node.images:
                if out.endswith(".svg") and (entry / out).is_file():
                    dark = self._dark_variant(config, name, entry / out)
                    if dark is not None:
                        files.append(dark)
        return files

    def _dark_variant(self, config: MkDocsConfig, name: str, path: Path) -> File | None:
        """``figures/NAME/STEM.dark.svg``: the figure's SVG in the dark palette, derived at
        build time (:mod:`genai_report.plotting.dark`), so nothing is committed twice.
        An unreadable SVG fails the build; under ``mkdocs serve`` the figure keeps its light
        drawing only (None), with a warning."""
        try:
            dark = dark_svg(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            message = (f"genai-report: figure '{name}' has an unreadable SVG {path} ({exc}). "
                       f"Re-run it: `genai-report figures --profile {self.profile} --only "
                       f"{name} --force`.")
            if self.is_serve:
                soft_log.warning("%s", message)
                return None
            raise PluginError(message) from None
        self.dark_images.add((name, path.name))
        return File.generated(config, f"figures/{name}/{dark_name(path.name)}", content=dark)

    def on_nav(self, nav, *, config: MkDocsConfig, files: Files):
        # mkdocs-jupyter wraps notebook files in a File subclass that loses the source path
        # of generated files; give our executed notebooks theirs back.
        for f in files:
            inner = getattr(f, "file", None)
            if isinstance(inner, File) and inner.generated_by and inner.abs_src_path:
                f.abs_src_path = inner.abs_src_path
        # Number the figures by chapter (top-level navigation entry) across the report.
        pages, self.page_urls = [], {}
        for chapter, item in enumerate(nav.items):
            for page in _nav_pages(item):
                path = page.file.abs_src_path
                if path and page.file.src_uri.endswith(".md"):
                    pages.append((str(chapter), path))
                    self.page_urls[path] = page.file.url
        try:
            numbering = number_report(pages)
        except ValueError as exc:
            raise PluginError(f"genai-report: {exc}") from None
        self.figure_labels = numbering.figures
        self.equation_numbers, self.equation_labels = (numbering.equations,
                                                       numbering.equation_labels)
        return nav

    # -- pages ---------------------------------------------------------------------------
    def on_page_markdown(
        self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        if not self.config.enabled:
            return None
        src = page.file.src_uri
        resolvers = Resolvers(
            figure=partial(self._figure, page),
            metric=self._metric,
            param=self._param,
            cite=partial(self._cite, page, files),
            block=self._block,
            check=self._check,
            audio=partial(self._audio, page),
            ref=partial(self._ref, page),
        )
        first_line = _first_body_line(page, markdown)
        result = transform(markdown, f"docs/{src}", resolvers, first_line=first_line)
        for name in result.figures:
            self.placed.setdefault(name, []).append(src)
        for err in result.errors:
            if self.is_serve:
                soft_log.warning("%s", err)
            else:
                log.error("%s", err)
        for warning in result.warnings:
            soft_log.warning("%s", warning)
        self.errors.extend(result.errors)
        self.unverified.extend(w for w in result.warnings if w.kind == "claim")
        if self.code_error:
            return code_error_banner(self.code_error) + result.markdown
        return result.markdown

    def on_page_content(
        self, html_: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        if not self.config.enabled:
            return None
        def report(msg: str) -> None:
            self._warn("docs/%s: %s", page.file.src_uri, msg)

        if page.file.src_uri.endswith(".ipynb"):
            return render_math(render_notebook_math(html_, report), report)
        html_ = render_math(html_, report, self.equation_numbers.get(page.file.abs_src_path))
        updated = _last_updated(page.file.abs_src_path)
        if updated:
            html_ += f'<p class="genai-page-meta">Last updated {updated}</p>'
        if self.glossary_terms and self.glossary_url is not None:
            if page.file.src_uri == self.config.glossary:
                return add_term_ids(html_, self.glossary_terms)
            if not page.file.src_uri.startswith(("api/", "references")):
                target = _relative(page, self.glossary_url)
                html_ = link_terms(html_, self.glossary_terms,
                                   lambda term: f"{target}#{term.slug}")
        return html_

    def on_env(self, env, *, config: MkDocsConfig, files: Files):
        if not self.config.enabled or self.pipeline is None:
            return env
        if self.config.require_all_figures_placed:
            for node in self.pipeline.registry.figures():
                if node.name not in self.placed:
                    self._warn("Figure '%s' (%s) is placed on no page. Add a line "
                                "[[figure:%s]] to the page it belongs to.", node.name,
                                node.module, node.name)
        if self.unverified:
            soft_log.warning("%d claim(s) not verified in the %s profile (its settings are "
                             "tiny); they are checked in the quick and full builds.",
                             len(self.unverified), self.profile)
        if self.errors and not self.is_serve:
            raise PluginError(f"genai-report: {summary(self.errors)}")
        return env

    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str | None:
        if self.config.enabled:
            self.math_chars |= math_characters(output)  # what the math font must cover
        return output

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if not self.config.enabled:
            return
        try:
            write_math_font(Path(config.site_dir), self.math_chars)
        except MathFontError as exc:
            if self.is_serve:  # the preview goes on, with the reader's own math font
                soft_log.warning("genai-report: %s", exc)
            else:
                raise PluginError(f"genai-report: {exc}") from None

    def on_serve(self, server, *, config: MkDocsConfig, builder):
        self.is_serve = True  # also under `mkdocs serve --clean` (startup says "build")
        if self.config.enabled:
            sys.dont_write_bytecode = True  # no .pyc writes inside the watched package
            server.watch(str(PACKAGE_DIR))
            bib = self.root / self.config.bibliography
            if bib.exists():
                server.watch(str(bib))
        return server

    def _warn(self, msg: str, *args: object) -> None:
        """A warning: counted by ``--strict`` in a build, shown without stopping a serve."""
        (soft_log if self.is_serve else log).warning(msg, *args)

    # -- rendering -----------------------------------------------------------------------
    def _node(self, name: str, what: str = "figure") -> Node:
        assert self.pipeline is not None
        node = self.pipeline.registry.nodes.get(name)
        if node is None:
            raise LookupError(
                f"Unknown {what} '{name}'.{did_you_mean(name, self.pipeline.registry.nodes)} "
                "Run `genai-report list` to see every node."
            )
        return node

    def _figure(self, page: Page, name: str, file: str | None, number: int) -> str:
        node = self._node(name)
        if node.kind != "figure":
            raise LookupError(f"'{name}' is an artifact, not a figure; place one of the "
                              "figures that use it.")
        image = file or node.images[0]
        if image not in node.images:
            raise LookupError(f"Figure '{name}' has no image '{image}'; it has "
                              f"{', '.join(node.images)}.")
        rec = self.records.get(name)
        failure = self.failures.get(name)
        parts = []
        if failure:
            tail = "\n".join(failure.strip().splitlines()[-12:])
            parts.append(
                '<div class="admonition failure genai-figure-error"><p class="admonition-title">'
                f"Figure '{html.escape(name)}' failed to build</p><pre>{html.escape(tail)}</pre>"
                + ("<p>Showing its previous output.</p>" if rec else "") + "</div>"
            )
        if rec is None:
            if failure:
                return "".join(parts)
            raise LookupError(
                f"Figure '{name}' has no output for profile '{self.profile}'. Run "
                f"`genai-report figures --profile {self.profile} --only {name}`."
            )
        url = _relative(page, f"figures/{name}/{image}")
        title = node.title.strip()
        if title and title[-1] not in ".!?:":
            title += "."  # the title is the caption's first sentence
        caption = " ".join(x for x in (
            f'<span class="genai-figure-title">{_inline_markdown(title)}</span>' if title else "",
            _inline_markdown(node.caption) if node.caption else "") if x)
        label = self.figure_labels.get(name, (str(number), ""))[0]
        training = self._training_seconds(name)
        times = f"plot {rec.wall_time_s:.1f} s" + (
            f" · training {_duration(training)}" if training else "")
        own = _commit_link(rec.git_commit, self.repo_url)
        made = ("" if _same_commit(rec.git_commit, self.build_commit)
                else f" · made at {own}")
        provenance = (f"{rec.profile} profile · {html.escape(rec.device)} · {times}{made} · "
                      f"{rec.created[:10]}")
        record_url = _relative(page, f"figures/{name}/record.json")
        command = f"genai-report figures --profile {rec.profile} --only {name} --force"
        dark = ((name, image) in self.dark_images)
        kind = "genai-figure genai-figure--dark" if dark else "genai-figure"
        alt = html.escape(node.alt)
        img = f'<img class="genai-light" src="{url}" alt="{alt}" loading="lazy">'
        if dark:  # shown instead under the dark scheme (genai-report.css)
            dark_url = _relative(page, f"figures/{name}/{dark_name(image)}")
            img += f'<img class="genai-dark" src="{dark_url}" alt="{alt}" loading="lazy">'
        interactive, replaces = self._interactive(page, name) if file is None else ("", False)
        static = (f' · <a href="{url}">static image</a>' if replaces else "")
        parts.append(
            f'<figure class="{kind}" id="figure-{name}">{interactive if replaces else ""}'
            f'<a class="genai-figure-link" href="{url}" title="Open full size">'
            f'{img}</a>'
            f'{"" if replaces else interactive}'
            f'<figcaption><a class="genai-figure-number" href="#figure-{name}" '
            f'title="Link to this figure"><strong>Figure {label}.</strong></a> '
            f"{caption}"
            f'<div class="genai-provenance">{provenance} · '
            f'<a href="{record_url}">record</a>{static} · '
            f'<details class="genai-reproduce"><summary>reproduce</summary>'
            f'<code class="genai-command">{html.escape(command)}</code> '
            f'<button type="button" class="genai-copy" data-copy="{attr_escape(command)}" '
            f'title="Copy the command">copy</button></details></div>'
            f"</figcaption></figure>"
        )
        return "".join(parts)

    def _interactive(self, page: Page, name: str) -> tuple[str, bool]:
        """The placeholder that ``genai-interactive.js`` fills with the figure's interactive
        view (``""`` if the figure has none), and whether the view replaces the image.

        Raises:
            LookupError: the view is unreadable or malformed (named, with the fix).
        """
        assert self.pipeline is not None
        node = self.pipeline.registry.nodes[name]
        if node.interactive is None:
            return "", False
        path = self.pipeline.store.entry_dir(self.profile, name) / node.interactive
        try:
            view = json.loads(path.read_text(encoding="utf-8"))
            validate_view(view, node.outputs)
        except (OSError, ValueError) as exc:
            raise LookupError(
                f"Figure '{name}' has an unusable interactive view {path} ({exc}). Re-run it: "
                f"`genai-report figures --profile {self.profile} --only {name} --force`."
            ) from None
        base = _relative(page, f"figures/{name}/")
        lib, css = (_relative(page, UPLOT[0]), _relative(page, UPLOT[1]))
        replaces = view.get("replaces_image", True) is not False
        dark = {c: dark_colour(c) for c in sorted(_view_colours(view))}
        return (f'<div class="genai-interactive" data-kind="{view["kind"]}" '
                f'data-replaces="{str(replaces).lower()}" '
                f'data-dark="{attr_escape(json.dumps(dark, separators=(",", ":")))}" '
                f'data-view="{attr_escape(base + node.interactive)}" '
                f'data-base="{attr_escape(base)}" data-lib="{attr_escape(lib)}" '
                f'data-lib-css="{attr_escape(css)}"></div>'), replaces

    def _training_seconds(self, name: str) -> float:
        """Wall time of the artifacts (trained models, prepared data) a figure rests on,
        counted once each, from their records."""
        assert self.pipeline is not None
        nodes, seen, todo, total = self.pipeline.registry.nodes, set(), [name], 0.0
        while todo:
            current = todo.pop()
            for dep in nodes[current].deps if current in nodes else ():
                if dep in seen or dep not in nodes:
                    continue
                seen.add(dep)
                todo.append(dep)
                rec = self.records.get(dep)
                if rec is not None and nodes[dep].kind == "artifact":
                    total += rec.wall_time_s
        return total

    def _ref(self, page: Page, name: str) -> str:
        """``Figure C.K`` as a link to figure ``name`` where it is placed, or ``Eq. C.K`` as
        a link to the display equation labelled ``\\label{name}`` (``name`` = ``eq:...``)."""
        if name.startswith("eq:"):
            if name not in self.equation_labels:
                raise LookupError(
                    f"No display equation is labelled '{name}'. Add \\label{{{name}}} inside "
                    f"the $$ ... $$ block it refers to.{did_you_mean(name, self.equation_labels)}")
            label, path = self.equation_labels[name]
            target = self.page_urls.get(path, "")
            anchor = equation_id(name, label)
            href = (f"#{anchor}" if target == page.file.url
                    else f"{_relative(page, target or '.')}#{anchor}")
            return f'<a class="genai-ref" href="{attr_escape(href)}">Eq. {label}</a>'
        node = self._node(name)
        if node.kind != "figure":
            raise LookupError(f"'{name}' is an artifact, not a figure; refer to a figure.")
        if name not in self.figure_labels:
            raise LookupError(f"Figure '{name}' is not placed on any page of the navigation; "
                              f"place it with [[figure:{name}]] before referring to it.")
        label, path = self.figure_labels[name]
        target = self.page_urls.get(path, "")
        here = target == page.file.url
        href = f"#figure-{name}" if here else f"{_relative(page, target or '.')}#figure-{name}"
        return f'<a class="genai-ref" href="{attr_escape(href)}">Figure {label}</a>'

    def _audio(self, page: Page, name: str, file: str | None) -> str:
        """Render ``[[audio:NAME]]`` / ``[[audio:NAME:FILE]]``: players of a figure's WAVs."""
        node = self._node(name)
        if node.kind != "figure":
            raise LookupError(f"'{name}' is an artifact, not a figure; only a figure's WAV "
                              "outputs are served with the site. Place a figure that copies "
                              "them.")
        if not node.sounds:
            raise LookupError(f"Figure '{name}' has no WAV output; list .wav files in its "
                              "outputs= to place audio players.")
        if file is not None and file not in node.sounds:
            raise LookupError(f"Figure '{name}' has no sound '{file}'."
                              f"{did_you_mean(file, node.sounds)} It has "
                              f"{', '.join(node.sounds)}.")
        if self.records.get(name) is None:
            if name in self.failures:
                return '<p class="genai-error">⚠ audio unavailable (node failed)</p>'
            raise LookupError(
                f"Figure '{name}' has no output for profile '{self.profile}'. Run "
                f"`genai-report figures --profile {self.profile} --only {name}`.")
        chosen = [file] if file else list(node.sounds)
        return audio_table([(f, _relative(page, f"figures/{name}/{f}")) for f in chosen])

    def _metric(self, path: str, fmt: str | None) -> str:
        return self._quote(path, fmt, "metric")

    def _param(self, path: str, fmt: str | None) -> str:
        return self._quote(path, fmt, "param")

    def _quote(self, path: str, fmt: str | None, kind: str) -> str:
        name, _, rest = path.partition(".")
        node = self._node(name)
        if not rest:
            raise LookupError(f"{kind.capitalize()} reference '{path}' names no {kind}; use "
                              f"[[{kind}:{name}.KEY]].")
        rec = self.records.get(name)
        if rec is None:
            if name in self.failures:
                return '<span class="genai-error">⚠ unavailable (node failed)</span>'
            raise LookupError(f"Node '{node.name}' has no record for profile '{self.profile}'; "
                              f"run `genai-report figures --profile {self.profile}`.")
        if kind == "metric":
            value = lookup_path(rec.metrics, rest.split("."), name)
        else:
            params = dict(rec.key_parts.get("params") or {})
            params.pop("__type__", None)
            try:
                value = lookup_path(params, rest.split("."), name)
            except LookupError as exc:
                raise LookupError(str(exc).replace("Metric", "Parameter", 1)) from None
        text = format_value(value, fmt)
        title = attr_escape(f"{path} ({kind}, {rec.profile}, {rec.git_commit})")
        return f'<span class="genai-metric" title="{title}">{html.escape(text)}</span>'

    def _check(self, body: str) -> str:
        """Render a ``[[check: ...]]``: evaluate it, or mark it as checked elsewhere."""
        try:
            claim = parse_check(body)
        except CheckSyntaxError as exc:
            raise FormError(f"Malformed check `{body.strip()}`: {exc}", kind="markup") from None
        for name in claim.nodes():
            try:
                self._node(name, "node")
            except LookupError as exc:
                raise FormError(f"Check `{claim.expr}`: {exc}") from None
        if not claim.applies_to(self.profile):
            return render_mark(claim, "elsewhere", self.profile)
        try:
            outcome = claim.evaluate(self._claim_metrics)
        except CheckReferenceError as exc:
            raise FormError(f"Check `{claim.expr}`: {exc}") from None
        except CheckError as exc:
            raise FormError(f"Check `{claim.expr}` cannot be evaluated: {exc}",
                            kind="markup") from None
        if outcome.holds:
            return render_mark(claim, "verified", self.profile, outcome)
        message = f"False claim `{claim.expr}`: {outcome.explain()}."
        if self.profile == "smoke":
            raise FormWarning(f"{message} Not verified in the smoke profile.",
                              html=render_mark(claim, "unverified", self.profile, outcome))
        raise FormError(message, html=render_mark(claim, "failed", self.profile, outcome),
                        kind="claim")

    def _claim_metrics(self, name: str) -> dict:
        """A node's metrics for a check; ``LookupError`` names what is missing."""
        self._node(name, "node")
        rec = self.records.get(name)
        if rec is None:
            if name in self.failures:
                raise LookupError(f"Node '{name}' failed in this build, so its claims cannot "
                                  "be checked.")
            raise LookupError(f"Node '{name}' has no record for profile '{self.profile}'; run "
                              f"`genai-report figures --profile {self.profile}`.")
        return rec.metrics

    def _cite(self, page: Page, files: Files, keys_: list[str]) -> str:
        assert self.bibliography is not None
        refs = [self.bibliography.get(k) for k in keys_]
        ref_file = files.get_file_from_path("references.md")
        base = _relative(page, ref_file.url) if ref_file else ""
        links = "; ".join(
            f'<a class="genai-cite" href="{base}#ref-{r.key}">{html.escape(r.label)}</a>'
            for r in refs
        )
        return f"({links})"

    def _block(self, what: str) -> str:
        if what == "bibliography":
            assert self.bibliography is not None
            return self.bibliography.render_list()
        if what == "estimate-table":
            return self._estimate_table()
        return self._provenance_table()

    def _estimate_table(self) -> str:
        path = self.root / self.config.estimate
        fix = (f"Run `genai-report figures --profile full --dry-run --estimate-out "
               f"{self.config.estimate}` and commit the file.")
        try:
            data = json.loads(path.read_text())
            return estimate_table(data)
        except FileNotFoundError:
            raise LookupError(f"[[estimate-table]] needs the dry run's estimate {path}, which "
                              f"does not exist. {fix}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise LookupError(f"[[estimate-table]]: {path} is not a dry run's estimate "
                              f"({type(exc).__name__}: {exc}). {fix}") from None

    def _provenance_table(self) -> str:
        assert self.pipeline is not None
        rows = ["| Node | Kind | Profile | Device | Wall time | Commit | Built | Key |",
                "|---|---|---|---|---:|---|---|---|"]
        for node in self.pipeline.registry.topological():
            rec = self.records.get(node.name)
            if rec is None:
                rows.append(f"| `{node.name}` | {node.kind} | – | – | – | – | not built | – |")
                continue
            rows.append(
                f"| `{node.name}` | {node.kind} | {rec.profile} | {rec.device} | "
                f"{rec.wall_time_s:.1f} s | `{rec.git_commit}` | {rec.created[:16]} | "
                f"`{rec.key[:12]}` |"
            )
        return "\n".join(["", *rows, ""])


def estimate_table(data: dict[str, Any], shown_over_s: float = 5.0) -> str:
    """Markdown of a dry run's estimate (``--estimate-out``): nodes predicted over
    ``shown_over_s`` seconds, slowest first, the rest in one row, and the totals against the
    goals. Every number comes from ``data``."""
    nodes = sorted(data["nodes"].items(), key=lambda kv: -kv[1]["gpu_full_s"])
    gpu, budget = data["gpu_name"], float(data["node_budget_s"])
    rows = [f"| Node | Dry run here (s) | Peak memory (MiB) | Steps, dry → full | "
            f"Outside the loops (s) | Predicted on one {gpu} (s) |",
            "|---|---:|---:|---|---:|---:|"]
    rest = [e for _, e in nodes if e["gpu_full_s"] <= shown_over_s]
    for name, e in nodes:
        if e["gpu_full_s"] <= shown_over_s:
            continue
        steps = ", ".join(f"{lp['dry_steps']} → {lp['full_steps']}" for lp in e["loops"][:3])
        steps += ", …" if len(e["loops"]) > 3 else ""
        over = " **over the goal**" if e["gpu_full_s"] > budget else ""
        rows.append(f"| `{name}` | {e['dry_wall_s']:.1f} | {e['peak_rss_mib'] or 0:.0f} | "
                    f"{steps or '–'} | {_outside(e):.0f} | {e['gpu_full_s']:.0f}{over} |")
    if rest:
        rows.append(f"| {len(rest)} other nodes | {sum(e['dry_wall_s'] for e in rest):.1f} | "
                    f"≤ {max((e['peak_rss_mib'] or 0) for e in rest):.0f} | | "
                    f"{sum(_outside(e) for e in rest):.0f} in all | "
                    f"{sum(e['gpu_full_s'] for e in rest):.0f} in all |")
    total = float(data["total_gpu_s"])
    outside = sum(_outside(e) for _, e in nodes)
    slow = [n for n, e in nodes if e["gpu_full_s"] > budget]
    failed = data.get("failed") or []
    summary = (
        ("Predicted `full` profile" if data.get("registered", 0) <= len(nodes) else
         f"Predicted for the {len(nodes)} dry-run nodes of the `full` profile")
        + (f", extrapolated from its steps timed on {data['timed_on']}," if data.get("timed_on")
           else f" on one {gpu},")
        + f" node after node: **{total / 60:.1f} min** "
        f"(goal {float(data['profile_budget_s']) / 60:.0f} min); "
        + (f"{len(slow)} node(s) over the {budget:.0f} s goal per node. " if slow
           else f"every node within the {budget:.0f} s goal per node. ")
        + f"Of the total, {outside / 60:.1f} min is the nodes' work outside their optimiser "
        f"loops (data, sampling, evaluation, plotting"
        + ("; its operators costed on the GPU, its own host time as measured here). "
           if all("other_gpu_s" in e for _, e in nodes) else
           "; at this machine's CPU time, an upper bound). ")
        + f"The nodes' dry runs took {sum(e['dry_wall_s'] for _, e in nodes) / 60:.0f} min "
        f"on the machine that made them, for {len(nodes)}"
        + (f" of the {data['registered']} registered nodes (the others not yet dry-run)"
           if data.get("registered", 0) > len(nodes) else " node(s)")
        + (f"; {len(failed)} failed: {', '.join(f'`{n}`' for n in failed)}." if failed
           else "."))
    plan = data.get("schedule")
    if plan:  # estimate files from before the schedule have none
        summary += (
            f" With {plan['jobs']} nodes at once on that GPU (`--jobs {plan['jobs']}`), the "
            f"runner's own schedule of these predictions takes **{plan['wall_s'] / 60:.1f} min**"
            f"; no number of jobs goes below the longest chain of dependent nodes, "
            f"{plan['chain_s'] / 60:.1f} min, or below the time the GPU itself is busy, "
            f"{plan['busy_s'] / 60:.1f} min (its arithmetic and the shortest run of each "
            "kernel, which nodes at once share)"
            + (f", which is the bound here: **{plan['predicted_s'] / 60:.1f} min**."
               if plan["busy_s"] > plan["wall_s"] else "."))
        if "memory_mib" in plan:
            card = float(data["gpu_class"]["memory_gib"])
            summary += (
                f" The {plan['jobs']} largest peaks of memory add up to "
                f"{plan['memory_mib'] / 1024:.1f} GiB of the card's {card:.0f} GiB"
                + (" (measured on the GPU)" if plan.get("memory_on_gpu") else
                   " (measured on the CPU, a proxy for the same models and batches)")
                + (": **more than it holds**." if plan["memory_mib"] > card * 1024 else "."))
    cut = [n for n, e in nodes if e.get("not_extrapolated")]
    if cut:
        summary += (f" {len(cut)} node(s) ran part of their work at a smaller size that the "
                    "estimate does not scale back up (their `dry_run` overrides; the estimate "
                    "file lists each field, dry and full): "
                    + ", ".join(f"`{n}`" for n in cut) + ".")
    return "\n".join(["", summary, "", *rows, ""])


def _outside(node: dict[str, Any]) -> float:
    """A node's predicted seconds outside its optimiser loops on the GPU; an estimate file
    from a meter that did not count that work has only its CPU time."""
    return float(node.get("other_gpu_s", node.get("other_s", 0.0)))


def _last_updated(path: str | None) -> str | None:
    """The date (YYYY-MM-DD) of the last commit that changed a page's source; ``None``
    for a page git does not track (or outside git)."""
    if not path:
        return None
    import subprocess

    try:
        out = subprocess.run(["git", "log", "-1", "--format=%cs", "--", Path(path).name],
                             cwd=Path(path).parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    date = out.stdout.strip()
    return date if out.returncode == 0 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) else None


def _duration(seconds: float) -> str:
    """``42 s``, ``12 min`` or ``1.5 h``: a wall time as a reader reads it."""
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _same_commit(a: str, b: str | None) -> bool:
    """Whether two recorded commits name the same revision (``+dirty`` aside)."""
    return b is not None and a.split("+")[0] == b.split("+")[0]


def _commit_link(commit: str, repo_url: str | None) -> str:
    """A recorded commit, linked to the repository's page for it when the site knows one."""
    sha = commit.split("+")[0]
    text = html.escape(commit)
    if repo_url and re.fullmatch(r"[0-9a-f]{7,40}", sha):
        return f'<a href="{attr_escape(repo_url.rstrip("/"))}/commit/{sha}"><code>{text}</code></a>'
    return f"<code>{text}</code>"


def _nav_pages(item) -> list:
    """The pages under a navigation item, in order (the item itself if it is a page)."""
    if getattr(item, "children", None):
        return [p for child in item.children for p in _nav_pages(child)]
    return [item] if getattr(item, "file", None) is not None else []



_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _view_colours(view: Any) -> set[str]:
    """Every ``#rrggbb`` string in an interactive view's JSON (lower-cased): the colours
    whose dark twins the page lists for the dark scheme."""
    if isinstance(view, str):
        return {view.lower()} if _HEX.fullmatch(view) else set()
    if isinstance(view, dict):
        view = list(view.values())
    if isinstance(view, list):
        return set().union(*map(_view_colours, view)) if view else set()
    return set()


def _relative(page: Page, target: str) -> str:
    """URL of site path ``target`` relative to ``page``."""
    start = posixpath.dirname(page.file.dest_uri) or "."
    rel = posixpath.relpath(target.rstrip("/") or ".", start)
    return rel + "/" if target.endswith("/") and rel != "." else ("./" if rel == "." else rel)


def _first_body_line(page: Page, markdown: str) -> int:
    try:
        source = page.file.content_string
    except (OSError, TypeError, ValueError):
        return 1
    return first_body_line(source, markdown)


def _inline_markdown(text: str) -> str:
    """Markdown (with TeX) of a caption as inline HTML."""
    out = md.markdown(text, extensions=["pymdownx.arithmatex"],
                      extension_configs={"pymdownx.arithmatex": {"generic": True}})
    if out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out


def _forget_project_modules(node_packages: list[str]) -> None:
    """Drop the project's library and node modules so `mkdocs serve` sees edited code."""
    keep = ("genai_report.pipeline", "genai_report.mkdocs_plugin", "genai_report.utils")
    tops = {"genai_report", *(p.split(".")[0] for p in node_packages)}
    for name in list(sys.modules):
        top, dot, _ = name.partition(".")
        if top in tops and dot and not name.startswith(keep):
            del sys.modules[name]
    REGISTRY.nodes.clear()
    keys.clear_caches()


def _route_library_logs() -> None:
    """Show the pipeline's log lines (progress of nodes) in MkDocs' output, once."""
    lib = logging.getLogger("genai_report")
    if not any(getattr(h, "_genai_report", False) for h in lib.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)-7s -  genai-report: %(message)s"))
        handler._genai_report = True  # type: ignore[attr-defined]
        lib.addHandler(handler)
        lib.propagate = False
    lib.setLevel(logging.INFO)
