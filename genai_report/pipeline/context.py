"""What a node function receives: where to write, what to read, device, seed, progress."""

from __future__ import annotations

import json
import logging
import os
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from genai_report.pipeline.errors import ConfigError, did_you_mean
from genai_report.pipeline.registry import Node

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class NodeContext:
    """The run-time context of one node.

    Attributes:
        node: the node being run.
        profile: the profile it runs under.
        device_kind: ``cpu``, ``cuda`` or ``mps`` (resolved once for the whole run).
        out_dir: the staging folder the node writes into.
        dep_dirs: dependency name -> the folder of its (fresh) entry.
        root: the project root.
        metrics: what the node measured; also filled from the function's return value.
        show_progress: draw progress bars (off in tests and worker processes without a TTY).
    """

    node: Node
    profile: str
    device_kind: str
    out_dir: Path
    dep_dirs: dict[str, Path]
    root: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    show_progress: bool = True

    @property
    def seed(self) -> int:
        """The node's seed."""
        return self.node.seed

    @property
    def device(self) -> torch.device:
        """The torch device to put models and tensors on."""
        import torch

        return torch.device(self.device_kind)

    def output(self, name: str) -> Path:
        """Path to write the declared output ``name`` to (inside the staging folder)."""
        if name not in self.node.outputs:
            raise ConfigError(
                f"Node '{self.node.name}' writes '{name}', which it does not declare in "
                f"outputs={self.node.outputs}.{did_you_mean(name, self.node.outputs)} "
                "Add it to the decorator's outputs."
            )
        return self.out_dir / name

    def input(self, dep: str, name: str) -> Path:
        """Path of output ``name`` of dependency ``dep`` (declared in ``deps``)."""
        if dep not in self.dep_dirs:
            raise ConfigError(
                f"Node '{self.node.name}' reads from '{dep}', which is not in its "
                f"deps={self.node.deps}. Add it to the decorator's deps."
            )
        path = self.dep_dirs[dep] / name
        if not path.is_file():
            raise FileNotFoundError(f"Dependency '{dep}' has no output '{name}' ({path}).")
        return path

    def input_metrics(self, dep: str) -> dict[str, Any]:
        """The metrics dependency ``dep`` recorded (its ``record.json``), timings included.

        Outputs are what dependents' keys hash; metrics are not. Read run-to-run
        measurements (training and sampling times) here, and everything a figure must
        stay consistent with from ``dep``'s outputs (:meth:`input`).
        """
        if dep not in self.dep_dirs:
            raise ConfigError(
                f"Node '{self.node.name}' reads the record of '{dep}', which is not in its "
                f"deps={self.node.deps}. Add it to the decorator's deps."
            )
        path = self.dep_dirs[dep] / "record.json"
        if not path.is_file():
            raise FileNotFoundError(f"Dependency '{dep}' has no record ({path}).")
        return json.loads(path.read_text()).get("metrics", {})

    def generator(self, offset: int = 0, device: str | None = "cpu") -> torch.Generator:
        """A fresh ``torch.Generator`` seeded with ``seed + offset``.

        Args:
            offset: distinguishes independent streams within one node.
            device: device of the generator; ``None`` means the node's device.
        """
        import torch

        gen = torch.Generator(device=device or self.device_kind)
        gen.manual_seed(self.seed + offset)
        return gen

    def record(self, **metrics: Any) -> None:
        """Record metrics (numbers, strings, lists or dicts of them)."""
        self.metrics.update(metrics)

    def progress(self, iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        """Wrap ``iterable`` in a progress bar labelled with the node's name."""
        from tqdm.auto import tqdm

        return iter(
            tqdm(
                iterable,
                total=total,
                desc=f"{self.node.name}{': ' + desc if desc else ''}",
                disable=not self.show_progress,
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
            )
        )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (code should prefer explicit ones)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def reset_plotting() -> None:
    """Reset matplotlib's rc to its defaults and apply the report's style (per node)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.close("all")
    matplotlib.rcdefaults()
    from genai_report.plotting.style import apply_style

    apply_style()
