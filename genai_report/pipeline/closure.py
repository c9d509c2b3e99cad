"""The code a node really runs, found by reading source (nothing is imported).

A node's code is hashed per *symbol* (a top-level function, class or assignment), not per
file, and from a normalised form of its syntax tree, so that:

* comments, docstrings, blank lines and formatting change no hash (the tree has no
  comments; docstrings are dropped; the dump leaves out line numbers);
* a node depends only on the symbols its function reaches: the names it uses, the names
  those use, and so on across modules of the project (``from x import f`` and ``x.f``
  both resolve to the symbol ``f`` of module ``x``, lazy imports inside functions
  included). Two nodes in one module do not share staleness unless they share code, and
  adding a new figure to a module makes only the new node stale;
* a class counts as a whole (its methods, bases and decorators), so an edit inside one
  model class makes stale exactly the nodes that reach that class.

What the analysis cannot see is counted conservatively: a module used as a value (passed
around, ``getattr`` on it) brings in every symbol of that module, and a module's
import-time statements (a registration loop, a top-level call) count for every symbol of
it that is reached. Names that come from outside the project (torch, numpy) are covered by
the key's torch release and the pinned dependencies, not here.

The pipeline's own machinery (the runner, the cache, the registry, the CLI and the MkDocs
plugin) moves files around and is left out; the part that shapes outputs, the context a
node receives and the seeding done before it runs (:mod:`genai_report.pipeline.context`),
is reached by every node.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

RUNTIME_MODULE = "genai_report.pipeline.context"
"""The one pipeline module whose code shapes a node's outputs."""

RUNTIME_SYMBOLS = ("NodeContext", "seed_everything")
"""Symbols of :data:`RUNTIME_MODULE` every node runs (figures also ``reset_plotting``)."""

EXCLUDED = ("genai_report.pipeline", "genai_report.mkdocs_plugin", "genai_report.cli")
"""Module prefixes whose code does not shape outputs (bar :data:`RUNTIME_MODULE`)."""

REGISTERING_DECORATORS = frozenset({"figure", "artifact"})
"""Decorators that only register a node: their arguments (title, caption, alt text) are
not code the node runs; its parameters enter the key by value."""

MODULE_INIT = "<module>"
"""Pseudo-symbol for a module's import-time statements other than definitions."""


@dataclass
class ModuleInfo:
    """What one module defines and imports, read from its source.

    Attributes:
        name: dotted module name.
        is_package: whether it is a package's ``__init__``.
        symbols: top-level name -> the statements that bind it (defs, classes,
            assignments), docstrings already removed.
        imports: local name -> absolute dotted targets it may be bound to (from every
            import statement in the module, those inside functions included).
        init: import-time statements that are neither definitions nor imports.
    """

    name: str
    is_package: bool
    symbols: dict[str, list[ast.stmt]] = field(default_factory=dict)
    imports: dict[str, set[str]] = field(default_factory=dict)
    init: list[ast.stmt] = field(default_factory=list)


@cache
def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # imports only the (light) top-level package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


_PROJECT_PACKAGES: set[str] = {"genai_report"}
"""Top-level packages whose code is analysed (this one and those of the nodes' modules)."""


def _add_project_package(package: str) -> None:
    if package not in _PROJECT_PACKAGES:
        _PROJECT_PACKAGES.add(package)
        for fn in (module_file, module_info, symbol_refs):
            fn.cache_clear()


@cache
def module_file(name: str) -> Path | None:
    """Source file of a module of a project package, found without importing it."""
    package, *rest = name.split(".")
    if package not in _PROJECT_PACKAGES:
        return None  # third-party code is covered by the pinned releases, not read here
    root = _package_dir(package)
    if root is None or not rest:
        return None
    base = root.joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def is_excluded(module: str) -> bool:
    """Whether ``module`` is pipeline machinery whose code does not shape outputs."""
    if module == RUNTIME_MODULE:
        return False
    return any(module == p or module.startswith(p + ".") for p in EXCLUDED)


def _is_string_statement(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _strip_docstrings(tree: ast.AST) -> None:
    """Drop every statement that is a bare string: docstrings of modules, classes and
    functions, and attribute docstrings after an assignment. None of them runs."""
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and any(isinstance(s, ast.stmt) for s in stmts):
                kept = [s for s in stmts if not _is_string_statement(s)]
                if len(kept) != len(stmts):
                    setattr(node, name, kept or ([ast.Pass()] if name == "body" else []))


def _strip_registration(stmt: ast.stmt) -> ast.stmt:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        stmt.decorator_list = [d for d in stmt.decorator_list if _callee(d) not in REGISTERING_DECORATORS]
    return stmt


def _is_registration(stmt: ast.stmt) -> bool:
    """``figure(...)(func)`` / ``artifact(...)(func)`` at module level, or a loop of them:
    they register nodes (whose parameters enter keys by value) and run no node code."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        inner = stmt.value.func
        return isinstance(inner, ast.Call) and _callee(inner) in REGISTERING_DECORATORS
    if isinstance(stmt, ast.For) and not stmt.orelse:
        return all(_is_registration(s) for s in stmt.body)
    return False


def _callee(expr: ast.expr) -> str | None:
    target = expr.func if isinstance(expr, ast.Call) else expr
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    if not level:
        return target or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([target] if target else []))


def _bound_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _bound_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _bound_names(target.value)


@cache
def module_info(name: str) -> ModuleInfo | None:
    """Parse module ``name`` of a project package (``None`` if it has no source)."""
    path = module_file(name)
    if path is None:
        return None
    return parse_module(name, path.read_bytes(), is_package=path.name == "__init__.py",
                        filename=str(path))


def parse_module(name: str, source: str | bytes, *, is_package: bool = False,
                 filename: str = "<source>") -> ModuleInfo:
    """Read what module ``name`` defines and imports from its ``source``."""
    tree = ast.parse(source, filename=filename)
    _strip_docstrings(tree)
    info = ModuleInfo(name=name, is_package=is_package)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    info.imports.setdefault(alias.asname, set()).add(alias.name)
                else:  # ``import a.b`` binds ``a``, through which ``a.b.x`` is reached
                    top = alias.name.split(".")[0]
                    info.imports.setdefault(top, set()).add(top)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(name, info.is_package, node.level, node.module)
            for alias in node.names:
                if alias.name == "*":
                    info.imports.setdefault("*", set()).add(base)
                else:
                    info.imports.setdefault(alias.asname or alias.name, set()).add(
                        f"{base}.{alias.name}")
    _collect_top_level(tree.body, info)
    return info


def _collect_top_level(body: list[ast.stmt], info: ModuleInfo) -> None:
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            info.symbols.setdefault(stmt.name, []).append(_strip_registration(stmt))
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = [n for t in targets for n in _bound_names(t)]
            if names:
                for n in names:
                    info.symbols.setdefault(n, []).append(stmt)
            else:
                info.init.append(stmt)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        elif isinstance(stmt, (ast.If, ast.Try)) and _only_bindings(stmt):
            # ``if TYPE_CHECKING:`` / ``try: import x except ImportError: ...``
            for part in _sub_bodies(stmt):
                _collect_top_level(part, info)
        elif isinstance(stmt, ast.Pass) or _is_registration(stmt):
            continue
        else:
            info.init.append(stmt)


def _sub_bodies(stmt: ast.If | ast.Try) -> Iterator[list[ast.stmt]]:
    yield stmt.body
    yield stmt.orelse
    if isinstance(stmt, ast.Try):
        yield stmt.finalbody
        for handler in stmt.handlers:
            yield handler.body


def _only_bindings(stmt: ast.If | ast.Try) -> bool:
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
             ast.Assign, ast.AnnAssign, ast.Pass, ast.If, ast.Try)
    return all(isinstance(s, kinds) and (not isinstance(s, (ast.If, ast.Try)) or _only_bindings(s))
               for part in _sub_bodies(stmt) for s in part)


# -- normalised hashing -------------------------------------------------------------------
def canonical(node: object) -> str:
    """A dump of a syntax tree that is stable across Python releases.

    Unlike ``ast.dump`` it leaves out empty fields (new releases add fields such as
    ``type_params`` with empty defaults), and like it, it has no line numbers.
    """
    if isinstance(node, ast.AST):
        parts = []
        for name in node._fields:
            value = getattr(node, name, None)
            if value is None or value == []:
                continue
            parts.append(f"{name}={canonical(value)}")
        return f"{type(node).__name__}({','.join(parts)})"
    if isinstance(node, list):
        return "[" + ",".join(canonical(v) for v in node) + "]"
    return repr(node)


def symbol_hashes(info: ModuleInfo) -> dict[str, str]:
    """SHA-256 of the normalised source of every symbol of a parsed module."""
    out = {s: hashlib.sha256(canonical(stmts).encode()).hexdigest()
           for s, stmts in info.symbols.items()}
    if info.init:
        out[MODULE_INIT] = hashlib.sha256(canonical(info.init).encode()).hexdigest()
    return out


@cache
def _module_hashes(module: str) -> dict[str, str]:
    info = module_info(module)
    return symbol_hashes(info) if info is not None else {}


def symbol_hash(module: str, symbol: str) -> str:
    """SHA-256 of the normalised source of ``module``'s top-level ``symbol``."""
    return _module_hashes(module)[symbol]


# -- references ---------------------------------------------------------------------------
_ANNOTATION_FIELDS = {"annotation", "returns"}


def _walk_code(node: ast.AST) -> Iterator[ast.AST]:
    """Like ``ast.walk`` but skipping annotations (they do not run)."""
    todo = [node]
    while todo:
        cur = todo.pop()
        yield cur
        for name, value in ast.iter_fields(cur):
            if name in _ANNOTATION_FIELDS:
                continue
            if isinstance(value, ast.AST):
                todo.append(value)
            elif isinstance(value, list):
                todo.extend(v for v in value if isinstance(v, ast.AST))


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _used_names(stmts: Iterable[ast.stmt]) -> set[str]:
    """Dotted names a piece of code loads (``a``, ``a.b.c``), outermost chains only."""
    names: set[str] = set()
    inner: set[int] = set()
    for stmt in stmts:
        for node in _walk_code(stmt):
            if id(node) in inner:
                continue
            if isinstance(node, ast.Attribute):
                dotted = _dotted(node)
                if dotted is not None:
                    names.add(dotted)
                    cur = node.value
                    while isinstance(cur, ast.Attribute | ast.Name):
                        inner.add(id(cur))
                        cur = cur.value if isinstance(cur, ast.Attribute) else None
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)
    return names


Ref = tuple[str, str]
"""``(module, symbol)``; ``symbol`` may be :data:`MODULE_INIT`."""


def resolve(dotted: str) -> set[Ref]:
    """The symbols an absolute dotted name can denote (a whole module if it names one)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if module_file(module) is None:
            continue
        if is_excluded(module):
            return set()
        rest = parts[cut:]
        if not rest:
            return _whole_module(module)
        return _resolve_in(module, rest, depth=0)
    return set()


def _whole_module(module: str) -> set[Ref]:
    info = module_info(module)
    if info is None:
        return set()
    refs = {(module, s) for s in info.symbols}
    if info.init:
        refs.add((module, MODULE_INIT))
    return refs


def _resolve_in(module: str, rest: list[str], depth: int) -> set[Ref]:
    info = module_info(module)
    if info is None or depth > 20:
        return set()
    head = rest[0]
    if head in info.symbols:
        return {(module, head)}
    if head in info.imports:  # a re-export, e.g. ``from .gpt import GPT`` in a package
        out: set[Ref] = set()
        for target in info.imports[head]:
            out |= resolve(".".join([target, *rest[1:]]))
        return out
    if "*" in info.imports:
        return set().union(*(resolve(".".join([b, *rest])) for b in info.imports["*"]))
    return set()


@cache
def symbol_refs(module: str, symbol: str) -> frozenset[Ref]:
    """The project symbols that ``module``'s ``symbol`` uses directly."""
    info = module_info(module)
    if info is None:
        return frozenset()
    stmts = info.init if symbol == MODULE_INIT else info.symbols.get(symbol, [])
    refs: set[Ref] = set()
    if info.init and symbol != MODULE_INIT:
        refs.add((module, MODULE_INIT))
    for dotted in _used_names(stmts):
        head, _, tail = dotted.partition(".")
        if head in info.symbols:
            if head != symbol:
                refs.add((module, head))
            continue
        for target in info.imports.get(head, ()):
            refs |= resolve(f"{target}.{tail}" if tail else target)
    return frozenset(refs)


def closure(roots: Iterable[Ref]) -> tuple[tuple[str, str], ...]:
    """Every symbol reachable from ``roots``, as sorted ``("module:symbol", sha256)`` pairs.

    Importing a module runs its packages' ``__init__`` too: their import-time statements
    (if any) count.
    """
    roots = list(roots)
    for module, _ in roots:
        _add_project_package(module.split(".")[0])
    seen: set[Ref] = set()
    todo = [r for r in roots if module_info(r[0]) is not None]
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        info = module_info(ref[0])
        if info is None or (ref[1] != MODULE_INIT and ref[1] not in info.symbols):
            continue
        seen.add(ref)
        todo.extend(symbol_refs(*ref))
        parts = ref[0].split(".")
        for cut in range(2, len(parts)):
            parent = module_info(".".join(parts[:cut]))
            if parent is not None and parent.init:
                todo.append((parent.name, MODULE_INIT))
    return tuple(sorted((f"{m}:{s}", symbol_hash(m, s)) for m, s in seen))


def clear() -> None:
    """Forget every parsed module (call after editing files in a running process)."""
    for fn in (module_info, _module_hashes, symbol_refs, module_file, _package_dir):
        fn.cache_clear()


__all__ = ["closure", "canonical", "clear", "module_info", "parse_module", "resolve",
           "symbol_hash", "symbol_hashes", "symbol_refs", "MODULE_INIT", "RUNTIME_MODULE", "RUNTIME_SYMBOLS"]
