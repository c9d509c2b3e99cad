"""VAE: analytic KL against Monte Carlo, shapes, and a falling ELBO loss."""

import torch

from genai_report.data import digits
from genai_report.models.vae import VAE, VAEConfig, gaussian_kl


def test_analytic_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 0.2]])
    logvar = torch.tensor([[-0.5, 0.3, -1.2]])
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(200000, 3, generator=g)
    log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    mc = (log_q - log_p).mean()
    assert abs(float(mc) - float(gaussian_kl(mu, logvar)[0])) < 0.02


def test_levels_round_trip():
    levels = torch.arange(17)
    assert torch.equal(digits.to_levels(digits.from_levels(levels)), levels)


def test_loss_falls_and_shapes():
    torch.manual_seed(0)
    d = digits.load()
    x = d.x_train[:256]
    vae = VAE(VAEConfig(latent_dim=4, hidden=64))
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    first = vae.loss(x, g).item()
    for _ in range(60):
        loss = vae.loss(x, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first
    assert vae.sample(5, g).shape == (5, 1, 8, 8)
    assert vae.reconstruct(x[:3]).shape == (3, 1, 8, 8)
    assert 0 < vae.nelbo_bits_per_dim(x, g) < 5
    again = VAE.load(vae.checkpoint())
    assert torch.equal(again.decode(torch.zeros(1, 4)), vae.decode(torch.zeros(1, 4)))
