"""The on-disk cache: one folder per (profile, node) holding its outputs and its record.

Layout::

    figures/
      .lock                          # held by the build that is running
      quick/
        foundations-density/
          record.json                # provenance; written last, with the outputs
          density.svg
        .staging-<node>-<id>/        # a node's outputs while it runs (never read)
        .old-<node>-<id>/            # the previous entry, for the instant of a swap

A node writes into a fresh staging folder. Only after it succeeded is its record written
there and the folder swapped in for the old entry (rename old aside, rename staging in,
delete old). A crash at any point leaves either the old or the new entry whole:
:meth:`CacheStore.recover` deletes stray staging folders and puts back an ``.old-``
folder whose swap did not finish.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from genai_report.pipeline.errors import LockBusyError
from genai_report.pipeline.keys import content_digest, file_digest

log = logging.getLogger(__name__)

RECORD = "record.json"

CACHE_ONLY_SUFFIXES = (".pt",)
"""Outputs that live in the cache but not in git: model weights and tensors that no page
shows. Their hashes are in the record (so dependents' keys and freshness need no bytes);
a checkout without them restores them on demand (:mod:`genai_report.pipeline.archive`, or
by re-running the node) only when a node that reads them has to run."""


def is_cache_only(name: str) -> bool:
    """Whether output ``name`` is kept out of git (see :data:`CACHE_ONLY_SUFFIXES`)."""
    return name.lower().endswith(CACHE_ONLY_SUFFIXES)


@dataclass
class Record:
    """Provenance of one cache entry (``record.json``).

    Attributes:
        node: node name. kind: ``artifact`` or ``figure``.
        key: the cache key the outputs were made under.
        profile, device_kind, device: where and how it ran.
        seed: the seed set before it ran.
        torch: torch's full version string.
        git_commit: the checkout's commit (``+dirty`` when it had uncommitted changes).
        created: UTC time the node finished (ISO 8601).
        wall_time_s: how long the node function took.
        metrics: what the node measured (quoted in the prose with ``[[metric:...]]``).
        outputs: file name -> ``{"sha256": ..., "bytes": ...}``.
        inputs: dependency -> the sha256 of each of its outputs when this node ran.
        key_parts: the ingredients of ``key``.
        reproducible: ``True`` when the node re-ran under the same key and wrote the same
            bytes, ``False`` when it wrote different ones (training that is not
            bit-reproducible on this device), ``None`` when not yet observed.
        usage: what a :class:`~genai_report.pipeline.dryrun.StepMeter` saw when the run
            was metered (``--meter``, dry runs): optimiser loops, seconds per step,
            operators and FLOPs per step, peak memory; ``None`` otherwise.
        host: the machine the node ran on (a Ray worker's host name under
            ``--executor ray``); ``None`` in records written before it was kept.
        threads: torch's intra-op threads while the node ran. On a CPU, training repeats
            itself byte for byte only with the same number of threads (a different split
            adds partial sums in a different order), so a re-run under the same key (to
            restore model files) uses this count; ``None`` in records written before it
            was kept.
    """

    node: str
    kind: str
    key: str
    profile: str
    device_kind: str
    device: str
    seed: int
    torch: str
    git_commit: str
    created: str
    wall_time_s: float
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    key_parts: dict[str, Any] = field(default_factory=dict)
    reproducible: bool | None = None
    usage: dict[str, Any] | None = None
    host: str | None = None
    threads: int | None = None

    def output_hashes(self) -> dict[str, str]:
        """file name -> sha256 of each output."""
        return {name: meta["sha256"] for name, meta in self.outputs.items()}

    def content_digest(self) -> str:
        """One hash of the outputs: what dependents' keys contain (early cut-off)."""
        return content_digest(self.output_hashes())

    @classmethod
    def from_json(cls, data: dict) -> Record:
        """Build a record from parsed JSON; raises ``TypeError``/``KeyError`` if malformed."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class CacheStore:
    """Cache entries under ``root`` (normally the project's ``figures/`` folder)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------
    def profile_dir(self, profile: str) -> Path:
        """Folder of one profile's entries."""
        return self.root / profile

    def entry_dir(self, profile: str, node: str) -> Path:
        """Folder of one node's current entry."""
        return self.root / profile / node

    # -- reading -------------------------------------------------------------------------
    def read_record(self, profile: str, node: str) -> Record | None:
        """The node's record, or ``None`` if absent or unreadable (then it is stale)."""
        path = self.entry_dir(profile, node) / RECORD
        if not path.is_file():
            return None
        try:
            return Record.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("Cache record %s is unreadable (%s); %s will be rebuilt.", path, exc, node)
            return None

    def verify_outputs(self, profile: str, record: Record) -> str | None:
        """Check every recorded output exists with its recorded hash.

        A missing cache-only output (:func:`is_cache_only`) is not a fault: the entry is
        complete but *unmaterialised* (see :meth:`missing_outputs`).

        Returns:
            ``None`` if all is well, else the reason the entry is corrupt.
        """
        entry = self.entry_dir(profile, record.node)
        for name, meta in record.outputs.items():
            path = entry / name
            if not path.is_file():
                if is_cache_only(name):
                    continue
                return f"output '{name}' is missing"
            if path.stat().st_size != meta.get("bytes") or file_digest(path) != meta.get(
                "sha256"
            ):
                return f"output '{name}' does not match its recorded hash (corrupted?)"
        return None

    def missing_outputs(self, profile: str, record: Record) -> list[str]:
        """Recorded outputs that are not on disk (cache-only files a checkout lacks)."""
        entry = self.entry_dir(profile, record.node)
        return sorted(name for name in record.outputs if not (entry / name).is_file())

    # -- writing -------------------------------------------------------------------------
    def new_staging(self, profile: str, node: str) -> Path:
        """A fresh, empty folder for a node to write into while it runs."""
        path = self.profile_dir(profile) / f".staging-{node}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def commit(self, profile: str, node: str, staging: Path, record: Record) -> Path:
        """Write the record into ``staging`` and swap it in as the node's entry.

        Returns:
            The entry folder.
        """
        record_path = staging / RECORD
        tmp = staging / f".{RECORD}.tmp"
        tmp.write_text(json.dumps(asdict(record), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, record_path)
        _fsync_dir(staging)
        entry = self.entry_dir(profile, node)
        old = None
        if entry.exists():
            old = self.profile_dir(profile) / f".old-{node}-{uuid.uuid4().hex[:12]}"
            os.replace(entry, old)
        os.replace(staging, entry)
        _fsync_dir(self.profile_dir(profile))
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return entry

    def discard(self, staging: Path) -> None:
        """Delete a staging folder (after a failure or an interruption)."""
        shutil.rmtree(staging, ignore_errors=True)

    def recover(self) -> None:
        """Undo what an interrupted run left: stray staging folders and unfinished swaps."""
        if not self.root.is_dir():
            return
        for pdir in self.root.iterdir():
            if not pdir.is_dir() or pdir.name.startswith("."):
                continue
            for child in pdir.iterdir():
                if child.name.startswith(".staging-"):
                    log.info("Removing unfinished output %s from an interrupted run.", child)
                    shutil.rmtree(child, ignore_errors=True)
                elif child.name.startswith(".old-"):
                    node = child.name[len(".old-") :].rsplit("-", 1)[0]
                    entry = pdir / node
                    if entry.exists():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        log.warning("Restoring the previous output of %s (swap interrupted).", node)
                        os.replace(child, entry)

    def clean(self, profile: str | None = None, keep: set[str] | None = None) -> list[Path]:
        """Delete entries: a whole profile (or all), or only those whose node is not in ``keep``.

        Returns:
            The folders removed.
        """
        removed: list[Path] = []
        profiles = [self.profile_dir(profile)] if profile else [
            p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        ] if self.root.is_dir() else []
        for pdir in profiles:
            if not pdir.is_dir():
                continue
            for child in sorted(pdir.iterdir()):
                if keep is not None and child.name in keep:
                    continue
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
        return removed

    # -- locking -------------------------------------------------------------------------
    @contextmanager
    def lock(self, timeout: float = 0) -> Iterator[None]:
        """Hold the cache's lock so two builds on one checkout cannot interleave writes.

        Args:
            timeout: seconds to wait for another build to finish; 0 fails at once.

        Raises:
            LockBusyError: another build holds the lock.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise LockBusyError(
                f"Another genai-report build is running on this checkout: it holds the lock "
                f"{path}. Wait for it to finish (or stop it) and run again; pass "
                "--lock-timeout SECONDS to wait automatically."
            ) from None
        try:
            yield
        finally:
            lock.release()


def describe_outputs(folder: Path, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Hash and size of each declared output in ``folder``."""
    return {
        name: {"sha256": file_digest(folder / name), "bytes": (folder / name).stat().st_size}
        for name in names
    }


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
