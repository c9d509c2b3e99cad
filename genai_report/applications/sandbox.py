"""Run untrusted generated code in a subprocess: isolated, time- and memory-limited.

Each program runs in a fresh interpreter (``python -I -S``: no user site, no environment
variables, no current directory on the path), with an empty environment, in its own
temporary directory that is deleted afterwards, under resource limits where the platform
has them (CPU seconds, address space, file size, open files, no child processes) and a
wall-clock timeout. Before the program, a prelude removes the socket module's constructors,
so code that tries the network fails. This is the shape of Codex's harness (Chen et al.
2021 ran theirs in gVisor), not a security boundary: it stops accidents such as infinite
loops, runaway memory and stray files, not a determined attacker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

_PRELUDE = """\
import socket as _s
def _no_network(*a, **k):
    raise OSError("network access is disabled in the sandbox")
_s.socket = _s.create_connection = _s.socketpair = _no_network
del _s, _no_network
"""


@dataclass(frozen=True)
class RunResult:
    """Outcome of one program: ``passed`` (exit status 0), ``timed_out``, ``returncode``
    (None when killed for time) and the tail of ``stderr``."""

    passed: bool
    timed_out: bool
    returncode: int | None
    stderr: str


def _limits(cpu_s: int, memory_mb: int):
    def apply() -> None:
        try:
            import resource
        except ImportError:  # not on this platform
            return
        mb = 1024 * 1024
        for name, value in (("RLIMIT_CPU", cpu_s), ("RLIMIT_AS", memory_mb * mb),
                            ("RLIMIT_FSIZE", mb), ("RLIMIT_NOFILE", 64)):
            lim = getattr(resource, name, None)
            if lim is None:
                continue
            try:
                resource.setrlimit(lim, (value, value))
            except (ValueError, OSError):
                pass  # e.g. a hard limit already lower, or RLIMIT_NPROC refused

    return apply


def run_program(source: str, timeout_s: float = 2.0, memory_mb: int = 256) -> RunResult:
    """Run ``source`` as a script in the sandbox.

    Args:
        source: the Python program.
        timeout_s: wall-clock limit; the process is killed when it passes it.
        memory_mb: address-space limit.

    Returns:
        The :class:`RunResult`.
    """
    with tempfile.TemporaryDirectory(prefix="genai-sandbox-") as tmp:
        path = os.path.join(tmp, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(_PRELUDE + source)
        posix = os.name == "posix"
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-B", path], cwd=tmp, env={},
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s,
                preexec_fn=_limits(max(1, int(timeout_s + 1)), memory_mb) if posix else None,
                start_new_session=posix)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (
                e.stderr or "")
            return RunResult(False, True, None, err[-500:])
    return RunResult(proc.returncode == 0, False, proc.returncode, proc.stderr[-500:])


def run_many(sources: Sequence[str], timeout_s: float = 2.0, memory_mb: int = 256,
             workers: int = 2) -> list[RunResult]:
    """:func:`run_program` on each source, ``workers`` at a time, results in order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda s: run_program(s, timeout_s, memory_mb), sources))


# One sandboxed interpreter runs a batch: each program in its own forked child (a fresh copy
# of a clean interpreter, stdout and stderr discarded) under an alarm and a wall-clock
# deadline, so one program cannot see, crash or stall another.
_BATCH_WORKER = """import json, os, signal, sys, time
_progs = json.loads(open("programs.json", encoding="utf-8").read())
_timeout = float(sys.argv[1])
_out = []
for _src in _progs:
    _pid = os.fork()
    if _pid == 0:
        _null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(_null, 1)
        os.dup2(_null, 2)
        signal.alarm(max(1, int(_timeout + 0.999)))
        try:
            exec(compile(_src, "<program>", "exec"), {"__name__": "__main__"})
            os._exit(0)
        except SystemExit as _e:
            os._exit(_e.code if isinstance(_e.code, int) and 0 <= _e.code < 256 else 1)
        except BaseException:
            os._exit(1)
    _deadline = time.monotonic() + _timeout
    while True:
        _p, _status = os.waitpid(_pid, os.WNOHANG)
        if _p:
            _code = os.waitstatus_to_exitcode(_status)
            _out.append([_code, _code == -signal.SIGALRM])
            break
        if time.monotonic() > _deadline:
            os.kill(_pid, signal.SIGKILL)
            os.waitpid(_pid, 0)
            _out.append([None, True])
            break
        time.sleep(0.0005)
with open("results.json", "w", encoding="utf-8") as _f:
    _f.write(json.dumps(_out))
"""


def _run_batch(sources: Sequence[str], timeout_s: float, memory_mb: int) -> list[RunResult]:
    with tempfile.TemporaryDirectory(prefix="genai-sandbox-") as tmp:
        with open(os.path.join(tmp, "worker.py"), "w", encoding="utf-8") as f:
            f.write(_PRELUDE + _BATCH_WORKER)
        with open(os.path.join(tmp, "programs.json"), "w", encoding="utf-8") as f:
            json.dump(list(sources), f)
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-B", "worker.py", str(timeout_s)], cwd=tmp,
                env={}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=timeout_s * len(sources) + 10,
                preexec_fn=_limits(int(timeout_s * len(sources) + 10), memory_mb),
                start_new_session=True)
            rows = json.loads(open(os.path.join(tmp, "results.json"), encoding="utf-8").read())
        except (subprocess.TimeoutExpired, OSError, ValueError):
            rows = None
        if rows is None or len(rows) != len(sources) or proc.returncode != 0:
            return [run_program(s, timeout_s, memory_mb) for s in sources]  # one at a time
    return [RunResult(code == 0, bool(timed_out), code, "") for code, timed_out in rows]


def run_batches(sources: Sequence[str], timeout_s: float = 2.0, memory_mb: int = 256,
                batch: int = 64, workers: int = 2) -> list[RunResult]:
    """Like :func:`run_many`, but ``batch`` programs share one sandboxed interpreter, each
    run in its own forked child of it (per-program timeout; ``stderr`` is not kept). Much
    cheaper than one interpreter per program; without ``os.fork`` (Windows) it falls back
    to :func:`run_many`. If a batch's interpreter itself fails, its programs are re-run one
    interpreter each.
    """
    if not hasattr(os, "fork"):
        return run_many(sources, timeout_s, memory_mb, workers)
    chunks = [sources[i:i + batch] for i in range(0, len(sources), batch)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        parts = pool.map(lambda c: _run_batch(c, timeout_s, memory_mb), chunks)
        return [r for part in parts for r in part]
