"""Which ready node to start first: the longest chain of work left goes first.

With several nodes in flight (``--jobs N`` or a Ray cluster), the order in which ready nodes
start decides the wall time. Starting them in registry order can leave a long chain (a model
that three figures wait for) until late, so that one worker finishes it alone while the other
idles. The runner instead starts ready nodes by their *bottom level*: a node's expected time
plus the longest chain of expected times through the nodes that depend on it (the classic
critical-path list-scheduling rule, HLFET; Adam, Chandy & Dickson 1974). Ties keep the
registry's order, so a run with one job, or with no timings known, behaves as before.

Expected times are the nodes' last recorded wall times: the cache's own record, else the
record committed in the checkout (so that a build into an empty scratch cache still knows
that ``gpt-char`` takes minutes and ``transformers-loss`` a fraction of a second), else the
median of the known times. Only the order changes; what each node computes, and its key,
do not.
"""

from __future__ import annotations

import heapq
import logging
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from genai_report.pipeline.registry import Node
from genai_report.pipeline.store import CacheStore

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 1.0
"""A node's expected time when no node of the run has ever been timed."""


def expected_seconds(names: Sequence[str], profile: str, stores: Sequence[CacheStore]
                     ) -> dict[str, float | None]:
    """Each node's last recorded wall time in ``profile``, from the first store that has
    a readable record of it (``None``: timed in none)."""
    seconds: dict[str, float | None] = {}
    for name in names:
        seconds[name] = None
        for store in stores:
            try:
                record = store.read_record(profile, name)
            except OSError:  # an unreadable folder is only a missing estimate
                record = None
            if record is not None and record.wall_time_s is not None:
                seconds[name] = float(record.wall_time_s)
                break
    return seconds


def bottom_levels(nodes: Sequence[Node], seconds: Mapping[str, float | None]
                  ) -> dict[str, float]:
    """Each node's expected time plus the longest chain of expected times after it.

    Args:
        nodes: the nodes of the run, in dependency order (dependencies first); dependents
            outside ``nodes`` do not count.
        seconds: expected time per node; ``None`` or absent takes the median of the known
            times (:data:`DEFAULT_SECONDS` when none is known).
    """
    known = [s for n in nodes if (s := seconds.get(n.name)) is not None]
    fallback = statistics.median(known) if known else DEFAULT_SECONDS
    names = {n.name for n in nodes}
    dependents: dict[str, list[str]] = {n.name: [] for n in nodes}
    for node in nodes:
        for dep in node.deps:
            if dep in names:
                dependents[dep].append(node.name)
    level: dict[str, float] = {}
    for node in reversed(nodes):  # every dependent is seen before its dependencies
        own = seconds.get(node.name)
        after = max((level[d] for d in dependents[node.name]), default=0.0)
        level[node.name] = (fallback if own is None else own) + after
    return level


def critical_path_first(nodes: Sequence[Node], seconds: Mapping[str, float | None]
                        ) -> list[Node]:
    """``nodes`` (in dependency order) sorted by descending bottom level, ties in the
    given order. Not a dependency order any more: the runner starts a node only once its
    dependencies are done, and takes the first ready one in this list."""
    level = bottom_levels(nodes, seconds)
    rank = {n.name: i for i, n in enumerate(nodes)}
    return sorted(nodes, key=lambda n: (-level[n.name], rank[n.name]))


def simulate(nodes: Sequence[Node], seconds: Mapping[str, float], jobs: int) -> float:
    """The wall time of running ``nodes`` with ``jobs`` workers, each node taking
    ``seconds[name]``: a list scheduler that, whenever a worker is free, starts the first
    node in ``nodes`` whose dependencies are done (the runner's rule; pass
    :func:`critical_path_first` of the nodes for the order it uses when timings are known).

    Dependencies outside ``nodes`` count as done.

    Raises:
        ValueError: ``jobs`` below 1, or a node with no time in ``seconds``.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}.")
    missing = [n.name for n in nodes if n.name not in seconds]
    if missing:
        raise ValueError(f"No time for {', '.join(missing)}.")
    names = {n.name for n in nodes}
    deps = {n.name: [d for d in n.deps if d in names] for n in nodes}
    pending = [n.name for n in nodes]
    done: set[str] = set()
    running: list[tuple[float, int, str]] = []  # (finish time, start order, name): a heap
    now, started = 0.0, 0
    while pending or running:
        ready = [n for n in pending if all(d in done for d in deps[n])]
        for name in ready[:jobs - len(running)]:
            pending.remove(name)
            heapq.heappush(running, (now + float(seconds[name]), started, name))
            started += 1
        if not running:
            raise ValueError(f"{', '.join(pending)} wait on each other (a dependency cycle).")
        now, _, name = heapq.heappop(running)
        done.add(name)
    return now


def run_order(nodes: Sequence[Node], profile: str, cache: CacheStore, root: Path
              ) -> list[Node]:
    """The order in which the runner offers ``nodes`` to its workers.

    Timings come from ``cache``, then from the checkout's committed outputs under
    ``root/figures`` when the cache is elsewhere. Never raises: without timings, or on any
    error, the dependency order is kept.
    """
    try:
        stores = [cache]
        committed = Path(root) / "figures"
        if committed.resolve() != Path(cache.root).resolve() and committed.is_dir():
            stores.append(CacheStore(committed))
        seconds = expected_seconds([n.name for n in nodes], profile, stores)
        if all(s is None for s in seconds.values()):
            return list(nodes)
        return critical_path_first(nodes, seconds)
    except Exception as exc:  # scheduling must never break a build
        log.debug("Keeping the dependency order (%s).", exc)
        return list(nodes)
