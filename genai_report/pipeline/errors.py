"""Exceptions raised by the figure pipeline.

Every message names the thing that is wrong and how to fix it.
"""

from __future__ import annotations

from genai_report.utils import did_you_mean


class PipelineError(Exception):
    """Base class of the pipeline's errors."""


class ConfigError(PipelineError, ValueError):
    """A setting (profile, device, option) has a value the pipeline does not accept."""


class UnknownNameError(PipelineError, KeyError):
    """A figure, artifact or metric name that the registry does not know."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else ""


class LockBusyError(PipelineError):
    """Another build holds the cache lock."""


class PipelineFailedError(PipelineError):
    """One or more nodes failed; raised once, after every other node has run.

    Attributes:
        failures: node name -> formatted traceback.
        skipped: node name -> reason (a dependency failed).
    """

    def __init__(self, failures: dict[str, str], skipped: dict[str, str]):
        self.failures = dict(failures)
        self.skipped = dict(skipped)
        lines = [f"{len(failures)} node(s) failed; their previous outputs were kept."]
        for name, tb in failures.items():
            lines.append(f"\n--- {name} ---\n{tb.rstrip()}")
        for name, why in skipped.items():
            lines.append(f"skipped {name}: {why}")
        lines.append(
            "\nFix the error(s) above and run the build again; "
            "nodes that succeeded are cached and will not re-run."
        )
        super().__init__("\n".join(lines))


__all__ = [
    "ConfigError",
    "LockBusyError",
    "PipelineError",
    "PipelineFailedError",
    "UnknownNameError",
    "did_you_mean",
]
