"""Writing an artifact's JSON outputs without run-to-run noise.

An artifact's outputs are hashed, and its dependents' keys contain that hash: if a re-run
that trains the very same model wrote a different training time into ``eval.json``, every
figure downstream would re-run for nothing. So timings never go into an output file: they
live in the node's record (the metrics it returns), which dependents read with
:meth:`~genai_report.pipeline.context.NodeContext.input_metrics`.
"""

from __future__ import annotations

import json
from typing import Any

TIMING_KEYS = frozenset({"train_time_s", "time_s", "sample_time_s", "wall_time_s", "train_s",
                         "ms_per_step"})
"""Keys that hold wall-clock measurements: recorded as metrics, never written to outputs."""


def without_timings(value: Any) -> Any:
    """``value`` with every :data:`TIMING_KEYS` entry removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, (list, tuple)):
        return [without_timings(v) for v in value]
    return value


def write_json(ctx, name: str, data: Any, *, indent: int | None = 1) -> None:
    """Write ``data`` (timings removed) as the node's output ``name``, keys sorted."""
    ctx.output(name).write_text(json.dumps(without_timings(data), indent=indent, sort_keys=True))
