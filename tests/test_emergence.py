"""The emergence control: addition examples of any width, and how a model is scored."""

import pytest
import torch

from genai_report.artifacts.emergence import (
    VOCAB,
    AdditionWidths,
    _rows,
    _score,
    encode,
    in_field,
)
from genai_report.data.tasks import addition_examples


def test_addition_examples_of_every_width_are_right_and_the_splits_never_meet():
    g = torch.Generator().manual_seed(0)
    for k in (1, 3, 6):
        train = addition_examples(k, 300, "train", g)
        held = addition_examples(k, 300, "held_out", g)
        assert not set(train) & set(held)
        for prompt, answer in train[:50]:
            a, b = (int(x) for x in prompt.rstrip("=").split("+"))
            assert len(prompt) == 2 * k + 2 and len(answer) == k + 1
            assert int(answer[::-1]) == a + b  # the sum, least significant digit first
    with pytest.raises(ValueError, match="split"):
        addition_examples(2, 1, "test", g)


def test_training_rows_put_each_example_where_the_evaluation_does_and_target_only_answers():
    p = AdditionWidths(32, max_digits=3, train_examples=30)
    x, y = _rows(p, 30, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (30, 3 * 3 + 4)
    assert (x[:, 0] == VOCAB.index("\n")).all()
    text = "".join(VOCAB[i] for i in x[0].tolist())
    assert text.index("=") == 2 * 3 + 2  # "\n" + a + "+" + b, operands in a 3-digit field
    targets = y[0][y[0] >= 0]
    assert len(targets) == 3 + 1  # exactly the answer's digits are targets
    assert targets.tolist() == x[0, 9:13].tolist()


def test_in_field_pads_the_operands_and_keeps_the_sum():
    assert in_field(("7+5=", "21"), 3) == ("007+005=", "2100")


def test_score_exact_match_is_the_product_of_digit_hits():
    tests = {1: [("3+4=", "70"), ("2+2=", "40")]}
    full = torch.stack([encode("\n" + q + a) for q, a in tests[1]])  # (2, 7)

    class Oracle(torch.nn.Module):
        """Knows every next character, but gets the second example's last digit wrong."""

        def forward(self, idx):
            nxt = full[:, 1: idx.shape[1] + 1].clone()  # (2, T)
            nxt[1, -1] = (nxt[1, -1] + 1) % 10
            return torch.nn.functional.one_hot(nxt, len(VOCAB)).float(), None

    out = _score(Oracle(), 5, tests, "cpu")["by_k"]["1"]
    assert out["exact"] == 0.5 and out["p"] == 0.75 and out["p_position"] == [1.0, 0.5]


def test_a_size_outside_the_profile_and_bad_settings():
    with pytest.raises(ValueError, match="max_digits"):
        AdditionWidths(32, max_digits=10)
    assert encode("12+3=").tolist() == [1, 2, 10, 3, 11]
