"""Execute a tutorial notebook so the site can show its outputs.

Tutorial notebooks live in ``tutorials/`` without outputs. The pipeline executes each one
(as a node, cached like a figure) with ``GENAI_REPORT_PROFILE`` set so the notebook can size
its run: seconds in ``smoke`` (the tests), minutes in ``quick`` (the site). A cell that
raises fails the node with the cell's error.

A dry run of the ``full`` profile (:mod:`genai_report.pipeline.dryrun`) runs a notebook at
its full sizes but with its loops cut: the node exports ``GENAI_REPORT_MAX_STEPS`` and the
notebook passes its settings through :func:`cap_steps`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


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


def cap_steps(settings: dict) -> dict:
    """A notebook's settings with every ``*steps`` entry cut to ``$GENAI_REPORT_MAX_STEPS``.

    Unset (any run but a dry run), the settings come back unchanged, so a reader running
    the notebook by hand gets the profile's own lengths.
    """
    cap = os.environ.get(MAX_STEPS_ENV)
    if not cap:
        return dict(settings)
    return {k: min(v, int(cap)) if k.endswith("steps") else v for k, v in settings.items()}


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

    Returns:
        The number of code cells executed.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (the message shows the cell).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=timeout,
        resources={"metadata": {"path": str(source.parent)}}, config=_kernel_config(),
    )
    cap = {MAX_STEPS_ENV: str(max_steps)} if max_steps > 0 else {}
    with _environ(GENAI_REPORT_PROFILE=profile, GENAI_REPORT_DEVICE=device,
                  MPLBACKEND="module://matplotlib_inline.backend_inline",
                  PYDEVD_DISABLE_FILE_VALIDATION="1", **cap):
        client.execute()
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:  # stable output: no execution timestamps in the file
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, target)
    return sum(1 for c in nb.cells if c.cell_type == "code")
