"""The ``genai-report`` command: run the figure pipeline without MkDocs.

Examples::

    genai-report figures                      # every stale node, quick profile, auto device
    genai-report figures --profile full --device cuda
    genai-report figures --only foundations-density --force
    genai-report list                          # fresh / stale, last wall time
    genai-report check --profile quick         # exit 1 if committed outputs are stale
    genai-report clean --profile smoke
    genai-report cache-key --profile quick     # content hash for a CI cache of figures/
    genai-report figures --corpus my.txt       # text models on your corpus, in its own cache
    genai-report pull URL                      # model files git does not hold, hash-checked
    genai-report pack --profile quick -o cache-quick.tar.gz

The global options (``-v``, ``--cache-dir``, ``--corpus``) go before or after the command.

Environment: GENAI_REPORT_PROFILE, GENAI_REPORT_DEVICE, GENAI_REPORT_CACHE_DIR,
GENAI_REPORT_TEXT_CORPUS (what ``--corpus`` sets), GENAI_REPORT_CACHE_URL (what
``--cache-url`` sets), and GENAI_REPORT_NODE_PACKAGES
(comma-separated packages that register nodes; default genai_report.artifacts,
genai_report.figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
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
from genai_report.pipeline.archive import CACHE_URL_ENV
from genai_report.pipeline.dryrun import DEFAULT_GPU, GPU_CLASSES, GPU_JOBS, dry_run
from genai_report.pipeline.profiles import DEVICES, validate_profile
from genai_report.pipeline.registry import NODE_PACKAGES
from genai_report.pipeline.runner import EXECUTORS

log = logging.getLogger("genai_report")

CACHE_ENV = "GENAI_REPORT_CACHE_DIR"
PACKAGES_ENV = "GENAI_REPORT_NODE_PACKAGES"

EXAMPLES = """\
examples:
  genai-report figures                          every stale node (quick profile, auto device)
  genai-report figures --profile full --device cuda --jobs 2
  genai-report figures --only foundations-density --force
  genai-report figures --profile full --dry-run full-size models, a few steps each, on the
                                                CPU; estimates the real run on a GPU class
  genai-report figures --executor ray --address auto
                                                independent nodes on a Ray cluster's workers
  genai-report list                             each node: fresh or stale (and why), wall time
  genai-report list --profile smoke | head      (ends quietly when the reader stops)
  genai-report check --profile quick            exit 1 if the committed outputs are stale
  genai-report clean --profile smoke            delete one profile's cached outputs
  genai-report clean --profile quick --yes      committed outputs: asks first, or needs --yes
  genai-report cache-key --profile smoke        one hash of every node's key (CI cache key)
  genai-report figures --corpus my.txt          text models on your own UTF-8 corpus, in its
                                                own cache (.cache/genai-report/corpus-<sha>)
  genai-report pull ARCHIVE                     model files (kept out of git) from a cache
                                                archive (path or URL), checked by hash
  genai-report pack --profile quick -o F.tar.gz the model files of a profile, for `pull`

Global options (-v, --cache-dir, --corpus) go before or after the command.
Environment: GENAI_REPORT_PROFILE, GENAI_REPORT_DEVICE (win over --profile/--device),
GENAI_REPORT_CACHE_DIR, GENAI_REPORT_TEXT_CORPUS, GENAI_REPORT_CACHE_URL,
GENAI_REPORT_NODE_PACKAGES.
"""


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder upwards holding ``mkdocs.yml``, else the cwd."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "mkdocs.yml").is_file():
            return folder
    return here


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v``, ``--cache-dir`` and ``--corpus``, accepted before and after the command.

    On the subcommands they default to SUPPRESS, so a value given before the command is
    kept unless it is given again after it.
    """
    unset = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("-v", "--verbose", action="store_true",
                        **({"default": False} if top else unset), help="debug logging")
    parser.add_argument(
        "--cache-dir", type=Path, **({"default": None} if top else unset), metavar="DIR",
        help=f"cache folder (default: ${CACHE_ENV} or <project root>/figures; with a custom "
        "corpus, <project root>/.cache/genai-report/corpus-<sha>)",
    )
    parser.add_argument(
        "--corpus", type=Path, **({"default": None} if top else unset), metavar="FILE",
        help="train the text models on this UTF-8 file (at most 20 MB) instead of the "
        "embedded English corpus; sets $GENAI_REPORT_TEXT_CORPUS. Its outputs go to a cache "
        "of their own, never into the committed figures/",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genai-report", description="Build the report's figures (the figure pipeline).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, examples: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog="examples:\n" + examples,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _global_options(p, top=False)
        return p

    def settings(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", default=None,
                       help=f"one of {', '.join(PROFILES)} (default: $GENAI_REPORT_PROFILE "
                       "or quick)")
        p.add_argument("--device", default=None,
                       help=f"one of {', '.join(DEVICES)} (default: $GENAI_REPORT_DEVICE or auto)")

    p_fig = command("figures", "run every stale node", (
        "  genai-report figures --profile smoke --device cpu\n"
        "  genai-report figures --only my-figure --force\n"
        "  genai-report figures --jobs 2 --lock-timeout 600\n"
        "  genai-report figures --corpus my.txt       (own cache: .cache/genai-report/...)\n"))
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
        "--cache-url", default=None, metavar="ARCHIVE",
        help=f"cache archive (path or URL) to fetch model files from when a node needs one "
        f"this checkout lacks (default: ${CACHE_URL_ENV}); without it, that input re-runs")
    p_fig.add_argument("--materialize", action="store_true",
                       help="also restore the model files of fresh nodes (a complete cache, "
                       "e.g. before `pack`)")
    p_fig.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: this machine (default); ray: send nodes to a Ray cluster "
                       "as tasks with the resources each declares (pip install "
                       "'genai-report[ray]')")
    p_fig.add_argument("--address", default=None, metavar="ADDR",
                       help="the Ray cluster: auto (started with `ray start --head` here) or "
                       "ray://HEAD:10001; default: a private local cluster")
    p_fig.add_argument("--retries", type=int, default=1,
                       help="re-runs of a node whose Ray worker died before it counts as "
                       "failed (default 1)")
    p_fig.add_argument("--meter", action="store_true",
                       help="time every optimiser step and count the operators and FLOPs of "
                       "a few; kept in each record's `usage` (a dry run always meters, and "
                       "counts every operator, outside the steps too)")
    p_fig.add_argument("--dry-run", action="store_true",
                       help="run every node's full-size models with a few optimisation steps "
                       "in a scratch cache, and estimate the real run on --gpu: on the CPU "
                       "(the default) by counting every operator, or with --device cuda by "
                       "timing the steps on that GPU")
    p_fig.add_argument("--gpu", default=DEFAULT_GPU,
                       help=f"GPU class of the dry run's estimate: {', '.join(GPU_CLASSES)} "
                       f"(default: {DEFAULT_GPU})")
    p_fig.add_argument("--gpu-jobs", type=int, default=GPU_JOBS, metavar="N",
                       help="nodes at once on the GPU in the dry run's predicted schedule "
                       f"(default: {GPU_JOBS}, as in the run the estimate is fitted to)")
    p_fig.add_argument("--estimate-out", type=Path, default=None, metavar="FILE",
                       help="write the dry run's estimate as JSON to FILE")
    p_fig.add_argument("--scratch", type=Path, default=None, metavar="DIR",
                       help="keep the dry run's scratch cache in DIR; the next dry run with it "
                       "runs only the nodes that changed (--force: all) (default: a temporary "
                       "folder, removed)")

    p_pull = command("pull", "fetch the model files git does not hold, checked by hash", (
        "  genai-report pull https://example.org/cache-quick.tar.gz\n"
        "  genai-report pull cache-quick.tar.gz --profile quick\n"))
    p_pull.add_argument("archive", nargs="?", default=None,
                        help=f"path or URL of an archive made by `pack` (default: "
                        f"${CACHE_URL_ENV})")
    p_pull.add_argument("--profile", default=None, help="profile (default: quick)")

    p_pack = command("pack", "write a profile's model files into an archive for `pull`",
                     "  genai-report pack --profile quick -o cache-quick.tar.gz\n")
    p_pack.add_argument("--profile", default=None, help="profile (default: quick)")
    p_pack.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                        help="the archive to write (.tar.gz)")

    p_list = command("list", "each node: fresh or stale, last wall time", (
        "  genai-report list --profile smoke\n"
        "  genai-report list --json | python -m json.tool\n"))
    settings(p_list)
    p_list.add_argument("--json", action="store_true", help="machine-readable output")

    p_check = command("check", "exit 1 if any node's cached output is stale",
                      "  genai-report check --profile quick\n")
    settings(p_check)

    p_key = command(
        "cache-key", "print one hash of every node's expected key (a CI cache key for figures/)",
        "  genai-report cache-key --profile full --device-kind cuda\n")
    p_key.add_argument("--profile", default=None, help="profile (default: quick)")
    p_key.add_argument("--device-kind", default="cpu", choices=("cpu", "cuda", "mps"),
                       help="device kind the cache was built on (default: cpu)")

    p_clean = command("clean", "delete cached outputs", (
        "  genai-report clean --profile smoke           one profile\n"
        "  genai-report clean                           every profile but committed ones\n"
        "  genai-report clean --profile quick --orphans entries of nodes that no longer exist\n"
        "  genai-report clean --profile quick --yes     committed outputs, without asking\n"))
    p_clean.add_argument("--profile", default=None,
                         help="only this profile (default: every profile whose outputs are not "
                         "committed)")
    p_clean.add_argument("--orphans", action="store_true",
                         help="only entries of nodes that no longer exist")
    p_clean.add_argument("--yes", "-y", action="store_true",
                         help="remove committed outputs (tracked by git) without asking; needed "
                         "when there is no terminal to ask in")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genai-report`` command; returns the exit status."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return status
    except BrokenPipeError:
        # The reader went away (`genai-report list | head`): stop quietly, the standard way
        # (Python docs, "Note on SIGPIPE"); point stdout at devnull so the flush at exit
        # does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a tool stopped by the signal reports


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)-7s %(message)s",
    )
    root = find_root()
    try:
        corpus = _custom_corpus(args.corpus)
        cache = _cache_dir(args.cache_dir, root, corpus)
        packages = os.environ.get(PACKAGES_ENV)
        registry = load_registry(packages.split(",") if packages else NODE_PACKAGES)
        pipeline = Pipeline(registry, cache_dir=cache, root=root)
        if args.command == "clean":
            return _clean(pipeline, args, root)
        if args.command == "cache-key":
            profile, _ = resolve_settings(args.profile, None)
            print(pipeline.content_key(profile, args.device_kind))
            return 0
        if args.command in ("pack", "pull"):
            return _archive(pipeline, args)
        profile, device = resolve_settings(args.profile, args.device)
        if args.command == "figures" and args.dry_run:
            return _dry_run(registry, root, args, profile, device)
        if args.command == "figures":
            if corpus is not None and is_committed(pipeline.store.profile_dir(profile), root):
                raise ConfigError(
                    f"A custom corpus never writes into committed outputs, and "
                    f"{pipeline.store.profile_dir(profile)} is tracked by git. Leave out "
                    f"--cache-dir to use the corpus's own cache ({_corpus_cache(root, corpus)}),"
                    " or pass --cache-dir with another folder."
                )
            options = RunOptions(
                profile=profile, device=device, only=tuple(args.only), force=args.force,
                jobs=args.jobs, lock_timeout=args.lock_timeout,
                show_progress=not args.no_progress,
                cache_url=args.cache_url,
                materialize=args.materialize,
                meter=args.meter,
                executor=args.executor,
                address=args.address,
                retries=args.retries,
            )
            report = pipeline.run(options)
            log.info("%d node(s) ran, %d were fresh (profile %s, cache %s).",
                     len(report.ran), len(report.fresh), profile, cache)
            return 0
        statuses = pipeline.status(profile, device)
        if args.command == "list":
            _print_list(statuses, profile, pipeline.store.profile_dir(profile), as_json=args.json)
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


def _dry_run(registry, root: Path, args: argparse.Namespace, profile: str, device: str) -> int:
    """``figures --dry-run``: the estimate table, the JSON file, exit 1 on a failed node."""
    if args.executor != "local":
        raise ConfigError("A dry run measures this machine; leave out --executor "
                          f"{args.executor} with --dry-run.")
    report = dry_run(registry, root, profile=profile, gpu=args.gpu, only=tuple(args.only),
                     jobs=args.jobs, cache_dir=args.scratch,
                     show_progress=not args.no_progress, force=args.force,
                     gpu_jobs=args.gpu_jobs, device="cpu" if device == "auto" else device)
    print(report.table())
    if args.estimate_out is not None:
        args.estimate_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.estimate_out.with_name(args.estimate_out.name + ".tmp")
        tmp.write_text(json.dumps(report.as_json(), indent=1, sort_keys=True) + "\n")
        tmp.replace(args.estimate_out)
        log.info("Wrote the estimate to %s.", args.estimate_out)
    for name, why in {**report.failed, **report.skipped}.items():
        log.error("Dry run of %s failed:\n%s", name, why)
    if not report.ok:
        log.error("%d node(s) failed and %d were skipped in the %s dry run: %s.",
                  len(report.failed), len(report.skipped), profile,
                  ", ".join([*report.failed, *report.skipped]))
        return 1
    return 0


# -- custom corpus ----------------------------------------------------------------------------
def _custom_corpus(option: Path | None) -> Path | None:
    """The user's corpus (``--corpus``, else ``$GENAI_REPORT_TEXT_CORPUS``), checked, or
    ``None`` for the embedded English corpus. Sets the variable for the nodes."""
    from genai_report.data.corpora import CORPUS_ENV, custom_corpus

    # A bad file (missing, empty, no text, too large) fails here, before anything runs.
    path = custom_corpus(option)
    if path is None:
        os.environ.pop(CORPUS_ENV, None)  # the embedded English corpus: the default
    else:
        os.environ[CORPUS_ENV] = str(path)
    return path


def _corpus_cache(root: Path, corpus: Path) -> Path:
    from genai_report.data.corpora import corpus_cache_dir

    return corpus_cache_dir(root, corpus)


def _cache_dir(option: Path | None, root: Path, corpus: Path | None) -> Path:
    """``--cache-dir``, else ``$GENAI_REPORT_CACHE_DIR``, else the corpus's own cache (a
    custom corpus), else ``<root>/figures``."""
    chosen = option or (Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else None)
    if chosen is not None:
        return chosen
    if corpus is None:
        return root / "figures"
    cache = _corpus_cache(root, corpus)
    log.info("Custom corpus %s: its outputs go to their own cache %s (never the committed "
             "figures/); pass --cache-dir to choose another folder.", corpus, cache)
    return cache


# -- committed outputs ------------------------------------------------------------------------
def is_committed(folder: Path, root: Path) -> bool:
    """Whether ``folder`` holds outputs tracked by git (``figures/quick`` in this project).

    Asks ``git ls-files``; where git cannot answer (no git, or not a checkout), the default
    committed folder ``<root>/figures/quick`` counts as committed.
    """
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", str(folder.resolve())], cwd=root,
                             capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is not None and out.returncode == 0:
        return bool(out.stdout)
    return folder.resolve() == (root / "figures" / "quick").resolve()


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _clean(pipeline: Pipeline, args: argparse.Namespace, root: Path) -> int:
    store = pipeline.store
    if args.profile is not None:
        validate_profile(args.profile)
        profiles = [args.profile]
    else:
        profiles = sorted(p.name for p in store.root.iterdir()
                          if p.is_dir() and not p.name.startswith(".")) \
            if store.root.is_dir() else []
    keep = set(pipeline.registry.nodes) if args.orphans else None
    removed = []
    with store.lock():
        for profile in profiles:
            folder = store.profile_dir(profile)
            if not folder.is_dir():
                continue
            doomed = [c for c in folder.iterdir() if keep is None or c.name not in keep]
            committed = bool(doomed) and is_committed(folder, root)
            if committed:
                if args.profile is None:
                    log.info("Kept %s: its outputs are committed (tracked by git). Remove them "
                             "with `genai-report clean --profile %s` (asks first).", folder,
                             profile)
                    continue
                what = (f"{len(doomed)} committed entr{'y' if len(doomed) == 1 else 'ies'} "
                        f"in {folder} (tracked by git)")
                if not args.yes:
                    if not sys.stdin.isatty():
                        raise ConfigError(
                            f"Not removing {what} without confirmation. Run the command in a "
                            "terminal to be asked, or pass --yes to remove them.")
                    if not _confirm(f"Remove {what}?"):
                        print("Nothing removed.")
                        return 1
            removed += store.clean(profile, keep=keep)
            if committed:
                log.info("Restore the committed files with `git checkout -- %s`; files git "
                         "does not track there (model weights) are rebuilt by `genai-report "
                         "figures` when a node needs them.", folder)
    for path in removed:
        print(f"removed {path}")
    print(f"{len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'} removed.")
    return 0


# -- cache archives -----------------------------------------------------------------------------
def _archive(pipeline: Pipeline, args: argparse.Namespace) -> int:
    from genai_report.pipeline.archive import pack, pull

    profile, _ = resolve_settings(args.profile, None)
    store = pipeline.store
    with store.lock():
        if args.command == "pack":
            n = pack(store, profile, args.output)
            print(f"Packed {n} model file(s) of profile '{profile}' into {args.output}.")
            return 0
        source = args.archive or os.environ.get(CACHE_URL_ENV)
        if not source:
            raise ConfigError(f"Name the archive to pull from (a path or URL), or set "
                              f"${CACHE_URL_ENV}.")
        got = pull(store, profile, source)
    print(f"Restored {len(got.restored)} file(s); {len(got.present)} already here.")
    for label, names, why in (
        ("not in the archive", got.absent, "it was packed from other code"),
        ("did not match their recorded hash", got.mismatched, "damaged or packed from other code"),
    ):
        if names:
            print(f"{len(names)} file(s) {label} ({why}); the nodes that need them re-run "
                  f"instead: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
    return 0


# -- list ---------------------------------------------------------------------------------------
def _note(s) -> str:
    """What a fresh entry's record says beyond "fresh": model files not here, reproducibility."""
    notes = []
    if s.missing:
        notes.append("model files not in this checkout")
    if s.record is not None and s.record.reproducible is False:
        notes.append(f"not bit-reproducible on {s.record.device_kind}")
    return f" ({'; '.join(notes)})" if notes else ""


def _print_list(statuses, profile: str, folder: Path, *, as_json: bool) -> None:
    rows = [
        {
            "name": s.node.name,
            "kind": s.node.kind,
            "state": "fresh" if s.fresh else "stale",
            "reason": s.reason,
            "wall_time_s": s.record.wall_time_s if s.record else None,
            "device": s.record.device if s.record else None,
            "reproducible": s.record.reproducible if s.record else None,
            "threads": s.record.threads if s.record else None,
            "missing": list(s.missing),
            "note": _note(s),
        }
        for s in statuses
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    print(f"profile: {profile} (cache {folder})")
    print(f"  {'NODE':<{width}}  {'KIND':<8}  {'LAST RUN':>10}  STATE")
    for r in rows:
        wall = f"{r['wall_time_s']:8.1f} s" if r["wall_time_s"] is not None else "         -"
        state = r["state"] + r["note"] if r["state"] == "fresh" else f"stale ({r['reason']})"
        print(f"  {r['name']:<{width}}  {r['kind']:<8}  {wall}  {state}")
    stale = sum(1 for r in rows if r["state"] == "stale")
    summary = f"{len(rows)} node(s): {len(rows) - stale} fresh, {stale} stale"
    if stale:
        summary += f". Build the stale ones with `genai-report figures --profile {profile}`."
    print(summary + ("" if stale else "."))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
