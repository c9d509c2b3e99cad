"""Resolve the device once, before any node runs, and pass it down."""

from __future__ import annotations

from genai_report.pipeline.errors import ConfigError
from genai_report.pipeline.profiles import validate_device


def resolve_device(choice: str = "auto") -> str:
    """Turn a device choice into the device kind nodes run on.

    Args:
        choice: ``"auto"`` (cuda, then mps, then cpu) or a forced ``"cpu"``, ``"cuda"``,
            ``"mps"``.

    Returns:
        ``"cpu"``, ``"cuda"`` or ``"mps"``.

    Raises:
        ConfigError: a forced accelerator is not available in this torch build.
    """
    validate_device(choice)
    import torch  # deferred: listing and no-op builds never import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if choice == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if choice == "cuda" and not cuda:
        raise ConfigError(
            f"Device 'cuda' was requested but torch {torch.__version__} sees no CUDA GPU "
            "(torch.cuda.is_available() is False). Install a CUDA build of torch (README, "
            "'GPU users'), or use --device auto / GENAI_REPORT_DEVICE=cpu."
        )
    if choice == "mps" and not mps:
        raise ConfigError(
            "Device 'mps' was requested but this machine has no Apple-silicon GPU available "
            "to torch. Use --device auto or --device cpu."
        )
    return choice


def describe_device(kind: str) -> str:
    """A human-readable name of the device for provenance (e.g. the GPU's model)."""
    import torch

    if kind == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return kind
