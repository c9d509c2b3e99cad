"""The built site as a reader sees it, in headless Chromium."""

from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import urlsplit

import pytest

from .conftest import SCREENSHOTS, nav_chapters, site_pages

pytestmark = pytest.mark.browser

# Make lazy images load now, then wait until every image has loaded or failed.
LOAD_ALL_IMAGES = """
async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(img => { img.loading = "eager"; });
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done);
  })));
  return imgs.filter(img => !(img.naturalWidth > 0 && img.naturalHeight > 0))
             .map(img => img.getAttribute("src"));
}
"""


def test_every_page_loads_without_errors_and_every_image_loads(page, built_site, site_url):
    pages = site_pages(built_site)
    assert len(pages) > 1, f"no pages found in {built_site}"
    problems: list[str] = []
    for path in pages:
        page.log.clear()
        page.goto(site_url + path, wait_until="load")
        broken = page.evaluate(LOAD_ALL_IMAGES)
        page.wait_for_load_state("networkidle")
        log = page.log
        for kind, items in (("console error", log.console_errors), ("uncaught", log.page_errors),
                            ("off-host request", log.off_host), ("failed request", log.failed),
                            ("broken image", broken)):
            problems += [f"/{path}: {kind}: {item}" for item in items]
    assert not problems, f"{len(problems)} problem(s) in {len(pages)} pages:\n" + "\n".join(
        problems)


def test_no_request_leaves_localhost_and_no_page_links_offhost_assets(built_site):
    """Static check backing the browser's: no page loads a script, style, image or frame
    from another host (links to papers are fine; loading from them is not)."""
    external = re.compile(
        r'<(?:script|img|iframe|source|video|audio)\b[^>]*\bsrc="(?:https?:)?//[^"]*"'
        r'|<link\b(?=[^>]*\brel="(?:stylesheet|preload|modulepreload|icon|prefetch)")'
        r'[^>]*\bhref="(?:https?:)?//[^"]*"', re.I)
    offenders = {}
    for path in site_pages(built_site):
        html = (built_site / path / "index.html" if not path.endswith(".html")
                else built_site / path).read_text()
        found = external.findall(html)
        if found:
            offenders[path] = found[:3]
    assert not offenders, f"pages load assets from other hosts: {offenders}"


def _chapter_with_rare_word(built_site) -> tuple[str, str]:
    """A chapter page (from the nav) and the word of its text found on fewest other pages
    (read from the search index, so the test needs no list of pages or words)."""
    index = json.loads((built_site / "search" / "search_index.json").read_text())
    pages: dict[str, set[str]] = {}
    for doc in index["docs"]:
        words = set(re.findall(r"\b[a-z]{7,}\b", re.sub(r"<[^>]+>", " ", doc["text"])))
        pages.setdefault(doc["location"].split("#")[0], set()).update(words)
    df = Counter(w for words in pages.values() for w in words)
    for _title, url in nav_chapters():
        if url and pages.get(url):
            word = min(pages[url], key=lambda w: (df[w], -len(w), w))
            return url, word
    pytest.fail("no chapter page of the nav has text in the search index")


def test_search_finds_a_term_from_a_chapter(page, built_site, site_url):
    url, term = _chapter_with_rare_word(built_site)
    page.goto(site_url, wait_until="load")
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially(term, delay=30)  # typed, as a reader would
    results = page.locator(".md-search-result__item > a")
    results.first.wait_for(state="attached", timeout=20_000)
    hrefs = [a.get_attribute("href") or "" for a in results.all()]
    assert any(urlsplit(h).path == "/" + url for h in hrefs), (
        f"searching '{term}' did not list /{url}: {hrefs[:10]}")
    assert not page.log.console_errors and not page.log.page_errors, page.log


def _scheme(page) -> str:
    return page.evaluate("document.body.getAttribute('data-md-color-scheme')")


def test_dark_light_toggle_switches_the_palette(page, site_url):
    page.goto(site_url, wait_until="load")
    assert _scheme(page) == "default"
    light_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.locator("form[data-md-component=palette] label.md-header__button:visible").click()
    page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'slate'")
    dark_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_bg != light_bg
    # The choice persists across pages and can be switched back.
    page.reload(wait_until="load")
    assert _scheme(page) == "slate"
    page.locator("form[data-md-component=palette] label.md-header__button:visible").click()
    page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'default'")
    assert not page.log.console_errors and not page.log.page_errors, page.log


def test_math_is_rendered_as_mathml(page, built_site, site_url):
    with_math = [p for p in site_pages(built_site) if "<math" in (
        built_site / p / "index.html" if not p.endswith(".html") else built_site / p).read_text()]
    assert with_math, "no page of the built site contains maths (<math>)"
    for path in with_math[:3]:
        page.goto(site_url + path, wait_until="load")
        info = page.evaluate("""() => {
          const maths = Array.from(document.querySelectorAll("math"));
          const boxes = maths.map(m => m.getBoundingClientRect());
          return {
            count: maths.length,
            mathml: maths.every(m => m instanceof MathMLElement),
            sized: maths.filter((m, i) => boxes[i].width > 0 && boxes[i].height > 0
                                          || m.closest("details:not([open])")).length,
            rawTex: Array.from(document.querySelectorAll(".arithmatex"))
                      .map(e => e.textContent).filter(t => /\\\\[(\\[]|\\$/.test(t)),
          };
        }""")
        assert info["count"] > 0 and info["mathml"], (path, info)
        assert info["sized"] == info["count"], f"/{path}: some <math> has no size: {info}"
        assert not info["rawTex"], f"/{path}: TeX left unrendered: {info['rawTex'][:3]}"
        # Drawn in the site's own math font, which the host serves, whatever the system has.
        font = page.evaluate("""async () => {
          await document.fonts.ready;
          const faces = Array.from(document.fonts).filter(f => f.family.includes("GenAI Math"));
          return {status: faces.map(f => f.status),
                  family: getComputedStyle(document.querySelector("math")).fontFamily};
        }""")
        assert font["status"] == ["loaded"], f"/{path}: the math font did not load: {font}"
        assert font["family"].startswith('"GenAI Math"'), font


def test_screenshot_of_each_chapter(page, built_site, site_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    taken = []
    for _title, url in nav_chapters():
        if not (built_site / url / "index.html").is_file():
            continue  # in the nav but not built (a page being written)
        page.goto(site_url + url, wait_until="load")
        page.evaluate(LOAD_ALL_IMAGES)
        name = re.sub(r"[^a-z0-9]+", "-", (url or "home").lower()).strip("-") + ".png"
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        taken.append(name)
    assert taken, "no chapter page from mkdocs.yml's nav was found in the built site"
    for name in taken:
        assert (SCREENSHOTS / name).stat().st_size > 1000


# Every <audio> player of the page: its source's origin, the HTTP status and first bytes of
# fetching it, and whether the browser can read its metadata (a decodable WAV).
PROBE_AUDIO = """
async () => Promise.all(Array.from(document.querySelectorAll("audio")).map(async a => {
  const url = new URL(a.getAttribute("src"), document.baseURI);
  const res = await fetch(url);
  const head = new Uint8Array(await res.arrayBuffer()).slice(0, 12);
  a.preload = "metadata";
  const ready = await new Promise(done => {
    if (a.readyState >= 1) { done(true); return; }
    a.addEventListener("loadedmetadata", () => done(true), {once: true});
    a.addEventListener("error", () => done(false), {once: true});
    setTimeout(() => done(a.readyState >= 1), 5000);
    a.load();
  });
  return {src: url.href, sameOrigin: url.origin === location.origin, status: res.status,
          riff: String.fromCharCode(...head.slice(0, 4)) + String.fromCharCode(...head.slice(8)),
          controls: a.controls, ready, duration: a.duration};
}))
"""


def test_audio_players_load_their_wavs_from_the_host(page, built_site, site_url):
    with_audio = [p for p in site_pages(built_site) if "<audio" in (
        built_site / p / "index.html" if not p.endswith(".html") else built_site / p).read_text()]
    assert with_audio, "no page of the built site has an audio player ([[audio:...]])"
    page.goto(site_url + with_audio[0], wait_until="load")
    players = page.evaluate(PROBE_AUDIO)
    assert players, f"/{with_audio[0]}: no <audio> element in the rendered page"
    bad = [p for p in players if not (p["sameOrigin"] and p["status"] == 200
                                      and p["riff"] == "RIFFWAVE" and p["controls"]
                                      and p["ready"] and p["duration"] > 0)]
    assert not bad, f"/{with_audio[0]}: players that do not load from the host: {bad}"
    # A media element cancels its own pending range request when load() restarts it.
    failed = [f for f in page.log.failed if not f.startswith("net::ERR_ABORTED")]
    assert not page.log.off_host and not failed, page.log


def test_a_figure_opens_full_size_and_closes_again(page, built_site, site_url):
    with_figure = [p for p in site_pages(built_site) if "genai-figure-link" in (
        built_site / p / "index.html" if not p.endswith(".html") else built_site / p).read_text()]
    assert with_figure, "no page of the built site places a figure"
    page.goto(site_url + with_figure[0], wait_until="load")
    link = page.locator("a.genai-figure-link").first
    href = link.get_attribute("href")
    link.click()
    box = page.locator(".genai-lightbox")
    box.wait_for(state="visible")
    assert box.locator("img").get_attribute("src") == href
    assert page.evaluate("document.querySelector('.genai-lightbox img').naturalWidth") > 0
    assert page.url.startswith(site_url + with_figure[0])  # stayed on the page
    page.keyboard.press("Escape")
    assert page.locator(".genai-lightbox").count() == 0
    link.click()
    page.locator(".genai-lightbox").click()  # a click anywhere closes it too
    assert page.locator(".genai-lightbox").count() == 0
    assert not page.log.console_errors and not page.log.page_errors, page.log


NO_OVERFLOW = """
() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width + 1) return [];
  return Array.from(document.querySelectorAll('article *'))
    .filter(e => e.getBoundingClientRect().right > width + 1)
    .slice(0, 3).map(e => `${e.tagName}.${e.className}: ${(e.textContent || '').slice(0, 40)}`);
}
"""


def test_no_page_scrolls_sideways_on_a_phone(page, built_site, site_url):
    page.set_viewport_size({"width": 390, "height": 844})
    wide = {}
    for path in site_pages(built_site):
        page.goto(site_url + path, wait_until="load")
        culprits = page.evaluate(NO_OVERFLOW)
        if culprits:
            wide[path] = culprits
    assert not wide, f"pages wider than a 390 px phone (widest elements): {wide}"


def test_figure_cross_references_lead_to_their_figures(page, built_site, site_url):
    checked = equations = 0
    for path in site_pages(built_site):
        html = (built_site / path / "index.html" if not path.endswith(".html")
                else built_site / path).read_text()
        if 'class="genai-ref"' not in html:
            continue
        page.goto(site_url + path, wait_until="load")
        hrefs = page.evaluate(
            "() => Array.from(document.querySelectorAll('a.genai-ref')).map(a => a.href)")
        for href in hrefs:
            page.goto(href, wait_until="load")
            target = href.split("#", 1)[1]
            what = ".genai-equation" if target.startswith("eq-") else "figure"
            assert page.locator(f"{what}#{target}").count() == 1, f"{path}: {href} has no {what}"
            checked += 1
            equations += target.startswith("eq-")
    assert checked, "no page refers to a figure with [[ref:...]]"
    assert equations, "no page refers to an equation with [[ref:eq:...]]"


FIGURE_VARIANTS = """
() => Array.from(document.querySelectorAll('figure.genai-figure--dark')).map(f => {
  const light = f.querySelector('img.genai-light'), dark = f.querySelector('img.genai-dark');
  return {id: f.id, light: getComputedStyle(light).display, dark: getComputedStyle(dark).display,
          loaded: dark.complete && dark.naturalWidth > 0};
})
"""


def test_figures_swap_to_their_dark_variant_under_the_dark_scheme(page, built_site, site_url):
    # A page with a figure that embeds a picture (kept as drawn in the dark variant).
    with_picture = [p for p in site_pages(built_site) if not p.endswith(".html") and
                    'id="figure-foundations-density"' in (built_site / p / "index.html").read_text()]
    assert with_picture, "no page places foundations-density with its dark variant"
    dark_requests: list[str] = []
    page.on("request", lambda r: r.url.endswith(".dark.svg") and dark_requests.append(r.url))
    page.goto(site_url + with_picture[0], wait_until="load")
    figures = page.evaluate(FIGURE_VARIANTS)
    assert figures and all(f["light"] != "none" and f["dark"] == "none" for f in figures)
    page.locator("figure.genai-figure--dark").last.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    assert not dark_requests, f"the light scheme fetched dark variants: {dark_requests}"

    page.locator("form[data-md-component=palette] label.md-header__button:visible").click()
    page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'slate'")
    fig = page.locator("#figure-foundations-density")
    fig.scroll_into_view_if_needed()
    fig.locator("img.genai-dark").evaluate(
        "img => img.complete || new Promise(done => img.addEventListener('load', done))")
    state = {f["id"]: f for f in page.evaluate(FIGURE_VARIANTS)}["figure-foundations-density"]
    assert state["light"] == "none" and state["dark"] != "none" and state["loaded"], state
    # The dark drawing: its paper is the page's, and the embedded heat map is kept.
    dark_svg = (built_site / "figures" / "foundations-density" / "density.dark.svg").read_text()
    light_svg = (built_site / "figures" / "foundations-density" / "density.svg").read_text()
    paper = r'<g id="patch_1">\s*<path[^>]*style="fill: {}"'  # the figure's background
    assert re.search(paper.format("#1e2029"), dark_svg) and re.search(paper.format("#ffffff"),
                                                                        light_svg)
    assert re.findall(r"<image\b[^>]*>", dark_svg) == re.findall(r"<image\b[^>]*>", light_svg)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    fig.screenshot(path=str(SCREENSHOTS / "dark-figure.png"))
    # The lightbox shows the variant the reader sees.
    fig.locator("a.genai-figure-link").click()
    assert page.locator(".genai-lightbox img").get_attribute("src").endswith("density.dark.svg")
    page.keyboard.press("Escape")
    page.locator("form[data-md-component=palette] label.md-header__button:visible").click()
    assert not page.log.console_errors and not page.log.failed, page.log


def _ready(page, figure: str):
    """The figure's interactive view, once drawn (its static image then hidden, if replaced)."""
    fig = page.locator(f"#figure-{figure}")
    fig.scroll_into_view_if_needed()
    fig.locator('.genai-interactive[data-state="ready"]').wait_for()
    return fig


def test_interactive_figures_respond_to_the_reader(page, built_site, site_url):
    page.log.clear()
    # The scaling laws: three uPlot charts; hovering reads the runs, the legend toggles them.
    page.goto(site_url + "scaling/measured/", wait_until="load")
    fig = _ready(page, "scaling-laws")
    assert fig.locator(".genai-uplot").count() == 3
    assert not fig.locator("a.genai-figure-link").is_visible()  # replaced on screen
    over = fig.locator(".genai-uplot--wide .u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    values = fig.locator(".genai-uplot--wide .u-legend .u-series .u-value").all_inner_texts()
    assert any(v.strip() not in ("", "–", "--") for v in values[1:]), values
    entry = fig.locator(".genai-uplot--wide .u-legend .u-series").nth(1)
    entry.locator("th").click()  # the series' name in the legend
    assert "u-off" in (entry.get_attribute("class") or "")
    entry.locator("th").click()
    assert "u-off" not in (entry.get_attribute("class") or "")
    page.screenshot(path=str(SCREENSHOTS / "interactive-scaling-laws.png"), full_page=False)
    # Under the dark scheme the charts are drawn again in the figures' dark palette.
    dark = json.loads(fig.locator(".genai-interactive").get_attribute("data-dark"))
    marker = ".genai-uplot--wide .u-legend .u-series:nth-child(2) .u-marker"
    light_marker = fig.locator(marker).evaluate("m => getComputedStyle(m).borderColor")
    palette = page.locator("form[data-md-component=palette] label.md-header__button:visible")
    palette.click()
    page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'slate'")
    fig = _ready(page, "scaling-laws")
    assert fig.locator(".genai-uplot").first.evaluate(
        "c => getComputedStyle(c).backgroundColor") == "rgb(30, 32, 41)"  # plotting.dark.PAPER
    dark_marker = fig.locator(marker).evaluate("m => getComputedStyle(m).borderColor")
    light_hex = "#" + "".join(f"{int(c):02x}" for c in re.findall(r"\d+", light_marker)[:3])
    dark_hex = "#" + "".join(f"{int(c):02x}" for c in re.findall(r"\d+", dark_marker)[:3])
    assert dark_hex == dark.get(light_hex, light_hex), (light_hex, dark_hex, dark)
    page.screenshot(path=str(SCREENSHOTS / "interactive-scaling-laws-dark.png"), full_page=False)
    palette.click()
    page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'default'")
    _ready(page, "scaling-laws")

    # The attention map: hovering a character shades the characters it attends to.
    page.wait_for_load_state("networkidle")
    page.goto(site_url + "architectures/transformers/", wait_until="load")
    fig = _ready(page, "transformers-attention-maps")
    tokens = fig.locator(".genai-attention-token")
    n = tokens.count()
    assert n > 4
    tokens.nth(n - 1).hover()
    weights = [float(w or 0) for w in fig.locator(".genai-attention-token").evaluate_all(
        "ts => ts.map(t => t.style.getPropertyValue('--w'))")]
    assert abs(sum(weights) - 1) < 0.05 and max(weights) > 0  # one row of softmax weights
    assert "gives its largest weight" in fig.locator(".genai-attention-readout").inner_text()
    fig.locator("select").nth(1).select_option("1")  # another head: another distribution
    assert fig.locator("canvas.genai-attention-map").count() == 1

    # Generated samples as text (not a picture of text): coloured, with a note per character.
    fig = _ready(page, "transformers-samples")
    chars = fig.locator(".genai-text-body span")
    assert chars.count() > 50
    notes = chars.evaluate_all("cs => cs.map(c => c.title)")
    assert "prompt" in notes and any(n.startswith("log p = ") for n in notes)
    assert not fig.locator("a.genai-figure-link").is_visible()

    # Tokenization: the curve as a chart and the sentence's tokens as text.
    fig = _ready(page, "transformers-tokenization")
    assert fig.locator(".genai-uplot").count() == 1
    notes = fig.locator(".genai-text-body span").evaluate_all("cs => cs.map(c => c.title)")
    assert any(n.startswith("token 1 of ") for n in notes), notes[:5]

    # Guidance: a slider below the plot shows the samples at each scale.
    page.wait_for_load_state("networkidle")  # images the scrolling asked for, not cut off
    page.goto(site_url + "architectures/multimodal/", wait_until="load")
    fig = _ready(page, "multimodal-guidance")
    # The plot stays (the slider adds the samples below it).
    assert "genai-figure--interactive" not in (fig.get_attribute("class") or "")
    slider = fig.locator(".genai-slider input[type=range]")
    first = fig.locator(".genai-slider-caption").inner_text()
    slider.fill("0")
    assert fig.locator(".genai-slider-caption").inner_text().startswith("Guidance 0:")
    assert fig.locator(".genai-slider-caption").inner_text() != first or first.startswith(
        "Guidance 0:")
    assert fig.locator(".genai-slider-image").evaluate("i => i.naturalWidth") > 0
    page.screenshot(path=str(SCREENSHOTS / "interactive-guidance.png"), full_page=False)
    page.wait_for_load_state("networkidle")

    log = page.log
    assert not (log.console_errors or log.page_errors or log.off_host or log.failed), vars(log)


def test_interactive_figures_print_their_static_images(page, built_site, site_url):
    page.goto(site_url + "scaling/measured/", wait_until="load")
    _ready(page, "scaling-laws")
    page.emulate_media(media="print")
    fig = page.locator("#figure-scaling-laws")
    assert fig.locator("a.genai-figure-link img.genai-light").is_visible()
    assert not fig.locator(".genai-interactive").is_visible()
