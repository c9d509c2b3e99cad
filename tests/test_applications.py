"""Application helpers: inpainting keeps the known pixels, code tasks, TSTR, anomaly, design."""

import torch

from genai_report.applications import code
from genai_report.applications.anomaly import CORRUPTIONS, corrupt
from genai_report.applications.design import ink, property_guided_sample
from genai_report.applications.inpainting import center_mask, half_mask, inpaint
from genai_report.applications.synthetic import accuracy, train_classifier
from genai_report.metrics.text import is_valid_python
from genai_report.models.diffusion import Diffusion, DiffusionConfig

SRC = '''import os

def add(a, b):
    """Add."""
    total = a + b
    return total

class K:
    def method(self, x) -> int:
        if x:
            return 1
        return 2
'''


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


def test_code_tasks_find_functions_lines_and_bodies():
    spans = code.function_spans(SRC)
    assert [SRC[a:b].split("(")[0].strip() for a, b, _ in spans] == ["def add", "def method"]
    lines = [t.line.strip() for t in code.line_tasks(SRC, 0)]
    assert lines == ["total = a + b", "return total", "if x:", "return 1", "return 2"]
    for t in code.body_tasks(SRC, 0):
        assert is_valid_python(code.function_source(t.header, t.body))
    assert [code.first_word(x) for x in ("    return x", "x.y = 1", "  ", "(a)")] == [
        "return", "x", "", "("]
    # a completion runs past the function and is cut mid-line: both are trimmed
    cut = code.cut_body("    return 1\n\nx = 2\n", 0)
    assert cut == "    return 1\n"
    assert code.cut_body("    y = 1\n    return (y", 0) == "    y = 1\n"


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
