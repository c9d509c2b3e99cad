"""The addition task with and without a scratchpad, and the decoding behind the chain-of-thought
page (genai_report/data/arithmetic.py, genai_report/figures/llm_reasoning.py)."""

from __future__ import annotations

import pytest
import torch

from genai_report.data import arithmetic as ar
from genai_report.figures.llm_reasoning import (
    ScratchpadTrain,
    _answer,
    _answer_ok,
    _evaluate,
    _implied_answer,
    _logits,
    _train_seeds,
    greedy_answers,
)
from genai_report.models.gpt import GPT, GPTConfig


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _value(digits, base):
    return sum(d * base**i for i, d in enumerate(digits))


@pytest.mark.parametrize("base", [2, 10])
def test_column_steps_add_like_integers(base):
    g = _gen(1)
    for _ in range(200):
        n = int(torch.randint(1, 9, (1,), generator=g))
        a, b = torch.randint(0, base, (2, n), generator=g).tolist()
        digits, carries = ar.column_steps(a, b, base)
        assert len(digits) == n + 1 and len(carries) == n
        assert _value(digits, base) == _value(a, base) + _value(b, base)
        assert carries[-1] == digits[-1]


def test_column_steps_reject_bad_operands():
    with pytest.raises(ValueError, match="same number"):
        ar.column_steps([1, 0], [1], 2)
    with pytest.raises(ValueError, match="Digits"):
        ar.column_steps([2], [1], 2)
    with pytest.raises(ValueError, match="base"):
        ar.column_steps([1], [1], 11)


def test_format_of_a_worked_example():
    # 1011 + 0110 = 10001 (11 + 6 = 17); digits least significant first
    a, b = [1, 1, 0, 1], [0, 1, 1, 0]
    toks, ids, n_prompt = ar.format_addition(a, b, scratchpad=False)
    assert "".join(toks) == "^1011+0110=10001$" and n_prompt == 11
    toks_s, ids_s, n_prompt_s = ar.format_addition(a, b, scratchpad=True)
    assert "".join(toks_s) == "^1011+0110=1n0c0c0c>10001$"
    # same prompt and ids on the prompt, and the same answer with the same ids
    assert toks_s[:n_prompt_s] == toks[:n_prompt] and ids_s[:n_prompt_s] == ids[:n_prompt]
    assert toks_s[-6:] == toks[-6:] and ids_s[-6:] == ids[-6:]
    for sp, t in ((False, toks), (True, toks_s)):
        assert len(t) - n_prompt == ar.target_length(4, sp)


@pytest.mark.parametrize("scratchpad", [False, True])
def test_each_digit_is_predicted_from_the_id_of_its_column(scratchpad):
    """Position t predicts token t + 1: when that token is the digit of column j (a step's
    sum digit, or an answer digit other than the top one), position t carries id j + 1,
    the id of a_j and b_j in the prompt."""
    g = _gen(2)
    for _ in range(50):
        n = int(torch.randint(1, 7, (1,), generator=g))
        a, b = torch.randint(0, 2, (2, n), generator=g).tolist()
        toks, ids, n_prompt = ar.format_addition(a, b, scratchpad=scratchpad)
        assert toks[0] == "^" and ids[0] == 0  # the column below the number
        assert [ids[n - j] for j in range(n)] == [j + 1 for j in range(n)]  # a_j
        assert ids[n + 2:2 * n + 2] == ids[1:n + 1]  # b's digits share a's ids
        assert toks[n + 1] == "+" and ids[n + 1] == n + 1  # the column above the number
        answer_start = len(toks) - (n + 2)
        # answer: digit j (top first) sits at answer_start + n - j
        for j in range(n):  # column j's answer digit; the top (carry) digit needs no column
            t = answer_start + n - j
            assert ids[t - 1] == j + 1
        assert toks[-1] == "$" and ids[-2] == 0  # the last digit finds "^" to stop
        if scratchpad:
            for j in range(n):
                t = n_prompt + 2 * j  # the sum digit of step j
                assert ids[t - 1] == j + 1 and ids[t] == j + 1  # digit -> its carry
                assert toks[t + 1] in ar.CARRY


def test_draw_and_encode_problems():
    probs = ar.draw_problems(64, 2, 4, _gen(3), max_offset=3)
    assert probs == ar.draw_problems(64, 2, 4, _gen(3), max_offset=3)
    assert {len(a) for a, _, _ in probs} == {2, 3, 4}
    assert {o for _, _, o in probs} <= {0, 1, 2, 3}
    for sp in (False, True):
        x, y, pos = ar.encode_problems(probs, scratchpad=sp)
        assert x.shape == y.shape == pos.shape
        for r, (a, b, off) in enumerate(probs):
            toks, ids, n_prompt = ar.format_addition(a, b, scratchpad=sp)
            L = len(toks)
            assert ar.decode(x[r, :L].tolist()) == "".join(toks)
            assert (x[r, L:] == ar.PAD).all() and (y[r, L - 1:] == -1).all()
            assert (y[r, :n_prompt - 1] == -1).all()
            assert torch.equal(y[r, n_prompt - 1:L - 1], x[r, n_prompt:L])
            assert pos[r, :L].tolist() == [i + off for i in ids] and (pos[r, L:] == 0).all()
        assert x.dtype == y.dtype == pos.dtype == torch.long


def test_params_are_validated():
    with pytest.raises(ValueError, match="max_offset"):
        ScratchpadTrain(train_max=5, test_max=8, max_offset=2)
    with pytest.raises(ValueError, match="train_min"):
        ScratchpadTrain(train_min=4, train_max=3)
    p = ScratchpadTrain(train_max=5, test_max=8, max_offset=4)
    assert p.block_size == 11 and p.eval_offset == 1
    # the largest id evaluated (n + 1 plus offset) was trained
    assert p.test_max + 1 + p.eval_offset == p.train_max + 1 + p.max_offset


def test_cached_greedy_decoding_matches_full_recomputation():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=len(ar.VOCAB), block_size=12, n_layer=2, n_head=2,
                      n_embd=16)).eval()
    probs = ar.draw_problems(6, 3, 3, _gen(4), max_offset=2)
    x, _, pos = ar.encode_problems(probs, scratchpad=True)  # (6, T)
    n_prompt = 9
    got = greedy_answers(m, x, pos, n_prompt)
    cur = x[:, :n_prompt]
    with torch.no_grad():
        for t in range(n_prompt, x.size(1)):
            logits, _ = _logits(m, cur, pos[:, :t])
            cur = torch.cat([cur, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(got, cur[:, n_prompt:])


def test_answer_is_read_after_the_scratchpad():
    assert _answer("1n0c0c0c>10001$", True) == "10001"
    assert _answer("10001$", False) == "10001"
    assert _answer("1n0c", True) == ""


def test_answer_checks_and_the_answer_implied_by_the_steps():
    assert _answer_ok("1n0c0c0c>10001$", "10001", True)
    assert _answer_ok("1n0c0c1c>10001$", "10001", True)  # wrong step, right answer
    assert not _answer_ok("1n0c0c0c>1000$1", "10001", True)
    assert not _answer_ok("1n0c0c0c0c1n0", "10001", True)  # never reached the answer
    assert _answer_ok("10001$", "10001", False) and not _answer_ok("100011", "10001", False)
    assert _implied_answer("1n0c0c0c>10001$") == "10001"
    assert _implied_answer("1n0c0c0n>00001$") == "00001"
    assert _implied_answer("1n0c0$0c>1") is None


def test_a_smoke_sized_run_trains_and_evaluates_both_targets():
    p = ScratchpadTrain(train_max=3, test_max=4, max_offset=1, n_embd=16, n_head=2,
                        steps=30, warmup_steps=2, eval_problems=8, seeds=1, control_seeds=0)
    assert p.token_ratio() > 1
    probs = {n: ar.draw_problems(8, n, n, _gen(5), max_offset=p.eval_offset) for n in (2, 4)}
    for sp in (False, True):
        (model,), hist, (tokens,) = _train_seeds(p, sp, [0], [_gen(6)])
        assert hist.train_loss[-1] < hist.train_loss[0] and tokens > 0
        ev = _evaluate(p, model, probs, sp)
        for n, e in ev.items():
            assert 0 <= e["exact"] <= e["digits"] + 1e-9 <= 1 + 1e-9  # right answer: all digits
            assert len(e["texts"]) == 8
            assert all(len(t) == ar.target_length(n, sp) for t in e["texts"])
        assert (ev[2]["steps"] is not None) == sp


def _alone(p: ScratchpadTrain, scratchpad: bool, init: int, data_gen):
    """One seed trained on its own: the loop the node ran before its seeds were ensembled."""
    import torch.nn.functional as F

    from genai_report.training.loop import TrainConfig, train

    torch.manual_seed(init)
    model = GPT(GPTConfig(vocab_size=len(ar.VOCAB), block_size=p.block_size,
                          n_layer=p.n_layer, n_head=p.n_head, n_embd=p.n_embd))
    seen = [0]

    def loss_fn(m, step):
        probs = ar.draw_problems(p.batch_size, p.train_min, p.train_max, data_gen,
                                 base=p.base, max_offset=p.max_offset)
        x, y, pos = ar.encode_problems(probs, scratchpad=scratchpad, base=p.base)  # (B, T)
        seen[0] += int((x != ar.PAD).sum())
        logits, _ = _logits(m, x, pos)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                               ignore_index=-1)

    hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr,
                                             warmup_steps=p.warmup_steps), record_every=10)
    return model, hist, seen[0]


@pytest.mark.parametrize("scratchpad", [False, True], ids=["direct", "scratchpad"])
def test_the_seeds_trained_together_are_the_seeds_trained_alone(scratchpad):
    """Each member keeps its own initial weights, problems and batches (padded to the
    longest member's length, which changes no earlier position): its losses, token count
    and weights are those of the same seed trained on its own."""
    p = ScratchpadTrain(train_max=3, test_max=4, max_offset=1, n_embd=16, n_head=2,
                        steps=25, warmup_steps=2, batch_size=8, seeds=2)
    models, hist, tokens = _train_seeds(p, scratchpad, [3, 4], [_gen(6), _gen(7)])
    assert tokens[0] != tokens[1]  # two different problem streams
    for k, (init, seed) in enumerate(((3, 6), (4, 7))):
        model, alone, seen = _alone(p, scratchpad, init, _gen(seed))
        assert tokens[k] == seen
        assert [row[k] for row in hist.member_loss] == pytest.approx(alone.train_loss,
                                                                     rel=1e-4)
        for (name, a), b in zip(model.state_dict().items(), models[k].state_dict().values(),
                                strict=True):
            assert torch.allclose(a, b, atol=1e-4), name
