"""scikit-learn's bundled 8x8 handwritten digits, scaled and split once for every model.

The 1,797 images ship inside scikit-learn (``sklearn/datasets/data/digits.csv.gz``); nothing is
downloaded. Pixels are integers 0..16; :func:`load` scales them to [-1, 1] and splits the set
with a fixed, stratified 75/25 split so every chapter compares on the same held-out digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where used, so node modules can list without it
    import torch

LEVELS = 17
"""Number of grey levels of a pixel (0..16)."""

SIDE = 8
"""Images are ``SIDE x SIDE``."""

SPLIT_SEED = 0
TEST_FRACTION = 0.25


def data_file() -> Path:
    """Path of the digits file inside scikit-learn (declare it in a node's ``data=``)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locate without importing scikit-learn
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-learn is not installed; its bundled digits are needed.")
    return Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"


@dataclass(frozen=True)
class Digits:
    """A split of the digits.

    Attributes:
        x_train, x_test: images in [-1, 1], shape ``(N, 1, 8, 8)``, float32.
        y_train, y_test: labels 0..9, int64.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Map images in [-1, 1] to integer grey levels 0..16 (int64)."""
    return ((x.clamp(-1, 1) + 1) * (LEVELS - 1) / 2).round().long()


def from_levels(levels: torch.Tensor) -> torch.Tensor:
    """Map grey levels 0..16 (any dtype) to [-1, 1] floats."""
    return levels.float() * 2 / (LEVELS - 1) - 1


def balanced_labels(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Labels 0, 1, ..., 9, 0, 1, ... (the uniform class prior) for conditional sampling."""
    import torch

    return torch.arange(n, device=device) % 10


def load() -> Digits:
    """Load the digits with the report's fixed stratified train/test split.

    Returns:
        A :class:`Digits` with 1,347 training and 450 test images.
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1)  # (N, 1, 8, 8), 0..16
    y = torch.from_numpy(bunch.target).long()
    idx = torch.arange(len(y)).numpy()
    tr, te = train_test_split(idx, test_size=TEST_FRACTION, stratify=bunch.target,
                              random_state=SPLIT_SEED)
    tr, te = torch.from_numpy(tr), torch.from_numpy(te)
    x = from_levels(x)
    return Digits(x[tr].contiguous(), y[tr].contiguous(), x[te].contiguous(), y[te].contiguous())
