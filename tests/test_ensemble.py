"""An ensemble trains its members as if each trained alone, in one batched step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genai_report.models.denoisers import MLPDenoiser
from genai_report.training.ensemble import Ensemble, train_ensemble
from genai_report.training.loop import TrainConfig, train

K, B, DIM = 3, 16, 6


def _members(k: int = K, hidden: int = 24) -> list[MLPDenoiser]:
    members = []
    for s in range(k):
        torch.manual_seed(s)
        m = MLPDenoiser(DIM, hidden=hidden, depth=2, n_classes=4)
        nn.init.normal_(m.out[-1].weight, std=0.2)  # zero-initialised: make outputs differ
        members.append(m)
    return members


def _batches(seed: int, k: int = K):
    """Each member's own data stream: (x, t, y, target) per step, from its own generator."""
    gens = [torch.Generator().manual_seed(seed + i) for i in range(k)]

    def draw():
        x = torch.stack([torch.randn(B, DIM, generator=g) for g in gens])  # (K, B, DIM)
        t = torch.stack([torch.randint(0, 50, (B,), generator=g) for g in gens])  # (K, B)
        y = torch.stack([torch.randint(0, 5, (B,), generator=g) for g in gens])  # (K, B)
        return x, t, y, x.flip(-1) * 3.0
    return draw


def test_calling_an_ensemble_is_calling_each_member():
    members = _members()
    ens = Ensemble(members)
    x, t, y, _ = _batches(0)()
    out = ens(x, t, y)  # (K, B, DIM)
    expected = torch.stack([m(x[i], t[i], y[i]) for i, m in enumerate(members)])
    assert out.shape == (K, B, DIM)
    torch.testing.assert_close(out, expected)
    # another method than forward, with an argument that is not a tensor: every member
    # gets it as it is
    class Scaled(nn.Linear):
        def scaled(self, x, factor):
            return self(x) * factor

    lin = [Scaled(DIM, 2) for _ in range(K)]
    got = Ensemble(lin).call("scaled", x, 2.5)
    torch.testing.assert_close(got, torch.stack([m(x[i]) * 2.5 for i, m in enumerate(lin)]))


@pytest.mark.parametrize(("clip", "decay"), [(0.0, 0.0), (0.05, 0.0), (0.0, 0.5), (0.05, 0.5)])
def test_training_an_ensemble_matches_training_each_member_alone(clip, decay):
    """Same init, same data, same steps: the members end where separate runs end. With a
    clip that binds (0.05, far below the gradient norms), a global clip over all members
    would couple them and fail this; with weight decay, so would decaying the stacked
    biases (rank 2 stacked, rank 1 in a member)."""
    steps = 12
    config = TrainConfig(steps=steps, lr=3e-3, warmup_steps=2, grad_clip=clip,
                         weight_decay=decay)
    alone = _members()
    draw = _batches(7)
    data = [draw() for _ in range(steps)]
    histories = []
    for i, m in enumerate(alone):
        def loss_one(model, step, i=i):
            x, t, y, target = data[step]
            return (model(x[i], t[i], y[i]) - target[i]).square().mean()
        histories.append(train(m, loss_one, config, record_every=5))

    together = _members()
    ens = Ensemble(together)

    def loss_all(e, step):
        x, t, y, target = data[step]
        return (e(x, t, y) - target).square().mean(dim=(1, 2))  # (K,)

    hist = train_ensemble(ens, loss_all, config, record_every=5)
    assert hist.steps == [0, 5, 10, 11] == histories[0].steps
    # each member's recorded losses are its own run's; the history's losses their sum
    expected = [[h.train_loss[r] for h in histories] for r in range(len(hist.steps))]
    torch.testing.assert_close(torch.tensor(hist.member_loss), torch.tensor(expected),
                               atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(torch.tensor(hist.train_loss), torch.tensor(expected).sum(1),
                               atol=5e-5, rtol=1e-4)
    assert hist.first_loss() == hist.member_loss[0]
    torch.testing.assert_close(torch.tensor(hist.last_loss(2)),
                               torch.tensor(hist.member_loss[-2:]).mean(0))
    ens.unstack_into(together)
    for a, b in zip(alone, together, strict=True):
        for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(pb, pa, atol=2e-5, rtol=1e-4, msg=name)
    moved = [(m.inp.weight - f.inp.weight).abs().max() for m, f in zip(together, _members(),
                                                                        strict=True)]
    assert min(moved) > 1e-3  # they trained


def test_clipping_is_per_member():
    ens = Ensemble([nn.Linear(4, 2) for _ in range(2)])
    for p in ens.stacked:
        p.grad = torch.ones_like(p)
        p.grad[1] *= 1e-3  # member 1's gradient is tiny, member 0's is not
    norms = ens.clip_grad_norm_(1.0)
    assert norms[0] == pytest.approx(10**0.5) and norms[1] == pytest.approx(1e-3 * 10**0.5)
    after = torch.cat([p.grad.reshape(2, -1) for p in ens.stacked], 1).norm(dim=1)
    assert after[0] == pytest.approx(1.0, rel=1e-5)  # clipped to the limit
    assert after[1] == pytest.approx(1e-3 * 10**0.5, rel=1e-5)  # untouched


def test_unstack_round_trip_and_member_state():
    members = [nn.Linear(3, 2) for _ in range(K)]
    ens = Ensemble(members)
    assert ens.size == K and len(list(ens.parameters())) == 2  # stacked, template hidden
    with torch.no_grad():
        for p in ens.stacked:
            p.add_(1.0)
    fresh = [nn.Linear(3, 2) for _ in range(K)]
    ens.unstack_into(fresh)
    for m, f in zip(members, fresh, strict=True):
        torch.testing.assert_close(f.weight, m.weight + 1.0)
    with pytest.raises(IndexError):
        ens.member_state(K)
    with pytest.raises(ValueError, match="2 module"):
        ens.unstack_into(fresh[:2])


def test_bad_ensembles_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(ValueError, match=r"member\(s\) \[1\] differ"):
        Ensemble([nn.Linear(3, 2), nn.Linear(3, 4)])


def test_a_loss_that_leaves_a_parameter_without_gradient_is_named():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 1), nn.Linear(3, 1)

        def forward(self, x):
            return self.a(x)  # b never gets a gradient

    ens = Ensemble([TwoHeads() for _ in range(2)])
    for steps in (1, 3):  # found after the last step too
        with pytest.raises(ValueError, match=r"no gradient to b\.weight, b\.bias"):
            train_ensemble(ens, lambda e, s: e(torch.ones(2, 4, 3)).sum(dim=(1, 2)),
                           TrainConfig(steps=steps))
    with pytest.raises(ValueError, match=r"one loss per member, shape \(2,\); got \(\)"):
        train_ensemble(ens, lambda e, s: e(torch.ones(2, 4, 3)).sum(), TrainConfig(steps=3))


@pytest.mark.parametrize("labels", [False, True])
def test_a_diffusion_ensemble_loss_is_each_models_own_loss(labels):
    """Each member draws its timesteps, noise and label dropout from its own generator in
    Diffusion.loss's order, so the batched loss is each model's loss alone."""
    from genai_report.models.diffusion import Diffusion, DiffusionConfig, ensemble_loss

    n_classes = 10 if labels else 0
    models = []
    for s in range(K):
        torch.manual_seed(s)
        m = Diffusion(DiffusionConfig(data_shape=(1, 4, 4), timesteps=30, hidden=16, depth=1,
                                      n_classes=n_classes))
        nn.init.normal_(m.denoiser.out[-1].weight, std=0.3)
        models.append(m)
    x0 = torch.randn(K, B, 1, 4, 4)
    y = torch.randint(0, 10, (K, B)) if labels else None
    ens = Ensemble([m.denoiser for m in models])
    got = ensemble_loss(ens, models[0], x0, [torch.Generator().manual_seed(i) for i in range(K)],
                        y, p_uncond=0.5)
    alone = torch.stack([
        m.loss(x0[i], None if y is None else y[i], generator=torch.Generator().manual_seed(i),
               p_uncond=0.5) for i, m in enumerate(models)])
    assert got.shape == (K,)
    torch.testing.assert_close(got, alone)
    with pytest.raises(ValueError, match="2 generator"):
        ensemble_loss(ens, models[0], x0, [torch.Generator()] * 2, y)


# On a CPU, torch has no vmap batching rule for its flash attention kernel and loops over
# the members instead (and says so); the result is the same.
@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
def test_tied_weights_stay_tied_in_the_ensemble_and_in_its_members():
    """A GPT's output layer is its token embedding: stacked once, used twice, written back
    into both names."""
    from genai_report.models.gpt import GPT, GPTConfig

    config = GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_embd=16)
    members = []
    for s in range(2):
        torch.manual_seed(s)
        members.append(GPT(config))
    ens = Ensemble(members)
    assert ens.aliases == {"lm_head.weight": "wte.weight"}
    x, y = torch.randint(0, 12, (2, 3, 8)), torch.randint(0, 12, (2, 3, 8))
    logits, loss = ens(x, y)  # (K, B, T, V), (K,)
    for i, m in enumerate(members):
        ref_logits, ref_loss = m(x[i], y[i])
        torch.testing.assert_close(logits[i], ref_logits)
        torch.testing.assert_close(loss[i], ref_loss)
    with torch.no_grad():
        ens.stacked[ens.names.index("wte.weight")].add_(1.0)
    fresh = [GPT(config) for _ in range(2)]
    ens.unstack_into(fresh)
    for m, f in zip(members, fresh, strict=True):
        assert f.lm_head.weight is f.wte.weight
        torch.testing.assert_close(f.wte.weight, m.wte.weight + 1.0)


def test_dropout_draws_each_members_own_masks_when_asked_and_is_refused_otherwise():
    """A member with dropout draws noise inside the ensemble's vmap: refused by default
    (noise is drawn outside), and with randomness="different" each member gets its own
    masks, while evaluation (no dropout) is each member's own forward."""
    torch.manual_seed(0)
    member = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5), nn.Linear(64, 1))
    x = torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(1))  # (K, B, 4)
    with pytest.raises(RuntimeError, match="randomness"):
        Ensemble([member, member])(x)
    ens = Ensemble([member, member], randomness="different")
    a, b = ens(x[:1].expand(2, 8, 4))  # the same input to both members
    assert not torch.equal(a, b)  # their own masks
    ens.eval()
    a, b = ens(x[:1].expand(2, 8, 4))
    member.eval()
    torch.testing.assert_close(a, member(x[0]))
    torch.testing.assert_close(b, a)
    with pytest.raises(ValueError, match="randomness must be one of"):
        Ensemble([member], randomness="same")
