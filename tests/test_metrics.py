"""Metrics: Fréchet distance, precision/recall, MMD and ring-mode coverage."""

import pytest
import torch

from genai_report.data import toy2d
from genai_report.metrics.fid import classes_covered, frechet_distance, precision_recall
from genai_report.metrics.likelihood import bits_per_dim
from genai_report.metrics.mmd import mmd, mode_balance, ring_modes


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_noise():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(500, 16, generator=g) @ torch.randn(16, 16, generator=g)
    assert frechet_distance(f, f) < 1e-6
    dists = [frechet_distance(f, f + s * torch.randn(f.shape, generator=g)) for s in (0.1, 0.5, 1, 2)]
    assert all(a < b for a, b in zip(dists, dists[1:], strict=False))


def test_frechet_distance_of_gaussians_closed_form():
    # N(0, I) vs N(m, 4 I) in D dims: |m|^2 + D (1 + 4 - 2 * 2) = |m|^2 + D
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200000, 3, generator=g)
    b = 2 * torch.randn(200000, 3, generator=g) + 1
    assert abs(frechet_distance(a, b) - (3 + 3)) < 0.1


def test_precision_recall():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 2, generator=g)
    assert precision_recall(real, real.clone())["precision"] == 1.0
    collapsed = torch.randn(500, 2, generator=g) * 0.05
    pr = precision_recall(real, collapsed)
    assert pr["precision"] > 0.9 and pr["recall"] < 0.3


def test_mmd_separates_distributions():
    g = torch.Generator().manual_seed(0)
    a, b = toy2d.sample("ring", 500, g), toy2d.sample("ring", 500, g)
    c = toy2d.sample("two-moons", 500, g)
    assert abs(mmd(a, b)) < 0.01 < mmd(a, c)


def test_ring_modes_and_class_coverage():
    g = torch.Generator().manual_seed(0)
    ring = toy2d.sample("ring", 800, g)
    assert ring_modes(ring, toy2d.ring_centres())["modes_covered"] == 8
    centres = toy2d.ring_centres()
    two = centres[torch.randint(0, 2, (800,), generator=g)]
    assert ring_modes(two, centres)["modes_covered"] == 2
    assert classes_covered([100] * 9 + [0]) == 9
    assert abs(bits_per_dim(64 * 0.6931471805599453, 64) - 1) < 1e-12


def test_mode_balance_ranks_a_smeared_ring_below_the_blobs():
    """Real blobs score near 1; a uniform ring reaches every mode yet has little mass near
    them; samples piled on two modes are near modes but badly balanced; none near: zeros."""
    g = torch.Generator().manual_seed(0)
    centres = toy2d.ring_centres()
    blobs = mode_balance(toy2d.sample("ring", 4000, g), centres)
    assert blobs["near_mode"] > 0.95 and blobs["balance"] > 0.95 and blobs["matched_mass"] > 0.9
    angle = torch.rand(4000, generator=g) * 2 * torch.pi
    radius = centres.norm(dim=1).mean()
    ring = torch.stack([angle.cos(), angle.sin()], 1) * radius  # (N, 2): a smeared ring
    smeared = mode_balance(ring, centres)
    assert smeared["balance"] > 0.9 and smeared["near_mode"] < 0.6
    assert smeared["matched_mass"] == pytest.approx(smeared["near_mode"], abs=0.02)
    two = centres[torch.randint(2, (4000,), generator=g)] + 0.05 * torch.randn(4000, 2,
                                                                               generator=g)
    piled = mode_balance(two, centres)
    assert piled["near_mode"] > 0.95 and piled["balance"] < 0.3
    assert piled["matched_mass"] == pytest.approx(0.25, abs=0.01)
    far = mode_balance(torch.full((10, 2), 100.0), centres)
    assert far == {"near_mode": 0.0, "balance": 0.0, "matched_mass": 0.0, "shares": [0.0] * 8}


def test_score_over_seeds_summarises_each_metric_and_sees_the_sampling_noise():
    from genai_report.metrics.fid import (
        ClassifierConfig,
        DigitsClassifier,
        DigitsEvaluator,
        score_over_seeds,
    )

    torch.manual_seed(0)
    clf = DigitsClassifier(ClassifierConfig(channels=4, features=8)).eval()
    ref = torch.rand(200, 1, 8, 8) * 2 - 1
    ev = DigitsEvaluator(clf, ref)
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    out = score_over_seeds(ev, lambda g: torch.rand(100, 1, 8, 8, generator=g) * 2 - 1, gens)
    assert out["fid"]["n"] == 3 and len(out["fid"]["values"]) == 3
    assert out["fid"]["sd"] > 0  # three different draws, three different FIDs
    assert set(out) >= {"fid", "precision", "recall", "classes_covered", "class_histogram"}
    with pytest.raises(ValueError, match="at least one"):
        score_over_seeds(ev, lambda g: ref, [])
