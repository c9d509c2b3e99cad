"""Cache keys by content.

A node's key is the SHA-256 of everything that can change its outputs:

* the source of the code it really runs: its own module and, transitively, every module
  of the same top-level package that it imports (found by reading ``import`` statements,
  including those inside functions, so lazy imports count). The pipeline's own machinery
  (``pipeline``, ``mkdocs_plugin``, ``cli``) is left out: it moves files around and does
  not shape a figure. Editing a model file therefore re-runs exactly the nodes that use it,
  and editing Markdown re-runs nothing;
* its parameters for the profile, its seed, and the bytes of its declared data files;
* the keys of its input nodes;
* the profile, the device kind (cpu, cuda, mps) and torch's release (without the local
  build tag: ``2.13.0+cpu`` and ``2.13.0+cu126`` are both ``2.13.0``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from genai_report.pipeline.registry import DataSpec, Node, params_to_jsonable

KEY_FORMAT = 1
"""Bump to invalidate every cache entry (e.g. when the record format changes)."""

EXCLUDED_SUBPACKAGES = ("pipeline", "mkdocs_plugin", "cli")


@cache
def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # imports only the (light) top-level package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _module_file(name: str) -> Path | None:
    """Source file of a module of a project package, found without importing it."""
    package, *rest = name.split(".")
    root = _package_dir(package)
    if root is None:
        return None
    base = root.joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if rest and candidate.is_file():
            return candidate
    return None


def _is_excluded(name: str, package: str) -> bool:
    return any(
        name == f"{package}.{sub}" or name.startswith(f"{package}.{sub}.")
        for sub in EXCLUDED_SUBPACKAGES
    )


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Absolute names a module's import statements can load (modules or attributes)."""
    names: set[str] = set()
    base_parts = module.split(".") if is_package else module.split(".")[:-1]
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.Import):
            names.update(alias.name for alias in stmt.names)
        elif isinstance(stmt, ast.ImportFrom):
            if stmt.level:
                parts = base_parts[: len(base_parts) - (stmt.level - 1)]
                base = ".".join(parts + ([stmt.module] if stmt.module else []))
            else:
                base = stmt.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in stmt.names)
    return names


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``a.b``, ``a.b.c`` (importing a submodule runs its packages' __init__)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts) + 1)]


@cache
def code_closure(module: str) -> tuple[tuple[str, str], ...]:
    """The modules a node's code runs, as sorted ``(module name, sha256 of source)`` pairs.

    Args:
        module: dotted name of the module that defines the node function.

    Returns:
        The module itself and every module of its top-level package that it imports,
        transitively, minus the pipeline's own machinery. The top-level package's
        ``__init__`` is left out (it only holds the version).
    """
    package = module.split(".")[0]
    seen: dict[str, str] = {}
    frontier = [module]
    while frontier:
        name = frontier.pop()
        if name in seen or name == package or _is_excluded(name, package):
            continue
        path = _module_file(name)
        if path is None or path.suffix != ".py":
            continue
        source = path.read_bytes().replace(b"\r\n", b"\n")
        seen[name] = hashlib.sha256(source).hexdigest()
        tree = ast.parse(source, filename=str(path))
        for imported in _imported_names(tree, name, path.name == "__init__.py"):
            if imported == package or imported.startswith(package + "."):
                frontier.extend(_with_parents(imported))
    return tuple(sorted(seen.items()))


def clear_caches() -> None:
    """Forget hashed sources (call after editing files in a running process)."""
    code_closure.cache_clear()
    _module_file.cache_clear()
    _package_dir.cache_clear()
    _file_digest.cache_clear()


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
        dep_keys: key of each dependency (as computed or recorded this run).
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
        code=code_closure(node.module),
        params=params_to_jsonable(node.params_for(profile)),
        seed=node.seed,
        data=tuple(data),
        deps=tuple((d, dep_keys[d]) for d in node.deps),
        profile=profile,
        device_kind=device_kind,
        torch=torch_release(),
    )
