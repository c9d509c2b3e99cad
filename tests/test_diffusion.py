"""Diffusion: closed-form forward process, samplers, guidance, and a falling loss."""

import pytest
import torch

from genai_report.models.diffusion import EMA, Diffusion, DiffusionConfig, NoiseSchedule


def test_closed_form_matches_iterative_forward_process():
    sched = NoiseSchedule(100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([1.5, -0.5]).repeat(20000, 1)  # (N, 2)
    t = 60
    x = x0.clone()
    for s in range(t + 1):
        x = sched.step(x, s, torch.randn(x.shape, generator=g))
    closed = sched.add_noise(x0, torch.randn(x0.shape, generator=g), torch.full((len(x0),), t))
    # both are N(sqrt(ab) x0, (1 - ab) I): compare moments
    ab = float(sched.alpha_bar[t])
    for sample in (x, closed):
        assert torch.allclose(sample.mean(0), ab**0.5 * x0[0], atol=0.03)
        assert torch.allclose(sample.var(0), torch.full((2,), 1 - ab), atol=0.03)
    assert torch.allclose(x.mean(0), closed.mean(0), atol=0.04)


def test_schedule_tables_are_float32_buffers_that_move():
    sched = NoiseSchedule(50, "cosine")
    assert sched.alpha_bar.dtype == torch.float32
    assert 0 < float(sched.alpha_bar[-1]) < 0.01 and float(sched.alpha_bar[0]) > 0.99
    assert "alpha_bar" in dict(sched.named_buffers())


def _toy_model(n_classes=0):
    return Diffusion(DiffusionConfig(data_shape=(2,), timesteps=20, hidden=32, depth=1,
                                     n_classes=n_classes))


def test_loss_falls_on_a_smoke_run():
    torch.manual_seed(0)
    model = _toy_model(n_classes=2)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 2, generator=g) * 0.3 + 1.0
    y = (x[:, 0] > 1).long()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = model.loss(x, y, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:20]) / 20


def test_samplers_are_seeded_and_shaped():
    torch.manual_seed(0)
    model = _toy_model(n_classes=3).eval()
    y = torch.tensor([0, 1, 2, 0])
    kw = dict(y=y, guidance_scale=2.0)
    a = model.sample(4, generator=torch.Generator().manual_seed(5), method="ddim", steps=5, **kw)
    b = model.sample(4, generator=torch.Generator().manual_seed(5), method="ddim", steps=5, **kw)
    assert a.shape == (4, 2) and torch.equal(a, b)
    out, traj = model.sample(3, generator=torch.Generator().manual_seed(0), trajectory_every=5)
    assert out.shape == (3, 2) and traj[0][0] == 20 and traj[-1][0] == 0


def test_checkpoint_round_trip():
    model = _toy_model(n_classes=2)
    again = Diffusion.load(model.checkpoint())
    x, t = torch.randn(3, 2), torch.tensor([0, 5, 19])
    y = torch.tensor([0, 1, 2])
    assert torch.equal(model.denoiser(x, t, y), again.denoiser(x, t, y))


# --------------------------------------------------------------------------- U-Net denoiser
def _image_model(channels=(8, 16), n_classes=10, attention=True):
    return Diffusion(DiffusionConfig(data_shape=(1, 8, 8), timesteps=20, denoiser="unet",
                                     channels=channels, attention=attention,
                                     n_classes=n_classes))


@pytest.mark.parametrize("channels", [(8,), (8, 16), (12, 6, 10)])
@pytest.mark.parametrize("attention", [True, False])
def test_unet_keeps_the_image_shape_for_any_level_count(channels, attention):
    model = _image_model(channels, attention=attention)
    x = torch.randn(5, 1, 8, 8)
    out = model.denoiser(x, torch.tensor([0, 3, 7, 11, 19]), torch.tensor([0, 1, 2, 9, 10]))
    assert out.shape == x.shape
    # the zero-initialised output layer makes a fresh network predict no noise at all
    assert torch.equal(out, torch.zeros_like(out))


def test_unet_depends_on_time_label_and_neighbouring_pixels():
    torch.manual_seed(0)
    model = _image_model()
    for p in model.parameters():  # move every weight away from its identity initialisation
        p.data.add_(0.1 * torch.randn_like(p))
    x = torch.randn(1, 1, 8, 8, requires_grad=True)
    t, y = torch.tensor([5]), torch.tensor([3])
    out = model.denoiser(x, t, y)
    assert not torch.allclose(out, model.denoiser(x, torch.tensor([15]), y))
    assert not torch.allclose(out, model.denoiser(x, t, torch.tensor([7])))
    assert not torch.allclose(out, model.denoiser(x, t, torch.tensor([10])))  # the null label
    # the prediction at one pixel sees the whole image (through the downsampled path)
    out[0, 0, 0, 0].backward()
    assert x.grad[0, 0, 7, 7] != 0


def test_unet_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="images"):
        DiffusionConfig(data_shape=(2,), denoiser="unet")
    with pytest.raises(ValueError, match="not divisible by 16"):
        DiffusionConfig(data_shape=(1, 8, 8), denoiser="unet", channels=(4, 4, 4, 4, 4))
    with pytest.raises(ValueError, match="'mlp' or 'unet'"):
        DiffusionConfig(denoiser="cnn")
    with pytest.raises(ValueError, match="channels"):
        DiffusionConfig(data_shape=(1, 8, 8), denoiser="unet", channels=())


def test_unet_loss_falls_and_checkpoint_round_trips():
    torch.manual_seed(0)
    model = _image_model()
    g = torch.Generator().manual_seed(1)
    # two "classes" of 8x8 images: a bright left half or a bright right half, plus noise
    y = torch.randint(0, 2, (256,), generator=g)
    x = -torch.ones(256, 1, 8, 8)
    x[y == 0, :, :, :4] = 1.0
    x[y == 1, :, :, 4:] = 1.0
    x = x + 0.05 * torch.randn(x.shape, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = model.loss(x, y, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    again = Diffusion.load(model.checkpoint())
    assert again.config.channels == (8, 16) and again.config.denoiser == "unet"
    xt, t = torch.randn(3, 1, 8, 8), torch.tensor([0, 5, 19])
    yy = torch.tensor([0, 1, 10])
    assert torch.equal(model.denoiser(xt, t, yy), again.denoiser(xt, t, yy))
    samples = again.sample(4, generator=torch.Generator().manual_seed(0), y=torch.arange(4),
                           guidance_scale=2.0, method="ddim", steps=5)
    assert samples.shape == (4, 1, 8, 8) and torch.isfinite(samples).all()


def test_mlp_checkpoints_saved_before_the_denoiser_field_still_load():
    model = _toy_model(n_classes=2)
    blob = model.checkpoint()
    for key in ("denoiser", "channels", "attention"):
        del blob["config"][key]
    assert Diffusion.load(blob).config.denoiser == "mlp"


def test_timestep_embedding_has_the_requested_width():
    from genai_report.models.denoisers import timestep_embedding

    for dim in (1, 2, 7, 16):
        assert timestep_embedding(torch.tensor([0, 4, 9]), dim).shape == (3, dim)


def test_the_ema_is_one_fused_update_with_the_values_of_a_lerp_per_tensor():
    """The average moves every weight as ``lerp_`` would, bit for bit, with the warm-up
    decay; and it is one operator (a few kernels on a GPU), not one per weight tensor."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    model = Diffusion(DiffusionConfig(data_shape=(1, 8, 8), timesteps=20, denoiser="unet",
                                      channels=(8, 16), n_classes=10))
    ema = EMA(model, 0.99)
    reference = [p.detach().clone() for p in model.parameters()]
    for n in range(15):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p), alpha=0.01)
            for r, p in zip(reference, model.parameters(), strict=True):
                r.lerp_(p, 1 - min(0.99, (1 + n) / (10 + n)))
        with Ops() as ops:
            ema.update(model)
        assert ops.names == ["aten._foreach_lerp_.Scalar"]
    assert all(torch.equal(r, s) for r, s in zip(reference, ema.shadow.parameters(), strict=True))
    with pytest.raises(ValueError, match="its EMA was made for a model with"):
        ema.update(torch.nn.Linear(2, 2))
