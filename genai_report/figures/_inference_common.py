"""Helpers of the "What a token costs" figures: held-out loss, timing, small GPT training."""

from __future__ import annotations


def corpus_file():
    from genai_report.data.corpora import default_corpus_path

    return default_corpus_path()


def windows(ids, block_size: int):
    """Non-overlapping ``(x, y)`` windows of ``block_size`` targets over a 1-D id tensor."""
    n = (len(ids) - 1) // block_size
    x = ids[: n * block_size].view(n, block_size)  # (n, T)
    y = ids[1: n * block_size + 1].view(n, block_size)
    return x, y


def heldout_nats(model, ids, block_size: int, device, batch: int = 64,
                 weights=None) -> tuple[float, float]:
    """Summed next-token loss (nats) over non-overlapping windows, and the summed weights.

    ``weights`` (a tensor over ``ids``) counts what each target stands for (characters per
    token for BPE); by default each target counts 1.
    """
    import torch
    import torch.nn.functional as F

    x, y = windows(ids, block_size)
    w = None if weights is None else windows(weights, block_size)[1]
    nats, count = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits, _ = model(x[i: i + batch].to(device))  # (b, T, V)
            nll = F.cross_entropy(logits.flatten(0, 1), y[i: i + batch].flatten().to(device),
                                  reduction="sum")
            nats += float(nll)
            count += float(y[i: i + batch].numel() if w is None else w[i: i + batch].sum())
    return nats, count


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    import statistics
    import time

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
