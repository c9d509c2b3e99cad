"""Two dry runs' estimates of the ``full`` profile, side by side.

Each file is what ``genai-report figures --profile full --dry-run --estimate-out FILE``
wrote (for instance ``benchmarks/results/dry-run-full.json`` before and after a change to
the step meter or to some nodes, or the CPU's estimate against a dry run timed on a GPU,
``--device cuda``, which checks the cost model node by node). Prints the predicted totals (in the optimiser loops and
outside them), the nodes over the per-node goal in each, and the nodes whose prediction
moved most, with their loops and rest::

    python benchmarks/compare_dry_runs.py old.json new.json --top 30
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        sys.exit(f"Cannot read the estimate file {path}: {exc}. Write one with "
                 "`genai-report figures --profile full --dry-run --estimate-out FILE`.")
    if "nodes" not in data:
        sys.exit(f"{path} is no dry run's estimate file (no 'nodes').")
    return data


def _parts(node: dict) -> tuple[float, float, float]:
    """(total, loops, rest) predicted for one node, in seconds on the GPU class."""
    rest = float(node.get("other_gpu_s", node.get("other_s", 0.0)))
    total = float(node["gpu_full_s"])
    return total, total - rest, rest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="the earlier estimate file")
    parser.add_argument("new", type=Path, help="the later estimate file")
    parser.add_argument("--top", type=int, default=25, help="nodes listed (slowest in new)")
    args = parser.parse_args(argv)
    old, new = _load(args.old), _load(args.new)
    budget = float(new.get("node_budget_s", 240.0))
    print(f"# {args.old} -> {args.new} (GPU class {new.get('gpu_name', new.get('gpu'))})")
    for label, data in (("old", old), ("new", new)):
        parts = [_parts(n) for n in data["nodes"].values()]
        over = sum(t > budget for t, _, _ in parts)
        basis = (f"timed on {data['timed_on']}" if data.get("timed_on")
                 else "counted on a CPU, costed by the GPU class")
        print(f"{label} ({basis}): {len(parts)} nodes, {len(data.get('failed', []))} failed; "
              f"predicted {sum(t for t, _, _ in parts):.0f} s "
              f"({sum(t for t, _, _ in parts) / 60:.1f} min): loops "
              f"{sum(lp for _, lp, _ in parts):.0f} s, rest {sum(r for _, _, r in parts):.0f} s; "
              f"{over} node(s) over {budget:.0f} s; dry run wall {data.get('dry_run_wall_s')} s")
        plan = data.get("schedule")
        if plan:  # estimate files from before the schedule have none
            print(f"     with {plan['jobs']} nodes at once on the GPU: {plan['predicted_s']:.0f} s "
                  f"({plan['predicted_s'] / 60:.1f} min; list schedule {plan['wall_s']:.0f} s, "
                  f"longest chain {plan['chain_s']:.0f} s, GPU busy {plan['busy_s']:.0f} s)")
    print(f"\n# Slowest {args.top} nodes in new, and what moved (seconds)")
    print(f"{'node':38} {'old':>7} {'new':>7} {'loops':>7} {'rest':>7}  {'rest old':>8}")
    rows = sorted(new["nodes"].items(), key=lambda kv: -kv[1]["gpu_full_s"])
    for name, node in rows[: args.top]:
        total, loops, rest = _parts(node)
        before = old["nodes"].get(name)
        o_total, _, o_rest = _parts(before) if before else (float("nan"),) * 3
        print(f"{name:38} {o_total:7.0f} {total:7.0f} {loops:7.0f} {rest:7.0f}  {o_rest:8.0f}")
    moved = sorted(((name, _parts(n)[0] - _parts(old["nodes"][name])[0])
                    for name, n in new["nodes"].items() if name in old["nodes"]),
                   key=lambda kv: -abs(kv[1]))
    print("\n# Largest changes (new - old, seconds)")
    for name, delta in moved[:15]:
        print(f"{name:38} {delta:+8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
