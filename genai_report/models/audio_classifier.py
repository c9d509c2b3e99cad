"""Log-spectrograms and a small convolutional classifier of sound clips.

The classifier is the judge of :mod:`genai_report.artifacts.audio`: trained on real clips
only, it says which class a generated clip sounds like, the way a digit classifier scores
generated digits.
"""

from __future__ import annotations

import torch
from torch import nn

N_FFT = 256
"""STFT window (samples): 64 ms at 4 kHz, 15.6 Hz per frequency bin."""

HOP = 64
"""STFT hop (samples): 16 ms at 4 kHz."""


def log_spectrogram(x: torch.Tensor, n_fft: int = N_FFT, hop: int = HOP) -> torch.Tensor:
    """Power spectrogram in decibels.

    Args:
        x: ``(B, T)`` waveforms.
        n_fft, hop: the STFT's window and hop (Hann window).

    Returns:
        ``(B, n_fft // 2 + 1, frames)`` ``10 log10(|X|^2 + 1e-6)``.
    """
    window = torch.hann_window(n_fft, device=x.device)
    X = torch.stft(x, n_fft, hop_length=hop, window=window, center=True,
                   return_complex=True)  # (B, F, frames)
    return 10 * torch.log10(X.abs() ** 2 + 1e-6)


class SpectrogramClassifier(nn.Module):
    """Two convolution blocks over a log-spectrogram, then a linear layer.

    Args:
        n_classes: output classes.
        width: channels of the first block (the second has twice as many).
    """

    def __init__(self, n_classes: int, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d((8, 4)), nn.Flatten())
        self.out = nn.Linear(2 * width * 32, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` waveforms -> ``(B, 64 width)`` features."""
        s = log_spectrogram(x)  # (B, F, frames)
        s = (s + 20) / 40  # roughly zero mean, unit scale for dB values
        return self.body(s[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` waveforms -> ``(B, n_classes)`` logits."""
        return self.out(self.features(x))
