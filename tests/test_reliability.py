"""Reliability of the build, end to end: each test is a row of the README's table
("Reliability of the build"). They drive ``mkdocs build`` and the ``genai-report`` CLI as
subprocesses, on a small site with its own node package (``node_packages``), and check that
each failure gives a clear error naming the thing and the fix, and loses no good output.

(The same failure modes are unit-tested in-process in tests/test_pipeline.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NODES = '''
import os
import time
from dataclasses import dataclass

from genai_report.pipeline import figure


VERSION = 0  # make_stale() bumps it: a change to code both figures run


@dataclass(frozen=True)
class P:
    n: int = 3


@figure("good", params={"smoke": P(), "quick": P(), "full": P()}, outputs=("good.svg",),
        alt="a test image", title="A test figure.")
def good(ctx, p):
    assert VERSION >= 0
    if os.environ.get("REL_FAIL"):
        raise RuntimeError("good exploded on purpose")
    out = ctx.output("good.svg")
    out.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">')
    if os.environ.get("REL_SLEEP"):  # half-written output while the build is killed
        time.sleep(float(os.environ["REL_SLEEP"]))
    out.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                   f'<!-- {os.environ.get("REL_SALT", "")} --></svg>')
    return {"answer": 42.0}


@figure("other", params={"smoke": P(), "quick": P(), "full": P()}, outputs=("other.svg",),
        alt="another test image")
def other(ctx, p):
    assert VERSION >= 0
    ctx.output("other.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5"></svg>')
'''

CONFIG = """
site_name: reliability test
plugins:
  - genai-report:
      profile: smoke
      device: cpu
      cache_dir: cache
      bibliography: refs.bib
      node_packages: [relpkg.nodes]
"""

INDEX = "# Test\n\nThe answer is [[metric:good.answer:.1f]] [@knuth1984].\n\n[[figure:good]]\n"
OTHER = "# Other\n\n[[figure:other]]\n"


@pytest.fixture
def site(tmp_path):
    pkg = tmp_path / "relpkg" / "nodes"
    pkg.mkdir(parents=True)
    (tmp_path / "relpkg" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "figs.py").write_text(NODES)
    (tmp_path / "mkdocs.yml").write_text(CONFIG)
    (tmp_path / "refs.bib").write_text(
        "@article{knuth1984, author={Knuth, Donald E.}, title={Literate Programming}, "
        "journal={The Computer Journal}, year={1984}}\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(INDEX)
    (tmp_path / "docs" / "other.md").write_text(OTHER)
    return tmp_path


def _env(site: Path, extra: dict | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(site), "NO_MKDOCS_2_WARNING": "1"}
    for var in ("GENAI_REPORT_PROFILE", "GENAI_REPORT_DEVICE", "GENAI_REPORT_CACHE_DIR"):
        env.pop(var, None)
    env.update(extra or {})
    return env


def build(site: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=site,
                          capture_output=True, text=True, env=_env(site, env), timeout=300)


def start_build(site: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=site,
                            env=_env(site, env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def cli(*args: str, cache: Path | None = None, env: dict | None = None
        ) -> subprocess.CompletedProcess:
    """Run the real ``genai-report`` command (the project's own nodes)."""
    full = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    for var in ("GENAI_REPORT_PROFILE", "GENAI_REPORT_DEVICE", "GENAI_REPORT_CACHE_DIR"):
        full.pop(var, None)
    full.update(env or {})
    where = ["--cache-dir", str(cache)] if cache else []
    return subprocess.run([sys.executable, "-m", "genai_report.cli", *where, *args], cwd=ROOT,
                          capture_output=True, text=True, env=full, timeout=300)


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (the lock file left out)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def make_stale(site: Path) -> None:
    """Edit code that both figures run (a comment would change no key), so they run again."""
    figs = site / "relpkg" / "nodes" / "figs.py"
    figs.write_text(re.sub(r"^VERSION = \d+", f"VERSION = {time.time_ns()}", figs.read_text(),
                           flags=re.M))


def wait_for_staging(site: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until the build has started writing 'good' (its staging folder exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list((site / "cache" / "smoke").glob(".staging-good-*")):
            return
        if proc.poll() is not None:
            pytest.fail(f"the build ended before the node ran:\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail("the build did not start the node in time")


@pytest.fixture
def built(site):
    """The small site, built once: its cache holds a good entry of each figure."""
    out = build(site)
    assert out.returncode == 0, out.stderr
    return site


def test_a_figure_that_raises_fails_the_build_once_and_keeps_its_previous_output(built):
    before = snapshot(built / "cache")
    make_stale(built)
    out = build(built, {"REL_FAIL": "1"})
    assert out.returncode != 0
    assert "1 node(s) failed; their previous outputs were kept." in out.stderr
    assert "--- good ---" in out.stderr and "good exploded on purpose" in out.stderr
    assert "Fix the error(s) above and run the build again" in out.stderr
    good = {k: v for k, v in before.items() if k.startswith("smoke/good/")}
    assert {k: v for k, v in snapshot(built / "cache").items() if k.startswith("smoke/good/")} \
        == good
    assert (built / "cache" / "smoke" / "other" / "record.json").is_file()  # others still ran
    assert not list((built / "cache" / "smoke").glob(".staging-*"))
    # Fixed: the next build succeeds.
    assert build(built).returncode == 0


def test_a_corrupted_cache_entry_is_detected_by_hash_and_regenerated(built):
    good = built / "cache" / "smoke" / "good" / "good.svg"
    original = good.read_bytes()
    good.write_bytes(b"<svg>garbage")  # same name, wrong bytes
    out = build(built)
    assert out.returncode == 0, out.stderr
    assert "Running good" in out.stderr
    assert "output 'good.svg' does not match its recorded hash (corrupted?)" in out.stderr
    assert "Running other" not in out.stderr
    assert good.read_bytes() == original
    assert (built / "site" / "figures" / "good" / "good.svg").read_bytes() == original
    # A deleted output is caught too.
    good.unlink()
    out = build(built)
    assert out.returncode == 0 and "output 'good.svg' is missing" in out.stderr
    assert good.read_bytes() == original


def test_a_build_killed_mid_way_loses_nothing_and_the_next_run_resumes(built):
    before = snapshot(built / "cache")
    make_stale(built)
    proc = start_build(built, {"REL_SLEEP": "120", "REL_SALT": "new"})
    wait_for_staging(built, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # no cleanup handler runs
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    # The half-written output is only in a staging folder; the good entry is whole.
    assert list((built / "cache" / "smoke").glob(".staging-good-*"))
    after = snapshot(built / "cache")
    assert {k: v for k, v in after.items() if not k.startswith("smoke/.staging-")} == before
    # Run again: the stray staging folder is removed and the node runs to completion.
    out = build(built, {"REL_SALT": "new"})
    assert out.returncode == 0, out.stderr
    assert "Removing unfinished output" in out.stderr and "Running good" in out.stderr
    assert not list((built / "cache" / "smoke").glob(".staging-*"))
    assert "new" in (built / "cache" / "smoke" / "good" / "good.svg").read_text()


def test_two_builds_at_once_the_second_gets_the_lock_message(built):
    before = snapshot(built / "cache")
    make_stale(built)
    first = start_build(built, {"REL_SLEEP": "8", "REL_SALT": "first"})
    try:
        wait_for_staging(built, first)
        second = build(built)
        assert second.returncode != 0
        assert "Another genai-report build is running on this checkout" in second.stderr
        assert str(built / "cache" / ".lock") in second.stderr
        # The fix, as MkDocs users set it: the plugin's option (not the CLI's flag).
        assert "lock_timeout" in second.stderr and "--lock-timeout" not in second.stderr
        out, err = first.communicate(timeout=240)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate()
    assert "first" in (built / "cache" / "smoke" / "good" / "good.svg").read_text()
    assert snapshot(built / "cache")["smoke/other/other.svg"] == before["smoke/other/other.svg"]
    # With lock_timeout the CLI waits instead of failing (the documented fix).
    assert "--lock-timeout" in cli("figures", "--help").stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GENAI_REPORT_PROFILE": "quik"},
         "Unknown profile in $GENAI_REPORT_PROFILE 'quik'. Did you mean 'quick'? "
         "Valid profiles: smoke, quick, full."),
        ({"GENAI_REPORT_DEVICE": "gpu"},
         "Unknown device in $GENAI_REPORT_DEVICE 'gpu'. Did you mean 'cuda'?"),
    ],
)
def test_an_unknown_profile_or_device_is_named_with_the_valid_ones(built, env, message):
    before = snapshot(built / "cache")
    out = build(built, env)
    assert out.returncode != 0 and message in out.stderr
    assert snapshot(built / "cache") == before


def test_an_unknown_profile_or_device_on_the_command_line(tmp_path):
    out = cli("figures", "--profile", "fulll", cache=tmp_path)
    assert out.returncode == 2
    assert "Unknown profile 'fulll'. Did you mean 'full'? Valid profiles: smoke, quick, full." \
        in out.stderr
    out = cli("figures", "--device", "cdua", cache=tmp_path)
    assert out.returncode == 2
    assert "Unknown device 'cdua'. Did you mean 'cuda'?" in out.stderr
    assert "Valid devices: auto, cpu, cuda, mps" in out.stderr
    out = cli("figures", "--device", "gpu", cache=tmp_path)
    assert out.returncode == 2 and "Unknown device 'gpu'. Did you mean 'cuda'?" in out.stderr
    assert not any(tmp_path.iterdir())  # nothing was written


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda(), reason="this machine has CUDA")
def test_cuda_asked_for_but_absent_says_how_to_install_it(built):
    before = snapshot(built / "cache")
    make_stale(built)
    out = build(built, {"GENAI_REPORT_DEVICE": "cuda"})
    assert out.returncode != 0
    assert "Device 'cuda' was requested but torch" in out.stderr
    assert "Install a CUDA build of torch (README, 'GPU users')" in out.stderr
    assert snapshot(built / "cache") == before
    out = cli("figures", "--device", "cuda", "--only", "foundations-density",
              cache=built / "cli-cache")
    assert out.returncode == 2 and "Device 'cuda' was requested" in out.stderr
    assert not list((built / "cli-cache").rglob("*.svg"))


def test_unknown_figure_metric_or_citation_names_page_line_and_fix(built):
    before = snapshot(built / "cache")
    (built / "docs" / "bad.md").write_text(
        "# Bad\n\n[[figure:godo]]\n\n[[metric:good.answr]] and [@knuth1948].\n")
    out = build(built)
    assert out.returncode != 0
    assert "docs/bad.md:3: Unknown figure 'godo'. Did you mean 'good'?" in out.stderr
    assert "docs/bad.md:5: Metric 'good.answr' not found" in out.stderr
    assert "docs/bad.md:5: Unknown citation key 'knuth1948'. Did you mean 'knuth1984'?" \
        in out.stderr
    assert "3 unresolved reference(s)" in out.stderr and "Fix the name" in out.stderr
    assert snapshot(built / "cache") == before


FIND_CORPUS_USERS = """
import json, sys
from pathlib import Path
from genai_report.pipeline import load_registry
missing = Path(sys.argv[1])
users = []
for node in load_registry():
    for spec in node.data:
        try:
            reads = callable(spec) and Path(spec()) == missing
        except Exception:
            reads = False
        if reads:
            users.append([len(node.deps), node.name])
            break
print(json.dumps(sorted(users)))
"""


def test_a_missing_corpus_file_is_named_and_nothing_is_lost(smoke_cache, tmp_path):
    text = pytest.importorskip("genai_report.data.text")
    missing = tmp_path / "no-such-corpus.txt"
    env = {**os.environ, text.CORPUS_ENV: str(missing)}
    # Which nodes read the corpus, asked of a fresh process (the registry as it is now).
    found = subprocess.run([sys.executable, "-c", FIND_CORPUS_USERS, str(missing)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    users = json.loads(found.stdout)
    if not users:
        pytest.skip("no node reads the text corpus")
    name = users[0][1]  # the one with the fewest dependencies
    before = snapshot(smoke_cache / "smoke" / name)
    # The pipeline (as the MkDocs plugin runs it) names the file, the node and the fix.
    out = subprocess.run([sys.executable, "-c", RUN_ONLY, str(smoke_cache), name], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert f"Data file '{missing}' declared by a node does not exist" in out.stderr
    assert "Restore it" in out.stderr and name in out.stderr
    assert snapshot(smoke_cache / "smoke" / name) == before
    # The command line checks the corpus before anything runs.
    out = cli("figures", "--profile", "smoke", "--device", "cpu", "--only", name,
              "--no-progress", cache=smoke_cache, env={text.CORPUS_ENV: str(missing)})
    assert out.returncode == 2
    assert f"Corpus file '{missing}' does not exist" in out.stderr
    assert snapshot(smoke_cache / "smoke" / name) == before


RUN_ONLY = """
import sys
from pathlib import Path
from genai_report.pipeline import Pipeline, PipelineFailedError, RunOptions, load_registry
pipeline = Pipeline(load_registry(), cache_dir=Path(sys.argv[1]), root=Path.cwd())
try:
    pipeline.run(RunOptions(profile="smoke", device="cpu", only=(sys.argv[2],),
                            show_progress=False))
except PipelineFailedError as exc:
    sys.exit(str(exc))
"""


# -- the command line: committed outputs, a custom corpus, progress, pipes ----------------------
CORPUS_NODE = """
from dataclasses import dataclass

from genai_report.data.corpora import default_corpus_path
from genai_report.pipeline import artifact


@dataclass(frozen=True)
class C:
    n: int = 100


@artifact("reads-corpus", params={"smoke": C(), "quick": C(), "full": C()},
          outputs=("head.txt",), data=(default_corpus_path,))
def reads_corpus(ctx, p):
    from genai_report.data.corpora import load_corpus

    ctx.output("head.txt").write_text(load_corpus(default_corpus_path())[:p.n])
"""


def site_cli(site: Path, *args: str, env: dict | None = None, stdin=subprocess.DEVNULL
             ) -> subprocess.CompletedProcess:
    """Run ``genai-report`` in the small site (its root, its own nodes, default cache)."""
    full = _env(site, {"GENAI_REPORT_NODE_PACKAGES": "relpkg.nodes"})
    full.pop("GENAI_REPORT_TEXT_CORPUS", None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "genai_report.cli", *args], cwd=site,
                          capture_output=True, text=True, env=full, timeout=300, stdin=stdin)


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def test_clean_never_removes_committed_outputs_without_confirmation(site):
    for profile in ("quick", "smoke"):
        out = site_cli(site, "figures", "--profile", profile, "--device", "cpu", "--no-progress")
        assert out.returncode == 0, out.stderr
    git(site, "init", "-q")
    git(site, "add", "figures/quick")  # committed, as the report's figures/quick is
    quick = snapshot(site / "figures" / "quick")
    # No profile: every profile but the committed one.
    out = site_cli(site, "clean")
    assert out.returncode == 0, out.stderr
    assert "Kept" in out.stderr and "committed (tracked by git)" in out.stderr
    assert not any((site / "figures" / "smoke").iterdir())
    assert snapshot(site / "figures" / "quick") == quick
    # The committed profile by name, without a terminal to ask in: refused, naming --yes.
    out = site_cli(site, "clean", "--profile", "quick")
    assert out.returncode == 2
    assert "Not removing 2 committed entries in" in out.stderr and "pass --yes" in out.stderr
    assert snapshot(site / "figures" / "quick") == quick
    out = site_cli(site, "clean", "--profile", "quick", "--orphans")  # none: nothing to ask
    assert out.returncode == 0 and "0 cache entries removed." in out.stdout
    # Confirmed.
    out = site_cli(site, "clean", "--profile", "quick", "--yes")
    assert out.returncode == 0 and "2 cache entries removed." in out.stdout
    assert "git checkout --" in out.stderr
    assert not any((site / "figures" / "quick").iterdir())


def test_a_custom_corpus_writes_its_own_cache_never_the_committed_one(site, tmp_path):
    (site / "relpkg" / "nodes" / "corpus.py").write_text(CORPUS_NODE)
    mine = tmp_path / "mine.txt"
    mine.write_text("words of my own corpus. " * 200)
    # The README's command, with the options after the command name, then before it.
    for args in (["figures", "--corpus", str(mine), "--cache-dir", str(tmp_path / "a")],
                 ["--cache-dir", str(tmp_path / "b"), "--corpus", str(mine), "figures"]):
        out = site_cli(site, *args, "--profile", "smoke", "--device", "cpu", "--no-progress")
        assert out.returncode == 0, out.stderr
    for cache in ("a", "b"):
        head = tmp_path / cache / "smoke" / "reads-corpus" / "head.txt"
        assert head.read_text().startswith("words of my own corpus.")
    # Without --cache-dir: a cache of its own, named in the log; figures/ is never touched.
    out = site_cli(site, "figures", "--corpus", str(mine), "--profile", "smoke",
                   "--device", "cpu", "--no-progress")
    assert out.returncode == 0, out.stderr
    own = list((site / ".cache" / "genai-report").glob("corpus-*"))
    assert len(own) == 1 and f"its outputs go to their own cache {own[0]}" in out.stderr
    assert (own[0] / "smoke" / "reads-corpus" / "head.txt").is_file()
    assert not (site / "figures").exists()
    # Progress in the CLI's log: a count of the nodes to run and the time left.
    assert re.search(r"\[1/3\] Running \S+ \(smoke, cpu\): never built; time left unknown",
                     out.stderr)
    assert "[3/3] Running" in out.stderr
    # The variable the option sets is treated the same way.
    out = site_cli(site, "list", "--profile", "smoke",
                   env={"GENAI_REPORT_TEXT_CORPUS": str(mine)})
    assert out.returncode == 0 and "3 node(s): 3 fresh, 0 stale." in out.stdout
    # Asking for the committed cache with a custom corpus is refused.
    (site / "figures" / "smoke" / "good").mkdir(parents=True)
    (site / "figures" / "smoke" / "good" / "good.svg").write_text("<svg/>")
    git(site, "init", "-q")
    git(site, "add", "figures")
    out = site_cli(site, "figures", "--corpus", str(mine), "--cache-dir", "figures",
                   "--profile", "smoke", "--device", "cpu")
    assert out.returncode == 2
    assert "A custom corpus never writes into committed outputs" in out.stderr
    assert (site / "figures" / "smoke" / "good" / "good.svg").read_text() == "<svg/>"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00" * 50_000, "has no text"), (b" \n" * 3000, "has no text"),
     (None, "is 200.0 MB; the limit is 20 MB")],
    ids=["all-nul", "whitespace", "200-MB"],
)
def test_a_corpus_without_text_or_too_large_is_refused_before_anything_runs(
        site, tmp_path, content, message):
    corpus = tmp_path / "corpus.txt"
    if content is None:
        with corpus.open("wb") as fh:  # sparse: never read
            fh.truncate(200_000_000)
    else:
        corpus.write_bytes(content)
    out = site_cli(site, "figures", "--corpus", str(corpus), "--profile", "smoke")
    assert out.returncode == 2
    assert f"Corpus file '{corpus}'" in out.stderr and message in out.stderr
    assert not (site / "figures").exists() and not (site / ".cache").exists()


def test_progress_count_and_time_left_in_mkdocs_build_logs(built):
    make_stale(built)
    out = build(built)
    assert out.returncode == 0, out.stderr
    assert "2 node(s) to run (profile smoke): <1 min by their last wall times." in out.stderr
    assert re.search(r"\[1/2\] Running (good|other) \(smoke, cpu\): .*; <1 min left",
                     out.stderr)
    assert "[2/2] Running" in out.stderr


def test_list_into_a_closed_pipe_ends_without_a_traceback(site):
    proc = subprocess.Popen([sys.executable, "-m", "genai_report.cli", "list"], cwd=site,
                            env=_env(site, {"GENAI_REPORT_NODE_PACKAGES": "relpkg.nodes"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line (as `| head` ends)
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    proc.stderr.close()
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert proc.returncode == 141
    out = site_cli(site, "list")
    assert out.stdout.splitlines()[1].split() == ["NODE", "KIND", "LAST", "RUN", "STATE"]
    assert out.stdout.splitlines()[-1].startswith("2 node(s): 0 fresh, 2 stale.")
