"""Converting log-likelihoods to bits per dimension, the unit likelihood models report in."""

from __future__ import annotations

import math


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """``nll / (dims * ln 2)``: a per-example negative log-likelihood in nats to bits/dim.

    Args:
        nll_nats: mean negative log-likelihood of one example, in nats.
        dims: number of dimensions of an example (64 for an 8x8 image).
    """
    if dims < 1:
        raise ValueError(f"dims must be >= 1, got {dims}.")
    return nll_nats / (dims * math.log(2))
