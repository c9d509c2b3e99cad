"""Interactive views of figures: the data a reader explores in the browser.

A figure node that also writes ``interactive.json`` (:data:`INTERACTIVE`) gets an
interactive view on the site, in place of its static image (which stays for print, the PDF,
readers without JavaScript and the lightbox) or below it. The view is drawn in the browser by
``genai-interactive.js`` from the data written here, with uPlot (served by the site) for
line charts. Three kinds exist:

* ``lines``: charts of line and point series on linear or log axes (:func:`panel`);
  hovering reads every series at the cursor, clicking a legend entry hides or shows a
  series (:func:`lines_view`).
* ``attention``: a text's characters and the attention weights of every layer and head;
  hovering a character shades the characters it attends to (:func:`attention_view`).
* ``slider``: frames of one picture, one per value of a parameter, chosen with a slider
  below the figure's image (:func:`slider_view`), e.g. samples at each guidance scale.
* ``text``: text as text, not a picture of it: blocks of characters, each with its own
  colour and a note shown on hover (:func:`text_view`), e.g. generated samples coloured
  by their likelihood.
* ``parts``: several of the above, one after the other, for a figure whose panels differ
  in kind (:func:`parts_view`), e.g. a curve beside examples of text.

A view replaces the static image on screen unless it says ``"replaces_image": false``
(a slider adds to the figure instead).

Every builder checks its input and raises ``ValueError`` naming what is wrong, so a figure
cannot write a view the page would fail to draw; :func:`validate_view` checks a view read
back from disk (the MkDocs plugin calls it before placing one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

INTERACTIVE = "interactive.json"
"""The output name that gives a figure an interactive view."""

KINDS = ("lines", "attention", "slider", "text", "parts")


def _finite_or_none(values: Sequence[float | None], what: str) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, int | float) and math.isfinite(v):
            out.append(float(v))
        else:
            raise ValueError(f"{what}: {v!r} is not a finite number")
    return out


def series(label: str, x: Sequence[float], y: Sequence[float | None], *, color: str,
           dash: bool = False, points: bool = True, width: float = 1.5,
           show: bool = True) -> dict[str, Any]:
    """One series of a :func:`lines_view`: ``y`` against ``x`` (same length; ``None`` in
    ``y`` leaves a gap). ``show=False`` starts it hidden (the reader can show it)."""
    if len(x) != len(y) or not x:
        raise ValueError(f"series '{label}': x and y need the same, non-zero length "
                         f"(got {len(x)} and {len(y)})")
    return {"label": label, "x": _finite_or_none(x, f"series '{label}' x"),
            "y": _finite_or_none(y, f"series '{label}' y"), "color": color,
            "dash": bool(dash), "points": bool(points), "width": float(width),
            "show": bool(show)}


def panel(series_: Sequence[dict[str, Any]], *, x_label: str, y_label: str,
          x_log: bool = False, y_log: bool = False, title: str = "",
          wide: bool = False) -> dict[str, Any]:
    """One chart of a :func:`lines_view`: every series of :func:`series` on one pair of
    axes, labelled, log or linear; ``wide`` spans the whole column."""
    return {"title": title, "wide": bool(wide), "x": {"label": x_label, "log": bool(x_log)},
            "y": {"label": y_label, "log": bool(y_log)}, "series": list(series_)}


def lines_view(panels: Sequence[dict[str, Any]], *, hint: str = "") -> dict[str, Any]:
    """Line charts (:func:`panel`), side by side on a wide screen, stacked on a phone."""
    view = {"kind": "lines", "hint": hint, "panels": list(panels)}
    validate_view(view)
    return view


def attention_view(tokens: Sequence[str], weights: Any, *, hint: str = "",
                   decimals: int = 3) -> dict[str, Any]:
    """Attention weights of every layer and head over ``tokens``.

    Args:
        tokens: the text, one entry per position (characters for a character model).
        weights: ``(layers, heads, T, T)`` nested lists or a tensor/array; row ``i`` is
            the distribution of query ``i`` over keys ``0..i``.
        decimals: rounding of the weights written (3 keeps the file small).
    """
    if hasattr(weights, "tolist"):
        weights = weights.tolist()
    rounded = [[[[round(float(w), decimals) for w in row] for row in head] for head in layer]
               for layer in weights]
    view = {"kind": "attention", "tokens": list(tokens), "weights": rounded, "hint": hint}
    validate_view(view)
    return view


def slider_view(label: str, values: Sequence[float], image: str, captions: Sequence[str],
                *, start: int = 0, hint: str = "") -> dict[str, Any]:
    """Frames of one picture chosen with a slider, shown below the figure's image.

    Args:
        label: the parameter the slider sets (``"guidance scale"``).
        values: its value at each frame.
        image: an output of the same node (a PNG): the frames stacked top to bottom, all
            of one height, ``values[i]`` in the ``i``-th.
        captions: one line per frame (what the reader sees at that value).
        start: the frame shown first.
    """
    view = {"kind": "slider", "label": label, "image": image, "start": int(start),
            "hint": hint, "replaces_image": False,
            "steps": [{"value": float(v), "caption": c}
                      for v, c in zip(values, captions, strict=True)]}
    validate_view(view)
    return view


def text_block(title: str, text: str, colors: Sequence[str], notes: Sequence[str], *,
               bold: int = 0) -> dict[str, Any]:
    """One block of a :func:`text_view`: ``text`` with a CSS colour and a hover note per
    character; its first ``bold`` characters (a prompt, say) are set in bold."""
    if not len(text) == len(colors) == len(notes):
        raise ValueError(f"text block '{title}': text, colors and notes differ in length "
                         f"({len(text)}, {len(colors)}, {len(notes)})")
    return {"title": title, "text": text, "colors": list(colors), "notes": list(notes),
            "bold": int(bold)}


def text_view(blocks: Sequence[dict[str, Any]], *, legend: str = "",
              hint: str = "") -> dict[str, Any]:
    """Blocks of coloured text (:func:`text_block`) shown as text in place of the image."""
    view = {"kind": "text", "blocks": list(blocks), "legend": legend, "hint": hint}
    validate_view(view)
    return view


def token_block(title: str, tokens: Sequence[str], *,
                colors: Sequence[str] = ("#3b6fb6", "#c4455a")) -> dict[str, Any]:
    """A :func:`text_block` of ``tokens`` in alternating colours, each character's note
    naming its token ("token 3 of 12: 'the'"), so a reader sees where each token ends."""
    text, cols, notes = "", [], []
    for i, tok in enumerate(tokens):
        text += tok
        cols += [colors[i % len(colors)]] * len(tok)
        notes += [f"token {i + 1} of {len(tokens)}: {tok!r}"] * len(tok)
    return text_block(title, text, cols, notes)


def parts_view(parts: Sequence[dict[str, Any]], *, hint: str = "") -> dict[str, Any]:
    """Views of other kinds (not sliders) shown one after the other, in place of the image."""
    view = {"kind": "parts", "parts": list(parts), "hint": hint}
    validate_view(view)
    return view


def validate_view(view: Any, outputs: Sequence[str] | None = None) -> None:
    """Raise ``ValueError`` naming the first problem of an interactive view.

    Args:
        view: the parsed ``interactive.json``.
        outputs: the node's outputs; a slider's images must be among them.
    """
    if not isinstance(view, dict) or view.get("kind") not in KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(KINDS)}")
    kind = view["kind"]
    if kind == "lines":
        if not view.get("panels"):
            raise ValueError("a 'lines' view needs at least one panel")
        for p in view["panels"]:
            _validate_panel(p)
    elif kind == "attention":
        tokens, weights = view.get("tokens"), view.get("weights")
        if not tokens or not isinstance(weights, list) or not weights:
            raise ValueError("an 'attention' view needs tokens and weights")
        t = len(tokens)
        for layer in weights:
            for head in layer:
                if len(head) != t or any(len(row) != t for row in head):
                    raise ValueError(f"attention weights must be (layers, heads, {t}, {t}) "
                                     "for the view's tokens")
    elif kind == "parts":
        parts = view.get("parts")
        if not parts:
            raise ValueError("a 'parts' view needs at least one part")
        for part in parts:
            if not isinstance(part, dict) or part.get("kind") in ("parts", "slider"):
                raise ValueError("the parts of a 'parts' view are lines, attention or text "
                                 "views")
            validate_view(part, outputs)
    elif kind == "text":
        blocks = view.get("blocks")
        if not blocks:
            raise ValueError("a 'text' view needs at least one block")
        for b in blocks:
            if not isinstance(b, dict) or not (len(b.get("text", "")) == len(b.get("colors", []))
                                               == len(b.get("notes", []))):
                raise ValueError("every text block needs text, colors and notes of one length")
    else:
        steps = view.get("steps")
        if not steps:
            raise ValueError("a 'slider' view needs at least one step")
        if not 0 <= view.get("start", 0) < len(steps):
            raise ValueError(f"'start' must index one of the {len(steps)} steps")
        if not isinstance(view.get("image"), str):
            raise ValueError("a 'slider' view needs the image of its frames")
        if outputs is not None and view["image"] not in outputs:
            raise ValueError(f"the slider's image '{view['image']}' is not an output of the "
                             "figure")


def _validate_panel(p: Any) -> None:
    if not isinstance(p, dict) or not p.get("series"):
        raise ValueError("every panel of a 'lines' view needs at least one series")
    for key in ("x", "y"):
        axis = p.get(key)
        if not isinstance(axis, dict) or not isinstance(axis.get("label"), str):
            raise ValueError(f"every panel needs an axis '{key}' with a label")
    for s in p["series"]:
        if not isinstance(s, dict) or not {"label", "x", "y", "color"} <= set(s):
            raise ValueError("every series needs label, x, y and color")
        if len(s["x"]) != len(s["y"]):
            raise ValueError(f"series '{s['label']}': x and y differ in length")
        for axis in ("x", "y"):
            if p[axis]["log"] and any(v is not None and v <= 0 for v in s[axis]):
                raise ValueError(f"series '{s['label']}': a log {axis} axis needs positive "
                                 "values")


def write_view(path: Path, view: dict[str, Any]) -> Path:
    """Check ``view`` and write it as compact JSON to ``path`` (``ctx.output(INTERACTIVE)``)."""
    validate_view(view)
    path = Path(path)
    path.write_text(json.dumps(view, separators=(",", ":"), allow_nan=False))
    return path
