"""Staleness benchmark: what a contributor's edit makes stale, and how long the check takes.

The script copies the tracked files of the checkout (with the committed ``figures/quick``
records) into a scratch folder, applies one edit at a time there, and asks the pipeline in
that copy which nodes are stale against the committed records, as ``genai-report list``
would. For each edit it prints the number of stale nodes, the recorded quick-profile wall
time they would take to re-run, and the first few names with the reason. The goals:

* a comment or docstring edit anywhere: 0 nodes stale;
* a new figure added to an existing module: only the new node;
* an edit inside one model class: only the nodes whose code reaches it;
* a change to the seeding every node runs (``pipeline/context.py``): every node.

It also times the staleness check itself (what a no-op build pays). Run it on a checkout
whose committed quick outputs are fresh::

    python benchmarks/bench_staleness.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NEW_FIGURE = '''

@figure(
    "foundations-new-figure",
    deps=("toy2d-gmm",),
    params={"smoke": CapacityPlot(), "quick": CapacityPlot(), "full": CapacityPlot()},
    outputs=("new.svg",),
    title="A new figure.",
    alt="A new figure added by a contributor.",
)
def new_figure(ctx, p):
    """A figure added to an existing module."""
    ctx.output("new.svg").write_text("<svg/>")
'''


def _edits() -> list[tuple[str, str, callable]]:
    def comment_vae(src: str) -> str:
        return src.replace("class VAEConfig:", "class VAEConfig:\n    # a contributor's comment",
                           1)

    def docstring_gpt(src: str) -> str:
        return src.replace('"""A decoder-only transformer', '"""A decoder-only (causal) transformer',
                           1)

    def docstrings_everywhere(src: str) -> str:
        return src.replace('"""', '"""Edited. ', 1) if src.startswith('"""') else src

    def new_figure(src: str) -> str:
        return src + NEW_FIGURE

    def vae_class_body(src: str) -> str:
        old = "    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:\n"
        assert old in src, "VAE.sample not found: update the benchmark"
        return src.replace(old, old + "        n = int(n)\n", 1)

    def seeding(src: str) -> str:
        old = "    torch.manual_seed(seed)\n"
        assert old in src, "seed_everything not found: update the benchmark"
        return src.replace(old, "    torch.manual_seed(seed + 1)\n", 1)

    return [
        ("comment on a field in models/vae.py", "genai_report/models/vae.py", comment_vae),
        ("docstring on line 1 of models/gpt.py", "genai_report/models/gpt.py", docstring_gpt),
        ("module docstring of every file", "genai_report/**/*.py", docstrings_everywhere),
        ("new figure in figures/foundations.py", "genai_report/figures/foundations.py",
         new_figure),
        ("a line inside VAE.sample (models/vae.py)", "genai_report/models/vae.py",
         vae_class_body),
        ("seeding in pipeline/context.py", "genai_report/pipeline/context.py", seeding),
    ]


STATUS = textwrap.dedent('''
    import json, sys, time
    from pathlib import Path
    t0 = time.perf_counter()
    from genai_report.pipeline import Pipeline, load_registry
    pipe = Pipeline(load_registry(), Path("figures"), Path("."))
    st = pipe.status(sys.argv[1])
    print(json.dumps({"seconds": time.perf_counter() - t0, "stale": [
        {"name": s.node.name, "reason": s.reason,
         "wall": s.record.wall_time_s if s.record else None} for s in st if not s.fresh]}))
''')


def status(copy: Path, profile: str) -> dict:
    """Stale nodes of the copy, computed by the copy's own code in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", STATUS, profile], cwd=copy, capture_output=True,
                         text=True, env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    if out.returncode:
        raise SystemExit(f"The staleness check failed in the copy:\n{out.stderr}")
    return json.loads(out.stdout)


def make_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-staleness-") as tmp:
        copy = Path(tmp)
        make_copy(copy)
        base = status(copy, args.profile)
        print(f"Baseline: {len(base['stale'])} stale of the committed {args.profile} outputs; "
              f"staleness check {base['seconds']:.2f} s (fresh interpreter, all nodes).")
        if base["stale"]:
            print("  (regenerate the committed outputs first for meaningful counts)")
        print(f"\n{'edit':<44} {'stale':>5} {'re-run (s)':>10}  nodes")
        for label, pattern, edit in _edits():
            paths = sorted(copy.glob(pattern)) if "*" in pattern else [copy / pattern]
            saved = {p: p.read_text() for p in paths}
            try:
                for p, src in saved.items():
                    p.write_text(edit(src))
                res = status(copy, args.profile)
            finally:
                for p, src in saved.items():
                    p.write_text(src)
            new = [s for s in res["stale"] if s["name"] not in {b["name"] for b in base["stale"]}]
            wall = sum(s["wall"] or 0 for s in new)
            names = ", ".join(s["name"] for s in new[:4]) + (" ..." if len(new) > 4 else "")
            print(f"{label:<44} {len(new):>5} {wall:>10.0f}  {names}")
            roots = [s for s in new if not s["reason"].startswith("needs ")]
            for s in roots[:2]:
                print(f"{'':<44} {'':>5} {'':>10}    {s['name']}: {s['reason'][:90]}")
        t = time.perf_counter()
        status(copy, args.profile)
        print(f"\nStaleness check of every node: {time.perf_counter() - t:.2f} s wall "
              "(subprocess, imports included).")


if __name__ == "__main__":
    main()
