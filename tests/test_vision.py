"""Neural fields (Fourier features, positional encoding, PSNR) and the vision transformer."""

from __future__ import annotations

import math

import pytest
import torch

from genai_report.artifacts.fields import load_image, split_pixels
from genai_report.artifacts.vit import shift, stratified_order
from genai_report.models.fields import (
    CoordinateMLP,
    FieldConfig,
    FourierFeatures,
    PositionalEncoding,
    grid,
    psnr,
)
from genai_report.models.vit import ViT, ViTConfig, attention_distance, patchify


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- neural fields
def test_fourier_features_shape_determinism_and_unit_circle():
    v = torch.rand(5, 7, 2, generator=_gen(1))
    a = FourierFeatures(2, 16, 3.0, _gen(0))
    b = FourierFeatures(2, 16, 3.0, _gen(0))
    c = FourierFeatures(2, 16, 3.0, _gen(1))
    assert a(v).shape == (5, 7, 32)
    assert torch.equal(a.B, b.B) and torch.equal(a(v), b(v))
    assert not torch.allclose(a.B, c.B)
    f = a(v)
    # cos^2 + sin^2 = 1 for every frequency
    torch.testing.assert_close(f[..., :16] ** 2 + f[..., 16:] ** 2, torch.ones(5, 7, 16))


def test_fourier_frequencies_have_the_requested_bandwidth():
    ff = FourierFeatures(2, 20000, 10.0, _gen(0))
    assert abs(float(ff.B.std()) - 10.0) < 0.2
    assert abs(float(ff.B.mean())) < 0.2


def test_fourier_feature_is_the_sinusoid_of_its_frequency():
    ff = FourierFeatures(1, 3, 5.0, _gen(2))
    x = torch.linspace(0, 1, 11)[:, None]  # (11, 1)
    expected = torch.cos(2 * math.pi * x * ff.B[:, 0])  # (11, 3)
    torch.testing.assert_close(ff(x)[:, :3], expected)


def test_positional_encoding_keeps_coordinates_and_is_periodic():
    pe = PositionalEncoding(2, 4)
    v = torch.rand(9, 2, generator=_gen(3))
    out = pe(v)
    assert out.shape == (9, 2 * (1 + 2 * 4))
    torch.testing.assert_close(out[:, :2], v)
    # every frequency 2^k pi (k >= 0) has period 2 in p
    torch.testing.assert_close(pe(v + 2)[:, 2:], out[:, 2:], atol=1e-4, rtol=0)


def test_psnr_properties():
    x = torch.rand(4, 4, 3, generator=_gen(4)) * 0.8
    assert psnr(x, x) == math.inf
    assert psnr(x + 0.1, x) == pytest.approx(20.0)  # MSE 0.01
    assert psnr(x + 0.1, x) > psnr(x + 0.2, x)
    assert psnr(x + 0.1, x, peak=2.0) == pytest.approx(20.0 + 20 * math.log10(2))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(x, x[:2])


def test_coordinate_mlp_range_and_seeded_init():
    cfg = FieldConfig(encoding="fourier", sigma=4.0, n_features=8, width=16, depth=2)
    c = grid(6, 5)
    assert c.shape == (6, 5, 2)
    assert float(c.min()) > 0 and float(c.max()) < 1
    a, b = CoordinateMLP(cfg, _gen(0)), CoordinateMLP(cfg, _gen(0))
    ya = a(c)
    ya = ya.detach()
    assert ya.shape == (6, 5, 3) and float(ya.min()) >= 0 and float(ya.max()) <= 1
    assert torch.equal(ya, b(c))
    with pytest.raises(ValueError, match="encoding must be one of"):
        FieldConfig(encoding="fourrier")


def test_fourier_features_beat_raw_coordinates_on_a_high_frequency_signal():
    """Spectral bias: in the same steps, raw coordinates cannot fit 6 cycles; features can."""
    torch.manual_seed(0)
    x = (torch.arange(64)[:, None] + 0.5) / 64  # (64, 1)
    y = 0.5 + 0.4 * torch.sin(2 * math.pi * 6 * x)  # (64, 1)
    err = {}
    for enc in ("none", "fourier"):
        cfg = FieldConfig(encoding=enc, sigma=6.0, n_features=16, width=32, depth=2,
                          in_dim=1, out_dim=1)
        m = CoordinateMLP(cfg, _gen(0))
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        for _ in range(150):
            loss = ((m(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        err[enc] = psnr(m(x).detach(), y)
    assert err["fourier"] > err["none"] + 10


def test_image_and_pixel_split():
    img = load_image(16)
    assert img.shape == (16, 16, 3) and float(img.min()) >= 0 and float(img.max()) <= 1
    train, val, test = split_pixels(16)
    assert int(train.sum()) == 64 and int(val.sum()) == 64 and int(test.sum()) == 128
    assert not (train & val).any() and not (train & test).any() and not (val & test).any()
    assert bool(train[0, 0]) and bool(val[1, 1]) and bool(test[0, 1])
    with pytest.raises(ValueError, match="does not fit"):
        load_image(16, (400, 0, 128))


def test_fields_fitted_together_end_where_each_fit_alone_ends():
    """fields-fit trains every seed of the Fourier bandwidths at one rate as one ensemble;
    each member must follow the fit it replaced: the same frequencies and initial weights,
    its own loss, its own Adam update."""
    from types import SimpleNamespace

    from genai_report.artifacts.fields import Fields, _fit_group, encodings
    from genai_report.artifacts.scaling import _eval_steps
    from genai_report.training.loop import TrainConfig, train

    p = Fields(size=16, width=16, n_features=8, steps=25, sigmas=(1.0, 10.0), lrs=(1e-2,),
               seeds=2, evals=3)
    ctx = SimpleNamespace(seed=150, progress=None)
    img = load_image(p.size, p.crop)  # (S, S, 3)
    coords = grid(p.size, p.size)  # (S, S, 2)
    data = {k: (coords[m], img[m]) for k, m in zip(("train", "val", "test"),
                                                   split_pixels(p.size), strict=True)}
    fourier = [e for e in encodings(p) if e["encoding"] == "fourier"]
    fits, _ = _fit_group(ctx, p, fourier, 1e-2, data)
    assert sorted(fits) == ["fourier-1", "fourier-10"]
    for enc in fourier:
        for seed in range(p.seeds):
            cfg = FieldConfig(encoding="fourier", sigma=enc["sigma"], n_features=p.n_features,
                              n_freqs=p.n_freqs, width=p.width, depth=p.depth)
            alone = CoordinateMLP(cfg, _gen(ctx.seed * 1000 + seed))
            train(alone, lambda m, step: ((m(data["train"][0]) - data["train"][1]) ** 2).mean(),
                  TrainConfig(steps=p.steps, lr=1e-2, min_lr_ratio=0.1, grad_clip=0.0))
            curve = fits[enc["name"]]["curves"][seed]
            steps = [c["step"] for c in curve]  # the evaluations the loop reached, then the end
            assert steps == [*(s for s in _eval_steps(p.steps, p.evals) if s < p.steps), p.steps]
            with torch.no_grad():
                for split, (xs, ys) in data.items():
                    assert curve[-1][split] == pytest.approx(psnr(alone(xs), ys), abs=1e-3)
            if seed == 0:
                model = fits[enc["name"]]["model0"]
                for a, b in zip(model.state_dict().values(), alone.state_dict().values(),
                                strict=True):
                    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- ViT
def _unpatchify(p: torch.Tensor, size: int, ps: int) -> torch.Tensor:
    B, N, _ = p.shape
    g = size // ps
    x = p.reshape(B, g, g, 1, ps, ps).permute(0, 3, 1, 4, 2, 5)  # (B, 1, g, p, g, p)
    return x.reshape(B, 1, size, size)


def test_patchify_row_major_and_invertible():
    x = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8)
    p = patchify(x, 2)
    assert p.shape == (2, 16, 4)
    torch.testing.assert_close(p[:, 0], x[:, 0, :2, :2].reshape(2, 4))
    torch.testing.assert_close(p[:, 1], x[:, 0, :2, 2:4].reshape(2, 4))
    torch.testing.assert_close(_unpatchify(p, 8, 2), x)


def test_vit_shapes_attention_rows_and_fused_path():
    torch.manual_seed(0)
    model = ViT(ViTConfig(n_embd=16, n_head=2, n_layer=2)).eval()
    x = torch.randn(3, 1, 8, 8)
    logits, maps = model.attention_maps(x)
    assert logits.shape == (3, 10) and maps.shape == (2, 3, 2, 17, 17)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 3, 2, 17))
    torch.testing.assert_close(model(x), logits, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="must divide"):
        ViTConfig(patch_size=3)


def _randomised(config: ViTConfig, seed: int) -> ViT:
    """A ViT with O(1) random weights, so its output depends visibly on its input."""
    model = ViT(config).eval()
    g = _gen(seed)
    with torch.no_grad():
        for q in model.parameters():
            q.copy_(torch.randn(q.shape, generator=g) * 0.5)
    return model


def test_vit_without_positions_ignores_patch_order():
    x = torch.randn(2, 1, 8, 8, generator=_gen(7))
    perm = torch.randperm(16, generator=_gen(5))
    x_perm = _unpatchify(patchify(x, 2)[:, perm], 8, 2)
    blind = _randomised(ViTConfig(n_embd=16, n_head=2, position=False), 0)
    assert (blind(x) - blind(torch.randn(2, 1, 8, 8, generator=_gen(8)))).abs().max() > 0.1
    torch.testing.assert_close(blind(x_perm), blind(x), atol=1e-4, rtol=1e-4)
    seeing = _randomised(ViTConfig(n_embd=16, n_head=2), 0)
    assert (seeing(x_perm) - seeing(x)).abs().max() > 1e-2  # blind: < 1e-4


def test_attention_distance_extremes():
    T = 17
    self_only = torch.eye(T)[None]  # (1, T, T): each patch attends to itself
    assert float(attention_distance(self_only, 4, 2)) == pytest.approx(0.0)
    uniform = torch.full((1, T, T), 1 / T)
    d = float(attention_distance(uniform, 4, 2))
    ij = torch.cartesian_prod(torch.arange(4), torch.arange(4)).float()
    assert d == pytest.approx(float(torch.cdist(ij, ij).mean() * 2), rel=1e-5)


def test_shift_and_stratified_order():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    right = shift(x, 0, 1)
    torch.testing.assert_close(right[..., :, 1:], x[..., :, :3])
    assert bool((right[..., :, 0] == -1).all())
    up = shift(x, -1, 0)
    torch.testing.assert_close(up[..., :3, :], x[..., 1:, :])
    y = torch.arange(100) % 10
    order = stratified_order(y, _gen(0))
    assert sorted(order.tolist()) == list(range(100))
    assert torch.bincount(y[order[:20]], minlength=10).tolist() == [2] * 10


@pytest.mark.parametrize("name", ["cnn", "vit"])
def test_vit_study_models_trained_together_end_where_each_alone_ends(name):
    """vit-digits trains every size and seed of a model as one ensemble. Each member must
    end where _fit ends for its seed and set, a set smaller than the batch included (drawn
    at its own size, the padding masked out of its loss)."""
    from types import SimpleNamespace

    from genai_report.artifacts.vit import VitStudy, _fit, _fit_together

    p = VitStudy(n_embd=16, channels=8, features=16, steps=12, batch_size=24)
    ctx = SimpleNamespace(seed=155, progress=None)
    gen = _gen(5)
    x = torch.randn(60, 1, 8, 8, generator=gen)  # (N, 1, 8, 8)
    y = torch.randint(10, (60,), generator=gen)
    subsets = [(0, x[:60], y[:60]), (1, x[:16], y[:16]), (2, x[10:40], y[10:40])]
    together, _ = _fit_together(ctx, p, name, 3e-3, subsets)
    for (seed, xs, ys), model in zip(subsets, together, strict=True):
        alone, _ = _fit(ctx, p, name, 3e-3, seed, xs, ys)
        assert not model.training
        for a, b in zip(model.state_dict().values(), alone.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
