"""The figure pipeline: keys, staleness, atomic outputs, failures, interruption, locking."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from genai_report.pipeline import (
    ConfigError,
    LockBusyError,
    Pipeline,
    PipelineFailedError,
    RunOptions,
    UnknownNameError,
    keys,
    resolve_settings,
)
from genai_report.pipeline.registry import Node, Registry

ROOT = Path(__file__).resolve().parents[1]


def _pipeline(fake, tmp_path, **overrides):
    return Pipeline(fake.registry(**overrides), cache_dir=tmp_path / "cache", root=tmp_path)


def _run(pipe, **kw):
    kw.setdefault("profile", "smoke")
    kw.setdefault("device", "cpu")
    kw.setdefault("show_progress", False)
    return pipe.run(RunOptions(**kw))


def _fresh(pipe, profile="smoke"):
    return {s.node.name: s.fresh for s in pipe.status(profile)}


def test_first_run_builds_everything_then_nothing(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    first = _run(pipe)
    assert sorted(first.ran) == ["base", "other", "plot"]
    second = _run(pipe)
    assert second.ran == [] and sorted(second.fresh) == ["base", "other", "plot"]
    rec = pipe.store.read_record("smoke", "plot")
    assert rec.metrics == {"doubled": 2, "nested": {"list": [1.5, 2.5]}}
    assert rec.profile == "smoke" and rec.device_kind == "cpu" and rec.seed == 0
    assert rec.inputs["base"] == pipe.store.read_record("smoke", "base").output_hashes()
    assert {"key", "git_commit", "torch", "wall_time_s", "created"} <= set(json.loads(
        (pipe.store.entry_dir("smoke", "plot") / "record.json").read_text()))


def test_editing_an_imported_module_makes_exactly_its_users_stale(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    _run(pipe)
    fake_project.write("unrelated.py", "X = 2\n")
    (tmp_path / "page.md").write_text("# edited prose\n")
    pipe = _pipeline(fake_project, tmp_path)
    assert all(_fresh(pipe).values())

    fake_project.write("lib.py", "SCALE = 3\n\ndef value(x):\n    return x * SCALE\n")
    pipe = _pipeline(fake_project, tmp_path)
    status = {s.node.name: s for s in pipe.status("smoke")}
    # Every node lives in nodes.py, which imports lib (inside base): all three see the
    # change through their shared module; the reason names the module that changed.
    assert "lib" in status["base"].reason
    report = _run(pipe)
    assert "base" in report.ran and "plot" in report.ran
    assert pipe.store.read_record("smoke", "plot").metrics["doubled"] == 3


def test_key_covers_params_profile_device_and_torch(fake_project, tmp_path):
    reg = fake_project.registry()
    node = reg.get("other")

    def key(**kw):
        args = {"profile": "smoke", "device_kind": "cpu", "dep_keys": {}, "root": tmp_path}
        args.update(kw)
        return keys.key_parts(node, **args).digest()

    base = key()
    assert key(profile="quick") != base
    assert key(device_kind="cuda") != base
    changed = Registry()
    changed.add(fake_project.registry(n=5).get("other"))
    assert keys.key_parts(changed.get("other"), profile="smoke", device_kind="cpu",
                          dep_keys={}, root=tmp_path).digest() != base
    parts = keys.key_parts(node, profile="smoke", device_kind="cpu", dep_keys={}, root=tmp_path)
    assert parts.torch == keys.torch_release() and "+" not in parts.torch


def test_data_files_are_part_of_the_key(fake_project, tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text("hello")
    node = fake_project.registry().get("other")
    node = Node(**{**node.__dict__, "data": ("corpus.txt",)})
    k1 = keys.key_parts(node, profile="smoke", device_kind="cpu", dep_keys={}, root=tmp_path)
    data.write_text("hello, world")
    keys.clear_caches()
    k2 = keys.key_parts(node, profile="smoke", device_kind="cpu", dep_keys={}, root=tmp_path)
    assert k1.digest() != k2.digest()
    data.unlink()
    with pytest.raises(FileNotFoundError, match="corpus.txt"):
        keys.key_parts(node, profile="smoke", device_kind="cpu", dep_keys={}, root=tmp_path)


def test_code_closure_follows_imports_without_importing(tmp_path):
    from genai_report.pipeline import load_registry

    node = load_registry().get("foundations-density")
    modules = {entry.split(":")[0] for entry, _ in keys.code_closure(node)}
    assert "genai_report.models.gmm" in modules  # imported inside a function
    assert "genai_report.plotting.style" in modules  # via reset_plotting -> apply_style
    # The pipeline's machinery is left out; the context and seeding a node runs are in.
    assert {m for m in modules if m.startswith("genai_report.pipeline")} == {
        "genai_report.pipeline.context"}
    # Listing nodes and deciding what is stale (keys include data files found by callables)
    # must not import heavy libraries: that is what keeps a no-op build fast.
    code = ("import sys; from pathlib import Path; "
            "from genai_report.pipeline import Pipeline, load_registry; "
            "Pipeline(load_registry(), Path('figures'), Path('.')).status('quick'); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'numpy', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", "listing and staleness must not import heavy libraries"


def test_a_failing_figure_keeps_its_previous_output_and_fails_once(fake_project, tmp_path, monkeypatch):
    pipe = _pipeline(fake_project, tmp_path)
    _run(pipe)
    good = (pipe.store.entry_dir("smoke", "plot") / "plot.svg").read_bytes()
    fake_project.write("lib.py", "SCALE = 4\n\ndef value(x):\n    return x * SCALE\n")
    monkeypatch.setenv("FAKE_FAIL", "plot")
    pipe = _pipeline(fake_project, tmp_path)
    with pytest.raises(PipelineFailedError) as err:
        _run(pipe)
    assert list(err.value.failures) == ["plot"]
    assert "plot exploded on purpose" in str(err.value) and "--- plot ---" in str(err.value)
    assert (pipe.store.entry_dir("smoke", "plot") / "plot.svg").read_bytes() == good
    # The others ran despite the failure.
    assert pipe.store.read_record("smoke", "base").metrics["v"] == 4
    assert not list((tmp_path / "cache" / "smoke").glob(".staging-*"))


def test_dependents_of_a_failed_node_are_skipped(fake_project, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "base")
    pipe = _pipeline(fake_project, tmp_path)
    report = pipe.run(RunOptions(profile="smoke", device="cpu", show_progress=False),
                      raise_on_failure=False)
    assert list(report.failed) == ["base"]
    assert "plot" in report.skipped and "base" in report.skipped["plot"]
    assert report.ran == ["other"]


def test_interrupted_run_leaves_nothing_half_written_and_resumes(fake_project, tmp_path, monkeypatch):
    pipe = _pipeline(fake_project, tmp_path)
    monkeypatch.setenv("FAKE_INTERRUPT", "plot")
    with pytest.raises(KeyboardInterrupt):
        _run(pipe)
    assert pipe.store.read_record("smoke", "base") is not None
    assert not pipe.store.entry_dir("smoke", "plot").exists()
    assert not list((tmp_path / "cache" / "smoke").glob(".staging-*"))
    monkeypatch.delenv("FAKE_INTERRUPT")
    report = _run(pipe)
    assert "base" in report.fresh and "plot" in report.ran


def test_recover_after_a_kill_mid_swap(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    _run(pipe)
    profile_dir = tmp_path / "cache" / "smoke"
    # A kill between "rename old aside" and "rename new in": only .old- remains.
    os.replace(profile_dir / "plot", profile_dir / ".old-plot-abc123")
    # A kill while a node was writing: a stray staging folder.
    (profile_dir / ".staging-other-def456").mkdir()
    (profile_dir / ".staging-other-def456" / "other.svg").write_text("<svg>half")
    report = _run(pipe)
    assert report.ran == []  # the old entry was restored whole
    assert not list(profile_dir.glob(".staging-*")) and not list(profile_dir.glob(".old-*"))


def test_corrupted_output_is_detected_and_rebuilt(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    _run(pipe)
    (pipe.store.entry_dir("smoke", "base") / "data.json").write_text('{"v": 999}')
    status = {s.node.name: s for s in pipe.status("smoke")}
    assert not status["base"].fresh and "hash" in status["base"].reason
    assert not status["plot"].fresh  # downstream waits for the rebuilt input
    report = _run(pipe)
    # base is rebuilt; its new bytes equal the ones plot consumed, so plot is reused.
    assert report.ran == ["base"] and "plot" in report.fresh
    assert json.loads((pipe.store.entry_dir("smoke", "base") / "data.json").read_text())["v"] == 2
    (pipe.store.entry_dir("smoke", "other") / "record.json").write_text("{not json")
    assert "other" in _run(pipe).ran


def test_rebuilt_input_makes_dependents_stale_even_with_same_key(fake_project, tmp_path, monkeypatch):
    pipe = _pipeline(fake_project, tmp_path)
    _run(pipe)
    monkeypatch.setenv("FAKE_SALT", "different bytes, same key")
    _run(pipe, only=("base",), force=True)
    status = {s.node.name: s for s in pipe.status("smoke")}
    assert status["base"].fresh
    assert not status["plot"].fresh and status["plot"].reason == "input 'base' changed"
    assert _run(pipe).ran == ["plot"]


def test_second_build_gets_a_clear_lock_error(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    (tmp_path / "cache").mkdir()
    with FileLock(str(tmp_path / "cache" / ".lock")):
        with pytest.raises(LockBusyError, match="Another genai-report build is running"):
            _run(pipe)
    assert _run(pipe).ran  # free again


def test_only_and_force(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    report = _run(pipe, only=("plot",))
    assert report.ran == ["base", "plot"]  # other not selected
    report = _run(pipe, only=("plot",), force=True)
    assert report.ran == ["plot"] and report.fresh == ["base"]
    with pytest.raises(UnknownNameError, match="Did you mean 'plot'"):
        _run(pipe, only=("plto",))


def test_parallel_jobs_give_the_same_results(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    report = _run(pipe, jobs=2)
    assert sorted(report.ran) == ["base", "other", "plot"]
    assert pipe.store.read_record("smoke", "plot").metrics["doubled"] == 2


def test_a_worker_process_killed_mid_node_is_reported_and_the_run_goes_on(
        fake_project, tmp_path, monkeypatch):
    pipe = _pipeline(fake_project, tmp_path)
    monkeypatch.setenv("FAKE_KILL", "other")
    report = pipe.run(RunOptions(profile="smoke", device="cpu", show_progress=False, jobs=2),
                      raise_on_failure=False)
    assert "died without an exception" in report.failed["other"]
    assert "out-of-memory killer" in report.failed["other"]
    # Every node is accounted for: a node in flight beside it may fail with it, the others
    # ran on a fresh pool.
    assert set(report.ran) | set(report.failed) | set(report.skipped) == {"base", "other", "plot"}
    assert pipe.store.read_record("smoke", "other") is None
    assert not [p for p in pipe.store.profile_dir("smoke").iterdir()
                if p.name.startswith(".staging-")]
    monkeypatch.delenv("FAKE_KILL")
    again = pipe.run(RunOptions(profile="smoke", device="cpu", show_progress=False, jobs=2))
    assert "other" in again.ran and again.ok


def test_a_pool_broken_before_its_failure_is_collected_still_takes_new_nodes():
    """The race CI met: a worker dies while the driver is about to submit the next node."""
    import concurrent.futures as cf

    from genai_report.pipeline.runner import _ProcessExecutor

    executor = _ProcessExecutor(1)
    try:
        dying = executor._pool.submit(os._exit, 1)  # the worker vanishes, like a SIGKILL
        with pytest.raises(cf.process.BrokenProcessPool):
            dying.result(timeout=120)
        # The broken pool refuses work; the executor moves the task to a fresh pool, where
        # it runs (and fails on its own terms: this task names no node).
        future = executor.submit({}, {})
        assert isinstance(future.exception(timeout=120), KeyError)
    finally:
        executor.shutdown(cancel=True)


def test_bad_settings_name_the_valid_values(monkeypatch):
    with pytest.raises(ConfigError, match="Did you mean 'quick'.*smoke, quick, full"):
        RunOptions(profile="quik")
    with pytest.raises(ConfigError, match="Valid devices: auto, cpu, cuda, mps"):
        RunOptions(device="tpu")
    with pytest.raises(ConfigError, match="jobs"):
        RunOptions(jobs=0)
    monkeypatch.setenv("GENAI_REPORT_PROFILE", "fulll")
    with pytest.raises(ConfigError, match=r"\$GENAI_REPORT_PROFILE.*Did you mean 'full'"):
        resolve_settings("quick", "auto")
    monkeypatch.setenv("GENAI_REPORT_PROFILE", "full")
    monkeypatch.setenv("GENAI_REPORT_DEVICE", "cpu")
    assert resolve_settings("quick", "auto") == ("full", "cpu")


def test_cuda_requested_but_absent_is_a_clear_error(fake_project, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    pipe = _pipeline(fake_project, tmp_path)
    with pytest.raises(ConfigError, match="sees no CUDA GPU.*--device auto"):
        _run(pipe, device="cuda")
    assert not pipe.store.entry_dir("smoke", "base").exists()


def test_auto_device_accepts_entries_built_on_another_device(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    _run(pipe, device="cpu")
    assert all(s.fresh for s in pipe.status("smoke", "auto"))
    forced = {s.node.name: s for s in pipe.status("smoke", "cuda")}
    assert not forced["base"].fresh and "cuda requested" in forced["base"].reason


def test_registry_validation_messages(fake_project):
    reg = fake_project.registry()
    node = reg.get("other")
    bad = Registry()
    with pytest.raises(ConfigError, match="exactly the profiles"):
        bad.add(Node(**{**node.__dict__, "params": {"smoke": 1}}))
    with pytest.raises(ConfigError, match="without alt text"):
        bad.add(Node(**{**node.__dict__, "alt": ""}))
    with pytest.raises(ConfigError, match="Invalid node name"):
        bad.add(Node(**{**node.__dict__, "name": "Bad Name"}))
    bad.add(Node(**{**node.__dict__, "deps": ("nope",)}))
    with pytest.raises(ConfigError, match="unknown node 'nope'"):
        bad.check_dependencies()


def test_undeclared_output_is_an_error(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    node = pipe.registry.get("other")
    pipe.registry.nodes["other"] = Node(**{**node.__dict__, "outputs": ("other.svg", "more.svg")})
    with pytest.raises(PipelineFailedError, match="without writing its declared output"):
        _run(pipe, only=("other",))


def test_clean_removes_entries(fake_project, tmp_path):
    pipe = _pipeline(fake_project, tmp_path)
    _run(pipe)
    removed = pipe.store.clean("smoke", keep={"base", "plot"})
    assert [p.name for p in removed] == ["other"]
    shutil.rmtree(tmp_path / "cache")
    assert pipe.store.clean() == []


def test_keys_do_not_depend_on_where_the_checkout_or_venv_lives(fake_project, tmp_path):
    shipped = tmp_path / "site-packages" / "pkg" / "data.csv"
    shipped.parent.mkdir(parents=True)
    shipped.write_text("1,2,3\n")
    node = fake_project.registry().get("other")
    node = Node(**{**node.__dict__, "data": (lambda: shipped,)})
    inside = keys.key_parts(node, profile="smoke", device_kind="cpu", dep_keys={}, root=tmp_path)
    elsewhere = keys.key_parts(node, profile="smoke", device_kind="cpu", dep_keys={},
                               root=tmp_path / "another-checkout")
    assert inside.data == elsewhere.data == (("data.csv", keys.file_digest(shipped)),)
    assert inside.digest() == elsewhere.digest()
