"""RealNVP: invertibility, log-determinant against autograd, likelihood training."""

import torch

from genai_report.models.flow import AffineCoupling, FlowConfig, RealNVP


def _randomised(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model


def test_inverse_of_forward_is_identity():
    torch.manual_seed(0)
    flow = _randomised(RealNVP(FlowConfig(dim=4, layers=4, hidden=16)))
    x = torch.randn(64, 4)
    z, _ = flow(x)
    assert torch.allclose(flow.inverse(z), x, atol=1e-5)


def test_coupling_logdet_matches_autograd_jacobian():
    torch.manual_seed(0)
    layer = _randomised(AffineCoupling(torch.tensor([1.0, 0.0, 1.0]), hidden=8)).double()
    flow = _randomised(RealNVP(FlowConfig(dim=2, layers=3, hidden=8))).double()
    for f, dim in ((layer, 3), (flow, 2)):
        for x in torch.randn(5, dim, dtype=torch.float64):
            jac = torch.autograd.functional.jacobian(lambda v, f=f: f(v[None])[0][0], x)
            _, logdet = f(x[None])
            assert torch.allclose(logdet[0], torch.linalg.slogdet(jac).logabsdet, atol=1e-8)


def test_density_integrates_to_one_and_loss_falls():
    torch.manual_seed(0)
    flow = RealNVP(FlowConfig(dim=2, layers=4, hidden=32))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 2, generator=g) * torch.tensor([0.3, 1.0]) + 0.5
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    first = flow.loss(x).item()
    for _ in range(100):
        loss = flow.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.2
    lin = torch.linspace(-6, 6, 241)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    with torch.no_grad():
        p = flow.log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)).exp()
    assert abs(float(p.sum()) * (12 / 240) ** 2 - 1) < 0.03
