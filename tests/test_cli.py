"""The ``genai-report`` command, in-process: option positions, committed outputs and
``clean``, the custom corpus's own cache, ``list``'s header and summary, device aliases, the
progress estimate, the notebook kernel's channels, and the README's code passing ruff.

(End-to-end versions of the failure modes, as subprocesses, are in tests/test_reliability.py.)
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from genai_report import cli
from genai_report.data import corpora
from genai_report.pipeline import registry as registry_mod
from genai_report.pipeline.errors import ConfigError
from genai_report.pipeline.profiles import validate_device
from genai_report.pipeline.progress import RunProgress, format_left

ROOT = Path(__file__).resolve().parents[1]

NODES = '''
from dataclasses import dataclass

from genai_report.data.corpora import default_corpus_path
from genai_report.pipeline import artifact


@dataclass(frozen=True)
class P:
    n: int = 3


@artifact("reads-corpus", params={"smoke": P(), "quick": P(), "full": P()},
          outputs=("head.txt",), data=(default_corpus_path,))
def reads_corpus(ctx, p):
    from genai_report.data.corpora import load_corpus

    ctx.output("head.txt").write_text(load_corpus(default_corpus_path())[:100])
'''


@pytest.fixture
def project(tmp_path, monkeypatch, caplog):
    """A project root (``mkdocs.yml``) with one node that reads the text corpus, as cwd.

    The node package has a name of its own and registers into a registry of its own, so
    nothing leaks into the report's registry or into other tests.
    """
    name = f"clipkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / name / "nodes").mkdir(parents=True)
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "nodes" / "__init__.py").write_text("")
    (tmp_path / name / "nodes" / "figs.py").write_text(NODES)
    (tmp_path / "mkdocs.yml").write_text("site_name: cli test\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry_mod, "REGISTRY", registry_mod.Registry())
    monkeypatch.setenv(cli.PACKAGES_ENV, f"{name}.nodes")
    for var in ("GENAI_REPORT_PROFILE", "GENAI_REPORT_DEVICE", cli.CACHE_ENV,
                corpora.CORPUS_ENV):
        monkeypatch.setenv(var, "")  # recorded, so that teardown restores what the CLI sets
        monkeypatch.delenv(var)
    caplog.set_level(logging.INFO)
    yield tmp_path
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def corpus_file(folder: Path, text: str = "a corpus of words, " * 100) -> Path:
    path = folder / "mine.txt"
    path.write_text(text)
    return path


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


# -- options before or after the command ------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["--cache-dir", "c", "--corpus", "x.txt", "-v", "figures"],
        ["figures", "--cache-dir", "c", "--corpus", "x.txt", "-v"],
        ["--cache-dir", "elsewhere", "figures", "--cache-dir", "c", "--corpus", "x.txt", "-v"],
    ],
    ids=["before", "after", "after-wins"],
)
def test_global_options_go_before_or_after_the_command(argv):
    args = cli._parser().parse_args(argv)
    assert args.cache_dir == Path("c") and args.corpus == Path("x.txt") and args.verbose


def test_global_options_keep_their_defaults_on_every_command():
    for command in ("figures", "list", "check", "cache-key", "clean"):
        args = cli._parser().parse_args([command])
        assert args.cache_dir is None and args.corpus is None and args.verbose is False


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "genai-report figures --corpus my.txt" in out
    assert "genai-report clean --profile quick --yes" in out
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["clean", "--help"])
    assert "--yes" in capsys.readouterr().out


# -- devices -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("typed", "meant"),
                         [("gpu", "cuda"), ("NVIDIA", "cuda"), ("apple", "mps"), ("cdua", "cuda")])
def test_a_device_people_type_suggests_the_one_they_mean(typed, meant):
    with pytest.raises(ConfigError, match=f"Unknown device '{typed}'. Did you mean '{meant}'?"):
        validate_device(typed)


# -- committed outputs -----------------------------------------------------------------------------
def test_committed_means_tracked_by_git(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git(tmp_path, "init", "-q")
    (tmp_path / "figures" / "quick" / "a").mkdir(parents=True)
    (tmp_path / "figures" / "quick" / "a" / "x.svg").write_text("<svg/>")
    (tmp_path / "figures" / "smoke" / "a").mkdir(parents=True)
    (tmp_path / "figures" / "smoke" / "a" / "x.svg").write_text("<svg/>")
    assert not cli.is_committed(tmp_path / "figures" / "quick", tmp_path)  # not yet added
    git(tmp_path, "add", "figures/quick")
    assert cli.is_committed(tmp_path / "figures" / "quick", tmp_path)
    assert not cli.is_committed(tmp_path / "figures" / "smoke", tmp_path)


def test_without_git_the_default_quick_folder_counts_as_committed(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "no-such-repo"))  # git cannot answer
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert cli.is_committed(tmp_path / "figures" / "quick", tmp_path)
    assert not cli.is_committed(tmp_path / "figures" / "smoke", tmp_path)
    assert not cli.is_committed(tmp_path / "elsewhere" / "quick", tmp_path)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def cache_with_committed_quick(project):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for profile in ("quick", "smoke"):
        entry = project / "figures" / profile / "reads-corpus"
        entry.mkdir(parents=True)
        (entry / "head.txt").write_text(profile)
    git(project, "init", "-q")
    git(project, "add", "figures/quick")
    return project / "figures"


def test_clean_without_a_profile_keeps_committed_outputs(cache_with_committed_quick, capsys,
                                                         caplog):
    assert cli.main(["clean"]) == 0
    assert (cache_with_committed_quick / "quick" / "reads-corpus" / "head.txt").is_file()
    assert not (cache_with_committed_quick / "smoke" / "reads-corpus").exists()
    assert "1 cache entry removed." in capsys.readouterr().out
    assert "Kept" in caplog.text and "committed" in caplog.text


def test_clean_of_committed_outputs_without_a_terminal_needs_yes(cache_with_committed_quick,
                                                                 monkeypatch, caplog):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a terminal: never read
    assert cli.main(["clean", "--profile", "quick"]) == 2
    assert "without confirmation" in caplog.text and "pass --yes" in caplog.text
    assert (cache_with_committed_quick / "quick" / "reads-corpus" / "head.txt").is_file()
    assert cli.main(["clean", "--profile", "quick", "--yes"]) == 0
    assert not (cache_with_committed_quick / "quick" / "reads-corpus").exists()


@pytest.mark.parametrize(("answer", "removed"), [("n\n", False), ("", False), ("yes\n", True)])
def test_clean_of_committed_outputs_asks_in_a_terminal(cache_with_committed_quick, monkeypatch,
                                                        capsys, answer, removed):
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))
    status = cli.main(["clean", "--profile", "quick"])
    out = capsys.readouterr().out
    assert "Remove 1 committed entry in" in out and "[y/N]" in out
    assert (status == 0) == removed
    assert (cache_with_committed_quick / "quick" / "reads-corpus").exists() != removed


def test_clean_of_uncommitted_outputs_does_not_ask(cache_with_committed_quick, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli.main(["clean", "--profile", "smoke"]) == 0
    assert not (cache_with_committed_quick / "smoke" / "reads-corpus").exists()


# -- a custom corpus -----------------------------------------------------------------------------
def test_a_custom_corpus_gets_its_own_cache_named_by_its_hash(project, monkeypatch):
    mine = corpus_file(project)
    corpus = cli._custom_corpus(mine)
    assert corpus == mine.resolve()
    assert corpora.default_corpus_path() == mine.resolve()  # what the nodes read
    sha12 = hashlib.sha256(mine.read_bytes()).hexdigest()[:12]
    assert cli._cache_dir(None, project, corpus) == \
        project / ".cache" / "genai-report" / f"corpus-{sha12}"
    assert cli._cache_dir(Path("/tmp/mine"), project, corpus) == Path("/tmp/mine")
    assert cli._cache_dir(None, project, None) == project / "figures"
    monkeypatch.setenv(cli.CACHE_ENV, "/tmp/env-cache")
    assert cli._cache_dir(None, project, corpus) == Path("/tmp/env-cache")


def test_the_embedded_corpus_is_not_a_custom_one(project):
    assert cli._custom_corpus(Path(corpora.corpus_path("english"))) is None


def test_the_corpus_variable_counts_like_the_option(project, monkeypatch):
    mine = corpus_file(project)
    monkeypatch.setenv(corpora.CORPUS_ENV, str(mine))
    assert cli._custom_corpus(None) == mine.resolve()


def test_a_custom_corpus_never_writes_into_the_committed_cache(project, caplog):
    mine = corpus_file(project)
    assert cli.main(["figures", "--profile", "smoke", "--device", "cpu", "--no-progress",
                     "--corpus", str(mine)]) == 0
    assert not (project / "figures").exists()
    heads = list((project / ".cache" / "genai-report").glob("corpus-*/smoke/reads-corpus/head.txt"))
    assert len(heads) == 1 and heads[0].read_text().startswith("a corpus of words")
    assert "its outputs go to their own cache" in caplog.text
    # Pointing --cache-dir at committed outputs is refused, naming the way out.
    if shutil.which("git") is None:
        return
    (project / "figures" / "quick" / "reads-corpus").mkdir(parents=True)
    (project / "figures" / "quick" / "reads-corpus" / "head.txt").write_text("committed")
    git(project, "init", "-q")
    git(project, "add", "figures")
    caplog.clear()
    assert cli.main(["figures", "--cache-dir", "figures", "--corpus", str(mine),
                     "--device", "cpu", "--no-progress"]) == 2
    assert "A custom corpus never writes into committed outputs" in caplog.text
    assert "Leave out --cache-dir" in caplog.text
    assert (project / "figures" / "quick" / "reads-corpus" / "head.txt").read_text() \
        == "committed"


@pytest.mark.parametrize("content", [b"", b"   \n\n\t  " * 300, b"\x00" * 4096],
                         ids=["empty", "whitespace", "nul"])
def test_a_corpus_without_text_is_refused_before_anything_runs(project, caplog, content):
    mine = project / "blank.txt"
    mine.write_bytes(content)
    assert cli.main(["figures", "--corpus", str(mine), "--no-progress"]) == 2
    assert "blank.txt" in caplog.text
    assert not (project / ".cache").exists() and not (project / "figures").exists()


# -- list ------------------------------------------------------------------------------------------
def _status(name, fresh, wall=None, reason="fresh"):
    record = SimpleNamespace(wall_time_s=wall, device="cpu", device_kind="cpu",
                             reproducible=None, threads=2) if wall is not None else None
    return SimpleNamespace(node=SimpleNamespace(name=name, kind="figure"), fresh=fresh,
                           reason=reason, record=record, missing=())


def test_list_has_a_header_and_a_stale_count(capsys):
    statuses = [_status("a", True, 1.5), _status("bb", False, None, "never built"),
                _status("c", False, 3.0, "code changed: c")]
    cli._print_list(statuses, "smoke", Path("figures/smoke"), as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "profile: smoke (cache figures/smoke)"
    assert re.match(r"\s+NODE\s+KIND\s+LAST RUN\s+STATE$", lines[1])
    assert "stale (never built)" in lines[3]
    assert lines[-1] == ("3 node(s): 1 fresh, 2 stale. Build the stale ones with "
                         "`genai-report figures --profile smoke`.")
    cli._print_list(statuses[:1], "smoke", Path("f"), as_json=False)
    assert capsys.readouterr().out.splitlines()[-1] == "1 node(s): 1 fresh, 0 stale."


# -- progress --------------------------------------------------------------------------------------
def test_time_left_is_written_for_a_person():
    assert format_left(20) == "<1 min left"
    assert format_left(130) == "~2 min left"
    assert format_left(3 * 3600 + 5 * 60) == "~3 h 05 min left"
    assert format_left(130, 2) == "~2 min left (+2 never timed)"
    assert format_left(0, 3) == "time left unknown (3 never timed)"


def test_progress_counts_nodes_and_sums_the_wall_times_still_to_run():
    report = SimpleNamespace(fresh=[], failed={}, skipped={})
    progress = RunProgress({"a": 60.0, "b": 120.0, "c": None, "d": 240.0}, report)
    assert progress.start("a") == ("[1/4]", "; ~7 min left (+1 never timed)")
    report.fresh.append("c")  # its dependency re-ran with identical outputs: fresh after all
    assert progress.start("b") == ("[2/3]", "; ~6 min left")
    report.skipped["d"] = "dependency b failed"
    assert progress.total == 2
    assert progress.start("e") == ("[3/3]", "; time left unknown (1 never timed)")  # unplanned


class _Pipeline:
    """Just what RunProgress.plan asks of a pipeline."""

    def __init__(self, statuses=None):
        self.statuses = statuses
        self.store = SimpleNamespace(read_record=lambda profile, name: (
            SimpleNamespace(wall_time_s=30.0) if name == "a" else None))

    def status(self, profile, device, names):
        if self.statuses is None:
            raise RuntimeError("no status")
        return self.statuses


def test_progress_plans_the_stale_and_forced_nodes_with_their_last_wall_times(caplog):
    caplog.set_level(logging.INFO)
    report = SimpleNamespace(fresh=[], failed={}, skipped={})
    options = SimpleNamespace(profile="quick", device="cpu", only=(), jobs=1)
    statuses = [_status("a", True, 30.0), _status("b", False, 150.0, "code changed: b"),
                _status("c", False, None, "never built")]
    nodes = [s.node for s in statuses]
    progress = RunProgress.plan(_Pipeline(statuses), options, nodes, {"a"}, report)
    assert progress.planned == {"a": 30.0, "b": 150.0, "c": None}
    assert "3 node(s) to run (profile quick): ~3 min by their last wall times " \
        "(+1 never timed)." in caplog.text
    # Without a status (it raised), every node not yet fresh is planned: never a failure.
    report.fresh.append("b")
    progress = RunProgress.plan(_Pipeline(None), options, nodes, set(), report)
    assert progress.planned == {"a": 30.0, "c": None}


def test_progress_divides_the_estimate_between_parallel_jobs():
    progress = RunProgress({"a": 120.0, "b": 120.0}, None, jobs=2)
    assert progress.start("a") == ("[1/2]", "; ~2 min left")


# -- notebooks -------------------------------------------------------------------------------------
def test_a_notebook_kernel_runs_without_the_unencrypted_channel_warning(tmp_path, capfd):
    nbformat = pytest.importorskip("nbformat")
    from genai_report.notebooks import execute_notebook

    source = tmp_path / "t.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]),
                   source)
    assert execute_notebook(source, tmp_path / "out.ipynb", profile="smoke", device="cpu") == 1
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[0].outputs[0]["text"] == "42\n"
    captured = capfd.readouterr()
    assert "without encryption" not in captured.out + captured.err


def test_a_dry_run_cuts_a_notebooks_step_counts_and_nothing_else(tmp_path, monkeypatch):
    """A dry run's node hands the notebook a cap, and cap_steps cuts each step setting to
    its own few steps, as a dry run cuts a node's step fields."""
    nbformat = pytest.importorskip("nbformat")
    from genai_report import notebooks
    from genai_report.notebooks import MAX_STEPS_ENV, cap_steps, execute_notebook

    monkeypatch.setattr(notebooks, "_CAPS", [])
    settings = {"steps": 5000, "sft_steps": 3, "batch": 32, "n_eval": 300, "dpo_steps": 100}
    monkeypatch.delenv(MAX_STEPS_ENV, raising=False)
    assert cap_steps(settings) == settings  # by hand, or any real run: unchanged
    monkeypatch.setenv(MAX_STEPS_ENV, "6")
    assert cap_steps(settings) == {"steps": 6, "sft_steps": 3, "batch": 32, "n_eval": 300,
                                   "dpo_steps": 10}
    monkeypatch.delenv(MAX_STEPS_ENV)
    source = tmp_path / "t.ipynb"
    cell = ("from genai_report.notebooks import cap_steps\n"
            "print(cap_steps({'steps': 5000, 'batch': 32}))")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), source)
    for cap, expected in ((6, "{'steps': 6, 'batch': 32}\n"), (0, "{'steps': 5000, 'batch': 32}\n")):
        execute_notebook(source, tmp_path / "out.ipynb", profile="smoke", device="cpu",
                         max_steps=cap)
        out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
        assert out.cells[0].outputs[0]["text"] == expected
    from genai_report.pipeline.dryrun import dry_params
    from genai_report.pipeline.registry import load_registry

    node = load_registry().get("tutorial-tiny-gpt")
    cut = dry_params(node.params_for("full"), node.dry_run)
    assert cut.params.max_steps == 6 and node.params_for("full").max_steps == 0


def test_a_metered_notebook_hands_its_kernels_loops_to_the_nodes_meter(tmp_path):
    """The node's step meter cannot see into the kernel, so the kernel meters itself and
    hands over its loops, each loop's full length and its rest; the node's own host time
    no longer holds the kernel's work, and the executed notebook shows no trace of it."""
    nbformat = pytest.importorskip("nbformat")
    from genai_report.notebooks import execute_notebook
    from genai_report.pipeline.dryrun import StepMeter, estimate, gpu_class

    cells = ["from genai_report.notebooks import cap_steps\n"
             "S = cap_steps({'steps': 500, 'ft_steps': 80, 'batch': 8})\nprint(S)",
             "import time\nimport torch\n"
             "model = torch.nn.Linear(4, 4)\n"
             "for name in ('steps', 'ft_steps'):\n"
             "    opt = torch.optim.AdamW(model.parameters())\n"
             "    for _ in range(S[name]):\n"
             "        loss = model(torch.randn(S['batch'], 4)).square().mean()\n"
             "        opt.zero_grad()\n"
             "        loss.backward()\n"
             "        time.sleep(0.05)\n"
             "        opt.step()"]
    source = tmp_path / "t.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]),
                   source)
    with StepMeter(count_all=True) as meter:
        assert execute_notebook(source, tmp_path / "out.ipynb", profile="smoke", device="cpu",
                                max_steps=6) == 2
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert [c.source for c in out.cells] == cells  # the meter's cells are gone
    assert out.cells[0].execution_count == 1
    assert out.cells[0].outputs[0]["text"] == "{'steps': 6, 'ft_steps': 8, 'batch': 8}\n"
    summary = meter.summary()
    loops = summary["loops"]
    assert [lp["steps"] for lp in loops] == [6, 8] and loops[0]["params"] == 4 * 4 + 4
    assert loops[0]["ops_per_step"] > 0
    assert summary["planned_steps"] == [500, 80]
    est = estimate("nb", summary, {}, {}, gpu_class("h100"), summary["planned_steps"])
    assert [lp["full_steps"] for lp in est.loops] == [500, 80]
    # 12 of the 14 steps sleep 0.05 s each inside the loops, not in the node's rest
    assert sum(lp["measured_s"] for lp in loops) >= 0.5
    assert summary["rest"]["cpu_s"] < meter.wall_s - 0.5


# -- the README's code passes `make lint` --------------------------------------------------------
def readme_python_blocks() -> list[str]:
    """Every fenced ``python`` block of README.md, dedented (list items indent them)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", text, flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in blocks]


def test_readme_python_snippets_pass_ruff(tmp_path):
    blocks = readme_python_blocks()
    assert blocks, "README.md has no python block"
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.is_file():
        ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    for i, body in enumerate(blocks):
        (tmp_path / f"readme_snippet_{i}.py").write_text(body)
    out = subprocess.run([str(ruff), "check", "--no-cache", "--config",
                          str(ROOT / "pyproject.toml"), str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# -- cache archives ------------------------------------------------------------------------------
def test_pack_then_pull_through_the_command(project, caplog, capsys):
    (project / ".git").mkdir()  # keep find_root here; git is not asked
    assert cli.main(["figures", "--profile", "smoke", "--cache-dir", "c", "--no-progress"]) == 0
    # The corpus node writes no model file, so there is nothing to pack: said plainly.
    assert cli.main(["pack", "--profile", "smoke", "--cache-dir", "c", "-o", "a.tar.gz"]) == 2
    assert "Nothing to pack" in caplog.text and not (project / "a.tar.gz").exists()


def test_pull_names_what_is_missing(project, caplog, monkeypatch):
    monkeypatch.delenv(cli.CACHE_URL_ENV, raising=False)
    assert cli.main(["pull", "--cache-dir", "c"]) == 2
    assert "Name the archive to pull from" in caplog.text and cli.CACHE_URL_ENV in caplog.text
    assert cli.main(["pull", "nowhere.tar.gz", "--cache-dir", "c"]) == 2
    assert "Cache archive nowhere.tar.gz does not exist" in caplog.text


def test_list_says_when_model_files_are_not_in_this_checkout(capsys):
    from genai_report.pipeline.runner import NodeStatus
    from genai_report.pipeline.store import Record

    rec = Record(node="a", kind="artifact", key="k", profile="quick", device_kind="cuda",
                 device="cuda", seed=0, torch="2.13.0", git_commit="x", created="t",
                 wall_time_s=1.0, reproducible=False)
    node = SimpleNamespace(name="a", kind="artifact")
    cli._print_list([NodeStatus(node, True, "fresh", rec, ("model.pt",))], "quick",
                    Path("figures/quick"), as_json=False)
    out = capsys.readouterr().out
    assert "fresh (model files not in this checkout; not bit-reproducible on cuda)" in out
