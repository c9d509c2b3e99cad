"""The report's Markdown forms, citations and server-side maths, without MkDocs."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_report.mkdocs_plugin.citations import Bibliography
from genai_report.mkdocs_plugin.markup import (
    FormError,
    FormWarning,
    Resolvers,
    display_equations,
    format_value,
    lookup_path,
    number_report,
    scan,
    transform,
)
from genai_report.mkdocs_plugin.math import render_math, tex_to_mathml

METRICS = {"loss": 1.23456, "curve": [{"k": 1}, {"k": 2}], "name": "two-moons", "n": 123456}


def _resolvers():
    def figure(name, file, number):
        if name != "known":
            raise LookupError(f"Unknown figure '{name}'.")
        return f"<figure>{name}:{file}:{number}</figure>"

    def metric(path, fmt):
        node, _, rest = path.partition(".")
        if node != "known":
            raise LookupError(f"Unknown node '{node}'.")
        return format_value(lookup_path(METRICS, rest.split("."), node), fmt)

    def cite(keys):
        if "missing" in keys:
            raise LookupError("Unknown citation key 'missing'.")
        return "(" + "; ".join(keys) + ")"

    def param(path, fmt):
        return f"param({path})"

    def check(body):
        if body == "true":
            return "<ok/>"
        if body == "smoke":
            raise FormWarning("not verified", html="<unverified/>")
        raise FormError("False claim", html="<failed/>", kind="claim")

    return Resolvers(figure=figure, metric=metric, param=param, cite=cite,
                     block=lambda what: f"<{what}/>", check=check)


def test_forms_are_replaced_outside_code():
    src = "\n".join([
        "Loss [[metric:known.loss:.2f]] and k [[metric:known.curve.1.k]] [@a; @b].",
        "Trained for [[param:known.steps]] steps.",
        "",
        "[[figure:known]]",
        "[[figure:known:other.png]]",
        "`[[metric:known.loss]]` stays, as does a [link](x) and [text][ref].",
        "```markdown",
        "[[figure:missing]] [[metric:missing.x]] [@missing]",
        "```",
        "[[bibliography]]",
    ])
    res = transform(src, "docs/p.md", _resolvers())
    assert res.errors == []
    lines = res.markdown.split("\n")
    assert lines[0] == "Loss 1.23 and k 2 (a; b)."
    assert lines[1] == "Trained for param(known.steps) steps."
    assert "<figure>known:None:1</figure>" in res.markdown
    assert "<figure>known:other.png:2</figure>" in res.markdown
    assert "`[[metric:known.loss]]` stays, as does a [link](x) and [text][ref]." in lines
    assert "[[figure:missing]] [[metric:missing.x]] [@missing]" in lines
    assert "<bibliography/>" in lines
    assert res.figures == ["known", "known"] and res.citations == ["a", "b"]


def test_unknown_references_report_page_and_line():
    src = "intro\n\n[[figure:nope]]\nvalue [[metric:known.los]] and [[metric:other.x]]\n[@missing]\n"
    res = transform(src, "docs/chapter.md", _resolvers())
    found = [str(e) for e in res.errors]
    assert found[0] == "docs/chapter.md:3: Unknown figure 'nope'."
    assert found[1].startswith("docs/chapter.md:4: Metric 'known.los' not found")
    assert "Available: curve, loss, n, name" in found[1]
    assert found[2] == "docs/chapter.md:4: Unknown node 'other'."
    assert found[3] == "docs/chapter.md:5: Unknown citation key 'missing'."
    assert "genai-error" in res.markdown  # visible in `mkdocs serve`


def test_malformed_forms_are_errors_with_the_valid_forms():
    src = "\n".join([
        "See [[figure:known]] here, [[metrc:known.loss]] and [[figures:known]].",
        "[[bibliography]] mid-line and [[check: a.b[0 < 1]].",
        "`[[metrc:in-code]]` and a [[1, 2]] list written as prose.",
        "```",
        "[[figures:in-a-fence]]",
        "```",
    ])
    res = transform(src, "docs/p.md", _resolvers())
    found = [(e.line, e.kind, e.message.split(" Valid forms")[0]) for e in res.errors]
    assert found == [
        (1, "markup", "A figure goes on a line of its own: move `[[figure:known]]` to its own "
                      "line, with blank lines around it."),
        (1, "markup", "Unknown form `[[metrc:known.loss]]`. Did you mean 'metric'?"),
        (1, "markup", "Unknown form `[[figures:known]]`. Did you mean 'figure'?"),
        (2, "markup", "`[[bibliography]]` goes on a line of its own."),
        (2, "markup", "Malformed check `[[check: a.b[0 < 1]]`: its brackets or quotes do not "
                      "balance."),
        (3, "markup", "Unknown form `[[1, 2]]`."),
    ]
    assert "Valid forms: [[figure:NAME]] (on a line of its own)" in res.errors[0].message
    assert res.figures == []  # a figure mid-sentence is not placed


def test_line_numbers_count_front_matter_and_scan_is_the_transforms_parser():
    body = "# Title\n\nA [[metric:other.x]] here.\n"
    res = transform(body, "docs/p.md", _resolvers(), first_line=5)
    assert [str(e) for e in res.errors] == ["docs/p.md:7: Unknown node 'other'."]
    forms = scan(body, first_line=5)
    assert [(f.kind, f.line, f.target) for f in forms] == [("metric", 7, "other.x")]


def test_the_first_body_line_counts_what_mkdocs_stripped():
    from genai_report.mkdocs_plugin.reporting import first_body_line

    source = "---\ntitle: x\ntags: [a]\n---\n\n# T\n\nText\n"
    assert first_body_line(source, "# T\n\nText\n") == 6
    assert first_body_line("# T\n", "# T\n") == 1
    assert first_body_line("abc", "changed by another plugin") == 1


def test_checks_render_warn_or_fail_through_their_resolver():
    res = transform("A [[check: true]] B [[check: smoke]] C [[check: false]]", "docs/p.md",
                    _resolvers())
    assert res.markdown == "A <ok/> B <unverified/> C <failed/>"
    assert [(e.kind, e.message) for e in res.warnings] == [("claim", "not verified")]
    assert [(e.kind, e.message) for e in res.errors] == [("claim", "False claim")]
    assert res.checks == ["true", "smoke", "false"]


def test_format_value_defaults_and_errors():
    assert format_value(1.23456, None) == "1.23"
    assert format_value(0.000123456, None) == "0.000123"
    assert format_value(123456, None) == "123,456"
    assert format_value("two-moons", None) == "two-moons"
    assert format_value(0.5, ".1%") == "50.0%"
    with pytest.raises(LookupError, match="collection"):
        format_value([1, 2], None)
    with pytest.raises(LookupError, match="does not apply"):
        format_value("text", ".2f")
    with pytest.raises(LookupError, match="indices 0..1"):
        lookup_path(METRICS, ["curve", "5"], "known")


def test_bibliography_labels_and_errors(tmp_path: Path):
    bib = tmp_path / "a.bib"
    bib.write_text(
        "@article{one, author={Vaswani, Ashish and Shazeer, Noam and Parmar, Niki}, "
        "title={Attention Is All You Need}, journal={NeurIPS}, year={2017}}\n"
        "@book{two, author={Kingma, Diederik P. and Welling, Max}, title={{Auto}-Encoding}, "
        "year={2014}, eprint={1312.6114}}\n"
    )
    refs = Bibliography([bib])
    assert refs.get("one").label == "Vaswani et al., 2017"
    assert refs.get("two").label == "Kingma & Welling, 2014"
    assert refs.get("two").url == "https://arxiv.org/abs/1312.6114"
    html = refs.render_list()
    assert 'id="ref-one"' in html and "Attention Is All You Need" in html
    with pytest.raises(LookupError, match="Did you mean 'one'"):
        refs.get("onee")
    dup = tmp_path / "b.bib"
    dup.write_text("@misc{one, title={x}, year={2020}}\n")
    with pytest.raises(ValueError, match="defined in both"):
        Bibliography([bib, dup])


def test_tex_becomes_mathml_and_bad_tex_is_reported():
    assert tex_to_mathml(r"\frac{a}{b}").startswith("<math")
    html = ('<p>Inline <span class="arithmatex">\\(p_\\theta(x)\\)</span></p>'
            '<div class="arithmatex">\\[\\sum_k \\pi_k\\]</div>')
    errors = []
    out = render_math(html, errors.append)
    assert "arithmatex" not in out and out.count("<math") == 2 and 'display="block"' in out
    assert errors == []
    # the TeX source travels as an annotation of one presentation element
    one = tex_to_mathml(r"\frac{1}{N} x < y")
    assert one.count("<semantics>") == 1
    assert '<annotation encoding="application/x-tex">\\frac{1}{N} x &lt; y</annotation>' in one
    assert one.index("<semantics><mrow>") < one.index("</mrow><annotation")


def test_notebook_pages_lose_off_host_scripts_and_get_mathml():
    from genai_report.mkdocs_plugin.math import render_notebook_math

    page = (
        '<script src=""> </script><!-- MathJax configuration -->'
        '<script type="text/x-mathjax-config">MathJax.Hub.Config({});</script>'
        '<script src="https://cdn.example/mathjax/latest.js"></script>'
        '<script type="module">const m = await import("https://cdn.example/mermaid.mjs");</script>'
        '<script type="module">console.log("local");</script>'
        '<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown" data-mime-type="text/markdown">'
        "<p>Inline $x_t = \\sqrt{a} x_0$ and</p><p>$$\\sum_k \\pi_k$$</p><p>costs $5 and $6</p></div>"
        '<pre>price = "$x$"</pre>'
    )
    out = render_notebook_math(page, lambda msg: None)
    assert "http" not in out.replace("http://www.w3.org/1998/Math/MathML", "")
    assert 'console.log("local")' in out  # local scripts are kept
    assert out.count("<math") == 2 and 'display="block"' in out
    assert '<pre>price = "$x$"</pre>' in out  # code is not maths


def test_figure_references_render_through_their_resolver_and_fail_when_unknown():
    def ref(name):
        if name != "known":
            raise LookupError(f"Unknown figure '{name}'.")
        return "<a>Figure 2.1</a>"

    res = transform("As [[ref:known]] shows, and [[ref:nope]] does not.\n`[[ref:nope]]`",
                    "docs/p.md", Resolvers(figure=None, metric=None, param=None, cite=None,
                                           block=None, ref=ref))
    assert res.markdown.startswith("As <a>Figure 2.1</a> shows")
    assert res.refs == ["known", "nope"]
    assert [(e.line, e.message) for e in res.errors] == [(1, "Unknown figure 'nope'.")]
    assert [f.kind for f in scan("See [[ref:known]].")] == ["ref"]
    no_resolver = transform("[[ref:known]]", "docs/p.md", _resolvers())
    assert "no ref resolver" in no_resolver.errors[0].message


def test_figures_are_numbered_by_chapter_in_reading_order(tmp_path: Path):
    pages = {
        "home.md": "No figures here.\n",
        "a1.md": "[[figure:x]]\n\nText [[ref:z]].\n\n[[figure:y]]\n",
        "a2.md": "```\n[[figure:in-code]]\n```\n[[figure:z]]\n[[figure:x]]\n",
        "b.md": "[[figure:w]]\n",
    }
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
    order = [("0", "home.md"), ("1", "a1.md"), ("1", "a2.md"), ("2", "b.md"),
             ("3", "missing.md")]
    labels = number_report([(c, str(tmp_path / n)) for c, n in order]).figures
    assert {k: v[0] for k, v in labels.items()} == {"x": "1.1", "y": "1.2", "z": "1.3",
                                                     "w": "2.1"}
    assert labels["x"][1] == str(tmp_path / "a1.md")  # its first placement


def test_display_equations_are_numbered_with_the_figures_chapters(tmp_path: Path):
    pages = {
        "home.md": "No figures or equations.\n",
        "a.md": "[[figure:x]]\n\n$$a = b \\label{eq:first}$$\n\ntext $x$ inline\n\n"
                "    $$c = d,\n    e = f.$$\n\n```\n$$in code$$\n```\n",
        "b.md": "Only an equation:\n\n$$g = h$$\n",
        "c.md": "[[figure:y]] \n\n[[figure:z]]\n",
    }
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
    order = [("0", "home.md"), ("1", "a.md"), ("2", "b.md"), ("3", "c.md")]
    got = number_report([(c, str(tmp_path / n)) for c, n in order])
    # A chapter with only equations is a chapter too; figures and equations count apart.
    assert {k: v[0] for k, v in got.figures.items()} == {"x": "1.1", "y": "3.1", "z": "3.2"}
    assert got.equations == {str(tmp_path / "a.md"): ["1.1", "1.2"],
                             str(tmp_path / "b.md"): ["2.1"]}
    assert got.equation_labels == {"eq:first": ("1.1", str(tmp_path / "a.md"))}
    assert display_equations("$$x \\label{eq:a}$$\n\n$$y$$\n") == ["eq:a", None]


def test_equation_labels_must_be_unique_and_well_formed(tmp_path: Path):
    (tmp_path / "a.md").write_text("$$x \\label{eq:same}$$\n")
    (tmp_path / "b.md").write_text("$$y \\label{eq:same}$$\n")
    with pytest.raises(ValueError, match="'eq:same' is already used"):
        number_report([("1", str(tmp_path / "a.md")), ("2", str(tmp_path / "b.md"))])
    with pytest.raises(ValueError, match=r"written \\label\{eq:NAME\}"):
        display_equations("$$x \\label{elbo}$$\n")


def test_numbered_display_equations_carry_their_number_and_anchor():
    html = ('<div class="arithmatex">\\[a = b \\label{eq:first}\\]</div>'
            '<p><span class="arithmatex">\\(x\\)</span></p>'
            '<div class="arithmatex">\\[c = d\\]</div>')
    errors: list[str] = []
    out = render_math(html, errors.append, ["2.1", "2.2"])
    assert not errors
    assert '<div class="genai-equation" id="eq-first">' in out and "\\label" not in out
    assert '<a class="genai-equation-number" href="#eq-first"' in out and ">(2.1)</a>" in out
    assert '<div class="genai-equation" id="eq-2-2">' in out and ">(2.2)</a>" in out
    # A count that does not match the Markdown's is reported, not silently misnumbered.
    render_math(html, errors.append, ["2.1"])
    assert errors and "2 display equation(s)" in errors[0]
