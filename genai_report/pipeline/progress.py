"""Overall progress of a pipeline run: ``[k/N]`` and the time left, from recorded wall times.

The runner asks for a plan when the first stale node is about to run (a no-op build never
pays for it): every node that :meth:`Pipeline.status` reports stale, or that is forced, with
the wall time of its previous record. Each "Running" log line then reads, e.g.::

    [3/12] Running gpt-char (quick, cpu): code changed: genai_report.models.gpt; ~2 min left

The estimate is the sum of the previous wall times of the nodes still to run (this one
included), divided by the number of parallel jobs; nodes never built have no time and are
counted apart ("+2 never timed"). A planned node that turns out fresh after all (its
dependency re-ran with identical outputs) or is skipped drops out of ``N``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genai_report.pipeline.registry import Node
    from genai_report.pipeline.runner import Pipeline, RunOptions, RunReport

log = logging.getLogger(__name__)


def format_left(seconds: float, untimed: int = 0, *, suffix: str = " left") -> str:
    """``"~2 min left"`` for a number of seconds, with ``"+N never timed"`` for nodes whose
    wall time is unknown; ``"time left unknown (N never timed)"`` when none is known."""
    if seconds <= 0 and untimed:
        return f"time{suffix} unknown ({untimed} never timed)"
    if seconds < 60:
        text = f"<1 min{suffix}"
    elif seconds < 90 * 60:
        text = f"~{max(1, round(seconds / 60))} min{suffix}"
    else:
        hours, minutes = divmod(round(seconds / 60), 60)
        text = f"~{hours} h {minutes:02d} min{suffix}"
    return f"{text} (+{untimed} never timed)" if untimed else text


def _last_wall_time(pipeline: Pipeline, profile: str, name: str) -> float | None:
    try:
        record = pipeline.store.read_record(profile, name)
    except Exception:  # an unreadable record: no estimate for this node
        return None
    return record.wall_time_s if record else None


class RunProgress:
    """Counts the nodes a run starts and estimates the time left.

    Args:
        planned: node name -> its previous wall time in seconds (``None``: never timed), in
            the order they are expected to run.
        report: the run's report; nodes it lists as fresh, failed or skipped before they
            started are no longer counted.
        jobs: nodes run at once (the estimate is divided by it).
    """

    def __init__(self, planned: dict[str, float | None], report: RunReport | None = None,
                 jobs: int = 1):
        self.planned = dict(planned)
        self.report = report
        self.jobs = max(1, jobs)
        self.started: list[str] = []

    @classmethod
    def plan(cls, pipeline: Pipeline, options: RunOptions, order: Iterable[Node],
             forced: set[str], report: RunReport, jobs: int | None = None) -> RunProgress:
        """The nodes of ``order`` that will run: stale now, or forced. Never raises: if the
        status cannot be computed, every node not yet found fresh is planned. ``jobs``:
        nodes in flight at once (default ``options.jobs``; a Ray cluster's slots)."""
        order = list(order)
        try:
            statuses = pipeline.status(options.profile, options.device, options.only)
            planned = {
                s.node.name: (s.record.wall_time_s if s.record else None)
                for s in statuses if not s.fresh or s.node.name in forced
            }
        except Exception as exc:  # progress must never break a build
            log.debug("No progress plan (%s); counting every node not yet fresh.", exc)
            planned = {}
            for node in order:
                if node.name not in report.fresh:
                    planned[node.name] = _last_wall_time(pipeline, options.profile, node.name)
        progress = cls(planned, report, jobs or options.jobs)
        seconds, untimed = progress._left(())
        if untimed < len(planned):
            log.info("%d node(s) to run (profile %s): %s by their last wall times%s.",
                     len(planned), options.profile, format_left(seconds, suffix=""),
                     f" (+{untimed} never timed)" if untimed else "")
        else:
            log.info("%d node(s) to run (profile %s); none has a recorded wall time yet.",
                     len(planned), options.profile)
        return progress

    def _dropped(self) -> set[str]:
        if self.report is None:
            return set()
        return {*self.report.fresh, *self.report.failed, *self.report.skipped}

    def _waiting(self) -> list[str]:
        dropped = self._dropped()
        return [n for n in self.planned if n not in self.started and n not in dropped]

    def _left(self, current: Iterable[str]) -> tuple[float, int]:
        names = [*current, *self._waiting()]
        times = [self.planned.get(n) for n in names]
        known = sum(t for t in times if t is not None)
        return known / self.jobs, sum(1 for t in times if t is None)

    @property
    def total(self) -> int:
        """N: nodes started so far plus those still expected to run."""
        return len(self.started) + len(self._waiting())

    def start(self, name: str) -> tuple[str, str]:
        """Count ``name`` as started.

        Returns:
            ``("[k/N]", "; ~2 min left")``: the count and the estimate (this node included),
            for the runner's log line.
        """
        waiting = self._waiting()
        if name in waiting:
            waiting.remove(name)
        self.planned.setdefault(name, None)
        self.started.append(name)
        seconds, untimed = self._left([name])
        return f"[{len(self.started)}/{len(self.started) + len(waiting)}]", \
            f"; {format_left(seconds, untimed)}"


__all__ = ["RunProgress", "format_left"]
