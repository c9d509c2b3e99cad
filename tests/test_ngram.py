"""The n-gram baseline against hand-counted examples."""

import pytest

from genai_report.models.ngram import NGramModel


def test_counts_and_distribution_by_hand():
    m = NGramModel(order=2).fit("abab")
    # bigram contexts: after "a" comes "b" twice; after "b" comes "a" once
    assert m.counts["a"] == {"b": 2}
    assert m.counts["b"] == {"a": 1}
    assert m.counts[""] == {"a": 2, "b": 2}  # unigram counts
    assert m.distribution("xa") == {"b": 1.0}
    assert m.distribution("b") == {"a": 1.0}


def test_backs_off_to_shorter_context_and_breaks_ties_on_character():
    m = NGramModel(order=3).fit("abcabd")
    # "ab" was followed by "c" once and "d" once: tie -> smallest character
    assert m.distribution("ab") == {"c": 0.5, "d": 0.5}
    assert m.predict("ab") == "c"
    # "zb" is unseen; back off to "b" -> {"c", "d"}; "zz" backs off to unigrams
    assert m.predict("zb") == "c"
    assert m.distribution("zz") == pytest.approx({c: n / 6 for c, n in
                                                  {"a": 2, "b": 2, "c": 1, "d": 1}.items()})


def test_greedy_completion_stops_at_newline():
    m = NGramModel(order=4).fit("x = 1\ny = 2\nx = 1\n")
    assert m.complete("x =", 10, stop="\n") == " 1\n"


def test_excluded_characters_back_off():
    m = NGramModel(order=3).fit("a  b  a  c")
    # after "a " comes " " twice; excluding blanks backs off to " " (-> blanks and letters)
    assert m.predict("a ") == " "
    assert m.predict("a ", exclude=" ") == "a"  # context " " is followed by " ", b, a, c
    assert m.complete("c", 3, first_exclude=" ") == "a  "


def test_invalid_order_and_empty_model():
    with pytest.raises(ValueError, match="order"):
        NGramModel(order=0)
    with pytest.raises(ValueError, match="empty"):
        NGramModel(order=2).predict("a")
