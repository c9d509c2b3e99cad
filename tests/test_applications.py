"""Application helpers: inpainting keeps the known pixels, code tasks, TSTR, anomaly, design."""

import torch

from genai_report.applications.anomaly import CORRUPTIONS, corrupt
from genai_report.applications.design import ink, property_guided_sample
from genai_report.applications.inpainting import (
    band_mask,
    center_mask,
    chimera,
    half_mask,
    inpaint,
    nearest_fill,
    shift_right,
)
from genai_report.applications.synthetic import accuracy, train_classifier
from genai_report.models.diffusion import Diffusion, DiffusionConfig


def _digit_model(n_classes=0):
    torch.manual_seed(0)
    return Diffusion(DiffusionConfig(data_shape=(1, 8, 8), timesteps=20, hidden=32, depth=1,
                                     n_classes=n_classes, clip=1.0)).eval()


def test_inpainting_keeps_known_pixels_exact():
    model = _digit_model()
    g = torch.Generator().manual_seed(0)
    x = torch.rand((5, 1, 8, 8), generator=g) * 2 - 1
    for known in (center_mask(), half_mask()):
        out = inpaint(model, x, known, generator=torch.Generator().manual_seed(1), steps=7,
                      resample=2)
        assert out.shape == x.shape
        assert torch.equal(out[known.expand_as(x)], x[known.expand_as(x)])
        assert not torch.equal(out[~known.expand_as(x)], x[~known.expand_as(x)])
    assert int((~center_mask()).sum()) == 16 and int(half_mask().sum()) == 32


def test_inpainting_tests_where_copying_cannot_win():
    g = torch.Generator().manual_seed(0)
    x = torch.rand((6, 1, 8, 8), generator=g) * 2 - 1
    s = shift_right(x)
    assert torch.equal(s[..., 1:], x[..., :-1]) and (s[..., 0] == -1).all()
    c = chimera(x, torch.Generator().manual_seed(1))
    assert torch.equal(c[..., :4, :], x[..., :4, :])
    bottoms = {tuple(r.flatten().tolist()) for r in x[..., 4:, :]}
    assert all(tuple(r.flatten().tolist()) in bottoms for r in c[..., 4:, :])
    m = band_mask((3, 4))
    assert int((~m).sum()) == 16 and not m[0, 3].any() and m[0, 2].all()


def test_nearest_fill_copies_the_closest_training_images_into_the_hole():
    train = torch.stack([torch.full((1, 8, 8), v) for v in (-1.0, 0.0, 0.5, 1.0)])
    x = torch.full((1, 1, 8, 8), 0.45)
    known = center_mask()
    fill = nearest_fill(x, known, train, k=2)  # (1, 2, 1, 8, 8)
    assert fill.shape == (1, 2, 1, 8, 8)
    assert (fill[0, 0][~known] == 0.5).all() and (fill[0, 1][~known] == 0.0).all()
    assert (fill[0, :, known] == 0.45).all()  # the known pixels are the input's


def test_tstr_classifier_learns_separable_data():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 10
    x = -torch.ones(200, 1, 8, 8) + 0.1 * torch.rand((200, 1, 8, 8), generator=g)
    x.view(200, -1)[torch.arange(200), y * 6] = 1.0  # one bright pixel per class
    model = train_classifier(x, y)
    assert accuracy(model, x, y) == 1.0
    assert accuracy(model, x, (y + 1) % 10) == 0.0


def test_corruptions_change_images_and_stay_in_range():
    g = torch.Generator().manual_seed(0)
    x = torch.rand((4, 1, 8, 8), generator=g) * 2 - 1
    for kind in CORRUPTIONS:
        z = corrupt(x, kind, g)
        assert z.shape == x.shape and z.min() >= -1 and z.max() <= 1
        assert not torch.equal(z, x)


def test_property_guidance_lowers_ink():
    model = _digit_model(n_classes=10)
    y = torch.arange(10)
    plain = property_guided_sample(model, y, ink, 0.0, generator=torch.Generator().manual_seed(0),
                                   steps=10)
    pushed = property_guided_sample(model, y, ink, 50.0,
                                    generator=torch.Generator().manual_seed(0), steps=10)
    assert float(ink(pushed).mean()) < float(ink(plain).mean())
