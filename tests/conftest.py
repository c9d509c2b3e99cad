"""Shared fixtures: a throw-away node package for pipeline tests, and one smoke-profile run
of the real report that every site test reuses."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class FakeProject:
    """A temporary package ``fake_<id>`` with library modules and node functions.

    Node functions live in ``<pkg>.nodes``; ``<pkg>.lib`` is imported by them and
    ``<pkg>.unrelated`` is not. Edit files with :meth:`write` and rebuild nodes with
    :meth:`registry`.
    """

    def __init__(self, base: Path):
        self.name = f"fake_{uuid.uuid4().hex[:8]}"
        self.base = base
        self.pkg = base / self.name
        self.pkg.mkdir()
        (self.pkg / "__init__.py").write_text("")
        self.write("lib.py", "SCALE = 2\n\ndef value(x):\n    return x * SCALE\n")
        self.write("unrelated.py", "X = 1\n")
        self.write("nodes.py", NODES_SOURCE.format(pkg=self.name))

    def write(self, rel: str, text: str) -> None:
        path = self.pkg / rel
        path.write_text(textwrap.dedent(text))
        # Make sure a re-import sees the new source even within one mtime tick.
        os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))

    def module(self):
        for mod in [m for m in sys.modules if m == self.name or m.startswith(self.name + ".")]:
            del sys.modules[mod]
        importlib.invalidate_caches()
        return importlib.import_module(f"{self.name}.nodes")

    def registry(self, **overrides):
        from genai_report.pipeline import keys
        from genai_report.pipeline.registry import Registry

        keys.clear_caches()
        mod = self.module()
        reg = Registry()
        for node in mod.make_nodes(**overrides):
            reg.add(node)
        return reg


NODES_SOURCE = '''
"""Nodes of a fake project used by the pipeline tests."""
import json
import os
from dataclasses import dataclass

from genai_report.pipeline.registry import Node


@dataclass(frozen=True)
class P:
    n: int = 1


def base(ctx, p):
    from {pkg}.lib import value
    if os.environ.get("FAKE_FAIL") == "base":
        raise RuntimeError("base exploded on purpose")
    salt = os.environ.get("FAKE_SALT", "")
    ctx.output("data.json").write_text(json.dumps({{"v": value(p.n), "salt": salt}}))
    return {{"v": value(p.n)}}


def plot(ctx, p):
    if os.environ.get("FAKE_FAIL") == "plot":
        raise ValueError("plot exploded on purpose")
    if os.environ.get("FAKE_INTERRUPT") == "plot":
        ctx.output("plot.svg").write_text("<svg>half")
        raise KeyboardInterrupt
    v = json.loads(ctx.input("base", "data.json").read_text())["v"]
    ctx.output("plot.svg").write_text(f"<svg><!-- {{v}} {{p.n}} --></svg>")
    return {{"doubled": v, "nested": {{"list": [1.5, 2.5]}}}}


def other(ctx, p):
    if os.environ.get("FAKE_KILL") == "other":  # like the out-of-memory killer
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
    ctx.output("other.svg").write_text("<svg>other</svg>")
    return {{"n": p.n}}


def make_nodes(n=1):
    params = {{"smoke": P(n), "quick": P(n + 1), "full": P(n + 2)}}
    return [
        Node("base", base, "artifact", params, ("data.json",)),
        Node("plot", plot, "figure", params, ("plot.svg",), deps=("base",), alt="a plot"),
        Node("other", other, "figure", params, ("other.svg",), alt="another plot"),
    ]
'''


@pytest.fixture
def fake_project(tmp_path, monkeypatch):
    """A fresh fake project importable from ``tmp_path``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("GENAI_REPORT_PROFILE", raising=False)
    monkeypatch.delenv("GENAI_REPORT_DEVICE", raising=False)
    return FakeProject(tmp_path)


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory) -> Path:
    """Run every node of the real report once in the smoke profile (shared by site tests).

    This is the test that exercises each figure's real code path; it fails, naming each
    failing node, if any node raises. ``$GENAI_REPORT_TEST_CACHE`` names a persistent
    folder to use instead of a temporary one (CI restores it between runs).
    """
    from genai_report.pipeline import Pipeline, RunOptions, load_registry

    # CI may restore a cache of earlier smoke runs here; stale nodes still re-run.
    cache = Path(os.environ.get("GENAI_REPORT_TEST_CACHE") or tmp_path_factory.mktemp("smoke-cache"))
    pipeline = Pipeline(load_registry(), cache_dir=cache, root=ROOT)
    pipeline.run(RunOptions(profile="smoke", device="cpu", show_progress=False))
    return cache
