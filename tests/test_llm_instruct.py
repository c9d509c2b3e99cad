"""The instruction tasks and the fine-tuning helpers behind the instruction-tuning page
(genai_report/data/instructions.py, genai_report/training/finetune.py)."""

from __future__ import annotations

import pytest
import torch

from genai_report.data import instructions as ins
from genai_report.data.text import CharTokenizer
from genai_report.models.gpt import GPT, GPTConfig
from genai_report.training.finetune import STOP, answer_scores, greedy_answers, pack
from genai_report.training.loop import TrainConfig, train

TOK = CharTokenizer("\n !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                    "abcdefghijklmnopqrstuvwxyz{|}~")  # gpt-char's vocabulary


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_tasks_solve_as_documented():
    solve = {name: t.solve for name, t in ins.TASKS.items()}
    assert solve["upper"]("qxb") == "QXB"
    assert solve["copy"]("qxb") == "qxb"
    assert solve["title"]("qxb") == "Qxb"
    assert solve["spell"]("7") == "seven" and solve["spell"]("0") == "zero"


def test_letter_tasks_never_agree_so_a_blind_guess_is_right_once_at_most():
    letters = [t for t in ins.TASKS.values() if t.kind == "letters"]
    g = _gen(1)
    for _ in range(300):
        x = letters[0].draw(g, False)
        answers = [t.solve(x) for t in letters]
        assert len(set(answers)) == len(answers)


def test_blind_loss_floor_is_the_guessing_cost_per_answer_character():
    import math

    ex = ins.draw_examples(6000, _gen(2))
    letters = sum(ins.TASKS[e.task].kind == "letters" for e in ex)
    chars = sum(len(e.answer) + 1 for e in ex)
    assert ins.blind_loss_floor() == pytest.approx(letters * math.log(3) / chars, rel=0.03)


@pytest.mark.parametrize("name", list(ins.TASKS))
def test_held_out_phrasings_are_new_strings_of_known_parts(name):
    ph = ins.phrasings(name)
    task = ins.TASKS[name]
    assert len(ph["seen"]) == 7 and len(ph["held_out"]) == 3 and ph["new_word"] == [task.new_word]
    assert not set(ph["seen"]) & set(ph["held_out"])
    for k in task.keywords:  # every keyword keeps a training phrasing ...
        assert any(w.endswith(k) for w in ph["seen"])
    for frame in ins.FRAMES:  # ... and so does every frame
        assert any(frame.format(k=k) in ph["seen"] for k in task.keywords)


def test_new_words_never_occur_in_training_instructions():
    seen = [w for t in ins.TASKS for w in ins.phrasings(t)["seen"] + ins.phrasings(t)["held_out"]]
    for task in ins.TASKS.values():
        assert not any(task.new_word in w for w in seen)
        assert len(task.new_word) <= ins.INSTRUCTION_WIDTH


def test_prompts_put_input_and_answer_at_the_same_places_with_or_without_instruction():
    a = ins.prompt("qxb", "pls caps")
    b = ins.prompt("qxb", None)
    assert len(a) == len(b) == ins.INSTRUCTION_WIDTH + 2 + ins.INPUT_WIDTH + 2
    assert a.endswith(" pls caps >qxb\n>") and b.endswith(" >qxb\n>")
    assert b[: ins.INSTRUCTION_WIDTH].strip() == ""
    assert ins.prompt("7", "spell").index("7") == a.index("q")
    with pytest.raises(ValueError, match="longer"):
        ins.prompt("abcd", "copy")
    with pytest.raises(ValueError, match="INSTRUCTION_WIDTH"):
        ins.prompt("abc", "x" * (ins.INSTRUCTION_WIDTH + 1))


def test_training_stream_is_reproducible_and_never_draws_evaluation_strings():
    a = ins.draw_examples(400, _gen(3))
    assert a == ins.draw_examples(400, _gen(3))
    assert {e.task for e in a} == set(ins.TASKS)
    for e in a:
        assert e.instruction in ins.phrasings(e.task)["seen"]
        assert e.answer == ins.TASKS[e.task].solve(e.x)
        if ins.TASKS[e.task].kind == "letters":
            assert not ins.is_eval_string(e.x)
        assert e.pair(True)[1] == e.pair(False)[1] == e.answer  # same answer, both models
    assert not ins.is_eval_string(ins.TASKS["upper"].draw(_gen(5)))  # training by default
    ev = ins.eval_examples("upper", "held_out", 30, _gen(4))
    assert all(ins.is_eval_string(e.x) for e in ev)
    assert [e.instruction for e in ev[:3]] == ins.phrasings("upper")["held_out"]
    with pytest.raises(ValueError, match="split"):
        ins.eval_examples("upper", "test", 3, _gen())
    with pytest.raises(ValueError, match="valid tasks"):
        ins.phrasings("reverse")


def test_pack_trains_on_the_answer_and_its_stop_only():
    pairs = [("ab= ", "XY"), ("abcd= ", "Z")]
    x, y = pack(pairs, TOK)
    assert x.shape == y.shape == (2, len("abcd= Z\n") - 1)
    assert TOK.decode(y[0][y[0] >= 0]) == "XY" + STOP
    assert TOK.decode(y[1][y[1] >= 0]) == "Z" + STOP
    # position j predicts character j + 1: the first target sits on the prompt's last char
    assert y[0, len("ab= ") - 2] == -1 and TOK.decode([y[0, len("ab= ") - 1]]) == "X"
    assert TOK.decode(x[0, : len("ab= XY")]) == "ab= XY"


def _memorised_gpt(pairs, steps=60):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(TOK.chars), block_size=16, n_layer=1, n_head=2,
                          n_embd=32))
    x, y = pack(pairs, TOK)
    train(model, lambda m, step: m(x, y)[1], TrainConfig(steps=steps, lr=1e-2))
    return model


def test_teacher_forced_exact_match_is_greedy_decoding():
    pairs = [("ab= ", "XY"), ("cd= ", "Z"), ("ef= ", "Q")]
    model = _memorised_gpt(pairs)
    assert greedy_answers(model, TOK, [p for p, _ in pairs], 6) == ["XY", "Z", "Q"]
    probe = [("ab= ", "XY"), ("ab= ", "XZ"), ("ab= ", "X"), ("cd= ", "Z"), ("cd= ", "ZZ")]
    scores = answer_scores(model, TOK, probe, batch_size=2)
    greedy = greedy_answers(model, TOK, [p for p, _ in probe], 6)
    assert scores["exact"] == [float(g == a) for g, (_, a) in zip(greedy, probe, strict=True)]
    # the log-probability of the right answer is the highest of the three for "ab= "
    assert scores["logprob"][0] > max(scores["logprob"][1], scores["logprob"][2])
    assert all(lp <= 0 for lp in scores["logprob"])


def test_greedy_answers_stop_at_the_context():
    model = GPT(GPTConfig(vocab_size=len(TOK.chars), block_size=8, n_layer=1, n_head=1,
                          n_embd=8))
    out = greedy_answers(model, TOK, ["abcdef"], 10)
    assert len(out[0]) <= 3  # 6 + 3 = 9 > 8: the last character is never fed back
    with pytest.raises(ValueError, match="block_size"):
        greedy_answers(model, TOK, ["abcdefghi"], 1)


def test_fine_tunes_trained_together_end_where_each_alone_ends(tmp_path):
    """llms-instruct-runs fine-tunes every seed's control and instructed model as one
    ensemble; each member must end where the model fine-tuned alone on its stream ends,
    though the members' packed batches differ in length."""
    from types import SimpleNamespace

    from genai_report.artifacts.llm_instruct import InstructTune, _finetune
    from genai_report.training.finetune import load_char_gpt

    torch.manual_seed(0)
    base = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=64, n_layer=1, n_head=2,
                         n_embd=16))
    path = tmp_path / "model.pt"
    torch.save({"config": vars(base.config), "state": base.state_dict(), "chars": TOK.chars},
               path)
    ctx = SimpleNamespace(device="cpu", progress=None, input=lambda node, name: path,
                          generator=lambda offset=0: _gen(120 + offset))
    p = InstructTune(steps=5, batch_size=3, warmup_steps=1, seeds=2)
    runs = [(False, 0), (True, 0), (True, 1)]
    models, tok, hist = _finetune(ctx, p, runs)
    assert len(hist.member_loss[0]) == len(runs)
    for (instructed, seed), model in zip(runs, models, strict=True):
        alone, _ = load_char_gpt(path)
        gen = ctx.generator(100 + seed)

        def loss_fn(m, step, gen=gen, instructed=instructed):
            x, y = pack([e.pair(instructed) for e in ins.draw_examples(p.batch_size, gen)], tok)
            return m(x, y)[1]

        train(alone, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                                          min_lr_ratio=p.min_lr_ratio, grad_clip=1.0))
        assert not model.training
        for a, b in zip(model.state_dict().values(), alone.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
