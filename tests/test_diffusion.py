"""Diffusion: closed-form forward process, samplers, guidance, and a falling loss."""

import torch

from genai_report.models.diffusion import Diffusion, DiffusionConfig, NoiseSchedule


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
