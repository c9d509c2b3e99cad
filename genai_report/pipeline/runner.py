"""Decide which nodes are stale and run them, in dependency order, once each.

The runner is the pipeline's one entry point for the CLI, the MkDocs plugin and the tests::

    pipeline = Pipeline(load_registry(), cache_dir=Path("figures"), root=Path("."))
    report = pipeline.run(RunOptions(profile="quick"))

A node that raises keeps its previous entry; the run goes on with every node that does not
depend on it and then raises :class:`PipelineFailedError` once, naming each failure.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import multiprocessing
import os
import socket
import subprocess
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genai_report.pipeline import keys, schedule
from genai_report.pipeline.context import NodeContext, reset_plotting, seed_everything
from genai_report.pipeline.device import describe_device, resolve_device
from genai_report.pipeline.errors import ConfigError, PipelineFailedError
from genai_report.pipeline.profiles import validate_device, validate_profile
from genai_report.pipeline.progress import RunProgress
from genai_report.pipeline.registry import Node, Registry
from genai_report.pipeline.store import CacheStore, Record, describe_outputs

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class RunOptions:
    """How to run the pipeline.

    Attributes:
        profile: ``smoke``, ``quick`` or ``full``.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        only: run only these nodes (and whatever stale nodes they depend on).
        force: re-run the selected nodes even if fresh.
        jobs: nodes run at once, each in its own process with ``cores // jobs`` threads.
        lock_timeout: seconds to wait for another build's lock (0: fail at once).
        show_progress: draw progress bars.
        cache_url: a cache archive (path or URL, :mod:`~genai_report.pipeline.archive`)
            to fetch model files from when a node must run and an input's cache-only
            outputs are not in this checkout (default: ``$GENAI_REPORT_CACHE_URL``);
            without one, that input re-runs.
        materialize: also restore the model files of fresh nodes that nothing needs now
            (from ``cache_url``, else by re-running them): a complete cache, e.g. to
            ``genai-report pack`` it.
        meter: time the optimiser steps of each node and count the operators of some
            (``True``), or count every operator the node dispatches, its work outside the
            steps included (``"all"``, what a dry run asks for), or as ``True`` with
            every step timed to the GPU's end (``"timed"``, a dry run on a GPU), with a
            :class:`~genai_report.pipeline.dryrun.StepMeter`; kept in each record's
            ``usage``.
        executor: ``local`` (this machine: one process, or ``jobs`` worker processes) or
            ``ray`` (a Ray cluster, :mod:`~genai_report.pipeline.ray_executor`).
        address: the Ray cluster to use (``auto``, ``ray://HEAD:10001``); ``None`` starts
            a private local one. Only with ``executor="ray"``.
        retries: how many times a node whose Ray worker died is re-run before it is
            reported failed. Only with ``executor="ray"``.
    """

    profile: str = "quick"
    device: str = "auto"
    only: tuple[str, ...] = ()
    force: bool = False
    jobs: int = 1
    lock_timeout: float = 0.0
    show_progress: bool = True
    cache_url: str | None = None
    materialize: bool = False
    meter: bool | str = False
    executor: str = "local"
    address: str | None = None
    retries: int = 1

    def __post_init__(self) -> None:
        validate_profile(self.profile)
        validate_device(self.device)
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise ConfigError(f"jobs must be a whole number >= 1, got {self.jobs!r}.")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"Unknown executor '{self.executor}'. Valid executors: "
                              f"{', '.join(EXECUTORS)}.")
        if self.address and self.executor != "ray":
            raise ConfigError("--address names a Ray cluster; add --executor ray.")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"retries must be a whole number >= 0, got {self.retries!r}.")
        if self.lock_timeout < 0:
            raise ConfigError(f"lock_timeout must be >= 0 seconds, got {self.lock_timeout!r}.")
        if self.meter not in (False, True, "all", "timed"):
            raise ConfigError(f"meter must be False, True, 'all' or 'timed', got "
                              f"{self.meter!r}.")


@dataclass
class NodeStatus:
    """Whether a node's cache entry can be used as it is, and why not."""

    node: Node
    fresh: bool
    reason: str
    record: Record | None
    missing: tuple[str, ...] = ()
    """Cache-only outputs of a fresh entry that are not on disk (restored on demand)."""


RESWEEPS = 2
"""Further sweeps of one run after restored models wrote different bytes (one suffices:
the restored files are then present and fresh)."""


@dataclass
class RunReport:
    """What a run did.

    Attributes:
        ran: nodes that ran and succeeded. fresh: nodes reused from the cache.
        failed: node -> traceback. skipped: node -> why (a dependency failed).
        records: node -> its current record (fresh or new).
        device_kind: the device nodes ran on (``None`` if nothing ran).
        rewritten: nodes that ran again under an unchanged key (to restore model files)
            and wrote other bytes than their record: the nodes that read them are judged
            again in a further sweep of the same run.
    """

    profile: str
    ran: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    device_kind: str | None = None
    wall_time_s: float = 0.0
    rewritten: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no node failed or was skipped."""
        return not self.failed and not self.skipped


class Pipeline:
    """The figure pipeline over one registry and one cache folder.

    Args:
        registry: the nodes.
        cache_dir: where entries live (``figures/``).
        root: the project root (for relative data paths and the git commit).
    """

    def __init__(self, registry: Registry, cache_dir: Path, root: Path):
        self.registry = registry
        self.store = CacheStore(Path(cache_dir))
        self.root = Path(root)
        self._executor: Any = None  # the executor of the run in progress

    # -- staleness -------------------------------------------------------------------------
    def _assess(
        self, node: Node, profile: str, device: str, current: dict[str, Record], forced: bool
    ) -> NodeStatus:
        record = self.store.read_record(profile, node.name)
        if forced:
            return NodeStatus(node, False, "forced", record)
        if record is None:
            return NodeStatus(node, False, "never built", None)
        missing = [d for d in node.deps if d not in current]
        if missing:
            return NodeStatus(node, False, f"needs {', '.join(missing)}", record)
        if device != "auto" and record.device_kind != device:
            return NodeStatus(
                node, False, f"built on {record.device_kind}, {device} requested", record
            )
        parts = keys.key_parts(
            node,
            profile=profile,
            device_kind=record.device_kind,
            dep_keys={d: current[d].content_digest() for d in node.deps},
            root=self.root,
        )
        if parts.digest() != record.key:
            return NodeStatus(node, False, _explain_change(record.key_parts, parts), record)
        corrupt = self.store.verify_outputs(profile, record)
        if corrupt:
            return NodeStatus(node, False, corrupt, record)
        if set(record.outputs) != set(node.outputs):
            return NodeStatus(node, False, "declared outputs changed", record)
        for dep in node.deps:
            if record.inputs.get(dep) != current[dep].output_hashes():
                return NodeStatus(node, False, f"input '{dep}' was rebuilt", record)
        missing = tuple(self.store.missing_outputs(profile, record))
        return NodeStatus(node, True, "fresh", record, missing)

    def status(
        self, profile: str, device: str = "auto", names: tuple[str, ...] = ()
    ) -> list[NodeStatus]:
        """Freshness of every node (or of ``names`` and their dependencies), without running.

        A node whose dependency is stale is reported stale too ("needs ...").
        """
        validate_profile(profile)
        validate_device(device)
        current: dict[str, Record] = {}
        out = []
        for node in self.registry.topological(names or None):
            try:
                st = self._assess(node, profile, device, current, forced=False)
            except (OSError, ConfigError) as exc:
                st = NodeStatus(node, False, f"error: {exc}", None)
            if st.fresh and st.record is not None:
                current[node.name] = st.record
            out.append(st)
        return out

    def expected_keys(self, profile: str, device_kind: str = "cpu") -> dict[str, str]:
        """A key per node predicted from code, parameters and data alone (no cache needed).

        A dependency's expected key stands in for the digest of its outputs, so a node's
        expected key changes whenever anything upstream of it changes: the right notion
        for a CI cache key (:meth:`content_key`), a conservative one for staleness.
        """
        validate_profile(profile)
        out: dict[str, str] = {}
        for node in self.registry.topological():
            parts = keys.key_parts(node, profile=profile, device_kind=device_kind,
                                   dep_keys={d: out[d] for d in node.deps}, root=self.root)
            out[node.name] = parts.digest()
        return out

    def content_key(self, profile: str, device_kind: str = "cpu") -> str:
        """One SHA-256 over every node's expected key: changes whenever some node may
        have to re-run."""
        blob = json.dumps(self.expected_keys(profile, device_kind), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    # -- running ---------------------------------------------------------------------------
    def run(self, options: RunOptions, *, raise_on_failure: bool = True) -> RunReport:
        """Run every stale node (or the ``only`` ones and their stale dependencies).

        Raises:
            LockBusyError: another build holds the lock.
            ConfigError: bad options, or a forced device that is absent.
            PipelineFailedError: some nodes failed (after all others ran), unless
                ``raise_on_failure`` is False.
        """
        for name in options.only:
            self.registry.get(name)  # unknown names fail before anything runs
        started = time.perf_counter()
        report = RunReport(profile=options.profile)
        with self.store.lock(timeout=options.lock_timeout):
            self.store.recover()
            self._run_locked(options, report)
        report.wall_time_s = time.perf_counter() - started
        if report.ran or report.failed:
            log.info(
                "Pipeline (%s): %d ran, %d fresh, %d failed, %d skipped in %.1f s.",
                options.profile, len(report.ran), len(report.fresh), len(report.failed),
                len(report.skipped), report.wall_time_s,
            )
        if raise_on_failure and not report.ok:
            raise PipelineFailedError(report.failed, report.skipped)
        return report

    def _run_locked(self, options: RunOptions, report: RunReport) -> None:
        order = self.registry.topological(options.only or None)
        # Snapshot every node's code now: a file edited while this run goes on then makes
        # the affected nodes stale next time instead of being recorded under a key that
        # describes code the process never ran.
        keys.clear_caches()
        for node in order:
            keys.code_closure(node)
        forced = set(options.only or [n.name for n in order]) if options.force else set()
        current: dict[str, Record] = {}
        env: dict[str, Any] = {}  # device kind and git commit, resolved on first need
        progress: RunProgress | None = None  # [k/N] and time left, planned on first need
        running: dict[cf.Future, tuple[Node, dict[str, Any]]] = {}
        executor = _make_executor(options)
        self._executor = executor

        def limit() -> int:
            """Nodes in flight at once (a Ray cluster is asked only once a node runs)."""
            if executor is None:
                return 1
            return options.jobs if options.jobs > 1 else executor.capacity

        # Several in flight: offer the longest chain of work left first (see schedule.py).
        pending = (schedule.run_order(order, options.profile, self.store, self.root)
                   if executor is not None else list(order))
        # Fresh nodes re-run in parallel to restore the model files a stale node reads
        # (git does not hold them), each with the node that needs it.
        restore: dict[str, str] = {}
        rewritten = 0  # report.rewritten's length when the current sweep began
        try:
            for sweep in range(1 + RESWEEPS):
                if sweep:
                    # A model re-run only to restore its files wrote other bytes than its
                    # record, after nodes that read it were judged (or ran): judge again.
                    log.info("%s wrote different bytes on restoring; checking the nodes "
                             "that read them again.", ", ".join(report.rewritten[rewritten:]))
                    current.clear()
                    restore.clear()
                    report.fresh.clear()
                    pending = (schedule.run_order(order, options.profile, self.store,
                                                  self.root)
                               if executor is not None else list(order))
                rewritten = len(report.rewritten)
                while pending or running:
                    progressed = False
                    for node in list(pending):
                        blocked = [d for d in node.deps if d in report.failed or d in report.skipped]
                        if blocked:
                            pending.remove(node)
                            report.skipped[node.name] = f"dependency {', '.join(blocked)} failed"
                            progressed = True
                            continue
                        if any(d not in current for d in node.deps):
                            continue  # waits for a dependency still running
                        if executor is not None and running and len(running) >= limit():
                            break
                        pending.remove(node)
                        progressed = True
                        try:
                            st = self._assess(node, options.profile, options.device, current,
                                              node.name in forced)
                        except (OSError, ConfigError) as exc:
                            report.failed[node.name] = f"{type(exc).__name__}: {exc}"
                            continue
                        if st.fresh and st.missing and (
                                options.materialize or node.name in restore) and not (
                                _cache_url(options) and self._pull(options, node.name)):
                            why = (f", which {restore[node.name]} needs" if node.name in restore
                                   else " (not in this checkout)")
                            st = NodeStatus(node, False, "restoring " + ", ".join(st.missing)
                                            + why, st.record)
                        if st.fresh and st.record is not None:
                            current[node.name] = report.records[node.name] = st.record
                            report.fresh.append(node.name)
                            continue
                        self._resolve_env(options, env, executor)
                        report.device_kind = env["device"]
                        if progress is None:
                            progress = RunProgress.plan(self, options, order, forced, report,
                                                       jobs=limit())
                        if executor is not None:
                            lacking = self._inputs_to_restore(node, options, current)
                            if lacking:  # restore them as tasks of their own, then this node
                                for dep in lacking:
                                    restore[dep] = node.name
                                    progress.planned.setdefault(dep, current.pop(dep).wall_time_s)
                                    if dep in report.fresh:
                                        report.fresh.remove(dep)
                                pending[:0] = [*map(self.registry.get, lacking), node]
                                continue
                        unrestored = self._materialize_inputs(node, options, env, current, report)
                        if unrestored:
                            report.skipped[node.name] = (
                                f"input {', '.join(unrestored)} could not be restored")
                            continue
                        step, left = progress.start(node.name)
                        log.info("%s Running %s (%s, %s): %s%s", step, node.name, options.profile,
                                 env["device"], st.reason, left)
                        if executor is None:
                            self._run_here(node, options, env, current, report)
                        else:
                            task = self._task(node, options, env, current)
                            running[executor.submit(task, self._dep_entries(node, options,
                                                                            current))] = (node, task)
                    if running and (not progressed or not pending or len(running) >= limit()):
                        done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                        in_flight = [n.name for n, _t in running.values()]
                        broken = False
                        for fut in done:
                            node, task = running.pop(fut)
                            try:
                                result = fut.result()
                            except cf.process.BrokenProcessPool:
                                broken = True
                                result = {"error": _died_message(node.name, in_flight)}
                            self._finish(node, task, result, env, current, report)
                        if broken:
                            executor.restart_if_broken()
                    elif not progressed and not running:
                        break  # nothing can move (cannot happen with a valid graph)
                if len(report.rewritten) == rewritten or not report.ok:
                    break
            report.ran = list(dict.fromkeys(report.ran))
            report.fresh = [n for n in report.fresh if n not in report.ran]
        except BaseException:
            for fut, (_node, task) in running.items():
                fut.cancel()
                self.store.discard(Path(task["staging"]))
            if executor is not None:
                executor.shutdown(cancel=True)
                executor = None
            raise
        finally:
            self._executor = None
            if executor is not None:
                executor.shutdown()

    def _dep_entries(self, node: Node, options: RunOptions, current: dict[str, Record]
                     ) -> dict[str, tuple[Record, Path]]:
        return {d: (current[d], self.store.entry_dir(options.profile, d)) for d in node.deps}

    def _materialize_inputs(
        self,
        node: Node,
        options: RunOptions,
        env: dict[str, Any],
        current: dict[str, Record],
        report: RunReport,
    ) -> list[str]:
        """Put every input of ``node`` on disk before it runs; returns those that failed.

        A fresh input whose cache-only outputs this checkout lacks (git does not hold model
        files) is restored from the cache archive when one is configured, else re-run in
        this process under its unchanged key. Its dependents' keys hold its outputs'
        digest, so a re-run that writes the same bytes changes nothing downstream.
        """
        failed = []
        for dep in node.deps:
            record = current[dep]
            missing = self.store.missing_outputs(options.profile, record)
            if not missing:
                continue
            if _cache_url(options) and self._pull(options, dep):
                continue
            dep_node = self.registry.get(dep)
            if self._materialize_inputs(dep_node, options, env, current, report):
                failed.append(dep)
                continue
            _log_restore(dep, missing, node.name, record, options)
            self._run_here(dep_node, options, env, current, report)
            if dep in report.failed:
                failed.append(dep)
        return failed

    def _inputs_to_restore(self, node: Node, options: RunOptions,
                           current: dict[str, Record]) -> list[str]:
        """The inputs of ``node`` whose model files this checkout lacks and the cache
        archive (if one is configured) cannot supply: they must re-run first."""
        lacking = []
        for dep in node.deps:
            missing = self.store.missing_outputs(options.profile, current[dep])
            if missing and not (_cache_url(options) and self._pull(options, dep)):
                _log_restore(dep, missing, node.name, current[dep], options)
                lacking.append(dep)
        return lacking

    def _run_here(
        self,
        node: Node,
        options: RunOptions,
        env: dict[str, Any],
        current: dict[str, Record],
        report: RunReport,
    ) -> None:
        """Run ``node`` in this process (on a Ray cluster: there, waiting for it) and
        commit it; its staging folder goes if it dies."""
        task = self._task(node, options, env, current)
        remote = self._executor
        try:
            if remote is None or isinstance(remote, _ProcessExecutor):
                result = execute(task)
            else:
                result = remote.submit(task, self._dep_entries(node, options, current)).result()
        except BaseException:
            self.store.discard(Path(task["staging"]))
            raise
        self._finish(node, task, result, env, current, report)

    def _pull(self, options: RunOptions, node: str) -> bool:
        from genai_report.pipeline.archive import pull

        try:
            got = pull(self.store, options.profile, _cache_url(options), nodes={node})
        except ConfigError as exc:
            log.warning("%s; re-running %s instead.", exc, node)
            return False
        if got.restored:
            log.info("Restored %s from the cache archive %s.", ", ".join(got.restored),
                     _cache_url(options))
        return not self.store.missing_outputs(options.profile, self.store.read_record(
            options.profile, node))

    def _resolve_env(self, options: RunOptions, env: dict[str, Any], executor: Any = None
                     ) -> None:
        if "device" not in env:
            if options.executor == "ray" and executor is not None:
                env["device"] = executor.resolve_device(options.device)
                env["device_name"] = env["device"]  # each worker reports its own
                log.info("Running on the Ray cluster: %s, device %s.", executor.describe(),
                         env["device"])
            else:
                env["device"] = resolve_device(options.device)
                env["device_name"] = describe_device(env["device"])
            env["commit"] = git_commit(self.root)
            import torch

            env["torch"] = torch.__version__

    def _task(
        self, node: Node, options: RunOptions, env: dict[str, Any], current: dict[str, Record]
    ) -> dict[str, Any]:
        parts = keys.key_parts(
            node,
            profile=options.profile,
            device_kind=env["device"],
            dep_keys={d: current[d].content_digest() for d in node.deps},
            root=self.root,
        )
        threads = max(1, (os.cpu_count() or 1) // options.jobs) if options.jobs > 1 else 0
        return {
            "same_threads": _recorded_threads(
                self.store.read_record(options.profile, node.name), parts.digest(),
                env["device"]),
            "node": dataclasses.replace(node, data=()),  # data specs may not pickle
            "profile": options.profile,
            "device": env["device"],
            "staging": str(self.store.new_staging(options.profile, node.name)),
            "dep_dirs": {
                d: str(self.store.entry_dir(options.profile, d)) for d in node.deps
            },
            "root": str(self.root),
            "show_progress": options.show_progress,
            "threads": threads,
            "parts": parts,
            "meter": options.meter,
        }

    def _finish(
        self,
        node: Node,
        task: dict[str, Any],
        result: dict[str, Any],
        env: dict[str, Any],
        current: dict[str, Record],
        report: RunReport,
    ) -> None:
        staging = Path(task["staging"])
        if result.get("error"):
            self.store.discard(staging)
            report.failed[node.name] = result["error"]
            where = f" on {result['host']}" if result.get("host") else ""
            log.error("%s failed%s; its previous output (if any) is kept.", node.name, where)
            return
        if "files" in result:  # a remote worker's outputs: only the driver writes the cache
            from genai_report.pipeline.ray_executor import write_files

            write_files(staging, result["files"])
        missing = [o for o in node.outputs if not (staging / o).is_file()]
        if missing:
            self.store.discard(staging)
            report.failed[node.name] = (
                f"{node.name} finished without writing its declared output(s) "
                f"{', '.join(missing)}. Write each with ctx.output(name)."
            )
            return
        parts: keys.KeyParts = task["parts"]
        outputs = describe_outputs(staging, node.outputs)
        previous = self.store.read_record(task["profile"], node.name)
        record = Record(
            node=node.name,
            kind=node.kind,
            key=parts.digest(),
            profile=task["profile"],
            device_kind=task["device"],
            device=result.get("device_name") or env["device_name"],
            host=result.get("host"),
            seed=node.seed,
            torch=env["torch"],
            git_commit=env["commit"],
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            wall_time_s=round(result["wall_time_s"], 3),
            metrics=result["metrics"],
            outputs=outputs,
            inputs={d: current[d].output_hashes() for d in node.deps},
            key_parts=parts.as_json(),
            reproducible=_reproducible(previous, parts.digest(), outputs),
            usage=result.get("usage"),
            threads=result.get("threads"),
        )
        if record.reproducible is False:
            report.rewritten.append(node.name)
            log.warning(
                "%s ran again under the same key but wrote different bytes (%s): its training "
                "is not bit-reproducible on %s%s, so its dependents re-run too.",
                node.name, ", ".join(_differing(previous, outputs)), task["device"],
                _threads_note(previous, record),
            )
        self.store.commit(task["profile"], node.name, staging, record)
        current[node.name] = report.records[node.name] = record
        report.ran.append(node.name)
        log.info("%s done in %.1f s.", node.name, record.wall_time_s)



def _log_restore(dep: str, missing: Sequence[str], needed_by: str, record: Record,
                 options: RunOptions) -> None:
    same = (f", with the {record.threads} threads it was recorded with"
            if record.threads and record.device_kind == "cpu" else "")
    log.info(
        "Re-running %s (%s) to restore %s, which %s needs: model files are kept out of git "
        "(last run took %.0f s%s). To fetch them instead, run `genai-report pull ARCHIVE` "
        "or set $GENAI_REPORT_CACHE_URL.",
        dep, options.profile, ", ".join(missing), needed_by, record.wall_time_s, same,
    )


def _cache_url(options: RunOptions) -> str | None:
    """The cache archive to fetch model files from: the option, else the environment."""
    from genai_report.pipeline.archive import CACHE_URL_ENV

    return options.cache_url or os.environ.get(CACHE_URL_ENV) or None


class _ProcessExecutor:
    """``jobs`` local worker processes (spawned, so each has its own torch threads)."""

    def __init__(self, jobs: int):
        self.capacity = jobs
        self._pool = cf.ProcessPoolExecutor(max_workers=jobs,
                                            mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task: dict[str, Any], deps: dict[str, tuple[Record, Path]]) -> cf.Future:
        """Queue ``task``; on a fresh pool when a worker died since the last collection.

        A worker killed while the driver was busy breaks the pool before its future is
        collected: the nodes it was running are still reported from their futures, and
        this task goes to a new pool instead of failing the run.
        """
        try:
            return self._pool.submit(execute, task)
        except cf.process.BrokenProcessPool:
            self.restart_if_broken()
            return self._pool.submit(execute, task)

    def shutdown(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def restart_if_broken(self) -> None:
        """A fresh pool after one of the workers died (a broken pool runs nothing more).
        A pool already replaced, whose late failures are still being collected, stays."""
        try:
            self._pool.submit(int)  # a broken pool refuses work at once; a live one runs it
        except cf.process.BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.capacity, mp_context=multiprocessing.get_context("spawn"))


def _died_message(node: str, in_flight: list[str]) -> str:
    """Why ``node`` failed when its worker process vanished (a signal, not an exception)."""
    others = [n for n in in_flight if n != node]
    beside = (f" One of the nodes running then ({', '.join([node, *others])}) was killed, and "
              "the pool lost them all; run them with --jobs 1 to see which." if others else "")
    return (f"The worker process running {node} died without an exception: it was killed by a "
            f"signal, most often the out-of-memory killer (`dmesg` tells).{beside} Nothing of "
            "this run was cached; the previous entry, if any, is kept. A dry run "
            "(`--dry-run`) shows each node's peak memory.")


def _make_executor(options: RunOptions) -> Any:
    """``None`` (run in this process), local worker processes, or a Ray cluster."""
    if options.executor == "ray":
        from genai_report.pipeline.ray_executor import RayExecutor

        return RayExecutor(options.address, retries=options.retries)
    if options.jobs <= 1:
        return None
    return _ProcessExecutor(options.jobs)


def execute(task: dict[str, Any]) -> dict[str, Any]:
    """Run one node's function into its staging folder (in this process, a local worker
    process or a Ray worker).

    Torch runs it with the task's ``same_threads`` (a re-run under the same key on a CPU:
    the recorded count), else its ``threads`` (the share of the cores a local worker gets),
    else this process's own count, which it gets back afterwards.

    Returns ``{"metrics", "wall_time_s", "usage", "host", "threads"}`` or
    ``{"error": traceback}``; the caller commits. KeyboardInterrupt and SystemExit
    propagate so an interrupted run stops at once.
    """
    import torch

    node: Node = task["node"]
    threads_before = torch.get_num_threads()
    threads = task.get("same_threads") or task["threads"]
    if threads:
        torch.set_num_threads(threads)
    try:
        result = _execute(node, task)
    finally:
        if threads:  # in this process, the next node gets the driver's own count back
            torch.set_num_threads(threads_before)
    if "error" not in result:
        result["threads"] = threads or threads_before
    return result


def _execute(node: Node, task: dict[str, Any]) -> dict[str, Any]:
    """:func:`execute` once the thread count is set."""
    # Re-import the defining module so a worker process has the function and its params.
    importlib.import_module(node.module)
    ctx = NodeContext(
        node=node,
        profile=task["profile"],
        device_kind=task["device"],
        out_dir=Path(task["staging"]),
        dep_dirs={k: Path(v) for k, v in task["dep_dirs"].items()},
        root=Path(task["root"]),
        show_progress=task["show_progress"],
    )
    try:
        seed_everything(node.seed)
        if node.kind == "figure":
            reset_plotting()
        meter = None
        if task.get("meter"):
            from genai_report.pipeline.dryrun import StepMeter

            meter = StepMeter(count_all=task["meter"] == "all", sync=task["meter"] == "timed")
        t0 = time.perf_counter()
        with meter if meter is not None else contextlib.nullcontext():
            returned = node.func(ctx, node.params_for(task["profile"]))
        wall = time.perf_counter() - t0
        if returned:
            ctx.record(**returned)
        metrics = json.loads(json.dumps(ctx.metrics, default=_jsonable_scalar))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        return {"error": traceback.format_exc()}
    finally:
        if node.kind == "figure":
            import matplotlib.pyplot as plt

            plt.close("all")
    return {"metrics": metrics, "wall_time_s": wall,
            "usage": meter.summary() if meter is not None else None,
            "host": socket.gethostname()}


def _jsonable_scalar(value: Any) -> Any:
    """Turn numpy/torch scalars into Python numbers for the record."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"metric value of type {type(value).__name__} is not JSON-serialisable")


def _recorded_threads(previous: Record | None, key: str, device_kind: str) -> int | None:
    """The thread count to re-run a node with: its record's, when the re-run is under the
    same key on a CPU (to restore model files, which then come out byte for byte the same);
    ``None`` (the run's own split) otherwise. A GPU's kernels do not split by host threads.
    """
    if (previous is None or previous.key != key or device_kind != "cpu"
            or previous.device_kind != "cpu" or not previous.threads):
        return None
    return int(previous.threads)


def _threads_note(previous: Record | None, record: Record) -> str:
    """Why a re-run may have written other bytes, when the thread counts tell."""
    if previous is None or previous.device_kind != "cpu":
        return ""
    if previous.threads is None:
        return (" (its record predates thread counts, so the re-run could not use the same "
                "split)")
    if previous.threads != record.threads:
        return f" (recorded with {previous.threads} threads, re-run with {record.threads})"
    return f" even with the same {record.threads} threads"


def _reproducible(previous: Record | None, key: str, outputs: dict[str, dict]) -> bool | None:
    """Whether a re-run under an unchanged key wrote the same bytes (``None``: unknown)."""
    if previous is None or previous.key != key:
        return None
    return previous.output_hashes() == {n: m["sha256"] for n, m in outputs.items()}


def _differing(previous: Record | None, outputs: dict[str, dict]) -> list[str]:
    old = previous.output_hashes() if previous is not None else {}
    return sorted(n for n, m in outputs.items() if old.get(n) != m["sha256"])


def _explain_change(old: dict[str, Any], new: keys.KeyParts) -> str:
    """A short reason why a key changed, for `genai-report list` and the log.

    Code changes are named at the level a contributor acts on: the function, class or
    constant (``module:name``) whose code changed, appeared or is no longer reached.
    """
    new_j = json.loads(json.dumps(new.as_json()))
    if not old:
        return "key changed"
    if old.get("key_format") != new_j["key_format"]:
        return "cache key format changed"
    old_code = dict(map(tuple, old.get("code", [])))
    new_code = dict(map(tuple, new_j["code"]))
    edited = sorted(s for s in set(old_code) & set(new_code) if old_code[s] != new_code[s])
    added = sorted(set(new_code) - set(old_code))
    removed = sorted(set(old_code) - set(new_code))
    reasons = []
    for label, names in (("code changed", edited), ("now runs", added), ("no longer runs", removed)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            reasons.append(f"{label}: {shown}")
    if reasons:
        return "; ".join(reasons)
    if old.get("deps") != new_j["deps"]:
        old_deps = dict(map(tuple, old.get("deps", [])))
        changed = [d for d, v in new_j["deps"] if old_deps.get(d) != v]
        return ", ".join(f"input '{d}' changed" for d in changed) or "dependencies changed"
    for part in ("params", "seed", "data", "profile", "torch"):
        if old.get(part) != new_j[part]:
            return f"{part} changed"
    return "key changed"


def git_commit(root: Path) -> str:
    """The checkout's commit, with ``+dirty`` if it has uncommitted changes; ``unknown``
    outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
            text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            # Anything tracked but the outputs themselves (code, notebooks, corpora, docs).
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!figures"],
            cwd=root, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


__all__ = ["EXECUTORS", "NodeStatus", "Pipeline", "RunOptions", "RunReport", "execute",
           "git_commit"]
