"""The registry of pipeline nodes: trained artifacts and the figures drawn from them.

A node is a named, documented function with declared outputs and one set of parameters per
profile. Artifacts (a trained model, a prepared data set) are nodes that several figures
depend on; they are trained once and cached like figures.

Figure modules live in :mod:`genai_report.figures` and register their nodes with the
:func:`artifact` and :func:`figure` decorators::

    @figure(
        "foundations-density",
        deps=("toy2d-gmm",),
        params={"smoke": P(grid=32), "quick": P(grid=200), "full": P(grid=400)},
        outputs=("density.svg",),
        title="A mixture model learns the two-moons distribution",
        alt="Three panels: training points, learned log-density, samples.",
    )
    def density(ctx, p):
        ...

Figure modules import torch and matplotlib inside their node functions, never at module
level, so that listing nodes and a no-op build stay fast.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genai_report.pipeline.errors import ConfigError, UnknownNameError, did_you_mean
from genai_report.pipeline.profiles import PROFILES

NodeKind = Literal["artifact", "figure"]
DataSpec = str | Path | Callable[[], Path]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")


@dataclass(frozen=True)
class Resources:
    """What one run of a node asks of a machine: a Ray task's resource request
    (:mod:`~genai_report.pipeline.ray_executor`). The local executor ignores it, and it is
    not part of the cache key: it says where a node may run, not what it computes.

    Attributes:
        cpus: CPU cores; a Ray worker also sets torch's thread count to it.
        gpus: GPUs (a fraction shares one GPU between small nodes), asked for only when
            the run's device is an accelerator.
        memory_gb: host memory to reserve, or ``None`` for no reservation.
    """

    cpus: float = 1.0
    gpus: float = 1.0
    memory_gb: float | None = None

    def __post_init__(self) -> None:
        for name in ("cpus", "gpus", "memory_gb"):
            value = getattr(self, name)
            if value is None and name == "memory_gb":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"Resources.{name} must be a number >= 0, got {value!r}.")
        if self.cpus <= 0:
            raise ConfigError(f"Resources.cpus must be > 0, got {self.cpus!r}.")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ConfigError(
                f"Resources.gpus above 1 must be a whole number, got {self.gpus!r}.")

    @classmethod
    def parse(cls, value: Resources | Mapping[str, Any] | None) -> Resources:
        """A :class:`Resources` from itself, a mapping of its fields, or ``None``."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise ConfigError(
                    f"Unknown resource(s) {', '.join(unknown)}; use cpus, gpus and memory_gb.")
            return cls(**value)
        raise ConfigError(f"resources must be a Resources or a mapping, got {value!r}.")
_IMAGE_SUFFIXES = (".svg", ".png", ".jpg", ".jpeg", ".gif", ".webp")
_SOUND_SUFFIXES = (".wav",)


def params_to_jsonable(params: Any) -> Any:
    """Canonical JSON-able form of a node's parameters (dataclass, mapping or scalar)."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return {"__type__": type(params).__name__, **dataclasses.asdict(params)}
    if isinstance(params, Mapping):
        return {str(k): params_to_jsonable(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return [params_to_jsonable(v) for v in params]
    return params


@dataclass(frozen=True)
class Node:
    """One unit of work in the pipeline.

    Attributes:
        name: unique, lower-case with dashes (it becomes a URL and a folder).
        func: ``func(ctx, params) -> dict | None``; the returned dict holds metrics.
        kind: ``"artifact"`` or ``"figure"``.
        params: profile name -> parameters (a frozen dataclass, usually).
        outputs: file names the function must write with ``ctx.output(name)``.
        deps: names of the nodes whose outputs this one reads.
        seed: the seed set before the node runs; part of the cache key.
        data: files whose bytes are part of the cache key (paths relative to the project
            root, or callables returning a path, for data shipped with a dependency).
        title: figure title (used as the default caption's first sentence).
        caption: longer caption text (Markdown).
        alt: alternative text of the image, for screen readers.
        dry_run: parameter field -> the value a dry run of the ``full`` profile uses
            (:mod:`~genai_report.pipeline.dryrun`), for sample counts that would keep a
            CPU busy for minutes; step counts are cut without it.
        resources: what a run asks of a Ray worker (:class:`Resources`); not in the key.
    """

    name: str
    func: Callable[..., Any]
    kind: NodeKind
    params: Mapping[str, Any]
    outputs: tuple[str, ...]
    deps: tuple[str, ...] = ()
    seed: int = 0
    data: tuple[DataSpec, ...] = ()
    title: str = ""
    caption: str = ""
    alt: str = ""
    dry_run: Mapping[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)

    @property
    def module(self) -> str:
        """Dotted name of the module that defines the node's function."""
        return self.func.__module__

    @property
    def doc(self) -> str:
        """The node function's docstring (what the node does)."""
        return (self.func.__doc__ or "").strip()

    @property
    def images(self) -> tuple[str, ...]:
        """The outputs that are images, in declaration order."""
        return tuple(o for o in self.outputs if o.lower().endswith(_IMAGE_SUFFIXES))

    @property
    def interactive(self) -> str | None:
        """The output holding the figure's interactive view (``interactive.json``, see
        :mod:`genai_report.plotting.interactive`), or ``None``."""
        return "interactive.json" if "interactive.json" in self.outputs else None

    @property
    def sounds(self) -> tuple[str, ...]:
        """The outputs that are sound files (``.wav``), in declaration order; a figure's are
        served with its images and placed with ``[[audio:NAME]]``."""
        return tuple(o for o in self.outputs if o.lower().endswith(_SOUND_SUFFIXES))

    def params_for(self, profile: str) -> Any:
        """Parameters for ``profile``."""
        return self.params[profile]


@dataclass
class Registry:
    """A name -> :class:`Node` table with dependency checks and a topological order."""

    nodes: dict[str, Node] = field(default_factory=dict)

    def add(self, node: Node) -> Node:
        """Validate and register ``node``; re-registering the same function replaces it."""
        _validate_node(node)
        old = self.nodes.get(node.name)
        if old is not None and (old.module, old.func.__qualname__) != (
            node.module,
            node.func.__qualname__,
        ):
            raise ConfigError(
                f"Node name '{node.name}' is registered twice: by {old.module}."
                f"{old.func.__qualname__} and by {node.module}.{node.func.__qualname__}. "
                "Rename one of them."
            )
        self.nodes[node.name] = node
        return node

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __iter__(self):
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, name: str) -> Node:
        """Return the node called ``name`` or raise with a "did you mean" hint."""
        try:
            return self.nodes[name]
        except KeyError:
            raise UnknownNameError(
                f"Unknown figure or artifact '{name}'.{did_you_mean(name, self.nodes)} "
                "Run `genai-report list` to see every node."
            ) from None

    def figures(self) -> list[Node]:
        """All figure nodes, in topological order."""
        return [n for n in self.topological() if n.kind == "figure"]

    def check_dependencies(self) -> None:
        """Raise if a node depends on an unknown node or the graph has a cycle."""
        for node in self.nodes.values():
            for dep in node.deps:
                if dep not in self.nodes:
                    raise ConfigError(
                        f"Node '{node.name}' ({node.module}) depends on unknown node "
                        f"'{dep}'.{did_you_mean(dep, self.nodes)}"
                    )
        self.topological()

    def topological(self, names: Iterable[str] | None = None) -> list[Node]:
        """Nodes in dependency order; with ``names``, only those and their dependencies."""
        wanted = list(self.nodes) if names is None else list(names)
        order: list[Node] = []
        state: dict[str, int] = {}  # 1 = visiting, 2 = done

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join((*path, name))
                raise ConfigError(f"Dependency cycle between nodes: {cycle}.")
            node = self.get(name)
            state[name] = 1
            for dep in node.deps:
                visit(dep, (*path, name))
            state[name] = 2
            order.append(node)

        for name in wanted:
            visit(name, ())
        return order


REGISTRY = Registry()
"""The process-wide registry that the decorators fill."""


def _validate_node(node: Node) -> None:
    where = f"node '{node.name}' ({node.module}.{node.func.__qualname__})"
    if not _NAME_RE.match(node.name):
        raise ConfigError(
            f"Invalid node name '{node.name}': use lower-case letters, digits and dashes, "
            "e.g. 'foundations-density'."
        )
    missing = [p for p in PROFILES if p not in node.params]
    extra = [p for p in node.params if p not in PROFILES]
    if missing or extra:
        raise ConfigError(
            f"{where} must give parameters for exactly the profiles {', '.join(PROFILES)}; "
            f"missing: {missing or 'none'}, unknown: {extra or 'none'}."
        )
    for profile, params in node.params.items():
        try:
            json.dumps(params_to_jsonable(params), sort_keys=True)
        except TypeError as exc:
            raise ConfigError(
                f"{where}: parameters of profile '{profile}' are not JSON-serialisable "
                f"({exc}). Use a frozen dataclass of numbers, strings, lists and tuples."
            ) from None
    if not node.outputs:
        raise ConfigError(f"{where} declares no outputs; list the files it writes.")
    for out in node.outputs:
        if "/" in out or "\\" in out or out.startswith(".") or out == "record.json":
            raise ConfigError(
                f"{where}: output '{out}' must be a plain file name (no folders, no leading "
                "dot, not 'record.json')."
            )
    if len(set(node.outputs)) != len(node.outputs):
        raise ConfigError(f"{where} lists an output twice.")
    if node.kind == "figure" and not node.images:
        raise ConfigError(f"{where} is a figure but declares no image output (.svg, .png).")
    if node.kind == "figure" and not node.alt:
        raise ConfigError(f"{where} is a figure without alt text; describe the image in alt=.")
    if node.name in node.deps:
        raise ConfigError(f"{where} depends on itself.")


def _register(kind: NodeKind, name: str, **kwargs: Any) -> Callable[[Callable], Callable]:
    def decorator(func: Callable) -> Callable:
        REGISTRY.add(Node(name=name, func=func, kind=kind, **kwargs))
        return func

    return decorator


def artifact(
    name: str,
    *,
    params: Mapping[str, Any],
    outputs: Sequence[str],
    deps: Sequence[str] = (),
    seed: int = 0,
    data: Sequence[DataSpec] = (),
    dry_run: Mapping[str, Any] | None = None,
    resources: Resources | Mapping[str, Any] | None = None,
) -> Callable[[Callable], Callable]:
    """Register a shared artifact (a trained model, a prepared data set).

    Args:
        name: unique node name.
        params: profile -> parameters; all of ``smoke``, ``quick`` and ``full``.
        outputs: file names the node writes.
        deps: nodes whose outputs it reads.
        seed: seed set before it runs.
        data: data files that are part of its cache key.
        dry_run: field -> value for a dry run (:attr:`Node.dry_run`).
        resources: what a run asks of a Ray worker (:class:`Resources`, or a mapping
            such as ``{"gpus": 0.25}``).
    """
    return _register(
        "artifact", name, params=dict(params), outputs=tuple(outputs), deps=tuple(deps),
        seed=seed, data=tuple(data), dry_run=dict(dry_run or {}),
        resources=Resources.parse(resources),
    )


def figure(
    name: str,
    *,
    params: Mapping[str, Any],
    outputs: Sequence[str],
    alt: str,
    title: str = "",
    caption: str = "",
    deps: Sequence[str] = (),
    seed: int = 0,
    data: Sequence[DataSpec] = (),
    dry_run: Mapping[str, Any] | None = None,
    resources: Resources | Mapping[str, Any] | None = None,
) -> Callable[[Callable], Callable]:
    """Register a figure: a node whose outputs include at least one image.

    Args:
        name: unique node name; Markdown places it with ``[[figure:NAME]]``.
        params: profile -> parameters; all of ``smoke``, ``quick`` and ``full``.
        outputs: file names the node writes; the first image is the one placed on a page.
        alt: alternative text describing the image.
        title: a one-line title (caption's first sentence).
        caption: more caption text (Markdown).
        deps: nodes whose outputs it reads.
        seed: seed set before it runs.
        data: data files that are part of its cache key.
        dry_run: field -> value for a dry run (:attr:`Node.dry_run`).
        resources: what a run asks of a Ray worker (:class:`Resources`, or a mapping).
    """
    return _register(
        "figure", name, params=dict(params), outputs=tuple(outputs), deps=tuple(deps),
        seed=seed, data=tuple(data), title=title, caption=caption, alt=alt,
        dry_run=dict(dry_run or {}), resources=Resources.parse(resources),
    )


NODE_PACKAGES = ("genai_report.artifacts", "genai_report.figures")


def load_registry(packages: Sequence[str] = NODE_PACKAGES) -> Registry:
    """Import every module of the node packages and return the filled registry.

    Args:
        packages: packages whose modules register nodes (artifacts, then figures).
    """
    for package in packages:
        pkg = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package}.{info.name}")
    REGISTRY.check_dependencies()
    return REGISTRY
