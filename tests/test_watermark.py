"""The green-list watermark: z near 0 without it, large with it; the detector's arithmetic."""

import math

import pytest
import torch

from genai_report.ethics.memorization import matched_length
from genai_report.ethics.watermark import (
    bias_logits,
    detect,
    green_counts,
    green_lists,
    sample,
    z_score,
)

V = 64


def _uniform(idx):
    return torch.zeros(len(idx), V)


def test_green_lists_have_gamma_share_and_depend_on_key():
    g = green_lists(V, 0.25, key=1)
    assert g.shape == (V, V) and (g.sum(1) == 16).all()
    assert not torch.equal(g, green_lists(V, 0.25, key=2))
    assert torch.equal(g, green_lists(V, 0.25, key=1))
    with pytest.raises(ValueError, match="gamma"):
        green_lists(V, 1.0)


def test_z_score_by_hand():
    # T = 100 scored, gamma = 0.5: expected 50 green, sd 5 -> 75 green is z = 5
    assert float(z_score(75, 100, 0.5)) == pytest.approx(5.0)
    assert float(z_score(25, 100, 0.25)) == pytest.approx(0.0)


def test_green_counts_score_consecutive_pairs():
    green = torch.zeros(3, 3, dtype=torch.bool)
    green[0, 1] = green[1, 2] = True
    ids = torch.tensor([[0, 1, 2, 0], [2, 2, 2, 2]])
    n_green, n_scored = green_counts(ids, green, unique=False)
    assert n_green.tolist() == [2, 0] and n_scored.tolist() == [3, 3]
    z = detect(ids, green, 0.5, unique=False)
    assert float(z[0]) == pytest.approx((2 - 1.5) / math.sqrt(3 * 0.25))
    # unique pairs: row 2 is the pair (2, 2) three times -> scored once
    n_green, n_scored = green_counts(ids, green)
    assert n_green.tolist() == [2, 0] and n_scored.tolist() == [3, 1]
    ids = torch.tensor([[0, 1, 0, 1, 2]])  # pairs (0,1) (1,0) (0,1) (1,2): 3 distinct, 2 green
    assert [t.tolist() for t in green_counts(ids, green)] == [[2], [3]]


def test_bias_only_moves_green_logits():
    green = green_lists(V, 0.5)
    prev = torch.tensor([3, 7])
    out = bias_logits(torch.zeros(2, V), prev, green, 2.0)
    assert torch.equal(out == 2.0, green[prev])


def test_unwatermarked_text_has_z_near_zero_and_watermarked_text_high_z():
    green = green_lists(V, 0.5, key=42)
    prompt = torch.zeros(200, 1, dtype=torch.long)
    plain, _ = sample(_uniform, prompt, 100, green, 0.0, torch.Generator().manual_seed(0))
    marked, nll = sample(_uniform, prompt, 100, green, 4.0, torch.Generator().manual_seed(1))
    z0, z1 = detect(plain, green, 0.5), detect(marked, green, 0.5)
    assert abs(float(z0.mean())) < 0.3 and 0.7 < float(z0.std()) < 1.3  # ~ N(0, 1)
    assert float((z0 > 4).double().mean()) == 0.0
    # green probability e^4 / (1 + e^4) = 0.982: expected z = (0.982 - 0.5) * 100 / 5 = 9.6
    # (with V = 64, few of the 100 pairs repeat, so unique counting changes little)
    assert float(z1.mean()) == pytest.approx(9.6, abs=0.6)
    assert float(z1.min()) > 4
    # the unbiased model is uniform: every drawn token costs log V nats
    assert torch.allclose(nll, torch.full_like(nll, math.log(V)))


def test_matched_length():
    gen = torch.tensor([[1, 2, 3], [1, 0, 3], [0, 2, 3]])
    truth = torch.tensor([1, 2, 3]).repeat(3, 1)
    assert matched_length(gen, truth).tolist() == [3, 1, 0]
