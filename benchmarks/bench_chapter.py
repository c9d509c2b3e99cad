"""Chapter benchmark: one chapter's figures built from an empty cache, then again, cached.

A chapter is the set of figure nodes whose names start with a prefix (``families-``,
``transformers-``...), together with every node they depend on; several prefixes make one
section of several pages (the figures beyond text and pixels: ``multimodal fields vit
types-audio``). The script runs
``genai-report figures --only ...`` twice in a scratch cache, in a subprocess as a user
would, and prints:

* the clean wall time and the nodes it ran, with each node's own time (slowest first),
* the cached re-run's wall time and the nodes it re-ran (goal: 0).

``--given PREFIX`` (repeatable) first provides, untimed, the dependencies whose names start
with ``PREFIX`` (models another chapter owns, such as the ``digits-`` models that the
applications chapter reuses): their records are copied from this checkout's ``figures/``
where they are fresh, and their model files (which git does not hold) restored, both
untimed; stale ones are built. The clean time is then what the chapter itself adds.

Goals on the 2-core CPU, quick profile: ``families`` within 8 minutes, ``transformers``
within 4. Run it with nothing else busy on the machine::

    python benchmarks/bench_chapter.py families
    python benchmarks/bench_chapter.py transformers --jobs 2
    python benchmarks/bench_chapter.py applications --jobs 2 --given digits-
    python benchmarks/bench_chapter.py multimodal fields vit types-audio --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chapter_nodes(prefixes: list[str]) -> list[str]:
    """Names of the figure nodes of a chapter (named ``prefix`` or ``prefix-...``)."""
    from genai_report.pipeline.registry import load_registry

    nodes = load_registry().nodes
    names = []
    for prefix in prefixes:
        found = sorted(n for n, node in nodes.items()
                       if (n == prefix or n.startswith(f"{prefix}-")) and node.kind == "figure")
        if not found:
            raise SystemExit(f"No figure name starts with '{prefix}-'; see `genai-report list`.")
        names += found
    return names


def dependencies(names: list[str]) -> set[str]:
    """Every node ``names`` depend on, directly or not (``names`` excluded)."""
    from genai_report.pipeline.registry import load_registry

    nodes = load_registry().nodes
    seen: set[str] = set()
    todo = [d for n in names for d in nodes[n].deps]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(nodes[name].deps)
    return seen - set(names)


def run(names: list[str], cache: Path, profile: str, jobs: int,
        materialize: bool = False) -> tuple[float, str]:
    """Build ``names`` (and their dependencies) once; return wall seconds and the log.
    ``materialize``: also restore the model files of fresh entries (git holds none)."""
    cmd = [sys.executable, "-m", "genai_report.cli", "figures", "--profile", profile,
           "--no-progress", "--jobs", str(jobs), *(["--materialize"] if materialize else [])]
    for name in names:
        cmd += ["--only", name]
    env = {**os.environ, "GENAI_REPORT_CACHE_DIR": str(cache)}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(f"The build failed:\n{out.stderr[-4000:]}")
    return wall, out.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", nargs="+",
                        help="node-name prefix(es), e.g. families or transformers")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--given", action="append", default=[], metavar="PREFIX",
                        help="build these dependencies first, untimed (repeatable)")
    args = parser.parse_args()

    names = chapter_nodes(args.chapter)
    given = sorted(d for d in dependencies(names) if d.startswith(tuple(args.given)))
    with tempfile.TemporaryDirectory(prefix="bench-chapter-") as tmp:
        cache = Path(tmp)
        if given:  # copied from this checkout's cache where present, else built
            for name in given:
                src = ROOT / "figures" / args.profile / name
                if src.is_dir():
                    shutil.copytree(src, cache / args.profile / name)
            # Model files are not in git: restore (re-train) them here, untimed, so that the
            # timed build below does not.
            run(given, cache, args.profile, args.jobs, materialize=True)
        before = set((cache / args.profile).glob("*/record.json"))
        clean, _ = run(names, cache, args.profile, args.jobs)
        records = sorted(set((cache / args.profile).glob("*/record.json")) - before)
        times = {r.parent.name: json.loads(r.read_text())["wall_time_s"] for r in records}
        cached, log = run(names, cache, args.profile, args.jobs)
        reran = log.count(" done in ")

    print(f"chapter '{' '.join(args.chapter)}', profile {args.profile}, --jobs {args.jobs}: "
          f"{len(names)} figures, {len(times)} nodes with dependencies")
    if given:
        print(f"given (built first, untimed): {', '.join(given)}")
    print(f"clean build:  {clean:7.1f} s")
    for name, t in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"  {name:32s} {t:7.1f} s")
    print(f"cached build: {cached:7.1f} s, {reran} node(s) re-run")


if __name__ == "__main__":
    main()
