"""Cache keys by content.

A node's key is the SHA-256 of everything that can change its outputs:

* the code it really runs, symbol by symbol (:mod:`genai_report.pipeline.closure`): its
  function and every function, class or constant of the project that the function reaches,
  hashed from a normalised syntax tree, so comments, docstrings and formatting change no
  key, and two nodes that share a file but not code do not share staleness. The context a
  node receives and the seeding before it runs count; the scheduler, the cache and the
  plugin do not;
* its parameters for the profile, its seed, and the bytes of its declared data files;
* the *content* of its inputs (a digest of each dependency's output hashes), not their
  keys: a dependency that re-runs and writes the same bytes leaves this node fresh (early
  cut-off, as in Bazel or Shake);
* the profile, the device kind (cpu, cuda, mps) and torch's release (without the local
  build tag: ``2.13.0+cpu`` and ``2.13.0+cu126`` are both ``2.13.0``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from genai_report.pipeline import closure
from genai_report.pipeline.registry import DataSpec, Node, params_to_jsonable

KEY_FORMAT = 2
"""Bump to invalidate every cache entry (e.g. when the record format changes)."""


def code_roots(node: Node) -> list[closure.Ref]:
    """Where the code of ``node`` starts: its function (the top-level definition holding
    it), the classes of its parameters, and the runtime every node runs."""
    roots = [(node.module, node.func.__qualname__.split(".")[0])]
    for params in node.params.values():
        if dataclasses.is_dataclass(params) and not isinstance(params, type):
            cls = type(params)
            roots.append((cls.__module__, cls.__qualname__.split(".")[0]))
    runtime = closure.RUNTIME_SYMBOLS + (("reset_plotting",) if node.kind == "figure" else ())
    roots.extend((closure.RUNTIME_MODULE, s) for s in runtime)
    return roots


_closures: dict[tuple, tuple[tuple[str, str], ...]] = {}


def code_closure(node: Node) -> tuple[tuple[str, str], ...]:
    """The code ``node`` runs, as sorted ``("module:symbol", sha256)`` pairs (memoised
    until :func:`clear_caches`)."""
    roots = tuple(code_roots(node))
    if roots not in _closures:
        _closures[roots] = closure.closure(roots)
    return _closures[roots]


def clear_caches() -> None:
    """Forget hashed sources (call after editing files in a running process)."""
    _closures.clear()
    closure.clear()
    _file_digest.cache_clear()


def content_digest(output_hashes: dict[str, str]) -> str:
    """One SHA-256 over a node's outputs (file name -> sha256): what its dependents key on."""
    blob = json.dumps(output_hashes, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@cache
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (memoised on path, mtime and size)."""
    st = path.stat()
    return _file_digest(str(path), st.st_mtime_ns, st.st_size)


def resolve_data(spec: DataSpec, root: Path) -> Path:
    """Turn a node's data entry into an existing path, or raise naming the node's fix."""
    path = Path(spec()) if callable(spec) else Path(spec)
    if not path.is_absolute():
        path = root / path
    if not path.is_file():
        raise FileNotFoundError(
            f"Data file '{path}' declared by a node does not exist. Restore it (git checkout "
            "-- <file>) or regenerate it with the script under scripts/ that makes it."
        )
    return path


def torch_release() -> str:
    """torch's version without the local build tag, read without importing torch."""
    try:
        return importlib.metadata.version("torch").split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return "none"


@dataclass(frozen=True)
class KeyParts:
    """Everything that goes into a node's key, kept in its record for inspection."""

    node: str
    code: tuple[tuple[str, str], ...]
    params: object
    seed: int
    data: tuple[tuple[str, str], ...]
    deps: tuple[tuple[str, str], ...]
    profile: str
    device_kind: str
    torch: str
    key_format: int = KEY_FORMAT

    def digest(self) -> str:
        """The key: SHA-256 of the canonical JSON of the parts."""
        blob = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def as_json(self) -> dict:
        """A JSON-able dict of the parts."""
        return {
            "node": self.node,
            "code": [list(c) for c in self.code],
            "params": self.params,
            "seed": self.seed,
            "data": [list(d) for d in self.data],
            "deps": [list(d) for d in self.deps],
            "profile": self.profile,
            "device_kind": self.device_kind,
            "torch": self.torch,
            "key_format": self.key_format,
        }


def key_parts(
    node: Node, *, profile: str, device_kind: str, dep_keys: dict[str, str], root: Path
) -> KeyParts:
    """Collect the parts of ``node``'s key for one profile and device kind.

    Args:
        node: the node.
        profile: profile name.
        device_kind: ``cpu``, ``cuda`` or ``mps``.
        dep_keys: what each dependency contributes: the :func:`content_digest` of its
            outputs when they exist, or its expected key when predicting keys without a
            cache (:meth:`Pipeline.expected_keys`).
        root: the project root, against which relative data paths resolve.
    """
    data = []
    for spec in node.data:
        path = resolve_data(spec, root)
        # The label must not depend on where the checkout or the virtual environment
        # lives: a declared project path as written, else (a file shipped with a
        # dependency, found by a callable) its name; the bytes decide either way.
        label = Path(spec).as_posix() if isinstance(spec, (str, Path)) else path.name
        data.append((label, file_digest(path)))
    return KeyParts(
        node=node.name,
        code=code_closure(node),
        params=params_to_jsonable(node.params_for(profile)),
        seed=node.seed,
        data=tuple(data),
        deps=tuple((d, dep_keys[d]) for d in node.deps),
        profile=profile,
        device_kind=device_kind,
        torch=torch_release(),
    )
