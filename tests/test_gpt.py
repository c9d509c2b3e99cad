"""The GPT: causality, attention paths, KV cache, sampling, and that it can learn."""

from __future__ import annotations

import pytest
import torch

from genai_report.models.gpt import GPT, GPTConfig
from genai_report.training.loop import TrainConfig, train


def _model(bias: bool = False, block_size: int = 16, dropout: float = 0.0) -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=20, block_size=block_size, n_layer=2, n_head=2, n_embd=16,
                    bias=bias, dropout=dropout)
    return GPT(cfg).eval()


def _ids(b: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(20, (b, t), generator=torch.Generator().manual_seed(seed))


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(vocab_size=10, block_size=8, n_head=3, n_embd=16)
    with pytest.raises(ValueError, match="vocab_size"):
        GPTConfig(vocab_size=0, block_size=8)
    with pytest.raises(ValueError, match="dropout"):
        GPTConfig(vocab_size=10, block_size=8, dropout=1.0)


def test_shapes_loss_and_weight_tying():
    m = _model()
    x = _ids(3, 16)
    logits, loss = m(x, x)
    assert logits.shape == (3, 16, 20)
    assert loss.ndim == 0 and loss > 0
    assert m(x)[1] is None
    assert m.lm_head.weight is m.wte.weight
    assert m.num_params(False) - m.num_params() == m.wpe.weight.numel()
    with pytest.raises(ValueError, match="block_size"):
        m(_ids(1, 17))


@pytest.mark.parametrize("t", [1, 5, 15])
def test_causality(t):
    """Changing the token at position t never changes the logits before t."""
    m = _model()
    x = _ids(2, 16)
    y = x.clone()
    y[:, t:] = (y[:, t:] + 7) % 20
    with torch.no_grad():
        a, b = m(x)[0], m(y)[0]
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, t], b[:, t])


@pytest.mark.parametrize("bias", [False, True])
def test_fused_and_explicit_attention_agree(bias):
    m = _model(bias=bias)
    x = _ids(3, 16)
    with torch.no_grad():
        fused, _ = m(x)
        explicit, maps = m.attention_maps(x)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    assert maps.shape == (2, 3, 2, 16, 16)


def test_attention_rows_sum_to_one_and_are_causal():
    m = _model()
    with torch.no_grad():
        _, maps = m.attention_maps(_ids(2, 12))
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
    assert (maps >= 0).all()
    assert maps.triu(1).abs().max() == 0


def test_kv_cache_logits_equal_full_recomputation():
    m = _model()
    x = _ids(2, 12)
    with torch.no_grad():
        full = m(x)[0]
        logits, cache, _ = m._run(x[:, :5])
        steps = [logits]
        for t in range(5, 12):
            logits, cache, _ = m._run(x[:, t : t + 1], cache)
            steps.append(logits)
        chunk, _, _ = m._run(x[:, 8:], m._run(x[:, :8])[1])  # several new positions at once
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(chunk, full[:, 8:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("top_k", [1, 5, None])
def test_kv_cache_generation_equals_recomputation(top_k):
    m = _model(block_size=8)
    prompt = _ids(2, 3)
    outs = [m.generate(prompt, 20, temperature=0.9, top_k=top_k, use_cache=c,
                       generator=torch.Generator().manual_seed(5)) for c in (True, False)]
    assert outs[0].shape == (2, 23)
    assert torch.equal(outs[0], outs[1])  # 20 new tokens: past block_size, the window slides


def test_top_k_one_is_greedy():
    m = _model()
    prompt = _ids(1, 4)
    out = m.generate(prompt, 6, top_k=1, generator=torch.Generator().manual_seed(0))
    idx = prompt
    for _ in range(6):
        idx = torch.cat([idx, m(idx)[0][:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, idx)


def test_seeded_sampling_is_reproducible():
    m = _model()
    p = _ids(1, 2)

    def sample(seed):
        return m.generate(p, 30, temperature=1.2, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(3), sample(3))
    assert not torch.equal(sample(3), sample(4))
    with pytest.raises(ValueError, match="temperature"):
        m.generate(p, 1, temperature=0.0)


def test_overfits_a_tiny_batch():
    m = _model().train()
    x = _ids(4, 16, seed=1)
    y = _ids(4, 16, seed=2)
    hist = train(m, lambda mod, step: mod(x, y)[1], TrainConfig(steps=150, lr=1e-2))
    assert hist.train_loss[0] > 2.5
    assert hist.train_loss[-1] < 0.05


def test_dropout_only_in_training():
    m = _model(dropout=0.5)
    x = _ids(2, 8)
    with torch.no_grad():
        assert torch.equal(m(x)[0], m(x)[0])
        m.train()
        assert not torch.equal(m(x)[0], m(x)[0])
