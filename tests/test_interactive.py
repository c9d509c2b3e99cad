"""Interactive views: the data a figure writes for the browser, checked before it is placed."""

from __future__ import annotations

import json

import pytest

from genai_report.plotting import interactive as iv


def _lines():
    return iv.lines_view([iv.panel([iv.series("run", [1, 10, 100], [3.0, None, 2.0],
                                              color="#000000")],
                                   x_label="C", y_label="loss", x_log=True, y_log=True)])


def test_a_lines_view_keeps_gaps_and_round_trips(tmp_path):
    view = _lines()
    assert view["panels"][0]["series"][0]["y"] == [3.0, None, 2.0]
    path = iv.write_view(tmp_path / iv.INTERACTIVE, view)
    assert json.loads(path.read_text()) == view
    iv.validate_view(json.loads(path.read_text()))


@pytest.mark.parametrize("bad, message", [
    ({"kind": "pie"}, "'kind' must be one of"),
    ({"kind": "lines", "panels": []}, "at least one panel"),
    ({"kind": "lines", "panels": [{"series": [{"label": "a", "x": [1], "y": [1, 2],
                                               "color": "#000"}],
                                   "x": {"label": "x", "log": False},
                                   "y": {"label": "y", "log": False}}]},
     "differ in length"),
    ({"kind": "lines", "panels": [{"series": [{"label": "a", "x": [0, 1], "y": [1, 2],
                                               "color": "#000"}],
                                   "x": {"label": "x", "log": True},
                                   "y": {"label": "y", "log": False}}]},
     "log x axis needs positive"),
    ({"kind": "attention", "tokens": ["a", "b"], "weights": [[[[1.0]]]]}, r"\(layers, heads, 2, 2\)"),
    ({"kind": "slider", "steps": [{"value": 0, "caption": ""}], "start": 3, "image": "a.png"},
     "'start' must index"),
])
def test_malformed_views_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        iv.validate_view(bad)


def test_series_refuse_non_finite_values_and_unequal_lengths():
    with pytest.raises(ValueError, match="not a finite number"):
        iv.series("s", [1, 2], [1.0, float("inf")], color="#000")
    with pytest.raises(ValueError, match="same, non-zero length"):
        iv.series("s", [1, 2], [1.0], color="#000")
    assert iv.series("s", [1], [float("nan")], color="#000")["y"] == [None]


def test_attention_weights_are_rounded_and_shaped():
    w = [[[[1.0, 0.0], [0.333333, 0.666667]]]]  # (1 layer, 1 head, 2, 2)
    view = iv.attention_view(["a", "b"], w, decimals=2)
    assert view["weights"] == [[[[1.0, 0.0], [0.33, 0.67]]]]
    with pytest.raises(ValueError, match="attention weights"):
        iv.attention_view(["a", "b", "c"], w)


def test_a_slider_names_an_output_of_its_figure():
    view = iv.slider_view("scale", [0, 1, 2], "frames.png", ["a", "b", "c"], start=1)
    assert view["replaces_image"] is False and view["start"] == 1
    iv.validate_view(view, outputs=("plot.svg", "frames.png", iv.INTERACTIVE))
    with pytest.raises(ValueError, match="not an output"):
        iv.validate_view(view, outputs=("plot.svg",))
    with pytest.raises(ValueError):
        iv.slider_view("scale", [0, 1], "frames.png", ["only one caption"])


def test_a_text_view_keeps_one_colour_and_note_per_character():
    block = iv.text_block("t=1", "ab\n", ["#000000", "#ff8800", "#123456"],
                          ["prompt", "log p = -1.00 nats", "log p = -2.00 nats"], bold=1)
    view = iv.text_view([block], legend="colour: log p")
    assert view["blocks"][0]["bold"] == 1 and view["kind"] == "text"
    with pytest.raises(ValueError, match="differ in length"):
        iv.text_block("t", "abc", ["#000000"], ["x", "y", "z"])
    with pytest.raises(ValueError, match="at least one block"):
        iv.text_view([])


def test_tokens_alternate_in_colour_and_parts_nest_other_views():
    block = iv.token_block("v", ["the", " ", "cat"])
    assert block["text"] == "the cat" and block["colors"][0] != block["colors"][3]
    assert block["notes"][4] == "token 3 of 3: 'cat'"
    view = iv.parts_view([_lines(), iv.text_view([block])])
    assert [p["kind"] for p in view["parts"]] == ["lines", "text"]
    slider = iv.slider_view("s", [0], "f.png", ["a"])
    with pytest.raises(ValueError, match="lines, attention or text"):
        iv.parts_view([slider])
