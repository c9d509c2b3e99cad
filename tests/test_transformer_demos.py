"""The synthetic tasks, models and measures behind the Transformers chapter's in-context
learning and recall demonstrations."""

from __future__ import annotations

import math

import pytest
import torch

from genai_report.data import synthetic as syn
from genai_report.metrics.incontext import (
    induction_score,
    regression_baselines,
    uniform_induction_score,
)
from genai_report.models.small_transformers import (
    AttentionOnlyTransformer,
    AttnOnlyConfig,
    VectorGPT,
    VectorGPTConfig,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("copies", ["two", "tile"])
def test_repeated_tokens_repeat_where_they_say(copies):
    x, S, P = syn.repeated_tokens(50, 64, 40, 3, 20, _gen(), copies=copies)
    assert x.shape == (50, 40) and int(S.min()) >= 3 and int(S.max()) <= 20
    for b in range(50):
        s, p = int(S[b]), int(P[b])
        assert p + 2 * s <= 40
        assert torch.equal(x[b, p + s : p + 2 * s], x[b, p : p + s])
        if copies == "tile":  # the segment continues to the end
            assert all(x[b, t] == x[b, t - s] for t in range(p + s, 40))


def test_copy_masks_cover_the_predictable_positions():
    S, P = torch.tensor([4]), torch.tensor([2])
    first, second = syn.copy_masks(S, P, 12)
    # position t predicts token t + 1; first copy is tokens 2..5, second 6..9
    assert first[0].nonzero()[:, 0].tolist() == [2, 3, 4]
    assert second[0].nonzero()[:, 0].tolist() == [6, 7, 8]


def _perfect_induction_maps(S, P, T):
    """One layer, two heads: head 0 a perfect induction head, head 1 attends to itself."""
    B = len(S)
    maps = torch.zeros(1, B, 2, T, T)
    maps[0, :, 1] = torch.eye(T)
    for b in range(B):
        for t in range(T):
            s, p = int(S[b]), int(P[b])
            j = t - s + 1 if p + s <= t < p + 2 * s - 1 else t
            maps[0, b, 0, t, j] = 1.0
    return maps


def test_induction_score_of_hand_built_patterns():
    S, P = torch.tensor([5, 3]), torch.tensor([0, 4])
    maps = _perfect_induction_maps(S, P, 16)
    score = induction_score(maps, S, P)
    assert score.shape == (1, 2)
    torch.testing.assert_close(score, torch.tensor([[1.0, 0.0]]))
    # uniform causal attention scores 1 / (t + 1), as the closed form says
    T = 16
    uniform = torch.ones(T, T).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(1, 2, 1, T, T)
    assert float(induction_score(uniform, S, P)) == pytest.approx(
        uniform_induction_score(S, P, T), rel=1e-6)


def test_attention_only_transformer_is_causal_and_returns_maps():
    torch.manual_seed(0)
    m = AttentionOnlyTransformer(AttnOnlyConfig(vocab_size=11, block_size=9, n_layer=2,
                                                n_head=2, n_embd=16)).eval()
    x = torch.randint(11, (3, 9))
    with torch.no_grad():
        logits, maps = m.attention_maps(x)
        x2 = x.clone()
        x2[:, 5] = (x2[:, 5] + 1) % 11
        torch.testing.assert_close(m(x)[:, :5], m(x2)[:, :5])
    torch.testing.assert_close(logits, m(x), rtol=1e-5, atol=1e-5)  # fused == explicit
    assert maps.shape == (2, 3, 2, 9, 9) and float(maps.triu(1).abs().max()) == 0
    assert not any(n.endswith("mlp") for n, _ in m.named_modules())
    with pytest.raises(ValueError, match="multiple"):
        AttnOnlyConfig(vocab_size=4, block_size=4, n_head=3, n_embd=16)


def test_regression_prompts_and_baselines():
    z, x, y = syn.regression_prompts(400, 6, 2, _gen())
    assert z.shape == (400, 12, 3)
    torch.testing.assert_close(z[:, 0::2, :2], x)
    torch.testing.assert_close(z[:, 1::2, :2], x)
    torch.testing.assert_close(z[:, 1::2, 2], y)
    assert float(z[:, 0::2, 2].abs().max()) == 0  # the x tokens do not carry y
    assert float(y.var()) == pytest.approx(1.0, abs=0.15)
    base = regression_baselines(x, y)
    err = {k: ((v - y) ** 2).mean(0) for k, v in base.items()}
    # noiseless: least squares is exact from d = 2 examples on
    assert float(err["least_squares"][2:].max()) < 1e-8
    # with one example, min-norm least squares keeps the component along x_1: error 1 - 1/d
    assert float(err["least_squares"][1]) == pytest.approx(0.5, abs=0.12)
    for i in range(1, 6):  # nearest neighbour copies an earlier y, mean averages them
        j = ((x[:, :i] - x[:, i : i + 1]) ** 2).sum(-1).argmin(1)
        torch.testing.assert_close(base["nearest_neighbour"][:, i], y[:, :i].gather(1, j[:, None])[:, 0])
        torch.testing.assert_close(base["mean"][:, i], y[:, :i].mean(1))
    assert float(base["zero"].abs().max()) == 0


def test_vector_gpt_shapes_and_causality():
    torch.manual_seed(0)
    m = VectorGPT(VectorGPTConfig(n_in=3, block_size=8, n_layer=1, n_head=2, n_embd=16)).eval()
    z, _, _ = syn.regression_prompts(2, 4, 2, _gen())
    with torch.no_grad():
        out = m(z)
        z2 = z.clone()
        z2[:, 5:] += 1.0
        torch.testing.assert_close(m(z2)[:, :5], out[:, :5])
    assert out.shape == (2, 8)


def test_recall_batch_places_pairs_at_the_lag():
    T_lag, P = 10, 3
    x, ans, lags, loads = syn.recall_batch(40, T_lag, _gen(), max_pairs=P, n_pairs=P)
    n_pair_tokens = 8 * 8
    assert x.shape == (40, T_lag + P + 1)
    assert int(x.max()) < syn.recall_vocab(8, 8, 8)
    assert loads.tolist() == [P] * 40
    for b in range(40):
        lag = int(lags[b])
        pairs = x[b, T_lag - lag : T_lag - lag + P]
        assert bool((pairs < n_pair_tokens).all())
        assert bool((x[b, T_lag - lag + P : -1] >= n_pair_tokens + 8).all())  # fillers
        key = int(x[b, -1]) - n_pair_tokens
        match = [int(t) % 8 for t in pairs if int(t) // 8 == key]
        assert match == [int(ans[b])]  # the query's key occurs once; its value is the answer
    fixed, _, lags, _ = syn.recall_batch(5, T_lag, _gen(1), lag=4)
    assert lags.tolist() == [4] * 5
    with pytest.raises(ValueError, match="lag"):
        syn.recall_batch(2, 4, _gen(), lag=5)
    with pytest.raises(ValueError, match="n_pairs"):
        syn.recall_batch(2, 4, _gen(), max_pairs=2, n_pairs=3)


def test_recall_batch_draws_the_load_per_sequence():
    """Loads vary; exactly ``load`` pair tokens sit just before the gap; the query's key is
    among them."""
    n_keys, P, T_lag = 16, 6, 5
    x, ans, lags, loads = syn.recall_batch(200, T_lag, _gen(2), n_keys=n_keys, max_pairs=P)
    n_pair_tokens = n_keys * 8
    assert set(loads.tolist()) == set(range(1, P + 1))
    for b in range(200):
        n, lag = int(loads[b]), int(lags[b])
        pair_pos = (x[b] < n_pair_tokens).nonzero()[:, 0].tolist()
        end = x.shape[1] - 1 - lag
        assert pair_pos == list(range(end - n, end))
        keys = [int(t) // 8 for t in x[b, end - n : end]]
        assert len(set(keys)) == n
        key = int(x[b, -1]) - n_pair_tokens
        assert keys.count(key) == 1
        assert int(x[b, end - n + keys.index(key)]) % 8 == int(ans[b])


def test_a_two_layer_model_learns_to_copy_a_repeat_on_a_tiny_task():
    """Smoke-sized: enough steps for the second copy's loss to fall below the first's."""
    import torch.nn.functional as F

    from genai_report.training.loop import TrainConfig, train

    torch.manual_seed(0)
    V, T = 16, 16
    m = AttentionOnlyTransformer(AttnOnlyConfig(V, T, n_layer=2, n_head=1, n_embd=32))
    g = _gen(3)

    def loss_fn(mod, step):
        x, _, _ = syn.repeated_tokens(32, V, T, 3, 8, g, copies="tile")
        return F.cross_entropy(mod(x)[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))

    train(m, loss_fn, TrainConfig(steps=300, lr=3e-3))
    x, S, P = syn.repeated_tokens(200, V, T, 3, 8, _gen(9))
    first, second = syn.copy_masks(S, P, T)
    with torch.no_grad():
        nll = F.cross_entropy(m(x)[:, :-1].transpose(1, 2), x[:, 1:], reduction="none")
    assert float(nll[second].mean()) < float(nll[first].mean()) < math.log(V) + 0.5


def test_induction_seeds_trained_together_end_where_each_alone_ends():
    """transformers-induction trains a depth's seeds as one ensemble; each member must
    follow the model trained alone from its seed (weights, batches, measurements)."""
    from types import SimpleNamespace

    import torch.nn.functional as F

    from genai_report.figures.transformers_synthetic import InductionTrain, _train_induction
    from genai_report.training.loop import TrainConfig, train

    p = InductionTrain(length=16, max_period=8, n_embd=16, steps=12, eval_every=6,
                       eval_sequences=8, seeds=2)
    ctx = SimpleNamespace(seed=41, progress=None,
                          generator=lambda offset=0: torch.Generator().manual_seed(41 + offset))
    runs = _train_induction(ctx, p, 2)
    assert [e["step"] for e in runs[0]["evals"]] == [0, 6, 12]
    for seed, run in enumerate(runs):
        torch.manual_seed(ctx.seed + 1000 * seed + 2)
        alone = AttentionOnlyTransformer(AttnOnlyConfig(
            vocab_size=p.vocab, block_size=p.length, n_layer=2, n_head=p.n_head,
            n_embd=p.n_embd))
        gen = ctx.generator(1000 * seed + 1)

        def loss_fn(m, step, gen=gen):
            x, _, _ = syn.repeated_tokens(p.batch_size, p.vocab, p.length, p.min_period,
                                          p.max_period, gen, copies="tile")
            return F.cross_entropy(m(x)[:, :-1].reshape(-1, p.vocab), x[:, 1:].reshape(-1))

        train(alone, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, min_lr_ratio=1.0))
        x_ev, S_ev, P_ev = syn.repeated_tokens(p.eval_sequences, p.vocab, p.length,
                                               p.min_period, p.max_period, ctx.generator(7),
                                               copies="two")
        with torch.no_grad():
            _, maps = alone.attention_maps(x_ev)  # (L, B, H, T, T)
        score = induction_score(maps, S_ev, P_ev)
        assert run["last"]["induction_score"] == pytest.approx(float(score.max()), abs=1e-4)
        assert run["n_params"] == alone.num_params()
        li, hi = run["best"]["layer"], run["best"]["head"]
        torch.testing.assert_close(run["example_map"], maps[li, 0, hi], atol=1e-4, rtol=1e-4)
