"""GANs, PixelCNN and the EBM: shapes, masks, and that training moves the losses."""

import pytest
import torch

from genai_report.models.ebm import EBMConfig, EnergyModel, ReplayBuffer, train_step
from genai_report.models.gan import GAN, GANConfig, GANTrainConfig, train_gan
from genai_report.models.pixelcnn import PixelCNN, PixelCNNConfig


def test_dcgan_shapes_and_discriminator_loss_falls():
    torch.manual_seed(0)
    gan = GAN(GANConfig(kind="dcgan", latent_dim=8, width=8))
    g = torch.Generator().manual_seed(0)
    real = torch.tanh(torch.randn(256, 1, 8, 8, generator=g) + 1)

    def data(n, gen):
        return real[torch.randint(0, len(real), (n,), generator=gen)]

    hist = train_gan(gan, data, GANTrainConfig(steps=40, batch=32, lr_d=1e-3), g)
    assert gan.sample(4, g).shape == (4, 1, 8, 8)
    assert sum(hist["d_loss"][-5:]) < sum(hist["d_loss"][:5])


def test_mlp_gan_with_minibatch_std_and_hinge_runs():
    gan = GAN(GANConfig(kind="mlp", latent_dim=4, width=16, loss="hinge", minibatch_std=True))
    g = torch.Generator().manual_seed(0)
    hist = train_gan(gan, lambda n, gen: torch.randn(n, 2, generator=gen),
                     GANTrainConfig(steps=5, batch=16, eval_every=5), g,
                     eval_fn=lambda m: {"ok": 1})
    assert hist["evals"][0][0] == 5 and gan.sample(3, g).shape == (3, 2)


def test_conditional_dcgan_learns_the_label_and_needs_it():
    """A projection-discriminator GAN on two classes (dark vs bright images) learns to draw
    the class it is asked for; asking without labels is an error, not a silent default."""
    torch.manual_seed(0)
    gan = GAN(GANConfig(kind="dcgan", latent_dim=8, width=8, n_classes=2, loss="hinge"))
    g = torch.Generator().manual_seed(0)
    y_all = torch.arange(512) % 2
    real = (y_all.float() * 2 - 1)[:, None, None, None] * 0.8 + 0.05 * torch.randn(
        512, 1, 8, 8, generator=g)

    def data(n, gen):
        idx = torch.randint(0, len(real), (n,), generator=gen)
        return real[idx], y_all[idx]

    train_gan(gan, data, GANTrainConfig(steps=150, batch=32, lr_g=2e-3, lr_d=2e-3), g)
    y = torch.arange(128) % 2  # a mixed batch, as in training (batch-statistics norm)
    x = gan.sample(128, g, y)
    assert x[y == 1].mean() > x[y == 0].mean() + 0.5
    with pytest.raises(ValueError, match="class-conditional"):
        gan.sample(4, g)
    with pytest.raises(ValueError, match="labels"):
        train_gan(gan, lambda n, gen: real[:n], GANTrainConfig(steps=1, batch=4), g)


def test_ema_generator_is_what_evaluations_see_and_what_training_returns():
    gan = GAN(GANConfig(kind="mlp", latent_dim=4, width=16))
    g = torch.Generator().manual_seed(0)
    seen = []

    def eval_fn(m):
        seen.append({k: v.clone() for k, v in m.generator.state_dict().items()})
        return {}

    train_gan(gan, lambda n, gen: torch.randn(n, 2, generator=gen) + 3,
              GANTrainConfig(steps=20, batch=16, lr_g=1e-2, eval_every=10, ema=0.9), g,
              eval_fn=eval_fn)
    final = gan.generator.state_dict()
    # the last evaluation saw the averaged weights, and those are what training returns
    assert all(torch.equal(seen[-1][k], final[k]) for k in final)
    # evaluations restore the raw weights: the first evaluation's average is not the last
    assert not all(torch.equal(seen[0][k], final[k]) for k in final)
    with pytest.raises(ValueError, match="ema"):
        GANTrainConfig(steps=1, ema=1.0)


def test_pixelcnn_is_causal_and_loss_falls():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(channels=16, layers=2))
    x = torch.zeros(1, 1, 8, 8, requires_grad=True)
    model(x)[0, :, 3, 4].sum().backward()
    grad = x.grad[0, 0].abs() > 0
    order = torch.arange(64).reshape(8, 8)
    assert not grad[order >= 3 * 8 + 4].any()  # no dependence on the pixel itself or later ones
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(128, 1, 8, 8, generator=g) > 0.5).float() * 2 - 1
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.loss(data).item()
    for _ in range(40):
        loss = model.loss(data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
    assert model.sample(2, g).shape == (2, 1, 8, 8)


def test_ebm_learns_lower_energy_on_data():
    torch.manual_seed(0)
    model = EnergyModel(EBMConfig(hidden=32, langevin_steps=10, step_size=0.1))
    g = torch.Generator().manual_seed(0)
    data = torch.randn(512, 2, generator=g) * 0.2 + 1.0
    buffer = ReplayBuffer(model, 512, g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.0, 0.999))
    gaps = []
    for _ in range(80):
        terms = train_step(model, buffer, data[torch.randint(0, 512, (64,), generator=g)], g)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        gaps.append(float(terms["gap"]))
    with torch.no_grad():
        assert model(data).mean() < model(model.noise(512, g)).mean()
