"""Run nodes on a Ray cluster: ``genai-report figures --executor ray [--address ADDR]``.

Ray (``pip install 'genai-report[ray]'``) is the engine ML teams already run sweeps on. The
runner keeps every decision it makes locally (what is stale, the DAG order, failures, the
atomic commit); this module only moves one node's run to a worker and its outputs back:

1. The driver sends the node (pickled by reference, so each worker imports the same code),
   its dependencies' entries (outputs and ``record.json``, put once in Ray's object store
   and shared by every dependent) and the key the driver computed.
2. The worker checks that it runs the code and the torch release the key describes, and
   that it has the device the run asks for; a mismatch fails the node with its reason
   instead of caching outputs under a key that does not describe them.
3. The node runs in a temporary folder on the worker, the same way as in a local process
   (:func:`~genai_report.pipeline.runner.execute`); the worker returns the files it wrote,
   its metrics, its host name and its device.
4. The driver writes the files into a staging folder and commits them like any local run:
   only the driver writes the cache, and a worker lost mid-node (killed, out of memory,
   its machine gone) leaves nothing behind. Ray retries such a task up to ``retries``
   times, then the node is reported failed and its previous entry is kept.

Each task asks Ray for the resources its node declares
(:class:`~genai_report.pipeline.registry.Resources`): CPUs, memory and, when the run's
device is an accelerator, GPUs.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import pickle
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from genai_report.pipeline.errors import ConfigError
from genai_report.pipeline.registry import Node
from genai_report.pipeline.store import RECORD, Record

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'genai-report[ray]'"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--executor ray needs Ray, which is not installed. Install it with `{INSTALL_HINT}` "
            "(or `pip install -e '.[ray]'` in a checkout), or leave out --executor."
        ) from None
    return ray


class RayExecutor:
    """Submit node runs to a Ray cluster; results come back as :class:`cf.Future` objects.

    Connects to the cluster at ``address`` (``"auto"``: the one ``ray start`` runs on this
    machine; ``ray://host:10001``: a remote head), or starts a private local one when
    ``address`` is ``None``. A Ray session that is already running in this process (a test
    fixture, a notebook) is used as it is, and left running.

    Args:
        address: the cluster, or ``None`` for a local one.
        retries: how many times Ray re-runs a node whose worker died.
        num_cpus: CPUs of a private local cluster (default: all cores).
    """

    def __init__(self, address: str | None = None, *, retries: int = 1,
                 num_cpus: int | None = None):
        self.ray = _import_ray()  # a missing extra fails before anything runs
        self.retries = retries
        self._address = address
        self._num_cpus = num_cpus
        self._owns = False
        self._remote: Any = None  # connected on first need: a build with nothing stale
        self._dep_refs: dict[tuple[str, str], Any] = {}  # (node, content digest) -> ref
        self._in_flight: dict[cf.Future, Any] = {}

    def _connect(self) -> None:
        """Join (or start) the cluster, once."""
        if self._remote is not None:
            return
        if not self.ray.is_initialized():
            address = self._address
            kwargs: dict[str, Any] = {"include_dashboard": False,
                                      "logging_level": logging.WARNING}
            try:
                if address:
                    self.ray.init(address=address, **kwargs)
                else:
                    self.ray.init(num_cpus=self._num_cpus or os.cpu_count() or 1, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at '{address}'" if address else "a local Ray cluster"
                raise ConfigError(
                    f"Could not connect to {where}: {exc}. Start a head node with "
                    "`ray start --head` (then use --address auto, or ray://HEAD:10001 from "
                    "another machine), or leave out --address for a private local cluster."
                ) from None
            self._owns = True
        self._remote = self.ray.remote(_run_on_worker)

    # -- the cluster ------------------------------------------------------------------------
    def resources(self) -> dict[str, float]:
        """The cluster's total resources (``CPU``, ``GPU``, ``memory`` in bytes, ...)."""
        self._connect()
        return dict(self.ray.cluster_resources())

    @property
    def capacity(self) -> int:
        """How many nodes to keep in flight when ``--jobs`` is not given: the cluster's CPUs."""
        return max(1, int(self.resources().get("CPU", 1)))

    def resolve_device(self, choice: str) -> str:
        """The device kind nodes run on: ``cuda`` when asked for or when the cluster has
        GPUs (``auto``), else ``cpu``. Each worker checks it has that device."""
        gpus = self.resources().get("GPU", 0)
        if choice == "mps":
            raise ConfigError("--executor ray runs on CPUs and CUDA GPUs, not 'mps'; use "
                              "--device auto, cpu or cuda.")
        if choice == "cuda" and not gpus:
            raise ConfigError(
                "Device 'cuda' was requested but the Ray cluster has no GPU (its resources: "
                f"{_describe(self.resources())}). Start GPU workers with `ray start "
                "--address HEAD:6379 --num-gpus N`, or use --device auto / cpu.")
        if choice == "auto":
            return "cuda" if gpus else "cpu"
        return choice

    def describe(self) -> str:
        """One line naming the cluster, for the log."""
        return _describe(self.resources())

    # -- running ----------------------------------------------------------------------------
    def submit(self, task: dict[str, Any], deps: dict[str, tuple[Record, Path]]) -> cf.Future:
        """Start ``task`` (a runner task) on the cluster.

        Args:
            task: what :func:`~genai_report.pipeline.runner.execute` runs; its ``staging``
                and ``dep_dirs`` are the driver's and are replaced on the worker.
            deps: dependency -> (its record, its entry folder) on the driver.

        Returns:
            A future of the runner's result dict: ``metrics``, ``wall_time_s``, ``files``
            (relative path -> bytes), ``host``, ``device_name``; or ``error`` (a node that
            raised, a mismatched worker, a worker lost more than ``retries`` times).
        """
        node: Node = task["node"]
        self._connect()
        outer: cf.Future = cf.Future()
        request = self._request(node, task["device"])
        missing = self._infeasible(request)
        if missing:
            outer.set_result({"error": (
                f"{node.name} asks for {missing}, more than the whole Ray cluster has "
                f"({self.describe()}). Lower the node's resources=..., or add workers.")})
            return outer
        dep_names = list(node.deps)
        refs = [self._put_dep(name, *deps[name]) for name in dep_names]
        payload = pickle.dumps({**task, "dep_names": dep_names, "show_progress": False})
        ref = self._remote.options(
            max_retries=self.retries, retry_exceptions=False, name=f"genai-report:{node.name}",
            **request,
        ).remote(_importable_paths(), payload, *refs)
        inner = ref.future()
        self._in_flight[outer] = ref

        def settle(done: cf.Future) -> None:
            self._in_flight.pop(outer, None)
            try:
                result = done.result()
            except BaseException as exc:  # a lost worker, a cancelled task
                tries = self.retries + 1
                result = {"error": (
                    f"The Ray worker running {node.name} was lost "
                    f"({tries} attempt{'s' if tries > 1 else ''}): {type(exc).__name__}: "
                    f"{exc}\nNothing of this run was cached; run the same command again, or "
                    "raise --retries.")}
            if not outer.done():
                outer.set_result(result)

        inner.add_done_callback(settle)
        return outer

    def cancel_all(self) -> None:
        """Cancel every task in flight (an interrupted run)."""
        for outer, ref in list(self._in_flight.items()):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort while shutting down
                pass
            outer.cancel()
        self._in_flight.clear()

    def shutdown(self, cancel: bool = False) -> None:
        """Cancel what is in flight when asked, and stop a cluster this executor started."""
        if cancel:
            self.cancel_all()
        self._dep_refs.clear()
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
            self._owns = False

    # -- helpers ----------------------------------------------------------------------------
    def _request(self, node: Node, device: str) -> dict[str, Any]:
        res = node.resources
        request: dict[str, Any] = {"num_cpus": res.cpus,
                                   "num_gpus": res.gpus if device == "cuda" else 0}
        if res.memory_gb:
            request["memory"] = int(res.memory_gb * 2**30)
        return request

    def _infeasible(self, request: dict[str, Any]) -> str:
        have = self.resources()
        asks = {"num_cpus": ("CPU", "CPU"), "num_gpus": ("GPU", "GPU"),
                "memory": ("memory", "bytes of memory")}
        for key, (resource, label) in asks.items():
            want = request.get(key) or 0
            if want and want > have.get(resource, 0):
                return f"{want:g} {label}"
        return ""

    def _put_dep(self, name: str, record: Record, entry: Path) -> Any:
        """The object-store reference to a dependency's entry (sent once per run)."""
        cache_key = (name, record.content_digest())
        if cache_key not in self._dep_refs:
            files = {RECORD: (entry / RECORD).read_bytes()}
            for out in record.outputs:
                files[out] = (entry / out).read_bytes()
            self._dep_refs[cache_key] = self.ray.put(files)
        return self._dep_refs[cache_key]


def _describe(resources: dict[str, float]) -> str:
    cpus = resources.get("CPU", 0)
    gpus = resources.get("GPU", 0)
    mem = resources.get("memory", 0) / 2**30
    hosts = sum(1 for k in resources if k.startswith("node:") and k != "node:__internal_head__")
    return f"{hosts} host(s), {cpus:g} CPU, {gpus:g} GPU, {mem:.0f} GiB"


def _importable_paths() -> list[str]:
    """The driver's import path, so a worker on this machine imports the same modules
    (a test's node module, a checkout that is not installed). Entries a worker lacks
    are skipped there."""
    return [p for p in sys.path if p and os.path.isdir(p)]


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) under ``folder``, refusing paths outside."""
    base = folder.resolve()
    for rel, blob in files.items():
        path = (folder / rel).resolve()
        if base not in path.parents:
            raise ValueError(f"refusing to write '{rel}' outside {folder}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)


def read_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``: relative POSIX path -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run_on_worker(paths: list[str], payload: bytes, *dep_files: dict[str, bytes]
                   ) -> dict[str, Any]:
    """The Ray task: check the worker, run one node in a temporary folder, return its files."""
    for p in reversed(paths):
        if p not in sys.path and os.path.isdir(p):
            sys.path.insert(0, p)
    host = socket.gethostname()
    try:
        task = pickle.loads(payload)
    except Exception as exc:  # noqa: BLE001 - the module is missing or differs here
        return {"host": host, "error": (
            f"Worker {host} cannot load the node ({type(exc).__name__}: {exc}). Install the "
            "same checkout of genai-report on every Ray worker (README, 'More than one "
            "machine').")}
    from genai_report.pipeline.device import describe_device, resolve_device
    from genai_report.pipeline.runner import execute

    problem = _worker_mismatch(task, host)
    if problem:
        return {"host": host, "error": problem}
    try:
        resolve_device(task["device"])
    except ConfigError as exc:
        return {"host": host, "error": f"Worker {host}: {exc}"}
    node: Node = task["node"]
    with tempfile.TemporaryDirectory(prefix=f"genai-report-{node.name}-") as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        dep_dirs = {}
        for name, files in zip(task["dep_names"], dep_files, strict=True):
            dep_dirs[name] = Path(tmp) / "deps" / name
            dep_dirs[name].mkdir(parents=True)
            write_files(dep_dirs[name], files)
        root = Path(task["root"])
        if not root.is_dir():  # another machine: its own checkout of the package
            root = Path(__file__).resolve().parents[2]
        threads = max(1, int(node.resources.cpus))
        result = execute({**task, "staging": str(staging), "root": str(root),
                          "dep_dirs": {k: str(v) for k, v in dep_dirs.items()},
                          "threads": threads})
        if "error" not in result:
            result["files"] = read_files(staging)
    result["host"] = host
    result["device_name"] = describe_device(task["device"])
    return result


def _worker_mismatch(task: dict[str, Any], host: str) -> str:
    """Why this worker must not run the task (different code or torch), or ``""``."""
    from genai_report.pipeline import keys

    parts = task["parts"]
    node: Node = task["node"]
    release = keys.torch_release()
    if release != parts.torch:
        return (f"Worker {host} has torch {release}, the driver {parts.torch}: the cache key "
                "names the driver's. Install the same torch release on every Ray worker.")
    here = dict(keys.code_closure(node))  # cached per worker process, like the driver's
    differ = sorted(s for s, h in parts.code if here.get(s) != h)
    if differ:
        shown = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
        return (f"Worker {host} runs other code for {node.name} than the driver ({shown} "
                "differ). Install the same checkout of genai-report on every Ray worker.")
    return ""


__all__ = ["INSTALL_HINT", "RayExecutor", "read_files", "write_files"]
