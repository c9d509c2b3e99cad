"""A digits "FID": Fréchet distance, precision and recall in a digits classifier's features.

FID (Heusel et al. 2017) compares the Gaussian fitted to a network's features of generated
samples with that of real images. Inception features make no sense for 8x8 digits, so the
report trains its own small classifier (:class:`DigitsClassifier`) on the training split and
uses its penultimate layer. Precision and recall follow Kynkäänniemi et al. (2019): the
fraction of samples inside the real k-NN manifold, and of real points inside the samples'.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of the feature classifier.

    Attributes:
        channels: convolution channels.
        features: width of the penultimate layer (the FID features).
        n_classes: number of digit classes.
    """

    channels: int = 32
    features: int = 64
    n_classes: int = 10

    def __post_init__(self) -> None:
        if min(self.channels, self.features, self.n_classes) < 1:
            raise ValueError("channels, features and n_classes must all be >= 1.")


class DigitsClassifier(nn.Module):
    """A small CNN for 8x8 digits in [-1, 1]; :meth:`features` are the FID features.

    Args:
        config: the architecture.
    """

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.config = config
        c = config.channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c, 4, 4)
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2c, 2, 2)
            nn.Flatten(), nn.Linear(8 * c, config.features), nn.ReLU(),
        )
        self.head = nn.Linear(config.features, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, shape ``(B, features)``, of images ``(B, 1, 8, 8)``."""
        return self.body(x.reshape(-1, 1, 8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)``."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels ``(B,)``."""
        return self(x).argmax(-1)


def classifier_loss(model: DigitsClassifier, x: torch.Tensor, y: torch.Tensor,
                    generator: torch.Generator, shift: int = 1) -> torch.Tensor:
    """Cross-entropy on a batch, augmented by random shifts of up to ``shift`` pixels."""
    if shift:
        dx, dy = torch.randint(-shift, shift + 1, (2,), generator=generator).tolist()
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def features(model: DigitsClassifier, x: torch.Tensor, batch: int = 2048) -> torch.Tensor:
    """Features of many images, in batches, as float64 on the CPU."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model.features(x[i:i + batch].to(dev)).double().cpu() for i in range(0, len(x), batch)]
    return torch.cat(out)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(a)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (eq. 6 of Heusel 2017).

    ``d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})``, with the trace of the matrix
    square root computed stably as ``tr((S1^{1/2} S2 S1^{1/2})^{1/2})``.

    Args:
        f1, f2: features ``(N1, D)`` and ``(N2, D)``.

    Returns:
        The squared Fréchet distance (>= 0).
    """
    f1, f2 = f1.double(), f2.double()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = torch.cov(f1.T), torch.cov(f2.T)  # (D, D)
    r1 = _sqrtm_psd(s1)
    cross = torch.linalg.eigvalsh(r1 @ s2 @ r1).clamp(min=0).sqrt().sum()
    d2 = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * cross
    return float(d2.clamp(min=0))


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) in a feature space.

    A point is inside a set's manifold if it lies within the distance from some member of the
    set to that member's ``k``-th nearest neighbour.

    Args:
        real, fake: features ``(N, D)`` and ``(M, D)``.
        k: neighbourhood size.

    Returns:
        ``{"precision": ..., "recall": ...}``, each in [0, 1].
    """

    def inside(ref: torch.Tensor, query: torch.Tensor) -> float:
        radii = torch.cdist(ref, ref).kthvalue(k + 1, dim=1).values  # (N,), skip self
        d = torch.cdist(query, ref)  # (M, N)
        return float((d <= radii[None]).any(1).double().mean())

    real, fake = real.double(), fake.double()
    return {"precision": inside(real, fake), "recall": inside(fake, real)}


def class_histogram(labels: torch.Tensor, n_classes: int = 10) -> list[int]:
    """Counts of each predicted class among samples."""
    return torch.bincount(labels.cpu(), minlength=n_classes).tolist()


def classes_covered(hist: list[int], min_fraction: float = 0.02) -> int:
    """Number of classes holding at least ``min_fraction`` of the samples (mode coverage)."""
    total = max(1, sum(hist))
    return sum(c / total >= min_fraction for c in hist)


@dataclass
class DigitsEvaluator:
    """Scores image samples against the held-out test digits on one scale.

    Args:
        classifier: a trained :class:`DigitsClassifier`.
        reference: the real images to compare with (the test split), ``(N, 1, 8, 8)``.
    """

    classifier: DigitsClassifier
    reference: torch.Tensor

    def __post_init__(self) -> None:
        self.ref_features = features(self.classifier, self.reference)

    def __call__(self, samples: torch.Tensor) -> dict:
        """FID, precision, recall, class histogram and classes covered of ``samples``."""
        f = features(self.classifier, samples.clamp(-1, 1))
        dev = next(self.classifier.parameters()).device
        with torch.no_grad():
            labels = self.classifier(samples.clamp(-1, 1).to(dev)).argmax(-1)
        hist = class_histogram(labels)
        return {
            "fid": frechet_distance(f, self.ref_features),
            **precision_recall(self.ref_features, f),
            "class_histogram": hist,
            "classes_covered": classes_covered(hist),
        }


def score_over_seeds(evaluator: DigitsEvaluator, sample, generators) -> dict:
    """Score one model's samples drawn with several sampling seeds, on one scale.

    The single function every FID the report quotes goes through: the same evaluator, the
    same number of samples, a fresh sampling seed per draw, summarised as ``mean ± sd``.
    Sampling noise alone moves a digits FID by several percent, so a difference between
    models means something only beyond this spread.

    Args:
        evaluator: the :class:`DigitsEvaluator` (test split, trained classifier).
        sample: ``sample(generator)`` returns ``(N, 1, 8, 8)`` images drawn with that
            generator (the model, its sampler and the labels it is asked for are inside).
        generators: one ``torch.Generator`` per seed (at least one).

    Returns:
        ``fid``, ``precision``, ``recall`` and ``classes_covered`` as
        :func:`genai_report.metrics.seeds.over_seeds` summaries, and the first draw's
        ``class_histogram``.
    """
    from genai_report.metrics.seeds import over_seeds

    runs = [evaluator(sample(g)) for g in generators]
    if not runs:
        raise ValueError("score_over_seeds() needs at least one generator (one per seed).")
    out = {k: over_seeds(r[k] for r in runs)
           for k in ("fid", "precision", "recall", "classes_covered")}
    out["class_histogram"] = runs[0]["class_histogram"]
    return out


def load_classifier(path, device: torch.device | str = "cpu") -> DigitsClassifier:
    """Rebuild the digits classifier saved by the ``digits-classifier`` node, in eval mode."""
    blob = torch.load(path, weights_only=True)
    model = DigitsClassifier(ClassifierConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    return model.to(device).eval()
