"""Glossary terms link from the prose to their definitions (genai_report.mkdocs_plugin.glossary)."""

from __future__ import annotations

from pathlib import Path

from genai_report.mkdocs_plugin.glossary import (
    add_term_ids,
    aliases_of,
    link_terms,
    parse_glossary,
)

GLOSSARY = """# Glossary

Intro paragraph: not a term.

Evidence lower bound (ELBO)
:   A lower bound on the log-likelihood that
    [VAEs](types/vae.md) maximise.

Token and tokenizer
:   The unit of text a model reads, and the program that cuts text into them.

Inception Score (IS)
:   A score of samples' confidence and variety.

Attention
:   An operation in which each position of a sequence computes a weighted average of the
    representations of other positions, with weights computed from their content, which is
    long enough a definition to be cut short in the tooltip that shows it.
"""


def _href(term):
    return f"../glossary/#{term.slug}"


def test_entries_their_aliases_and_summaries_are_read():
    terms = parse_glossary(GLOSSARY)
    assert [t.name for t in terms] == ["Evidence lower bound (ELBO)", "Token and tokenizer",
                                       "Inception Score (IS)", "Attention"]
    assert terms[0].aliases == ("Evidence lower bound", "ELBO")
    assert terms[0].slug == "term-evidence-lower-bound-elbo"
    assert parse_glossary("Fréchet distance\n:   A distance.\n")[0].slug == "term-frechet-distance"
    assert terms[0].summary == "A lower bound on the log-likelihood that VAEs maximise."
    assert terms[1].aliases == ("Token", "tokenizer")
    assert aliases_of("Inception Score (IS)") == ("Inception Score",)  # "IS" is too short
    assert terms[3].summary.endswith("…") and len(terms[3].summary) <= 201


def test_only_the_first_mention_in_running_text_is_linked():
    terms = parse_glossary(GLOSSARY)
    page = ("<h2>Attention</h2><p>Self-attention is not attention, but Attention is. "
            "<code>attention</code> <a href='x'>attention</a></p>"
            "<p>The ELBO and the elbo; tokens and a tokenizer.</p>"
            '<div class="genai-provenance">token</div>')
    out = link_terms(page, terms, _href)
    assert out.count('class="genai-term"') == 3  # attention, ELBO, tokens (one per entry)
    assert "<h2>Attention</h2>" in out and "Self-attention is not <a " in out
    assert '#term-attention" title="An operation' in out
    assert ">attention</a>, but Attention is." in out  # only the first mention
    assert "<code>attention</code>" in out
    assert 'ELBO</a> and the elbo' in out  # acronyms match their own case only
    assert 'href="../glossary/#term-token-and-tokenizer"' in out
    assert ">tokens</a> and a tokenizer." in out  # "token" and "tokenizer" are one entry
    assert '<div class="genai-provenance">token</div>' in out


def test_glossary_entries_get_their_anchors():
    terms = parse_glossary(GLOSSARY)
    page = "<dl><dt>Evidence lower bound (ELBO)</dt><dd>...</dd><dt>Other</dt></dl>"
    out = add_term_ids(page, terms)
    assert '<dt id="term-evidence-lower-bound-elbo">Evidence lower bound (ELBO)</dt>' in out
    assert "<dt>Other</dt>" in out


def test_the_report_glossary_parses_and_every_entry_has_a_name_to_find():
    root = Path(__file__).resolve().parents[1]
    terms = parse_glossary((root / "docs" / "glossary.md").read_text(encoding="utf-8"))
    assert len(terms) > 40
    assert all(t.aliases and t.summary for t in terms), [t.name for t in terms if not t.aliases]
    assert len({t.slug for t in terms}) == len(terms)
