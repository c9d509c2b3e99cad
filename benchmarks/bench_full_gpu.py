"""The ``full`` profile on a real GPU, measured, and compared with the dry run's estimate.

Three modes:

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

``dry``: the cheapest check of the whole estimate, for a GPU lent for a few minutes. It
dry-runs on the GPU (``genai-report figures --profile full --dry-run --device cuda``: the
full-size models with their loops cut, each step timed to the GPU's end) the nodes that the
committed CPU estimate predicts over ``--over-s`` seconds, at most ``--budget-s`` seconds
(then stops, and estimates the nodes that finished), and prints, node by node, the CPU
estimate against the GPU's extrapolated timing, and the per-operator overhead that fits the
timed loops::

    python benchmarks/bench_full_gpu.py dry --gpu h200 --jobs 4 --over-s 60 -o gpu-dry.json
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


def _fit_overhead(ops: list[float], seconds: list[float]) -> float:
    """Seconds per operator: the least-squares slope through the origin of each loop's
    seconds per step (its FLOPs' share taken out) against its operators per step."""
    return sum(x * y for x, y in zip(ops, seconds, strict=True)) / sum(x * x for x in ops)


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from genai_report.cli import main; "
            "sys.exit(main())", *argv]


def dry(args: argparse.Namespace) -> int:
    """Dry-run the slow nodes on the GPU within the budget; compare with the CPU estimate."""
    committed = json.loads(Path(args.estimate).read_text())
    chosen = sorted((n for n, e in committed["nodes"].items() if e["gpu_full_s"] > args.over_s),
                    key=lambda n: -committed["nodes"][n]["gpu_full_s"])
    if not chosen:
        print(f"No node of {args.estimate} is predicted over {args.over_s:.0f} s.")
        return 1
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="genai-report-gpu-dry-"))
    base = ["figures", "--profile", "full", "--dry-run", "--device", args.device,
            "--gpu", args.gpu, "--jobs", str(args.jobs), "--no-progress",
            "--scratch", str(scratch), "--estimate-out", args.output]
    cmd = _cli(*base, *[a for n in chosen for a in ("--only", n)])
    print(f"$ {' '.join(cmd[3:])}  ({len(chosen)} nodes)", flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        proc.wait(timeout=args.budget_s)
    except subprocess.TimeoutExpired:
        # SIGINT: finished nodes stay in the scratch cache; estimate those alone (fresh,
        # so nothing runs again).
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait()
        done = sorted(r.parent.name for r in (scratch / "full").glob("*/record.json"))
        print(f"Stopped at the budget; estimating the {len(done)} node(s) that finished.",
              flush=True)
        if not done:
            return 1
        subprocess.run(_cli(*base, *[a for n in done for a in ("--only", n)]), cwd=ROOT)
    if not Path(args.output).is_file():
        print(f"No estimate was written to {args.output}.")
        return 1
    timed = json.loads(Path(args.output).read_text())
    from genai_report.pipeline.dryrun import gpu_class

    gpu = gpu_class(committed["gpu"])
    where = timed.get("timed_on") or "a CPU, counted"  # --device cpu: a smoke test
    print(f"\nthe committed CPU estimate against the dry run on {where}")
    print(f"{'node':34} {'CPU est. s':>10} {'dry run s':>11} {'ratio':>6}")
    fit_x, fit_y, pairs = [], [], []
    for name, e in sorted(timed["nodes"].items(), key=lambda kv: -kv[1]["gpu_full_s"]):
        cpu = committed["nodes"].get(name, {}).get("gpu_full_s")
        if cpu is None:
            continue
        pairs.append((cpu, e["gpu_full_s"]))
        print(f"{name:34} {cpu:10.0f} {e['gpu_full_s']:11.0f} "
              f"{cpu / e['gpu_full_s'] if e['gpu_full_s'] else float('nan'):6.2f}")
        for loop in e["loops"]:
            if loop.get("gpu_ops_per_step") and loop.get("cpu_s_per_step"):
                fit_x.append(loop["gpu_ops_per_step"])
                fit_y.append(loop["cpu_s_per_step"] - gpu.flop_seconds(loop["flops_per_step"] or 0))
    if pairs:
        c, t = sum(a for a, _ in pairs), sum(b for _, b in pairs)
        print(f"{len(pairs)} node(s): CPU estimate {c:.0f} s, this dry run {t:.0f} s "
              f"(ratio {c / t:.2f}); schedule with {timed['schedule']['jobs']} at once "
              f"{timed['schedule']['predicted_s']:.0f} s")
    if fit_x:
        print(f"per-operator overhead that fits {len(fit_x)} timed loop(s): "
              f"{_fit_overhead(fit_x, fit_y) * 1e6:.1f} us (the class assumes "
              f"{gpu.op_overhead_us} us)")
    return 0


def compare(args: argparse.Namespace) -> int:
    """Print measured against predicted, per node and per loop, and the overhead fit."""
    from genai_report.pipeline.dryrun import gpu_class

    measured = json.loads(Path(args.measured).read_text())
    est = json.loads(Path(args.estimate).read_text())
    gpu = gpu_class(est["gpu"])
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
                fit_y.append(loop["cpu_s_per_step"] - gpu.flop_seconds(loop["flops_per_step"]))
    if pairs:
        m_sum, p_sum = sum(m for m, _ in pairs), sum(p for _, p in pairs)
        ratios = [p / m for m, p in pairs if m > 1]
        print(f"{len(pairs)} node(s): measured {m_sum:.0f} s, estimated {p_sum:.0f} s "
              f"(ratio {p_sum / m_sum:.2f}; per node median {statistics.median(ratios):.2f})")
        rm, rp = sum(m for m, _ in rests), sum(p for _, p in rests)
        print(f"outside the optimiser steps: measured {rm:.0f} s, estimated {rp:.0f} s")
    if fit_x:
        print(f"per-operator overhead that fits {len(fit_x)} measured loop(s): "
              f"{_fit_overhead(fit_x, fit_y) * 1e6:.1f} us")
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
    p_dry = sub.add_parser("dry", help="dry-run the slow nodes on the GPU, timed")
    p_dry.add_argument("--estimate", default=str(ROOT / "benchmarks/results/dry-run-full.json"),
                       help="the CPU dry run's estimate (default: the committed one)")
    p_dry.add_argument("--over-s", type=float, default=60.0,
                       help="dry-run the nodes it predicts over this (default 60 s)")
    p_dry.add_argument("--budget-s", type=float, default=420)
    p_dry.add_argument("--device", default="cuda")
    p_dry.add_argument("--gpu", default="h100", help="the GPU class of the busy-time model")
    p_dry.add_argument("--jobs", type=int, default=4)
    p_dry.add_argument("--scratch", default=None)
    p_dry.add_argument("-o", "--output", default="gpu-dry.json")
    args = parser.parse_args()
    return {"run": run, "compare": compare, "dry": dry}[args.mode](args)


if __name__ == "__main__":
    raise SystemExit(main())
