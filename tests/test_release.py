"""scripts/release.py: versioned deploys with mike into a scratch git repository.

The release workflow (.github/workflows/release.yml) calls this script; these tests run it
against a throw-away repository with a bare "origin", on a small site that inherits the
real ``mkdocs-release.yml`` and with the smoke profile's figure cache (so the figure step
has nothing to run and the provenance comes from real records).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMALL_MKDOCS = """\
site_name: release test
theme:
  name: material
  font: false
plugins:
  - search
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def make_scratch_repo(base: Path) -> tuple[Path, Path]:
    """A git checkout holding a small site, release.py and mkdocs-release.yml, and its
    bare ``origin``. Returns ``(checkout, origin)``."""
    origin = base / "origin.git"
    repo = base / "checkout"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    # The project as a clone has it (the figure step needs its code and data files), with
    # a two-page site in place of the report so that each deploy builds in seconds.
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split("\0")
    for rel in filter(None, listed):
        if rel.startswith(("figures/", "docs/")) or not (ROOT / rel).is_file():
            continue
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    (repo / "docs" / "chapter").mkdir(parents=True)
    (repo / "docs" / "index.md").write_text("# Home\n\nSee [the chapter](chapter/index.md).\n")
    (repo / "docs" / "chapter" / "index.md").write_text("# A chapter\n\nText.\n")
    (repo / "mkdocs.yml").write_text(SMALL_MKDOCS)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "release-test@example.invalid")
    git(repo, "config", "user.name", "release test")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "scratch")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    return repo, origin


def release(repo: Path, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    for var in ("GENAI_REPORT_PROFILE", "GENAI_REPORT_DEVICE", "GENAI_REPORT_CACHE_DIR"):
        env.pop(var, None)
    extra = ["--cache-dir", str(cache)] if cache else []
    return subprocess.run(
        [sys.executable, "scripts/release.py", *args, *extra], cwd=repo, env=env,
        capture_output=True, text=True, timeout=600,
    )


@pytest.fixture
def scratch(tmp_path):
    return make_scratch_repo(tmp_path)


def test_dry_run_prints_the_commands_and_changes_nothing(scratch):
    repo, _ = scratch
    out = release(repo, "1.2", "--dry-run", "--push")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("+ ")]
    assert "genai_report.cli figures --profile full --device auto" in lines[0]
    deploy = next(line for line in lines if " deploy " in line)
    assert "--config-file mkdocs-release.yml" in deploy and "--update-aliases" in deploy
    assert deploy.endswith(" 1.2 latest") and "--push" in deploy
    assert "--prop-set-string profile=full" in deploy and "commit=" in deploy
    assert any(" set-default " in line and line.endswith(" latest") for line in lines)
    assert "Would publish version 1.2" in out.stdout
    assert "gh-pages" not in git(repo, "branch", "--list")


def test_a_release_can_train_several_nodes_at_once(scratch):
    repo, _ = scratch
    out = release(repo, "1.2", "--dry-run", "--jobs", "4")
    assert out.returncode == 0, out.stderr
    figures = next(line for line in out.stdout.splitlines() if " figures " in line)
    assert figures.endswith("--no-progress --jobs 4")
    bad = release(repo, "1.2", "--dry-run", "--jobs", "0")
    assert bad.returncode == 2 and "--jobs must be at least 1, not 0" in bad.stderr


def test_dev_defaults_to_the_quick_profile(scratch):
    repo, _ = scratch
    out = release(repo, "dev", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "--profile quick" in out.stdout
    deploy = next(line for line in out.stdout.splitlines() if " deploy " in line)
    assert deploy.endswith(" dev") and "latest" not in deploy and "--push" not in deploy


@pytest.mark.parametrize("version", ["1.2.3", "v1.2", "latest", ""])
def test_a_bad_version_is_refused_with_the_valid_forms(scratch, version):
    repo, _ = scratch
    out = release(repo, version, "--dry-run")
    assert out.returncode == 2
    assert f"Version '{version}' is neither 'dev' nor MAJOR.MINOR" in out.stderr


def test_a_checkout_with_uncommitted_changes_is_not_published(scratch):
    repo, _ = scratch
    readme = repo / "README.md"
    readme.write_text(readme.read_text() + "\nAn edit nobody committed.\n")
    out = release(repo, "1.2", "--dry-run")
    assert out.returncode == 2
    assert "uncommitted changes to tracked files (README.md)" in out.stderr
    assert "Commit or stash them" in out.stderr
    preview = release(repo, "1.2", "--dry-run", "--allow-dirty")
    assert preview.returncode == 0, preview.stderr
    assert "+dirty" in preview.stdout


def test_a_missing_release_config_is_named(scratch):
    repo, _ = scratch
    out = release(repo, "dev", "--dry-run", "--config-file", "nope.yml")
    assert out.returncode == 2 and "MkDocs config 'nope.yml' not found" in out.stderr


def test_dev_then_release_publish_versions_with_provenance(scratch, smoke_cache):
    repo, origin = scratch
    head = git(repo, "rev-parse", "--short=12", "HEAD").strip()

    dev = release(repo, "dev", "--profile", "smoke", "--push", cache=smoke_cache)
    assert dev.returncode == 0, dev.stdout[-3000:] + dev.stderr[-3000:]
    rel = release(repo, "0.1", "--profile", "smoke", "--push", cache=smoke_cache)
    assert rel.returncode == 0, rel.stdout[-3000:] + rel.stderr[-3000:]
    assert "Running " not in rel.stderr  # the figure step reused the cache

    # What was pushed to origin's gh-pages.
    versions = json.loads(git(origin, "show", "gh-pages:versions.json"))
    by_name = {v["version"]: v for v in versions}
    assert set(by_name) == {"dev", "0.1"}
    assert by_name["0.1"]["aliases"] == ["latest"] and by_name["dev"]["aliases"] == []
    for v in by_name.values():
        props = v["properties"]
        assert props["commit"] == head
        assert props["profile"] == "smoke"
        assert props["device"] == "cpu"
        assert props["built"].endswith("+00:00")
    tree = git(origin, "ls-tree", "-r", "--name-only", "gh-pages").split()
    for path in ("dev/index.html", "0.1/index.html", "0.1/chapter/index.html",
                 "latest", "index.html"):  # "latest" is a symlink to 0.1
        assert path in tree, path
    assert "latest/" in git(origin, "show", "gh-pages:index.html")  # default redirect
    page = git(origin, "show", "gh-pages:0.1/index.html")
    assert re.search(r'"provider":\s*"mike"', page)  # Material's version selector is on

    # Releasing 0.2 moves "latest" to it.
    again = release(repo, "0.2", "--profile", "smoke", "--push", cache=smoke_cache)
    assert again.returncode == 0, again.stderr[-3000:]
    versions = {v["version"]: v for v in json.loads(git(origin, "show", "gh-pages:versions.json"))}
    assert versions["0.2"]["aliases"] == ["latest"] and versions["0.1"]["aliases"] == []


def test_without_push_nothing_leaves_the_checkout(scratch, smoke_cache):
    repo, origin = scratch
    out = release(repo, "dev", "--profile", "smoke", cache=smoke_cache)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "gh-pages" in git(repo, "branch", "--list")
    assert "gh-pages" not in git(origin, "branch", "--list")


def test_cache_key_used_by_the_workflows_is_stable_and_follows_the_profile():
    """The workflows restore figures/<profile> under `genai-report cache-key`."""
    def key(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "genai_report.cli", "cache-key", *args],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    smoke = key("--profile", "smoke")
    assert len(smoke) >= 16 and smoke.isalnum()
    assert key("--profile", "smoke") == smoke
    assert key("--profile", "quick") != smoke
    assert key("--profile", "full", "--device-kind", "cuda") != key("--profile", "full")
