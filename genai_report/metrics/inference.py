"""What generating a token costs: matrix-multiply FLOPs of a GPT forward pass.

:func:`forward_flops` counts the multiply-adds (two FLOPs each) of one forward pass of
``new`` positions over a context of ``context`` positions, as the code computes them: the
q/k/v, output and MLP projections (``24 d^2`` FLOPs per position and layer), the attention
scores and their weighted sum (``4 d`` per position, layer and attended key), and the output
layer (``2 d V`` per position). Without a key/value cache, generating the token after ``T``
positions re-runs all ``T`` of them (``new = context = T``); with the cache only the newest
one (``new = 1``), so the projections cost ``T`` times less and the attention, ``O(T^2)``
without the cache, becomes ``O(T)``.
"""

from __future__ import annotations


def forward_flops(n_layer: int, n_embd: int, vocab_size: int, new: int, context: int) -> int:
    """FLOPs of one GPT forward pass over ``new`` positions attending to ``context`` keys.

    Args:
        n_layer: transformer blocks.
        n_embd: width ``d``.
        vocab_size: rows of the output layer.
        new: positions computed in this pass.
        context: keys each of them attends to (cache plus new; the full square is computed).

    Returns:
        The count.
    """
    if new < 1 or context < new:
        raise ValueError(f"Need 1 <= new <= context, got new={new}, context={context}.")
    d = n_embd
    per_layer = 24 * d * d * new + 4 * d * new * context
    return n_layer * per_layer + 2 * d * vocab_size * new


def decode_flops(n_layer: int, n_embd: int, vocab_size: int, length: int, cached: bool) -> int:
    """FLOPs to produce the token after ``length`` positions, with or without the cache."""
    return forward_flops(n_layer, n_embd, vocab_size, 1 if cached else length, length)
