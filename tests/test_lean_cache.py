"""Model files stay out of git: a checkout without them is fresh, and restores them (from a
cache archive, or by re-running under the same key) only when a node that reads them runs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from genai_report.pipeline import ConfigError, Pipeline, RunOptions
from genai_report.pipeline.archive import MANIFEST, pack, pull
from genai_report.pipeline.store import is_cache_only

ROOT = Path(__file__).resolve().parents[1]

NODES = '''
"""base writes a model file (cache-only) that plot reads; note only reads data.json."""
import json
from dataclasses import dataclass

from genai_report.pipeline.registry import Node


@dataclass(frozen=True)
class P:
    n: int = 1


def base(ctx, p):
    ctx.output("model.pt").write_bytes(bytes(range(256)) * (p.n + 3))
    ctx.output("data.json").write_text(json.dumps({{"n": p.n}}))
    return {{"train_time_s": 1.5}}


def plot(ctx, p):
    size = len(ctx.input("base", "model.pt").read_bytes())
    ctx.output("plot.svg").write_text(f"<svg>{{size}} {VERSION}</svg>")


def note(ctx, p):
    n = json.loads(ctx.input("base", "data.json").read_text())["n"]
    ctx.output("note.svg").write_text(f"<svg>{{n}}</svg>")


def make_nodes():
    params = {{"smoke": P(1), "quick": P(2), "full": P(3)}}
    return [
        Node("base", base, "artifact", params, ("model.pt", "data.json")),
        Node("plot", plot, "figure", params, ("plot.svg",), deps=("base",), alt="a plot"),
        Node("note", note, "figure", params, ("note.svg",), deps=("base",), alt="a note"),
    ]
'''


@pytest.fixture
def project(fake_project):
    fake_project.write("nodes.py", NODES.replace("{VERSION}", "v1").format())
    return fake_project


def _pipe(fake, tmp_path) -> Pipeline:
    return Pipeline(fake.registry(), cache_dir=tmp_path / "cache", root=tmp_path)


def _run(pipe, **kw):
    return pipe.run(RunOptions(profile="smoke", device="cpu", show_progress=False, **kw))


def _drop_model_files(pipe) -> Path:
    """What a fresh clone has: everything but the cache-only files."""
    model = pipe.store.entry_dir("smoke", "base") / "model.pt"
    model.unlink()
    return model


def test_model_files_are_cache_only_and_figures_are_not():
    assert is_cache_only("model.pt") and is_cache_only("samples.pt")
    assert not any(map(is_cache_only, ("plot.svg", "eval.json", "record.json", "a.ipynb")))


def test_a_checkout_without_model_files_is_fresh_and_builds_nothing(project, tmp_path):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    _drop_model_files(pipe)
    status = {s.node.name: s for s in pipe.status("smoke")}
    assert all(s.fresh for s in status.values())
    assert status["base"].missing == ("model.pt",)
    assert _run(pipe).ran == []


def test_a_node_that_reads_a_missing_model_re_runs_its_input_first(project, tmp_path, caplog):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    model = _drop_model_files(pipe)
    project.write("nodes.py", NODES.replace("{VERSION}", "v2").format())  # plot's code changed
    pipe = _pipe(project, tmp_path)
    with caplog.at_level("INFO"):
        report = _run(pipe)
    assert report.ran == ["base", "plot"]
    assert "Re-running base" in caplog.text and "model files are kept out of git" in caplog.text
    assert model.is_file()
    # Same key, same bytes: the re-run is observed as reproducible and note stays fresh.
    assert pipe.store.read_record("smoke", "base").reproducible is True
    assert "note" not in report.ran and _run(pipe).ran == []


def test_pack_and_pull_restore_model_files_verified_by_hash(project, tmp_path):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    archive = tmp_path / "cache-smoke.tar.gz"
    assert pack(pipe.store, "smoke", archive) == 1
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [MANIFEST, "base/model.pt"]
    model = _drop_model_files(pipe)
    got = pull(pipe.store, "smoke", str(archive))
    assert got.restored == ["base/model.pt"] and model.is_file()
    assert pull(pipe.store, "smoke", archive.as_uri()).present == ["base/model.pt"]


def test_a_tampered_archive_is_never_used(project, tmp_path):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    good = tmp_path / "good.tar.gz"
    pack(pipe.store, "smoke", good)
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(good) as src, tarfile.open(bad, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "base/model.pt":
                data = b"not the model" + data[13:]
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    model = _drop_model_files(pipe)
    got = pull(pipe.store, "smoke", str(bad))
    assert got.mismatched == ["base/model.pt"] and not model.exists()
    assert not list(model.parent.glob(".*tmp"))  # nothing half-written left behind


def test_the_runner_pulls_from_the_archive_instead_of_re_running(project, tmp_path):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    archive = tmp_path / "cache-smoke.tar.gz"
    pack(pipe.store, "smoke", archive)
    _drop_model_files(pipe)
    project.write("nodes.py", NODES.replace("{VERSION}", "v2").format())
    report = _run(_pipe(project, tmp_path), cache_url=str(archive))
    assert report.ran == ["plot"]


def test_an_unreachable_archive_falls_back_to_re_running(project, tmp_path, caplog):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    _drop_model_files(pipe)
    project.write("nodes.py", NODES.replace("{VERSION}", "v2").format())
    with caplog.at_level("WARNING"):
        report = _run(_pipe(project, tmp_path), cache_url=str(tmp_path / "nowhere.tar.gz"))
    assert report.ran == ["base", "plot"]
    assert "nowhere.tar.gz does not exist" in caplog.text


def test_pack_refuses_an_incomplete_cache_and_pull_names_a_bad_archive(project, tmp_path):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    _drop_model_files(pipe)
    with pytest.raises(ConfigError, match="base/model.pt is missing.*--only base --force"):
        pack(pipe.store, "smoke", tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz").exists()
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(ConfigError, match="Cannot read cache archive .*junk.tar.gz"):
        pull(pipe.store, "smoke", str(junk))
    _run(pipe, only=("base",), force=True)
    pack(pipe.store, "smoke", tmp_path / "s.tar.gz")
    with pytest.raises(ConfigError, match="holds the 'smoke' profile, not 'quick'"):
        pull(pipe.store, "quick", str(tmp_path / "s.tar.gz"))


def test_materialize_completes_a_cache_for_packing(project, tmp_path):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    model = _drop_model_files(pipe)
    report = _run(pipe, materialize=True)
    assert report.ran == ["base"] and model.is_file()
    assert pack(pipe.store, "smoke", tmp_path / "a.tar.gz") == 1
    assert _run(pipe, materialize=True).ran == []


def test_git_holds_no_model_files_of_the_committed_outputs():
    tracked = subprocess.run(["git", "ls-files", "figures/quick"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    assert [t for t in tracked if is_cache_only(t)] == []
    records = [json.loads((ROOT / t).read_text()) for t in tracked if t.endswith("record.json")]
    assert any(is_cache_only(o) for r in records for o in r["outputs"])  # they are recorded


def test_committed_outputs_stay_small():
    tracked = subprocess.run(["git", "ls-files", "figures/quick"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    size = sum((ROOT / t).stat().st_size for t in tracked if (ROOT / t).is_file())
    assert size <= 8 * 2**20, f"committed quick outputs are {size / 2**20:.1f} MB (goal <= 8 MB)"



def test_with_several_jobs_missing_inputs_are_restored_as_tasks_of_their_own(
        project, tmp_path, caplog):
    pipe = _pipe(project, tmp_path)
    _run(pipe)
    model = _drop_model_files(pipe)
    project.write("nodes.py", NODES.replace("{VERSION}", "v2").format())
    pipe = _pipe(project, tmp_path)
    with caplog.at_level("INFO"):
        report = _run(pipe, jobs=2)
    assert report.ran == ["base", "plot"] and model.is_file()
    # base went through the scheduler (a worker, a progress line), not inline.
    assert "Running base (smoke, cpu): restoring model.pt, which plot needs" in caplog.text
    assert "model files are kept out of git" in caplog.text
    assert "base" not in report.fresh and "note" not in report.ran
    assert pipe.store.read_record("smoke", "base").reproducible is True
    assert _run(pipe, jobs=2).ran == []


UNREPRODUCIBLE = '''
import json
import os
from dataclasses import dataclass

from genai_report.pipeline.registry import Node


@dataclass(frozen=True)
class P:
    n: int = 1


def base(ctx, p):
    ctx.output("model.pt").write_bytes(os.urandom(64))  # training that is not reproducible
    ctx.output("data.json").write_text(json.dumps({{"n": p.n}}))


def note(ctx, p):
    n = json.loads(ctx.input("base", "data.json").read_text())["n"]
    ctx.output("note.svg").write_text(f"<svg>{{n}}</svg>")


def plot(ctx, p):
    size = len(ctx.input("base", "model.pt").read_bytes())
    ctx.output("plot.svg").write_text(f"<svg>{{size}} {VERSION}</svg>")


def make_nodes():
    params = {{"smoke": P(1), "quick": P(2), "full": P(3)}}
    return [
        Node("base", base, "artifact", params, ("model.pt", "data.json")),
        Node("a-note", note, "figure", params, ("note.svg",), deps=("base",), alt="a note"),
        Node("z-plot", plot, "figure", params, ("plot.svg",), deps=("base",), alt="a plot"),
    ]
'''


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_restore_that_writes_other_bytes_leaves_nothing_stale(fake_project, tmp_path, jobs):
    """`a-note` is judged fresh before `z-plot` asks for base's model; restoring it writes
    other bytes, so `a-note` (whose key holds them) must run again in the same run."""
    fake_project.write("nodes.py", UNREPRODUCIBLE.replace("{VERSION}", "v1").format())
    pipe = _pipe(fake_project, tmp_path)
    _run(pipe)
    _drop_model_files(pipe)
    fake_project.write("nodes.py", UNREPRODUCIBLE.replace("{VERSION}", "v2").format())
    pipe = _pipe(fake_project, tmp_path)
    report = _run(pipe, jobs=jobs)
    assert report.rewritten == ["base"]
    assert sorted(report.ran) == ["a-note", "base", "z-plot"]
    assert not set(report.fresh) & set(report.ran)
    assert all(s.fresh for s in pipe.status("smoke")), [
        (s.node.name, s.reason) for s in pipe.status("smoke") if not s.fresh]


THREADED = '''
from dataclasses import dataclass

import torch

from genai_report.pipeline.registry import Node


@dataclass(frozen=True)
class P:
    n: int = 1


def base(ctx, p):
    # What a CPU training's bytes depend on: how many threads split its sums.
    ctx.output("model.pt").write_text(f"trained with {{torch.get_num_threads()}} threads")


def plot(ctx, p):
    text = ctx.input("base", "model.pt").read_text()
    ctx.output("plot.svg").write_text(f"<svg>{{text}} {VERSION}</svg>")


def make_nodes():
    params = {{"smoke": P(1), "quick": P(2), "full": P(3)}}
    return [
        Node("base", base, "artifact", params, ("model.pt",)),
        Node("plot", plot, "figure", params, ("plot.svg",), deps=("base",), alt="a plot"),
    ]
'''


@pytest.fixture
def torch_threads():
    """Sets this process's torch thread count; gives the old one back after the test."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_restore_on_the_cpu_uses_the_recorded_thread_count(fake_project, tmp_path, jobs,
                                                              torch_threads, caplog):
    """A model trained with one thread count and restored with another would come out other
    bytes and re-run everything that reads it; the restore runs with the recorded count."""
    import torch

    recorded = (os.cpu_count() or 1) // 2 + 1  # neither a local worker's share nor the driver's
    fake_project.write("nodes.py", THREADED.replace("{VERSION}", "v1").format())
    pipe = _pipe(fake_project, tmp_path)
    torch_threads(recorded)
    _run(pipe)
    assert pipe.store.read_record("smoke", "base").threads == recorded
    _drop_model_files(pipe)
    fake_project.write("nodes.py", THREADED.replace("{VERSION}", "v2").format())
    pipe = _pipe(fake_project, tmp_path)
    torch_threads(recorded + 1)
    with caplog.at_level("INFO"):
        report = _run(pipe, jobs=jobs)
    assert report.ran == ["base", "plot"] and report.rewritten == []
    assert f"with the {recorded} threads it was recorded with" in caplog.text
    record = pipe.store.read_record("smoke", "base")
    assert record.reproducible is True and record.threads == recorded
    assert torch.get_num_threads() == recorded + 1  # the driver's own count is given back


def test_a_new_run_uses_its_own_thread_count_and_records_it(fake_project, tmp_path,
                                                             torch_threads):
    fake_project.write("nodes.py", THREADED.replace("{VERSION}", "v1").format())
    pipe = _pipe(fake_project, tmp_path)
    torch_threads(1)
    _run(pipe)
    # base's code changed: a new key, so its own run, not a restore of the recorded one
    fake_project.write("nodes.py", THREADED.replace("{VERSION}", "v1").format().replace(
        "trained with", "fit with"))
    pipe = _pipe(fake_project, tmp_path)
    torch_threads(2)
    assert _run(pipe).ran == ["base", "plot"]
    record = pipe.store.read_record("smoke", "base")
    assert record.threads == 2 and record.reproducible is None
    model = pipe.store.entry_dir("smoke", "base") / "model.pt"
    assert model.read_text() == "fit with 2 threads"


def test_a_re_run_explains_other_bytes_by_the_thread_counts():
    from genai_report.pipeline.runner import _threads_note
    from genai_report.pipeline.store import Record

    def rec(threads, device="cpu"):
        return Record(node="n", kind="artifact", key="k", profile="smoke", device_kind=device,
                      device=device, seed=0, torch="2", git_commit="c", created="t",
                      wall_time_s=1.0, threads=threads)

    assert "predates thread counts" in _threads_note(rec(None), rec(2))
    assert "recorded with 1 threads, re-run with 2" in _threads_note(rec(1), rec(2))
    assert "even with the same 2 threads" in _threads_note(rec(2), rec(2))
    assert _threads_note(rec(2, "cuda"), rec(2, "cuda")) == ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
