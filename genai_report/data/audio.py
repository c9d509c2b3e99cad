"""Short sound clips synthesized in code, μ-law coding and WAV files.

Six classes that differ to the ear and on a spectrogram: a low tone, a high tone, a major
chord, a rising sweep, and the vowels 'a' and 'u' (a glottal pulse train through three
formant resonators, the source-filter model of speech). Every clip draws its own pitch,
envelope, phase, vibrato and noise level from a ``torch.Generator``, so a model has to learn
a distribution of sounds of each class, not memorise a few waveforms.

μ-law (ITU-T G.711) companding maps a sample in ``[-1, 1]`` to one of 256 levels with
steps that are fine near silence and coarse at loud samples, which is how WaveNet (van den
Oord et al. 2016) turns a waveform into a sequence of classes.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used, so listing nodes stays light
    import torch

CLASSES = ("low tone", "high tone", "major chord", "rising sweep", "vowel a", "vowel u")
"""The classes of :func:`synthesize`, in label order."""

MU = 255
"""μ of the μ-law: 256 levels."""


@dataclass(frozen=True)
class AudioConfig:
    """How clips are synthesized.

    Attributes:
        sample_rate: samples per second.
        length: samples per clip.
        noise: largest standard deviation of the added white noise (each clip draws its own
            in ``[0, noise]``).
        jitter: largest relative pitch change of a clip (``0.06``: up to ±6%).
    """

    sample_rate: int = 4000
    length: int = 1024
    noise: float = 0.02
    jitter: float = 0.06

    def __post_init__(self) -> None:
        if self.sample_rate < 2000:
            raise ValueError(f"sample_rate must be >= 2000 Hz, got {self.sample_rate}.")
        if self.length < 64:
            raise ValueError(f"length must be >= 64 samples, got {self.length}.")
        if not 0 <= self.noise < 0.5 or not 0 <= self.jitter < 0.5:
            raise ValueError(f"noise and jitter must be in [0, 0.5), got {self.noise}, "
                             f"{self.jitter}.")


#: Formant frequencies (Hz) and bandwidths of the vowels, after Peterson & Barney (1952).
FORMANTS = {"vowel a": ((730, 1090, 2440), (90, 110, 160)),
            "vowel u": ((300, 870, 2240), (60, 90, 140))}


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    import torch

    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _resonate(x: torch.Tensor, freq: float, bw: float, sr: int) -> torch.Tensor:
    """Two-pole resonator (a formant): ``y_t = x_t + a1 y_{t-1} + a2 y_{t-2}``."""
    import torch

    r = math.exp(-math.pi * bw / sr)
    a1, a2 = 2 * r * math.cos(2 * math.pi * freq / sr), -r * r
    y = torch.zeros_like(x)  # (N, T)
    y1 = torch.zeros(x.shape[0], dtype=x.dtype)
    y2 = torch.zeros_like(y1)
    for t in range(x.shape[1]):
        yt = x[:, t] + a1 * y1 + a2 * y2
        y[:, t] = yt
        y1, y2 = yt, y1
    return y


def synthesize(label: int, n: int, gen: torch.Generator,
               config: AudioConfig = AudioConfig()) -> torch.Tensor:
    """``n`` random clips of class ``label``.

    Args:
        label: index into :data:`CLASSES`.
        n: clips to draw.
        gen: the random stream (pitch, envelope, phase, vibrato, noise).
        config: sample rate, length and variation.

    Returns:
        ``(n, length)`` float32 waveforms in ``[-1, 1]``.
    """
    import torch

    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in 0..{len(CLASSES) - 1}, got {label}.")
    sr, T, name = config.sample_rate, config.length, CLASSES[label]
    t = torch.arange(T, dtype=torch.float64) / sr  # (T,) seconds
    u = t / t[-1]  # (T,) position in the clip, 0..1
    pitch = 1 + _uniform(n, -config.jitter, config.jitter, gen)[:, None]  # (n, 1)
    phase = _uniform(n, 0, 2 * math.pi, gen)[:, None]  # (n, 1)
    vib = 0.01 * _uniform(n, 0, 1, gen)[:, None] * torch.sin(
        2 * math.pi * _uniform(n, 4, 7, gen)[:, None] * t)  # (n, T) vibrato depth 0..1%

    def tone(freq: torch.Tensor) -> torch.Tensor:  # (n, 1) Hz -> (n, T)
        # phi_t = 2 pi sum_{s<=t} f_s / sr, so a changing frequency stays continuous
        inst = freq * (1 + vib)  # (n, T)
        return torch.sin(2 * math.pi * torch.cumsum(inst, 1) / sr + phase)

    if name == "low tone":
        f = 220 * pitch
        x = tone(f) + 0.3 * tone(2 * f)
    elif name == "high tone":
        x = tone(880 * pitch)
    elif name == "major chord":  # root, major third (5/4), fifth (3/2)
        f = 330 * pitch
        x = (tone(f) + tone(1.25 * f) + tone(1.5 * f)) / 2
    elif name == "rising sweep":  # exponential glide over two octaves
        f0 = 300 * pitch
        x = tone(f0 * 4.0 ** u)
    else:
        f0 = _uniform(n, 110, 150, gen)[:, None] * (1 + vib)  # (n, T)
        period = sr / f0  # (n, T) samples
        cycles = torch.cumsum(1 / period, 1) + phase / (2 * math.pi)  # (n, T)
        pulses = (torch.diff(torch.floor(cycles), dim=1, prepend=torch.floor(cycles[:, :1]))
                  > 0).double()  # (n, T) one pulse per period
        freqs, bws = FORMANTS[name]
        x = sum(_resonate(pulses, fr, bw, sr) for fr, bw in zip(freqs, bws, strict=True)
                if fr < 0.45 * sr)  # formants above the band are left out
        x = x - x.mean(1, keepdim=True)
    # envelope: attack, sustain and a decay, each clip its own
    attack = _uniform(n, 0.01, 0.05, gen)[:, None]  # (n, 1) fraction of the clip
    decay = _uniform(n, 0.5, 2.5, gen)[:, None]
    env = torch.clamp(u / attack, max=1.0) * torch.exp(-decay * u)  # (n, T)
    x = x * env
    x = x / x.abs().amax(1, keepdim=True).clamp_min(1e-9)
    x = x * _uniform(n, 0.5, 0.8, gen)[:, None]  # loudness
    x = x + _uniform(n, 0, config.noise, gen)[:, None] * torch.randn(n, T, generator=gen,
                                                                      dtype=torch.float64)
    return x.clamp(-1, 1).float()


def make_dataset(n_per_class: int, gen: torch.Generator,
                 config: AudioConfig = AudioConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_per_class`` clips of every class.

    Returns:
        ``(waves, labels)``: ``(N, length)`` float32 and ``(N,)`` int64, class-major order.
    """
    import torch

    waves = torch.cat([synthesize(c, n_per_class, gen, config) for c in range(len(CLASSES))])
    labels = torch.arange(len(CLASSES)).repeat_interleave(n_per_class)
    return waves, labels


def train_test(n_train: int, n_test: int, seed: int,
               config: AudioConfig = AudioConfig()) -> dict[str, torch.Tensor]:
    """A training set and a held-out set per class, drawn independently from ``seed``.

    Returns:
        ``{"train_x", "train_y", "test_x", "test_y"}``.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    train_x, train_y = make_dataset(n_train, gen, config)
    test_x, test_y = make_dataset(n_test, gen, config)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


def mu_law_encode(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Waveform in ``[-1, 1]`` to integer levels ``0..mu``.

    ``F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu)`` (equation 2 of van den Oord et al. 2016),
    then ``[-1, 1]`` quantised to ``mu + 1`` levels.
    """
    import torch

    x = x.clamp(-1, 1)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)  # (...,) in [-1, 1]
    return torch.floor((y + 1) / 2 * mu + 0.5).long()


def mu_law_decode(q: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Integer levels ``0..mu`` back to a waveform in ``[-1, 1]`` (inverse of the encoder)."""
    import torch

    y = 2 * q.float() / mu - 1  # (...,) in [-1, 1]
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


def write_wav(path: str | Path, x: torch.Tensor, sample_rate: int) -> None:
    """Write a mono waveform in ``[-1, 1]`` as a 16-bit PCM WAV file.

    Args:
        path: the file to write.
        x: ``(T,)`` samples.
        sample_rate: samples per second.
    """
    import torch

    if x.dim() != 1:
        raise ValueError(f"write_wav takes one mono clip (T,), got shape {tuple(x.shape)}.")
    pcm = (x.detach().float().clamp(-1, 1) * 32767).round().to(torch.int16)  # (T,)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.numpy().astype("<i2").tobytes())


def read_wav(path: str | Path) -> tuple[torch.Tensor, int]:
    """Read a mono 16-bit PCM WAV file: ``((T,) samples in [-1, 1], sample rate)``."""
    import numpy as np
    import torch

    with wave.open(str(path), "rb") as f:
        if f.getnchannels() != 1 or f.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM, got {f.getnchannels()} "
                             f"channel(s) of {8 * f.getsampwidth()} bits.")
        data = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        return torch.from_numpy(data.astype("float32") / 32767), f.getframerate()
