"""Cache archives: the model files git does not hold, packed once and fetched on demand.

Git holds what the pages show (figures, notebooks, records); the cache-only outputs
(:data:`~genai_report.pipeline.store.CACHE_ONLY_SUFFIXES`, model weights) stay out of the
history. A release job packs them into one archive::

    genai-report pack --profile quick -o cache-quick.tar.gz

and publishes it (a release asset, CI's cache). A checkout that needs a model it does not
have (a contributor changed a figure that reads one) fetches it from there
(``genai-report pull URL`` or ``$GENAI_REPORT_CACHE_URL``); every file is checked against
the sha256 in the checkout's own record before it is put in place, so an archive of other
code, a truncated download or a tampered file is never used. Without an archive the node
re-runs instead (the runner says so).

An archive is a ``.tar.gz`` holding ``MANIFEST.json`` (``{"profile", "entries": {node:
{file: sha256}}}``) and one member ``<node>/<file>`` per cache-only output.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from genai_report.pipeline.errors import ConfigError
from genai_report.pipeline.keys import file_digest
from genai_report.pipeline.store import RECORD, CacheStore, is_cache_only

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
CACHE_URL_ENV = "GENAI_REPORT_CACHE_URL"
"""Where the runner fetches missing model files from when no archive is given."""
DOWNLOAD_TIMEOUT_S = 60


@dataclass
class PullReport:
    """What :func:`pull` did.

    Attributes:
        restored: ``node/file`` of each file put in place.
        present: files the cache already had.
        mismatched: files whose archived bytes do not match the checkout's record
            (the archive was packed from other code or is damaged); not used.
        absent: files the checkout's records need but the archive does not have.
    """

    restored: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


def pack(store: CacheStore, profile: str, dest: Path) -> int:
    """Write the cache-only outputs of ``profile`` into the archive ``dest``.

    Every entry must be whole (each cache-only output on disk with its recorded hash): an
    archive is only as good as the cache it is packed from.

    Returns:
        The number of files packed.

    Raises:
        ConfigError: the profile has no entries, or an entry lacks a file or has a
            corrupted one (the message names it and how to rebuild it).
    """
    pdir = store.profile_dir(profile)
    entries: dict[str, dict[str, str]] = {}
    members: list[tuple[str, Path]] = []
    for entry in sorted(p for p in pdir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if pdir.is_dir() else []:
        record = store.read_record(profile, entry.name)
        if record is None:
            continue
        for name, meta in sorted(record.outputs.items()):
            if not is_cache_only(name):
                continue
            path = entry / name
            if not path.is_file() or file_digest(path) != meta["sha256"]:
                raise ConfigError(
                    f"Cannot pack {profile}: {entry.name}/{name} is missing or does not match "
                    f"its record. Rebuild it first: genai-report figures --profile {profile} "
                    f"--only {entry.name} --force"
                )
            entries.setdefault(entry.name, {})[name] = meta["sha256"]
            members.append((f"{entry.name}/{name}", path))
    if not entries:
        raise ConfigError(f"Nothing to pack: no cache-only outputs under {pdir}. Build the "
                          f"profile first: genai-report figures --profile {profile}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            blob = json.dumps({"profile": profile, "entries": entries}, indent=1,
                              sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            for arcname, path in members:
                tar.add(path, arcname=arcname, recursive=False)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return len(members)


def pull(store: CacheStore, profile: str, source: str, nodes: set[str] | None = None) -> PullReport:
    """Put the cache-only outputs that ``profile``'s records need, from archive ``source``.

    Args:
        store: the cache to fill.
        profile: the profile whose entries are filled.
        source: a path or an ``http(s)://``/``file://`` URL of an archive made by :func:`pack`.
        nodes: only these entries (default: every entry that lacks a file).

    Raises:
        ConfigError: the archive cannot be read or fetched (the message names it), or
            it was packed for another profile.
    """
    report = PullReport()
    with _open_archive(source) as tar:
        manifest = _read_manifest(tar, source)
        if manifest.get("profile") != profile:
            raise ConfigError(f"Cache archive {source} holds the '{manifest.get('profile')}' "
                              f"profile, not '{profile}'. Use the archive of '{profile}'.")
        archived: dict[str, dict[str, str]] = manifest.get("entries", {})
        pdir = store.profile_dir(profile)
        names = sorted(nodes) if nodes is not None else sorted(
            p.name for p in pdir.iterdir() if (p / RECORD).is_file()) if pdir.is_dir() else []
        for node in names:
            record = store.read_record(profile, node)
            if record is None:
                continue
            for name, meta in sorted(record.outputs.items()):
                if not is_cache_only(name):
                    continue
                label = f"{node}/{name}"
                target = store.entry_dir(profile, node) / name
                if target.is_file() and file_digest(target) == meta["sha256"]:
                    report.present.append(label)
                    continue
                if archived.get(node, {}).get(name) != meta["sha256"]:
                    report.absent.append(label)
                    continue
                if _extract_verified(tar, label, target, meta["sha256"]):
                    report.restored.append(label)
                else:
                    report.mismatched.append(label)
    if report.mismatched:
        log.warning("Cache archive %s: %d file(s) did not match their recorded hash and were "
                    "not used: %s", source, len(report.mismatched), ", ".join(report.mismatched))
    return report


def _extract_verified(tar: tarfile.TarFile, member: str, target: Path, sha256: str) -> bool:
    try:
        src = tar.extractfile(member)
    except KeyError:
        return False
    if src is None:
        return False
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha256:
            return False
        os.replace(tmp, target)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read_manifest(tar: tarfile.TarFile, source: str) -> dict:
    try:
        fh = tar.extractfile(MANIFEST)
        return json.loads(fh.read()) if fh is not None else {}
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{source} is not a genai-report cache archive (no readable "
                          f"{MANIFEST}: {exc}). Make one with `genai-report pack`.") from None


class _open_archive:  # noqa: N801 - a context manager used like a function
    """Open a local or remote archive; a download goes to a temporary file first."""

    def __init__(self, source: str):
        self.source = source
        self.tmpdir: str | None = None
        self.tar: tarfile.TarFile | None = None

    def __enter__(self) -> tarfile.TarFile:
        path = self._local_path()
        try:
            self.tar = tarfile.open(path, "r:*")
        except (OSError, tarfile.TarError) as exc:
            self._cleanup()
            raise ConfigError(f"Cannot read cache archive {self.source}: {exc}. Check the "
                              "path, or make one with `genai-report pack`.") from None
        return self.tar

    def __exit__(self, *exc: object) -> None:
        if self.tar is not None:
            self.tar.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _local_path(self) -> Path:
        src = self.source
        if src.startswith("file://"):
            return Path(urllib.request.url2pathname(src[len("file://"):]))
        if not src.startswith(("http://", "https://")):
            path = Path(src).expanduser()
            if not path.is_file():
                raise ConfigError(f"Cache archive {src} does not exist. Give the path or URL of "
                                  "an archive made by `genai-report pack`.")
            return path
        self.tmpdir = tempfile.mkdtemp(prefix="genai-report-archive-")
        dest = Path(self.tmpdir) / "archive.tar.gz"
        log.info("Fetching cache archive %s ...", src)
        try:
            with urllib.request.urlopen(src, timeout=DOWNLOAD_TIMEOUT_S) as resp, \
                    open(dest, "wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
        except (OSError, urllib.error.URLError) as exc:
            self._cleanup()
            raise ConfigError(f"Cannot fetch cache archive {src}: {exc}. Check the address "
                              "and the network; without it, nodes re-run instead.") from None
        return dest


__all__ = ["MANIFEST", "PullReport", "pack", "pull"]
