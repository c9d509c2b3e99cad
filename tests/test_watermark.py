"""The green-list watermark: a calibrated null, large z with it; the detector's arithmetic."""

import math

import pytest
import torch

from genai_report.ethics.memorization import matched_length
from genai_report.ethics.watermark import (
    GreenList,
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


def test_green_lists_have_exact_share_and_depend_on_key():
    g = GreenList(V, 0.25, key=1, context=3, buckets=50)
    assert g.table.shape == (50, V) and (g.table.sum(1) == 16).all()
    assert g.gamma_eff == 0.25
    assert not torch.equal(g.table, GreenList(V, 0.25, key=2, context=3, buckets=50).table)
    assert torch.equal(g.table, GreenList(V, 0.25, key=1, context=3, buckets=50).table)
    odd = GreenList(65, 0.5, key=1)  # 32 or 33 of 65 green: z must use the exact share
    assert odd.gamma_eff == round(0.5 * 65) / 65 and (odd.table.sum(1) == round(32.5)).all()
    prev = green_lists(V, 0.5, key=1)
    assert prev.context == 1 and prev.table.shape == (V, V)
    with pytest.raises(ValueError, match="gamma"):
        GreenList(V, 1.0)


def test_z_score_by_hand():
    # T = 100 scored, gamma = 0.5: expected 50 green, sd 5 -> 75 green is z = 5
    assert float(z_score(75, 100, 0.5)) == pytest.approx(5.0)
    assert float(z_score(25, 100, 0.25)) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        z_score(0, 0, 0.5)


def _hand_list():
    g = GreenList(3, 0.5, key=0, context=1, buckets=3)
    g.bucket = lambda ctx: ctx[..., 0].long()  # row = previous token, for a hand check
    g.table = torch.zeros(3, 3, dtype=torch.bool)
    g.table[0, 1] = g.table[1, 2] = True
    return g


def test_green_counts_score_consecutive_pairs_once_each():
    green = _hand_list()
    ids = torch.tensor([[0, 1, 2, 0], [2, 2, 2, 2]])
    n_green, n_scored = green_counts(ids, green, unique=False)
    assert n_green.tolist() == [2, 0] and n_scored.tolist() == [3, 3]
    # unique tuples: row 2 is the pair (2, 2) three times -> scored once
    n_green, n_scored = green_counts(ids, green)
    assert n_green.tolist() == [2, 0] and n_scored.tolist() == [3, 1]
    ids = torch.tensor([[0, 1, 0, 1, 2]])  # pairs (0,1) (1,0) (0,1) (1,2): 3 distinct, 2 green
    assert [t.tolist() for t in green_counts(ids, green)] == [[2], [3]]


def test_longer_context_tuples_and_the_vectorised_count_match_a_loop():
    g = GreenList(5, 0.4, key=3, context=2, buckets=7)
    ids = torch.randint(0, 5, (6, 40), generator=torch.Generator().manual_seed(0))
    n_green, n_scored = green_counts(ids, g)
    for r, row in enumerate(ids.tolist()):
        seen, green = set(), 0
        for t in range(2, len(row)):
            tup = tuple(row[t - 2:t + 1])
            if tup not in seen:
                seen.add(tup)
                green += bool(g.table[g.bucket(torch.tensor(row[t - 2:t])), row[t]])
        assert (green, len(seen)) == (int(n_green[r]), int(n_scored[r]))


def test_bias_only_moves_green_logits():
    green = GreenList(V, 0.5, key=5, context=2, buckets=128)
    ctx = torch.tensor([[3, 7], [1, 2]])
    out = bias_logits(torch.zeros(2, V), ctx, green, 2.0)
    assert torch.equal(out == 2.0, green.mask(ctx))


def test_null_is_standard_normal_over_keys_and_watermark_gives_high_z():
    prompt = torch.zeros(100, 4, dtype=torch.long)
    zs = []
    for key in range(20):
        green = GreenList(V, 0.5, key=key, context=4, buckets=1024)
        plain = torch.randint(0, V, (50, 64), generator=torch.Generator().manual_seed(key))
        zs.append(detect(plain, green))
    z0 = torch.cat(zs)
    assert abs(float(z0.mean())) < 0.1 and 0.9 < float(z0.std()) < 1.1  # ~ N(0, 1)
    assert float((z0 > 2.326).double().mean()) < 0.02  # nominal 1%
    assert float((z0 > 4).double().mean()) == 0.0
    green = GreenList(V, 0.5, key=42, context=4, buckets=1024)
    marked, nll = sample(_uniform, prompt, 100, green, 4.0, torch.Generator().manual_seed(1))
    z1 = detect(marked, green)
    # green probability e^4 / (1 + e^4) = 0.982 over 100 scored: z = (0.982 - 0.5) * 100 / 5
    assert float(z1.mean()) == pytest.approx(9.6, abs=0.6)
    assert float(z1.min()) > 4
    # the unbiased model is uniform: every drawn token costs log V nats
    assert torch.allclose(nll, torch.full_like(nll, math.log(V)))
    with pytest.raises(ValueError, match="prompt"):
        sample(_uniform, prompt[:, :2], 5, green, 1.0, torch.Generator())


def test_matched_length():
    gen = torch.tensor([[1, 2, 3], [1, 0, 3], [0, 2, 3]])
    truth = torch.tensor([1, 2, 3]).repeat(3, 1)
    assert matched_length(gen, truth).tolist() == [3, 1, 0]
