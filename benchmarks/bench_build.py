"""Build-time benchmark of the real site (issue: the spine).

Prints, for the real site on this machine:

* clean build wall time (every node of the profile trained from an empty cache),
* no-op rebuild wall time, and the nodes it re-ran (goal: 0),
* a Markdown-only edit rebuild wall time and the nodes it re-ran (goal: 0),
* ``mkdocs build`` of the same site with the plugin disabled, for the overhead
  (goal: no-op and Markdown-only rebuilds within 2 s of it).

The docs are copied to a scratch folder (the edit never touches the repository) and the
cache lives there too, unless ``--cache`` points at an existing one (e.g. the committed
``figures/``), in which case the clean build is skipped::

    python benchmarks/bench_build.py                    # full measurement, quick profile
    python benchmarks/bench_build.py --cache figures    # skip the clean build
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(workdir: Path, config: str, env: dict[str, str]) -> tuple[float, int, str]:
    """Run ``mkdocs build`` once; return (wall seconds, nodes re-run, stderr)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-f", config, "-d", str(workdir / "site")],
        cwd=workdir, env=env, capture_output=True, text=True,
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"mkdocs build failed:\n{out.stderr[-4000:]}")
    ran = len(re.findall(r"genai-report: Running ", out.stderr))
    return wall, ran, out.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--cache", type=Path, default=None,
                        help="use this cache (copied) instead of a clean build")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the fast builds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="genai-bench-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "docs", work / "docs")
        shutil.copy(ROOT / "mkdocs.yml", work / "mkdocs.yml")
        config = (ROOT / "mkdocs.yml").read_text()
        if "  - genai-report:\n" not in config:
            sys.exit("mkdocs.yml has no '  - genai-report:' plugin entry to disable.")
        # The same site with only our plugin disabled (every other plugin still runs).
        (work / "nop.yml").write_text(
            config.replace("  - genai-report:\n", "  - genai-report:\n      enabled: false\n", 1)
        )
        cache = work / "cache"
        env = {**os.environ, "GENAI_REPORT_PROFILE": args.profile,
               "GENAI_REPORT_CACHE_DIR": str(cache), "NO_MKDOCS_2_WARNING": "1",
               "PYTHONPATH": str(ROOT)}
        # mkdocstrings reads the package from `paths: [.]`, and nodes read project files
        # (notebooks, corpora) relative to the root: link them into the scratch copy.
        for name in ("genai_report", "tutorials"):
            (work / name).symlink_to(ROOT / name)

        print(f"profile: {args.profile}   cores: {os.cpu_count()}")
        if args.cache:
            shutil.copytree(args.cache, cache)
            print(f"clean build: skipped (cache copied from {args.cache})")
            build(work, "mkdocs.yml", env)  # warm any stale node
        else:
            wall, ran, _ = build(work, "mkdocs.yml", env)
            print(f"clean build:            {wall:8.1f} s   nodes run: {ran}")

        def timed(config: str, edit=None) -> tuple[float, int]:
            walls, runs = [], []
            for _ in range(args.repeat):
                if edit:
                    edit()
                wall, ran, _ = build(work, config, env)
                walls.append(wall)
                runs.append(ran)
            return statistics.median(walls), max(runs)

        page = work / "docs" / "foundations" / "index.md"

        def edit_markdown() -> None:
            page.write_text(page.read_text() + "\nAn edited sentence.\n")

        base, _ = timed("nop.yml")
        noop, noop_ran = timed("mkdocs.yml")
        md, md_ran = timed("mkdocs.yml", edit_markdown)
        print(f"mkdocs build, no plugin:{base:8.1f} s   (median of {args.repeat})")
        print(f"no-op rebuild:          {noop:8.1f} s   nodes re-run: {noop_ran}   "
              f"overhead: {noop - base:+.2f} s")
        print(f"Markdown-only edit:     {md:8.1f} s   nodes re-run: {md_ran}   "
              f"overhead: {md - base:+.2f} s")
        ok = noop_ran == 0 and md_ran == 0 and noop - base < 2 and md - base < 2
        print(f"goal (0 nodes, < 2 s over plain mkdocs): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
