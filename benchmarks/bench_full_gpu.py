"""The ``full`` profile on a real GPU, measured, and compared with the dry run's estimate.

Two modes:

``run``: runs ``genai-report figures --profile full --device cuda --meter`` in a scratch
cache for at most ``--budget-s`` seconds (then interrupts it: finished nodes stay, the
node in flight is discarded), and writes one JSON file with, per finished node, its wall
time, device and what the step meter saw (seconds per optimiser step, operators and FLOPs
per step, peak GPU memory)::

    python benchmarks/bench_full_gpu.py run --budget-s 480 --jobs 4 -o h200.json

``compare``: reads that file and a dry run's estimate (``genai-report figures --profile
full --dry-run --gpu h200 --estimate-out est.json``) and prints, per node and per
optimiser loop, the measured and the predicted times, the ratio, the time outside the
optimiser steps (sampling, evaluation, plotting) measured and predicted, and the per-operator
overhead that fits the measured steps best (least squares of
``s_per_step - flops / sustained = ops * overhead``); that fit is how the GPU classes'
``op_overhead_us`` in :mod:`genai_report.pipeline.dryrun` was set::

    python benchmarks/bench_full_gpu.py compare h200.json est.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(args: argparse.Namespace) -> int:
    """Run the full profile on the GPU within the budget and write the results file."""
    scratch = Path(args.cache_dir or tempfile.mkdtemp(prefix="genai-report-full-gpu-"))
    cmd = [sys.executable, "-c", "import sys; from genai_report.cli import main; "
           "sys.exit(main())", "figures", "--profile", args.profile, "--device", args.device,
           "--meter", "--no-progress", "--jobs", str(args.jobs), "--cache-dir", str(scratch)]
    for name in args.only:
        cmd += ["--only", name]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    print("$", " ".join(cmd), flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        status = proc.wait(timeout=args.budget_s)
        stopped = False
    except subprocess.TimeoutExpired:
        # SIGINT: the pipeline discards the node in flight and keeps the finished ones.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
        stopped = True
    wall = time.perf_counter() - started
    nodes = {}
    for record in sorted((scratch / args.profile).glob("*/record.json")):
        data = json.loads(record.read_text())
        nodes[data["node"]] = {k: data.get(k) for k in (
            "wall_time_s", "device", "torch", "created", "key", "usage", "metrics")}
    import torch

    result = {
        "profile": args.profile,
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else args.device,
        "torch": torch.__version__,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
        "budget_s": args.budget_s,
        "stopped_at_budget": stopped,
        "exit_status": status,
        "wall_s": round(wall, 1),
        "nodes": nodes,
    }
    Path(args.output).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    total = sum(n["wall_time_s"] for n in nodes.values())
    print(f"{len(nodes)} node(s) finished in {wall:.0f} s wall with {args.jobs} job(s) "
          f"(sum of node times {total:.0f} s){'; stopped at the budget' if stopped else ''}. "
          f"Wrote {args.output}.")
    return 0


def compare(args: argparse.Namespace) -> int:
    """Print measured against predicted, per node and per loop, and the overhead fit."""
    from genai_report.pipeline.dryrun import gpu_class

    measured = json.loads(Path(args.measured).read_text())
    est = json.loads(Path(args.estimate).read_text())
    gpu = gpu_class(est["gpu"])
    sustained = gpu.fp32_tflops * 1e12 * gpu.efficiency
    print(f"measured on {measured['device']} ({measured['jobs']} job(s) at once); "
          f"estimated for {gpu.name} (op overhead {gpu.op_overhead_us} us)")
    print(f"{'node':34} {'measured s':>10} {'estimated s':>11} {'ratio':>6} "
          f"{'rest measured':>13} {'rest est.':>9}")
    pairs, rests, fit_x, fit_y = [], [], [], []
    for name, node in sorted(measured["nodes"].items(), key=lambda kv: -kv[1]["wall_time_s"]):
        e = est["nodes"].get(name)
        if e is None:
            continue
        m, p = node["wall_time_s"], e["gpu_full_s"]
        pairs.append((m, p))
        loops = (node.get("usage") or {}).get("loops", [])
        # The work outside the optimiser steps: the node's wall time less its steps' time.
        rest_m = max(0.0, m - sum(lp.get("measured_s") or 0.0 for lp in loops))
        rest_p = e.get("other_gpu_s", e["other_s"])
        rests.append((rest_m, rest_p))
        print(f"{name:34} {m:10.1f} {p:11.1f} {p / m if m else float('nan'):6.2f} "
              f"{rest_m:13.1f} {rest_p:9.1f}")
        for loop in loops:
            if loop.get("ops_per_step") and loop.get("cpu_s_per_step") and loop["steps"] > 20:
                # On the GPU, the meter's seconds per step are the GPU run's own.
                fit_x.append(loop["ops_per_step"])
                fit_y.append(loop["cpu_s_per_step"] - loop["flops_per_step"] / sustained)
    if pairs:
        m_sum, p_sum = sum(m for m, _ in pairs), sum(p for _, p in pairs)
        ratios = [p / m for m, p in pairs if m > 1]
        print(f"{len(pairs)} node(s): measured {m_sum:.0f} s, estimated {p_sum:.0f} s "
              f"(ratio {p_sum / m_sum:.2f}; per node median {statistics.median(ratios):.2f})")
        rm, rp = sum(m for m, _ in rests), sum(p for _, p in rests)
        print(f"outside the optimiser steps: measured {rm:.0f} s, estimated {rp:.0f} s")
    if fit_x:
        overhead = sum(x * y for x, y in zip(fit_x, fit_y, strict=True)) / sum(
            x * x for x in fit_x)
        print(f"per-operator overhead that fits {len(fit_x)} measured loop(s): "
              f"{overhead * 1e6:.1f} us")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p_run = sub.add_parser("run", help="run the full profile on the GPU")
    p_run.add_argument("--budget-s", type=float, default=480)
    p_run.add_argument("--profile", default="full")
    p_run.add_argument("--device", default="cuda")
    p_run.add_argument("--jobs", type=int, default=4)
    p_run.add_argument("--only", action="append", default=[])
    p_run.add_argument("--cache-dir", default=None)
    p_run.add_argument("-o", "--output", default="full-gpu.json")
    p_cmp = sub.add_parser("compare", help="measured against the dry run's estimate")
    p_cmp.add_argument("measured")
    p_cmp.add_argument("estimate")
    args = parser.parse_args()
    return run(args) if args.mode == "run" else compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
