"""The emergence control: addition examples of any width, and how a model is scored."""

import pytest
import torch

from genai_report.artifacts.emergence import (
    VOCAB,
    AdditionWidths,
    _rows,
    _score,
    encode_rows,
    in_field,
)
from genai_report.data.tasks import addition_examples


def encode(text: str) -> torch.Tensor:
    """One row's ids, character by character: the reference encode_rows must match."""
    return torch.tensor([VOCAB.index(c) for c in text], dtype=torch.long)


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


def test_training_rows_are_the_rows_built_one_by_one():
    """_rows encodes every row in one pass; the rows are those the row-by-row loop built."""
    p = AdditionWidths(32, max_digits=4, train_examples=200)
    x, y = _rows(p, 200, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)  # the reference: the same draws, row by row
    per_width = -(-200 // p.max_digits)
    examples = [in_field(ex, p.max_digits) for k in range(1, p.max_digits + 1)
                for ex in addition_examples(k, per_width, "train", gen)]
    order = torch.randperm(len(examples), generator=gen)[:200].tolist()
    for row, i in enumerate(order):
        prompt, answer = examples[i]
        ids = encode("\n" + prompt + answer)
        assert x[row].tolist() == ids.tolist()
        a0 = 1 + len(prompt)
        expected = torch.full_like(ids, -1)
        expected[a0 - 1: a0 - 1 + len(answer)] = ids[a0: a0 + len(answer)]
        assert y[row].tolist() == expected.tolist()


def test_encode_rows_is_encode_of_each_row_and_refuses_what_it_cannot_encode():
    rows = ["\n12+34=64", "\n99+01=00"]
    assert encode_rows(rows).tolist() == [encode(r).tolist() for r in rows]
    with pytest.raises(ValueError, match="one length"):
        encode_rows(["12+3=", "1+3="])
    with pytest.raises(ValueError, match=r"\['x'\] are not in the vocabulary"):
        encode_rows(["12+3=", "1x+3="])


def test_in_field_pads_the_operands_and_keeps_the_sum():
    assert in_field(("7+5=", "21"), 3) == ("007+005=", "2100")


def test_score_exact_match_is_the_product_of_digit_hits():
    full = encode_rows(["\n3+4=70", "\n2+2=40"])  # (2, 7)
    tests = {1: (full, len("3+4="))}

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
    assert encode_rows(["12+3="]).tolist() == [[1, 2, 10, 3, 11]]


class _Ctx:
    """The few parts of a node's context that training the seeds uses."""

    seed = 60
    device = torch.device("cpu")

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 7919 + offset)

    @staticmethod
    def progress(steps, total=None, desc=""):
        return steps


def _alone(ctx, p: AdditionWidths, seed: int) -> dict:
    """One seed trained on its own with the plain loop, as the node did before it trained
    its seeds together: the reference the ensemble must reproduce."""
    from genai_report.artifacts.emergence import _score
    from genai_report.artifacts.scaling import _eval_steps
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.loop import TrainConfig, train

    gen = ctx.generator(1000 * seed)
    torch.manual_seed(ctx.seed + 1000 * seed)
    model = GPT(GPTConfig(vocab_size=len(VOCAB), block_size=3 * p.max_digits + 4,
                          n_layer=p.n_layer, n_head=p.n_head, n_embd=p.n_embd))
    x_all, y_all = _rows(p, p.train_examples, gen)
    tests = {}
    for k in range(1, p.max_digits + 1):
        examples = [in_field(ex, p.max_digits) for ex in
                    addition_examples(k, p.n_eval, "held_out", ctx.generator(7 + k))]
        tests[k] = (torch.stack([encode("\n" + q + a) for q, a in examples]),
                    len(examples[0][0]))
    checkpoints, curve = set(_eval_steps(p.steps, p.evals)), []

    def loss_fn(m, step):
        if step in checkpoints:
            curve.append(_score(m, step, tests, "cpu"))
            m.train()
        idx = torch.randint(len(x_all), (p.batch,), generator=gen)
        return m(x_all[idx], y_all[idx])[1]

    hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, weight_decay=0.1,
                                             warmup_steps=int(p.warmup * p.steps)),
                 record_every=10)
    curve.append(_score(model, p.steps, tests, "cpu"))
    return {"curve": curve, "last_loss": sum(hist.train_loss[-10:]) / len(hist.train_loss[-10:])}


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
def test_the_seeds_trained_together_are_the_seeds_trained_alone():
    """Each seed keeps its own initialisation, rows and batches in the ensemble: its loss and
    every checkpoint's scores are those of the same seed trained on its own."""
    from genai_report.artifacts.emergence import _train_seeds

    p = AdditionWidths(32, n_head=1, seeds=2, max_digits=2, steps=30, batch=16,
                       train_examples=400, evals=3, n_eval=20)
    together = _train_seeds(_Ctx(), p)
    assert [r["seed"] for r in together] == [0, 1]
    assert together[0]["last_loss"] != together[1]["last_loss"]  # two different runs
    for seed, run in enumerate(together):
        alone = _alone(_Ctx(), p, seed)
        assert run["last_loss"] == pytest.approx(alone["last_loss"], rel=1e-4)
        assert [row["step"] for row in run["curve"]] == [row["step"] for row in alone["curve"]]
        for row, ref in zip(run["curve"], alone["curve"], strict=True):
            for k in ("1", "2"):
                assert row["by_k"][k]["p"] == pytest.approx(ref["by_k"][k]["p"], abs=0.05)
