"""Publish the report as a version of the site with mike.

Examples::

    python scripts/release.py dev                  # main -> version "dev" (quick profile)
    python scripts/release.py 1.2 --push           # tag v1.2 -> "1.2" + alias "latest" (full)
    python scripts/release.py 1.2 --dry-run        # print the commands, run nothing

A release first runs the figure pipeline for its profile (a no-op when the cache already
holds fresh outputs, e.g. restored by CI), reads the provenance of what it built with
``genai-report list --json``, then runs ``mike deploy`` with ``mkdocs-release.yml`` (the site
plus Material's version selector) and records commit, profile and device in the version's
properties in ``versions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION_RE = re.compile(r"^\d+\.\d+$")
DEFAULT_PROFILE = {"dev": "quick", "release": "full"}


class ReleaseError(Exception):
    """A release cannot go ahead; the message says why and what to do."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="release.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("version", help="'dev' or a release 'X.Y'")
    p.add_argument("--profile", choices=("smoke", "quick", "full"), default=None,
                   help="figure profile (default: full for X.Y, quick for dev)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    p.add_argument("--jobs", type=int, default=1,
                   help="nodes trained at once (default 1); a release on one GPU runs 4, the "
                        "concurrency the full profile's estimate is fitted to")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="figure cache (default: $GENAI_REPORT_CACHE_DIR or figures/)")
    p.add_argument("--config-file", default="mkdocs-release.yml",
                   help="MkDocs config with the version selector (default: mkdocs-release.yml)")
    p.add_argument("--push", action="store_true", help="push the gh-pages commit(s)")
    p.add_argument("--remote", default="origin", help="git remote to push to (default: origin)")
    p.add_argument("--branch", default="gh-pages", help="branch mike commits to (gh-pages)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--allow-dirty", action="store_true",
                   help="publish from a checkout with uncommitted changes (local previews "
                        "only: the published commit would not describe the site)")
    return p


def _run(cmd: list[str], *, env: dict[str, str], dry_run: bool, capture: bool = False) -> str:
    print("+ " + shlex.join(cmd), flush=True)
    if dry_run:
        return ""
    out = subprocess.run(cmd, cwd=ROOT, env=env, text=True,
                         stdout=subprocess.PIPE if capture else None)
    if out.returncode != 0:
        raise ReleaseError(f"`{shlex.join(cmd)}` failed with exit status {out.returncode}; "
                           "see its output above.")
    return out.stdout or ""


def git_commit(root: Path = ROOT) -> str:
    """The checkout's commit (12 hex digits), ``+dirty`` with uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ReleaseError(f"Cannot read the git commit of {root} ({exc}). Run the release "
                           "from a git checkout of the project.") from None
    return f"{sha}+dirty" if dirty else sha


def provenance(rows: list[dict], profile: str, commit: str) -> dict[str, str]:
    """Version properties from ``genai-report list --json`` rows of a finished build.

    Raises:
        ReleaseError: a node is stale or unbuilt (the site would not show what it claims).
    """
    stale = [f"{r['name']} ({r['reason']})" for r in rows if r["state"] != "fresh"]
    if stale:
        raise ReleaseError(f"{len(stale)} node(s) are not fresh for profile '{profile}' after "
                           f"the figure run: {', '.join(stale)}. Run `genai-report figures "
                           f"--profile {profile}` and release again.")
    devices = sorted({r["device"] for r in rows if r.get("device")}) or ["none"]
    return {
        "commit": commit,
        "profile": profile,
        "device": ", ".join(devices),
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def deploy_commands(version: str, props: dict[str, str], args: argparse.Namespace,
                    mike: list[str]) -> list[list[str]]:
    """The mike command lines that publish ``version`` with ``props``."""
    git = ["--remote", args.remote, "--branch", args.branch] + (["--push"] if args.push else [])
    prop_args = [a for k, v in props.items() for a in ("--prop-set-string", f"{k}={v}")]
    if version == "dev":
        title = f"dev ({props['commit'][:7]})"
        return [[*mike, "deploy", "--config-file", args.config_file, "--title", title, *git,
                 *prop_args, "dev"]]
    return [
        [*mike, "deploy", "--config-file", args.config_file, "--title", version,
         "--update-aliases", *git, *prop_args, version, "latest"],
        [*mike, "set-default", "--config-file", args.config_file, *git, "latest"],
    ]


def release(args: argparse.Namespace) -> int:
    version = args.version
    if version != "dev" and not VERSION_RE.match(version):
        raise ReleaseError(f"Version '{version}' is neither 'dev' nor MAJOR.MINOR (e.g. 1.2). "
                           "Release tags vX.Y.Z publish as X.Y.")
    if args.jobs < 1:
        raise ReleaseError(f"--jobs must be at least 1, not {args.jobs}.")
    profile = args.profile or DEFAULT_PROFILE["dev" if version == "dev" else "release"]
    if not (ROOT / args.config_file).is_file():
        raise ReleaseError(f"MkDocs config '{args.config_file}' not found in {ROOT}.")
    env = {**os.environ, "GENAI_REPORT_PROFILE": profile, "GENAI_REPORT_DEVICE": args.device,
           "NO_MKDOCS_2_WARNING": "1",
           # mike runs `mkdocs` from PATH: make it this interpreter's (the venv's) one.
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    if args.cache_dir is not None:
        env["GENAI_REPORT_CACHE_DIR"] = str(args.cache_dir.resolve())
    cli = [sys.executable, "-m", "genai_report.cli"]
    mike_script = Path(sys.executable).with_name("mike")
    mike = ([str(mike_script)] if mike_script.is_file()
            else [sys.executable, "-c", "import sys; from mike.driver import main; sys.exit(main())"])
    commit = git_commit()
    if commit.endswith("+dirty") and not args.allow_dirty:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=ROOT, text=True, capture_output=True).stdout
        changed = ", ".join(line[3:] for line in status.splitlines() if line)
        raise ReleaseError(
            f"The checkout has uncommitted changes to tracked files ({changed[:300]}): a "
            "published version names its commit, which would not describe it. Commit or "
            "stash them and release again (or pass --allow-dirty for a local preview).")
    # 1. Figures: only what is stale runs (nothing, with a restored cache).
    _run([*cli, "figures", "--profile", profile, "--device", args.device, "--no-progress",
          *(["--jobs", str(args.jobs)] if args.jobs != 1 else [])],
         env=env, dry_run=args.dry_run)
    # 2. Provenance of what the site will show.
    listing = _run([*cli, "list", "--json", "--profile", profile, "--device", args.device],
                   env=env, dry_run=args.dry_run, capture=True)
    if args.dry_run:
        props = {"commit": commit, "profile": profile, "device": "<from the build>",
                 "built": "<now>"}
    else:
        props = provenance(json.loads(listing), profile, commit)
    # 3. Deploy.
    for cmd in deploy_commands(version, props, args, mike):
        _run(cmd, env=env, dry_run=args.dry_run)
    where = f"{args.remote}/{args.branch}" if args.push else f"local branch {args.branch}"
    print(f"{'Would publish' if args.dry_run else 'Published'} version {version} "
          f"({', '.join(f'{k}={v}' for k, v in props.items())}) to {where}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return release(args)
    except ReleaseError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
