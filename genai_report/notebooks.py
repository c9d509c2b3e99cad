"""Execute a tutorial notebook so the site can show its outputs.

Tutorial notebooks live in ``tutorials/`` without outputs. The pipeline executes each one
(as a node, cached like a figure) with ``GENAI_REPORT_PROFILE`` set so the notebook can size
its run: seconds in ``smoke`` (the tests), minutes in ``quick`` (the site). A cell that
raises fails the node with the cell's error.

A dry run of the ``full`` profile (:mod:`genai_report.pipeline.dryrun`) runs a notebook at
its full sizes but with its loops cut: the node exports ``GENAI_REPORT_MAX_STEPS`` and the
notebook passes its settings through :func:`cap_steps`. When the node's process is metered
(a dry run, ``--meter``), the kernel is metered too: a cell run before the notebook's first
starts a :class:`~genai_report.pipeline.dryrun.StepMeter` in the kernel, one run after its
last hands what it measured, and the full length of each loop it saw, to the node's meter.
Neither cell is kept in the executed notebook.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def _environ(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kernel_config():
    """Encrypt the kernel's channels (CurveZMQ) where pyzmq and the kernel support it.

    ipykernel >= 7 warns "Kernel is running over TCP without encryption" on every start
    otherwise; asking the kernel manager to provision Curve keys removes the cause, not just
    the message. Without Curve support, POSIX systems use IPC sockets instead of TCP.
    """
    import zmq
    from traitlets.config import Config

    config = Config()
    if zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    elif os.name == "posix":
        config.KernelManager.transport = "ipc"
    return config


MAX_STEPS_ENV = "GENAI_REPORT_MAX_STEPS"
"""The environment variable a dry run sets to cut a notebook's optimisation loops."""


_CAPS: list[tuple[str, int, int]] = []
"""Every ``*steps`` setting :func:`cap_steps` saw in this process: ``(name, dry, full)``."""

_METER: Any = None
"""The step meter running in this kernel (see :func:`execute_notebook`)."""


def cap_steps(settings: dict) -> dict:
    """A notebook's settings with every ``*steps`` entry cut to a few steps.

    The first is cut to ``$GENAI_REPORT_MAX_STEPS``, each next one to
    :data:`~genai_report.pipeline.dryrun.CAP_SPACING` more, as a dry run cuts a node's step
    fields, so that the kernel's meter can tell each loop's full length from its length.
    Unset (any run but a dry run), the settings come back unchanged, so a reader running
    the notebook by hand gets the profile's own lengths.
    """
    cap = os.environ.get(MAX_STEPS_ENV)
    if not cap:
        return dict(settings)
    from genai_report.pipeline.dryrun import CAP_SPACING

    out = dict(settings)
    for name, full in settings.items():
        if name.endswith("steps"):
            dry = min(full, int(cap) + CAP_SPACING * len(_CAPS))
            _CAPS.append((name, dry, full))
            out[name] = dry
    return out


def _meter_start(count_all: bool) -> None:
    """Start a step meter in this kernel: the cell a metered run adds before the first."""
    global _METER
    from genai_report.pipeline.dryrun import StepMeter

    _METER = StepMeter(count_all=count_all).__enter__()


def _meter_stop(path: str) -> None:
    """Stop the kernel's meter and write what it measured to ``path``, with the full length
    of each loop (the cell a metered run adds after the last)."""
    global _METER
    from genai_report.pipeline.dryrun import full_steps

    meter, _METER = _METER, None
    meter.__exit__(None, None, None)
    usage = meter.summary()
    cut = {f"{name} ({i})": (dry, full) for i, (name, dry, full) in enumerate(_CAPS)
           if full > dry}
    planned = [full_steps(loop["steps"], cut)[0] for loop in usage["loops"]]
    Path(path).write_text(json.dumps({"usage": usage, "planned": planned}, allow_nan=False))


def execute_notebook(source: Path, target: Path, *, profile: str, device: str,
                     timeout: int = 900, max_steps: int = 0) -> int:
    """Run every cell of ``source`` in a fresh kernel and write the result to ``target``.

    Args:
        source: notebook without outputs.
        target: where the executed notebook is written.
        profile: exported to the kernel as ``GENAI_REPORT_PROFILE``.
        device: exported as ``GENAI_REPORT_DEVICE``.
        timeout: seconds allowed per cell.
        max_steps: when above 0, exported as ``GENAI_REPORT_MAX_STEPS`` (see
            :func:`cap_steps`).

    When a :class:`~genai_report.pipeline.dryrun.StepMeter` runs in this process, the
    kernel is metered as well and the meter absorbs what it measured (see the module's
    description); the executed notebook is the same either way.

    Returns:
        The number of code cells executed.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (the message shows the cell).
    """
    import nbformat
    from nbclient import NotebookClient

    from genai_report.pipeline.dryrun import active_meter

    nb = nbformat.read(source, as_version=4)
    meter = active_meter()
    with tempfile.TemporaryDirectory(prefix="genai-report-kernel-") as tmp:
        usage_file = Path(tmp) / "usage.json"
        if meter is not None:  # meter the kernel too (cells taken out again below)
            nb.cells.insert(0, nbformat.v4.new_code_cell(
                f"from genai_report.notebooks import _meter_start\n"
                f"_meter_start({meter.count_all!r})"))
            nb.cells.append(nbformat.v4.new_code_cell(
                f"from genai_report.notebooks import _meter_stop\n"
                f"_meter_stop({str(usage_file)!r})"))
        client = NotebookClient(
            nb, kernel_name="python3", timeout=timeout,
            resources={"metadata": {"path": str(source.parent)}}, config=_kernel_config(),
        )
        cap = {MAX_STEPS_ENV: str(max_steps)} if max_steps > 0 else {}
        with _environ(GENAI_REPORT_PROFILE=profile, GENAI_REPORT_DEVICE=device,
                      MPLBACKEND="module://matplotlib_inline.backend_inline",
                      PYDEVD_DISABLE_FILE_VALIDATION="1", **cap):
            client.execute()
        if meter is not None:
            nb.cells = nb.cells[1:-1]
            _renumber(nb, -1)
            measured = json.loads(usage_file.read_text())
            meter.absorb(measured["usage"], measured["planned"])
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:  # stable output: no execution timestamps in the file
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, target)
    return sum(1 for c in nb.cells if c.cell_type == "code")


def _renumber(nb: Any, by: int) -> None:
    """Shift every code cell's execution count (and its results') by ``by``."""
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        cell.execution_count += by
        for output in cell.get("outputs", []):
            if output.get("execution_count") is not None:
                output["execution_count"] += by
