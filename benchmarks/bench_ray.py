"""Ray executor benchmark: its overhead per node, and how a sweep's throughput scales.

``smoke``: the real report's smoke profile from an empty cache, once with the local
executor (one process) and once through a local Ray cluster given one CPU, so both run one
node at a time. Prints each run's wall time, the time inside node functions (from the
records) and the overhead per node: ``(wall - node time) / nodes``. Ray's start-up is
timed apart. ``--jobs 2`` compares two local worker processes with a 2-CPU Ray cluster.

``sweep``: a simulated sweep of independent nodes, each holding its worker for ``--seconds``
(a stand-in for a GPU-bound training run, which leaves the driver's CPUs idle), run through
local Ray clusters of 1, 2, 4 and 8 worker slots. Prints nodes per second for each and the
speed-up over one slot (ideal: the slot count).

Run it with nothing else busy on the machine::

    python benchmarks/bench_ray.py smoke
    python benchmarks/bench_ray.py sweep --nodes 32 --seconds 1
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SWEEP_NODES = '''
import time
from dataclasses import dataclass

from genai_report.pipeline.registry import Node, Resources


@dataclass(frozen=True)
class P:
    i: int
    seconds: float


def train(ctx, p):
    time.sleep(p.seconds)  # the worker is busy; the driver's CPUs are not
    ctx.output("result.txt").write_text(str(p.i))


def make_nodes(count, seconds, prefix="run"):
    return [Node(f"{prefix}-{i:03d}", train, "artifact",
                 {prof: P(i, seconds) for prof in ("smoke", "quick", "full")}, ("result.txt",),
                 resources=Resources(cpus=1))
            for i in range(count)]
'''


def _pipeline_run(registry, cache: Path, executor: str, jobs: int):
    from genai_report.pipeline import Pipeline, RunOptions

    pipe = Pipeline(registry, cache_dir=cache, root=ROOT)
    t0 = time.perf_counter()
    report = pipe.run(RunOptions(profile="smoke", device="cpu", show_progress=False,
                                 executor=executor, jobs=jobs))
    return time.perf_counter() - t0, report


def _run(registry, cache: Path, *, executor: str, jobs: int, ray_cpus: int = 0):
    """One pipeline run from an empty cache: (wall s, start-up s, report)."""
    startup = 0.0
    if executor == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=ray_cpus, include_dashboard=False, logging_level="WARNING")
        startup = time.perf_counter() - t0
    try:
        wall, report = _pipeline_run(registry, cache, executor, jobs)
    finally:
        if executor == "ray":
            import ray

            ray.shutdown()
    return wall, startup, report


def smoke(jobs: int) -> None:
    from genai_report.pipeline import load_registry

    rows = []
    for executor in ("local", "ray"):
        with tempfile.TemporaryDirectory(prefix=f"bench-ray-{executor}-") as tmp:
            wall, startup, report = _run(load_registry(), Path(tmp), executor=executor,
                                         jobs=jobs, ray_cpus=jobs)
            inside = sum(r.wall_time_s for r in report.records.values())
            n = len(report.ran)
            rows.append((executor, n, wall, startup, inside))
    label = f"jobs {jobs}" if jobs > 1 else "one node at a time"
    print(f"\nSmoke profile from an empty cache ({label}):")
    print(f"  {'executor':<9} {'nodes':>5} {'wall s':>8} {'start-up s':>10} "
          f"{'in nodes s':>10} {'overhead s/node':>16}")
    for executor, n, wall, startup, inside in rows:
        over = (wall - inside / jobs) / n if n else float("nan")
        print(f"  {executor:<9} {n:>5} {wall:>8.1f} {startup:>10.1f} {inside:>10.1f} "
              f"{over:>16.3f}")
    (_, n, wl, _, il), (_, _, wr, _, ir) = rows
    print(f"  Ray adds {(wr - wl) / n:.3f} s per node end to end "
          f"({(wr - ir / jobs) / n - (wl - il / jobs) / n:.3f} s of it outside node code).")


def sweep(count: int, seconds: float, slots: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ray-sweep-") as tmp:
        pkg = Path(tmp) / "bench_sweep_nodes.py"
        pkg.write_text(textwrap.dedent(SWEEP_NODES))
        sys.path.insert(0, tmp)
        mod = importlib.import_module("bench_sweep_nodes")
        import ray

        from genai_report.pipeline.registry import Registry

        def registry(n, secs, prefix):
            reg = Registry()
            for node in mod.make_nodes(n, secs, prefix):
                reg.add(node)
            return reg

        print(f"\nSimulated sweep: {count} independent nodes of {seconds:g} s each. Workers "
              "start once per cluster (Python, torch, the package: 'start-up'), then serve "
              "the sweep:")
        print(f"  {'slots':>5} {'start-up s':>10} {'sweep s':>8} {'nodes/s':>8} "
              f"{'speed-up':>9} {'ideal':>6}")
        base = None
        for k in slots:
            ray.init(num_cpus=k, include_dashboard=False, logging_level="WARNING")
            try:
                t0 = time.perf_counter()
                _pipeline_run(registry(k, 0.0, "warm"), Path(tmp) / f"warm-{k}", "ray", 1)
                startup = time.perf_counter() - t0
                wall, report = _pipeline_run(registry(count, seconds, "run"),
                                             Path(tmp) / f"cache-{k}", "ray", 1)
            finally:
                ray.shutdown()
            assert len(report.ran) == count, report.failed
            rate = count / wall
            base = base or rate
            print(f"  {k:>5} {startup:>10.1f} {wall:>8.1f} {rate:>8.2f} {rate / base:>9.2f} "
                  f"{k:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p_smoke = sub.add_parser("smoke", help="local vs Ray on the smoke profile")
    p_smoke.add_argument("--jobs", type=int, default=1)
    p_sweep = sub.add_parser("sweep", help="throughput against worker slots")
    p_sweep.add_argument("--nodes", type=int, default=32)
    p_sweep.add_argument("--seconds", type=float, default=1.0)
    p_sweep.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.mode == "smoke":
        smoke(args.jobs)
    else:
        sweep(args.nodes, args.seconds, args.slots)


if __name__ == "__main__":
    main()
