"""Scheduling benchmark: how long each chapter takes from an empty cache with N workers,
in dependency order and in critical-path order, simulated from the recorded node times.

The runner starts ready nodes longest-chain-first when several run at once
(``genai_report/pipeline/schedule.py``). This script replays both orders as a list
scheduler over every chapter's nodes (and their dependencies), with each node taking its
last recorded wall time in the committed records, and prints the simulated wall time of
each, next to the two lower bounds: the total work divided by the workers, and the longest
chain. It trains nothing and takes a second; ``bench_chapter.py`` measures a real build.

    python benchmarks/bench_schedule.py                 # every chapter, 2 and 4 workers
    python benchmarks/bench_schedule.py --jobs 2 transformers scaling
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

CHAPTERS = ("transformers", "families", "scaling", "applications", "llms", "inference",
            "ethics", "multimodal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", default=list(CHAPTERS))
    parser.add_argument("--jobs", type=int, action="append", help="workers (repeatable)")
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()

    from bench_chapter import chapter_nodes

    from genai_report.pipeline import schedule
    from genai_report.pipeline.registry import load_registry
    from genai_report.pipeline.store import CacheStore

    registry = load_registry()
    store = CacheStore(ROOT / "figures")
    print(f"simulated from the committed {args.profile} records (seconds)")
    print(f"{'chapter':14s} {'jobs':>4s} {'dependency':>11s} {'critical':>9s} "
          f"{'work/jobs':>10s} {'chain':>7s}")
    for chapter in args.chapters:
        order = registry.topological(chapter_nodes([chapter]))
        times = schedule.expected_seconds([n.name for n in order], args.profile, [store])
        seconds = {k: (v or 0.0) for k, v in times.items()}
        chain = max(schedule.bottom_levels(order, seconds).values())
        ranked = schedule.critical_path_first(order, seconds)
        for jobs in args.jobs or [2, 4]:
            print(f"{chapter:14s} {jobs:4d} {schedule.simulate(order, seconds, jobs):11.0f} "
                  f"{schedule.simulate(ranked, seconds, jobs):9.0f} "
                  f"{sum(seconds.values()) / jobs:10.0f} {chain:7.0f}")


if __name__ == "__main__":
    main()
