"""LoRA: frozen base weights, a zero start, exact merge and unmerge."""

from __future__ import annotations

import copy

import pytest
import torch

from genai_report.models.gpt import GPT, GPTConfig
from genai_report.models.lora import (
    LoRALinear,
    apply_lora,
    lora_layers,
    merge_lora,
    trainable_parameters,
    unmerge_lora,
)
from genai_report.training.loop import TrainConfig, train


def _gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)).eval()


def _train_a_little(model, steps=5):
    gen = torch.Generator().manual_seed(1)

    def loss_fn(m, step):
        x = torch.randint(11, (4, 8), generator=gen)
        return m(x, x.roll(1, dims=1))[1]

    train(model, loss_fn, TrainConfig(steps=steps, lr=1e-2))
    return model


def test_lora_starts_as_the_base_model_and_counts_its_parameters():
    base = _gpt()
    model = copy.deepcopy(base)
    wrapped = apply_lora(model, rank=3, generator=torch.Generator().manual_seed(0))
    assert len(wrapped) == 2 * 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    x = torch.randint(11, (2, 8))
    assert torch.equal(model(x)[0], base(x)[0])  # B = 0 at the start
    expected = sum(3 * (m.base.in_features + m.base.out_features) for m in lora_layers(model))
    assert trainable_parameters(model) == expected


def test_training_leaves_the_frozen_weights_unchanged():
    model = _gpt()
    apply_lora(model, rank=2, generator=torch.Generator().manual_seed(0))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    _train_a_little(model)
    for name, before in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], before), name
    assert any(not torch.equal(dict(model.named_parameters())[n], v) for n, v in lora.items())


def test_merge_is_exact_and_unmerge_restores_the_weights_bit_for_bit():
    model = _gpt()
    apply_lora(model, rank=4, alpha=8.0, generator=torch.Generator().manual_seed(0))
    _train_a_little(model)
    model.eval()
    weights = {id(m): m.base.weight.detach().clone() for m in lora_layers(model)}
    x = torch.randint(11, (3, 8))
    with torch.no_grad():
        adapted = model(x)[0]
        merge_lora(model)
        merged = model(x)[0]
    assert all(m.merged for m in lora_layers(model))
    torch.testing.assert_close(merged, adapted, atol=1e-5, rtol=1e-5)
    unmerge_lora(model)
    for m in lora_layers(model):
        assert torch.equal(m.base.weight, weights[id(m)])
    with torch.no_grad():
        assert torch.equal(model(x)[0], adapted)


def test_delta_weight_is_the_scaled_low_rank_product():
    layer = LoRALinear(torch.nn.Linear(6, 5, bias=True), rank=2, alpha=4.0,
                       generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(7, 6)
    expected = layer.base(x) + x @ (2.0 * layer.lora_B @ layer.lora_A).T
    torch.testing.assert_close(layer(x), expected)
    assert layer.delta_weight().shape == layer.base.weight.shape


def test_bad_rank_and_no_target_are_clear_errors():
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(torch.nn.Linear(3, 3), rank=0)
    with pytest.raises(ValueError, match="targets="):
        apply_lora(_gpt(), rank=1, targets=("nope",))
