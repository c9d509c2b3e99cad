"""``[[check: EXPR]]``: the expression language, its errors, and what a build does with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from genai_report.metrics.seeds import over_seeds
from genai_report.mkdocs_plugin.checks import (
    CheckEvalError,
    CheckReferenceError,
    CheckSyntaxError,
    parse_check,
    render_mark,
)
from genai_report.mkdocs_plugin.expr import parse_expression
from genai_report.mkdocs_plugin.markup import format_value, scan

RECORDS = {
    "transformers-induction": {"second_copy_loss": 0.2, "first_copy_loss": 2.0,
                               "curve": [{"fid": 9.0}, {"fid": 3.0}],
                               "by_scale": {"3": {"acc": 0.9}}, "name": "two-moons",
                               "latent-diffusion": {"fid": 59.0}},
    "digits-gan": {"fid": over_seeds([12.0, 13.0, 14.0]), "classes": 10, "missing": None},
}


def lookup(node: str):
    if node not in RECORDS:
        raise LookupError(f"Unknown node '{node}'.")
    return RECORDS[node]


def holds(expr: str) -> bool:
    return parse_check(expr).evaluate(lookup).holds


# -- the language ---------------------------------------------------------------------------
@pytest.mark.parametrize("expr, expected", [
    ("1 + 2 * 3 == 7", True),
    ("(1 + 2) * 3 == 9", True),
    ("-2 * 3 == -6", True),
    ("- (1 - 3) == 2", True),
    ("10 / 4 == 2.5", True),
    ("8 - 2 - 1 == 5", True),        # left-associative
    ("8 / 2 / 2 == 2", True),
    ("not 1 < 2 or 2 < 3", True),    # (not (1 < 2)) or (2 < 3)
    ("1 < 2 and 3 < 2 or 1 == 1", True),   # and binds tighter than or
    ("not (1 < 2 and 2 < 3)", False),
    ("1e-3 < 0.01", True),
    ('"a" < "b"', True),
    ("abs(-3) == 3 and min(4, 2, 8) == 2 and max(1, 5) == 5", True),
])
def test_precedence_and_arithmetic(expr, expected):
    assert holds(expr) is expected


def test_chained_comparisons_are_pythons():
    assert holds("1 < 2 < 3")
    assert not holds("1 < 3 < 2")
    assert holds("1 <= 1 < 2 != 3")
    outcome = parse_check("1 < 3 < 2").evaluate(lookup)
    assert outcome.comparisons == ("1 < 3 < 2 (false)",)


def test_references_with_dashes_indexes_and_numeric_keys():
    assert holds("transformers-induction.second_copy_loss < 0.5 * "
                 "transformers-induction.first_copy_loss")
    assert holds("transformers-induction.curve[1].fid < transformers-induction.curve.0.fid")
    assert holds('transformers-induction.by_scale["3"].acc > 0.5')
    assert holds("transformers-induction.by_scale.3.acc == 0.9")
    assert holds("transformers-induction.latent-diffusion.fid > 50")
    assert holds("len(transformers-induction.curve) == 2")
    assert holds("min(transformers-induction.curve[0].fid, 4) == 4")
    assert holds('transformers-induction.name == "two-moons"')
    # binary minus with spaces; without them it is part of a key
    assert holds("transformers-induction.first_copy_loss - transformers-induction.second_copy_loss"
                 " > 1.5")


def test_metrics_over_seeds_are_compared_by_mean_and_sd():
    assert holds("digits-gan.fid.mean - 2 * digits-gan.fid.sd > 9")
    assert holds("digits-gan.fid.n == 3 and len(digits-gan.fid.values) == 3")
    with pytest.raises(CheckEvalError, match=r"over seeds \(use .mean or .sd\)"):
        parse_check("digits-gan.fid > 1").evaluate(lookup)


def test_missing_nodes_and_keys_are_named_with_did_you_mean():
    with pytest.raises(CheckReferenceError, match="Unknown node 'digits-gn'"):
        parse_check("digits-gn.fid > 1").evaluate(lookup)
    with pytest.raises(CheckReferenceError) as err:
        parse_check("transformers-induction.second_copy_los < 1").evaluate(lookup)
    assert "Key 'second_copy_los' not found in 'transformers-induction'" in str(err.value)
    assert "Did you mean 'second_copy_loss'?" in str(err.value)
    assert "Available: by_scale, curve, first_copy_loss" in str(err.value)
    with pytest.raises(CheckReferenceError, match="binary minus needs spaces"):
        parse_check("transformers-induction.first_copy_loss-transformers-induction.second_copy_loss"
                    " > 1").evaluate(lookup)
    with pytest.raises(CheckReferenceError, match=r"indices 0..1"):
        parse_check("transformers-induction.curve[5].fid > 1").evaluate(lookup)
    # every fixed reference is checked, even one an `or` would never evaluate
    with pytest.raises(CheckReferenceError, match="'nope'"):
        parse_check("1 < 2 or digits-gan.nope > 1").evaluate(lookup)


@pytest.mark.parametrize("expr, message", [
    ("__import__('os').system('true')", "Unknown name '__import__'"),
    ("eval('1')", "Unknown name 'eval'"),
    ("digits-gan.fid.__class__ == 1", "'__class__' not found"),
    ("(1).real == 1", "Attribute access is not part of the language"),
    ("abs.__call__(1)", "Only the functions abs, len, max, min can be called"),
    ("digits-gan.classes(1)", "Only the functions abs, len, max, min can be called"),
    ("lambda x: 1", "Unexpected character ':'"),
    ("[1, 2] == 1", "Expected a number"),
    ("1 if 1 else 2", "Unknown name 'if'"),
    ("1 ** 2 == 1", "Expected a number"),
    ("digits-gan.classes; 1", "Unexpected character ';'"),
    ("abs 1", "Expected '(' after the function 'abs'"),
    ("1 <", "found the end of the expression"),
    ("", "Empty check"),
    ("1 < 2 | profile=full", "Unknown check option"),
    ("1 < 2 | profiles=quik", "Did you mean 'quick'"),
])
def test_anything_outside_the_language_is_rejected(expr, message):
    with pytest.raises((CheckSyntaxError, CheckReferenceError)) as err:
        parse_check(expr).evaluate(lookup)
    assert message in str(err.value)


def test_values_that_do_not_fit_are_errors_not_crashes():
    with pytest.raises(CheckEvalError, match="Division by zero"):
        parse_check("1 / 0 < 1").evaluate(lookup)
    with pytest.raises(CheckEvalError, match="needs numbers"):
        parse_check('transformers-induction.name + 1 > 1').evaluate(lookup)
    with pytest.raises(CheckEvalError, match=r"null \(not measured\)"):
        parse_check("digits-gan.missing < 1").evaluate(lookup)
    with pytest.raises(CheckEvalError, match="must be true or false"):
        parse_check("digits-gan.classes + 1").evaluate(lookup)
    with pytest.raises(CheckEvalError, match="'and' works on true/false"):
        parse_check("digits-gan.classes and 1 < 2").evaluate(lookup)


def test_profiles_option():
    claim = parse_check("1 < 2 | profiles=full, quick")
    assert claim.profiles == ("quick", "full")
    assert claim.applies_to("full") and not claim.applies_to("smoke")
    assert parse_check("1 < 2").profiles == ("smoke", "quick", "full")


def test_the_tree_is_plain_data():
    tree = parse_expression("a-b.c[0] < 2")
    assert type(tree).__name__ == "Compare"
    assert tree.operands[0].node == "a-b" and tree.operands[0].text == "a-b.c[0]"


# -- rendering ------------------------------------------------------------------------------
def test_mark_shows_expression_and_values_in_tooltip_and_label():
    claim = parse_check("transformers-induction.second_copy_loss < 0.5 * "
                        "transformers-induction.first_copy_loss")
    html = render_mark(claim, "verified", "quick", claim.evaluate(lookup))
    assert html.startswith('<span class="claim-check claim-verified" role="img"')
    assert html.endswith(">✓</span>")
    title = html.split('title="')[1].split('"')[0]
    assert "Verified by this build (quick profile)&#10;" in title
    assert "0.2 &lt; 1&#10;" in title  # the values compared
    assert "transformers-induction.second&#95;copy&#95;loss = 0.2" in title
    assert "0.5 &#42; transformers" in title  # Markdown would read * and _ as emphasis
    assert 'aria-label="Verified by this build (quick profile); ' in html
    elsewhere = render_mark(parse_check("1 < 2 | profiles=full"), "elsewhere", "smoke")
    assert "claim-elsewhere" in elsewhere and "Checked in the full profile" in elsewhere
    assert "claim-unverified" in render_mark(claim, "unverified", "smoke")
    assert "claim-failed" in render_mark(claim, "failed", "quick")


def test_metrics_over_seeds_render_mean_sd_and_n():
    value = over_seeds([3.0, 3.3, 2.9, 3.2, 3.2])
    assert format_value(value, ".2f") == "3.12 ± 0.16 (5 seeds)"
    assert format_value(value, None) == "3.12 ± 0.164 (5 seeds)"
    assert format_value(over_seeds([2.5]), ".1f") == "2.5 ± 0.0 (1 seed)"


def test_the_parser_finds_checks_with_brackets_and_options():
    forms = scan('A claim. [[check: a-b.c["x"][0] < 2 | profiles=full]] More `[[check: no]]`.')
    assert [(f.kind, f.target) for f in forms] == [("check", 'a-b.c["x"][0] < 2 | profiles=full')]


# -- a build --------------------------------------------------------------------------------
NODES = '''
from dataclasses import dataclass

from genai_report.metrics.seeds import over_seeds
from genai_report.pipeline import figure


@dataclass(frozen=True)
class P:
    n: int = 3


@figure("good", params={"smoke": P(1), "quick": P(3), "full": P(5)}, outputs=("good.svg",),
        alt="a test image", title="A test figure.")
def good(ctx, p):
    ctx.output("good.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
    return {"n": p.n, "fid": over_seeds([3.0, 3.3, 2.9, 3.2, 3.2]), "curve": [5.0, 2.0]}
'''

CONFIG = """
site_name: checks test
strict: true
plugins:
  - genai-report:
      profile: quick
      device: cpu
      cache_dir: {cache}
      bibliography: refs.bib
      node_packages: [checkpkg.nodes]
"""

PAGE = """---
title: Claims
---

# Claims

[[figure:good]]

The FID is [[metric:good.fid:.2f]]. It is low. [[check: good.fid.mean + 2 * good.fid.sd < 4]]
The curve falls. [[check: good.curve[1] < good.curve[0]]]
At scale n is five. [[check: good.n == 5 | profiles=full]]
n exceeds two. [[check: good.n > 2]]
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One figure cache for the module's builds: the node runs once."""
    return tmp_path_factory.mktemp("checks-cache")


@pytest.fixture
def site(tmp_path, cache):
    pkg = tmp_path / "checkpkg" / "nodes"
    pkg.mkdir(parents=True)
    (tmp_path / "checkpkg" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "figs.py").write_text(NODES)
    (tmp_path / "mkdocs.yml").write_text(CONFIG.format(cache=cache))
    (tmp_path / "refs.bib").write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(PAGE)
    return tmp_path


def build(site: Path, profile: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "NO_MKDOCS_2_WARNING": "1",
           "GENAI_REPORT_PROFILE": profile}
    env.pop("GENAI_REPORT_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=site,
                          capture_output=True, text=True, env=env, timeout=300)


def test_false_claims_and_unknown_references_fail_quick_naming_page_line_and_values(site):
    page = site / "docs" / "index.md"
    page.write_text(page.read_text().replace("good.n > 2", "good.n > 4")
                    .replace("good.n == 5 | profiles=full", "godo.n == 5 | profiles=full")
                    .replace("It is low.", "It is low. [[check: good.fdi.mean < 4]]"))
    out = build(site, "quick")
    assert out.returncode != 0
    # line 12 of the file: the front matter counts
    assert ("docs/index.md:12: False claim `good.n > 4`: 3 > 4 (false), where good.n = 3."
            in out.stderr), out.stderr
    # a profiles= opt-out still needs its nodes to exist
    assert "docs/index.md:11: Check `godo.n == 5`: Unknown node 'godo'. Did you mean " \
           "'good'?" in out.stderr
    assert ("docs/index.md:9: Check `good.fdi.mean < 4`: Key 'fdi' not found in 'good' "
            "(in `good.fdi.mean`). Did you mean 'fid'? Available: curve, fid, n.") in out.stderr
    assert "2 unresolved reference(s), 1 false claim(s)" in out.stderr
    assert "Correct the sentence" in out.stderr and "Fix the name" in out.stderr


def test_smoke_renders_the_marks_and_only_warns_about_a_false_claim(site):
    out = build(site, "smoke")  # smoke's n = 1, so "n exceeds two" is false here
    assert out.returncode == 0, out.stderr
    assert "docs/index.md:12: False claim `good.n > 2`: 1 > 2 (false), where good.n = 1." \
        in out.stderr
    assert "Not verified in the smoke profile" in out.stderr
    html = (site / "site" / "index.html").read_text()
    assert "3.12 ± 0.16 (5 seeds)" in html
    marks = re.findall(r'class="claim-check (claim-[a-z]+)"', html)
    assert marks == ["claim-verified", "claim-verified", "claim-elsewhere", "claim-unverified"]
    assert "Checked in the full profile; not evaluated in this smoke build" in html
    assert "genai-report.css" in html


def test_an_unknown_key_fails_even_in_smoke(site):
    page = site / "docs" / "index.md"
    page.write_text(page.read_text().replace("good.n > 2", "good.nn > 2"))
    out = build(site, "smoke")
    assert out.returncode != 0
    assert "docs/index.md:12: Check `good.nn > 2`: Key 'nn' not found in 'good'" in out.stderr
    assert "Did you mean 'n'?" in out.stderr and "1 unresolved reference(s)" in out.stderr
