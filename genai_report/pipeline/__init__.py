"""The figure pipeline: a registry of nodes, content-addressed cache keys, an atomic cache
and a runner. It needs no MkDocs: the CLI (``genai-report``) and the MkDocs plugin are both
thin layers over :class:`Pipeline`.
"""

from genai_report.pipeline.errors import (
    ConfigError,
    LockBusyError,
    PipelineError,
    PipelineFailedError,
    UnknownNameError,
)
from genai_report.pipeline.profiles import PROFILES, resolve_settings
from genai_report.pipeline.registry import REGISTRY, Node, Registry, artifact, figure, load_registry
from genai_report.pipeline.runner import NodeStatus, Pipeline, RunOptions, RunReport
from genai_report.pipeline.store import CacheStore, Record

__all__ = [
    "PROFILES",
    "REGISTRY",
    "CacheStore",
    "ConfigError",
    "LockBusyError",
    "Node",
    "NodeStatus",
    "Pipeline",
    "PipelineError",
    "PipelineFailedError",
    "Record",
    "Registry",
    "RunOptions",
    "RunReport",
    "UnknownNameError",
    "artifact",
    "figure",
    "load_registry",
    "resolve_settings",
]
