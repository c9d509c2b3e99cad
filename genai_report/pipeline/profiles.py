"""Profiles and devices: the two settings every pipeline run is parameterised by.

* ``smoke``: seconds per node; the tests run it so every figure's real code path runs in CI.
* ``quick``: the default on a CPU laptop, minutes for the whole report. Its outputs are
  committed under ``figures/quick`` so a fresh clone builds without training.
* ``full``: release quality, meant for a GPU.
"""

from __future__ import annotations

import os

from genai_report.pipeline.errors import ConfigError, did_you_mean

PROFILES: tuple[str, ...] = ("smoke", "quick", "full")
DEFAULT_PROFILE = "quick"

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
DEFAULT_DEVICE = "auto"
DEVICE_ALIASES: dict[str, str] = {
    "gpu": "cuda", "nvidia": "cuda", "cuda:0": "cuda", "rocm": "cuda",
    "apple": "mps", "metal": "mps", "m1": "mps", "m2": "mps", "m3": "mps",
}
"""Names people type for a device, and the device they mean (suggested, never applied)."""

PROFILE_ENV = "GENAI_REPORT_PROFILE"
DEVICE_ENV = "GENAI_REPORT_DEVICE"


def validate_profile(name: str, *, source: str = "profile") -> str:
    """Return ``name`` if it is a known profile, else raise a ConfigError listing them."""
    if name in PROFILES:
        return name
    raise ConfigError(
        f"Unknown {source} '{name}'.{did_you_mean(name, PROFILES)} "
        f"Valid profiles: {', '.join(PROFILES)}."
    )


def validate_device(name: str, *, source: str = "device") -> str:
    """Return ``name`` if it is a known device choice, else raise a ConfigError."""
    if name in DEVICES:
        return name
    alias = DEVICE_ALIASES.get(str(name).strip().lower())
    hint = f" Did you mean '{alias}'?" if alias else did_you_mean(name, DEVICES)
    raise ConfigError(
        f"Unknown {source} '{name}'.{hint} "
        f"Valid devices: {', '.join(DEVICES)} ('auto' picks cuda, then mps, then cpu)."
    )


def resolve_settings(profile: str | None = None, device: str | None = None) -> tuple[str, str]:
    """Combine explicit settings with the environment.

    The environment variables ``GENAI_REPORT_PROFILE`` and ``GENAI_REPORT_DEVICE`` win over
    ``profile`` and ``device`` (CI sets them); unset values fall back to the defaults.

    Returns:
        ``(profile, device)``, both validated.
    """
    env_profile = os.environ.get(PROFILE_ENV) or None
    env_device = os.environ.get(DEVICE_ENV) or None
    if env_profile is not None:
        profile = validate_profile(env_profile, source=f"profile in ${PROFILE_ENV}")
    if env_device is not None:
        device = validate_device(env_device, source=f"device in ${DEVICE_ENV}")
    return (
        validate_profile(profile or DEFAULT_PROFILE),
        validate_device(device or DEFAULT_DEVICE),
    )
