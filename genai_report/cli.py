"""The ``genai-report`` command: run the figure pipeline without MkDocs.

Examples::

    genai-report figures                      # every stale node, quick profile, auto device
    genai-report figures --profile full --device cuda
    genai-report figures --only foundations-density --force
    genai-report list                          # fresh / stale, last wall time
    genai-report check --profile quick         # exit 1 if committed outputs are stale
    genai-report clean --profile smoke
    genai-report cache-key --profile quick     # content hash for a CI cache of figures/

Environment: GENAI_REPORT_PROFILE, GENAI_REPORT_DEVICE, GENAI_REPORT_CACHE_DIR, and
GENAI_REPORT_NODE_PACKAGES (comma-separated packages that register nodes; default
genai_report.artifacts,genai_report.figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from genai_report.pipeline import (
    PROFILES,
    ConfigError,
    Pipeline,
    PipelineError,
    PipelineFailedError,
    RunOptions,
    load_registry,
    resolve_settings,
)
from genai_report.pipeline.profiles import DEVICES
from genai_report.pipeline.registry import NODE_PACKAGES

log = logging.getLogger("genai_report")

CACHE_ENV = "GENAI_REPORT_CACHE_DIR"
PACKAGES_ENV = "GENAI_REPORT_NODE_PACKAGES"


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder upwards holding ``mkdocs.yml``, else the cwd."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "mkdocs.yml").is_file():
            return folder
    return here


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genai-report", description="Build the report's figures (the figure pipeline)."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--cache-dir", type=Path, default=None,
        help=f"cache folder (default: ${CACHE_ENV} or <project root>/figures)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def settings(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", default=None,
                       help=f"one of {', '.join(PROFILES)} (default: $GENAI_REPORT_PROFILE "
                       "or quick)")
        p.add_argument("--device", default=None,
                       help=f"one of {', '.join(DEVICES)} (default: $GENAI_REPORT_DEVICE or auto)")

    p_fig = sub.add_parser("figures", help="run every stale node")
    settings(p_fig)
    p_fig.add_argument("--only", action="append", default=[], metavar="NAME",
                       help="run only this node and its stale dependencies (repeatable)")
    p_fig.add_argument("--force", action="store_true", help="re-run even fresh nodes")
    p_fig.add_argument("--jobs", "-j", type=int, default=1,
                       help="nodes run in parallel processes (threads are split between them)")
    p_fig.add_argument("--lock-timeout", type=float, default=0.0,
                       help="seconds to wait if another build holds the lock (default: fail)")
    p_fig.add_argument("--no-progress", action="store_true", help="no progress bars")
    p_fig.add_argument(
        "--corpus", type=Path, default=None, metavar="FILE",
        help="train the text models on this UTF-8 file instead of the embedded English "
        "corpus (sets $GENAI_REPORT_TEXT_CORPUS; its bytes are part of the cache key, so "
        "pair it with --cache-dir to keep the committed figures)",
    )

    p_list = sub.add_parser("list", help="each node: fresh or stale, last wall time")
    settings(p_list)
    p_list.add_argument("--json", action="store_true", help="machine-readable output")

    p_check = sub.add_parser("check", help="exit 1 if any node's cached output is stale")
    settings(p_check)

    p_key = sub.add_parser(
        "cache-key",
        help="print one hash of every node's expected key (a CI cache key for figures/)",
    )
    p_key.add_argument("--profile", default=None, help="profile (default: quick)")
    p_key.add_argument("--device-kind", default="cpu", choices=("cpu", "cuda", "mps"),
                       help="device kind the cache was built on (default: cpu)")

    p_clean = sub.add_parser("clean", help="delete cached outputs")
    p_clean.add_argument("--profile", default=None,
                         help="only this profile (default: every profile)")
    p_clean.add_argument("--orphans", action="store_true",
                         help="only entries of nodes that no longer exist")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genai-report`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)-7s %(message)s",
    )
    root = find_root()
    cache = args.cache_dir or Path(os.environ.get(CACHE_ENV) or root / "figures")
    try:
        packages = os.environ.get(PACKAGES_ENV)
        registry = load_registry(packages.split(",") if packages else NODE_PACKAGES)
        pipeline = Pipeline(registry, cache_dir=cache, root=root)
        if args.command == "clean":
            return _clean(pipeline, args)
        if args.command == "cache-key":
            profile, _ = resolve_settings(args.profile, None)
            print(pipeline.content_key(profile, args.device_kind))
            return 0
        profile, device = resolve_settings(args.profile, args.device)
        if args.command == "figures":
            if args.corpus is not None:
                from genai_report.data.text import load_corpus

                load_corpus(args.corpus)  # a bad file fails here, naming the problem
                os.environ["GENAI_REPORT_TEXT_CORPUS"] = str(args.corpus.resolve())
            options = RunOptions(
                profile=profile, device=device, only=tuple(args.only), force=args.force,
                jobs=args.jobs, lock_timeout=args.lock_timeout,
                show_progress=not args.no_progress,
            )
            report = pipeline.run(options)
            log.info("%d node(s) ran, %d were fresh (profile %s, cache %s).",
                     len(report.ran), len(report.fresh), profile, cache)
            return 0
        statuses = pipeline.status(profile, device)
        if args.command == "list":
            _print_list(statuses, profile, as_json=args.json)
            return 0
        stale = [s for s in statuses if not s.fresh]
        for s in stale:
            print(f"stale: {s.node.name} ({s.reason})")
        if stale:
            print(f"{len(stale)} of {len(statuses)} node(s) are stale for profile '{profile}'. "
                  f"Run `genai-report figures --profile {profile}` and commit figures/{profile}.")
            return 1
        print(f"All {len(statuses)} node(s) are fresh for profile '{profile}'.")
        return 0
    except PipelineFailedError as exc:
        log.error("%s", exc)
        return 1
    except (PipelineError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("Interrupted. Finished nodes are cached; run the same command to resume.")
        return 130


def _print_list(statuses, profile: str, *, as_json: bool) -> None:
    rows = [
        {
            "name": s.node.name,
            "kind": s.node.kind,
            "state": "fresh" if s.fresh else "stale",
            "reason": s.reason,
            "wall_time_s": s.record.wall_time_s if s.record else None,
            "device": s.record.device if s.record else None,
        }
        for s in statuses
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    print(f"profile: {profile}")
    for r in rows:
        wall = f"{r['wall_time_s']:8.1f} s" if r["wall_time_s"] is not None else "       - "
        state = r["state"] if r["state"] == "fresh" else f"stale ({r['reason']})"
        print(f"  {r['name']:<{width}}  {r['kind']:<8}  {wall}  {state}")


def _clean(pipeline: Pipeline, args: argparse.Namespace) -> int:
    if args.profile is not None and args.profile not in PROFILES:
        raise ConfigError(f"Unknown profile '{args.profile}'. Valid profiles: {', '.join(PROFILES)}.")
    with pipeline.store.lock():
        keep = set(pipeline.registry.nodes) if args.orphans else None
        removed = pipeline.store.clean(args.profile, keep=keep)
    for path in removed:
        print(f"removed {path}")
    print(f"{len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'} removed.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
