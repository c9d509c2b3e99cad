"""Metrics measured over several seeds: one record shape, quoted as ``mean ± sd (n seeds)``.

A node that repeats a measurement over seeds records it with :func:`over_seeds`::

    ctx.record(fid=over_seeds([3.1, 3.4, 2.9, 3.2, 3.0]))

which stores ``{"mean": ..., "sd": ..., "n": 5, "values": [...]}``. The report's
``[[metric:NODE.fid:.2f]]`` renders such a dict as ``3.12 ± 0.19 (5 seeds)``, and a
``[[check:...]]`` can compare ``NODE.fid.mean`` with another mean and its ``sd``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

SEED_KEYS = frozenset({"mean", "sd", "n", "values"})


def over_seeds(values: Iterable[float]) -> dict[str, Any]:
    """Summarise one measurement repeated over seeds.

    Args:
        values: the measurement, one number per seed (at least one).

    Returns:
        ``{"mean", "sd", "n", "values"}``; ``sd`` is the sample standard deviation
        (``n - 1`` in the denominator), 0 for a single seed.

    Raises:
        ValueError: no values, or a value that is not a finite number.
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("over_seeds() needs at least one value (one per seed).")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise ValueError(f"over_seeds() got non-finite value(s) {bad}; check the run.")
    n = len(vals)
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": n, "values": vals}


def is_over_seeds(value: Any) -> bool:
    """True for a dict made by :func:`over_seeds`."""
    return isinstance(value, Mapping) and SEED_KEYS <= set(value)


__all__ = ["over_seeds", "is_over_seeds"]
