"""Code generation scored by unit tests: the task generator, pass@k and the sandbox."""

import itertools
import math

import pytest
import torch

from genai_report.applications import code
from genai_report.applications.sandbox import run_batches, run_many, run_program
from genai_report.data.text import CharTokenizer
from genai_report.models.gpt import GPT, GPTConfig


def test_pass_at_k_matches_brute_force_over_subsets():
    # pass@k = P(a random k-subset of the n samples holds at least one correct one)
    for n in range(1, 8):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(samples, k))
                brute = sum(any(s) for s in subsets) / len(subsets)
                assert code.pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)
    assert code.pass_at_k(200, 1, 1) == pytest.approx(1 / 200)
    assert code.pass_at_k(200, 3, 100) == pytest.approx(1 - math.comb(197, 100) / math.comb(200, 100))
    with pytest.raises(ValueError):
        code.pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        code.pass_at_k(5, 1, 6)


def test_problems_are_deterministic_distinct_and_their_references_are_right():
    probs = code.make_problems(300, seed=3)
    assert probs == code.make_problems(300, seed=3)
    assert len({p.doc for p in probs}) == 300
    p = code.make_problem([("add {c}", "{x} + {c}", 3), ("double", "{x} * 2", None)])
    assert p.doc == "add 3 then double" and p.body == "(x + 3) * 2"
    assert p.expected == tuple((v + 3) * 2 for v in code.TEST_INPUTS)
    assert p.source == 'def f(x):\n    """add 3 then double"""\n    return (x + 3) * 2\n\n'
    train, val, test = code.split_problems(probs, 20, 30)
    assert len(val) == 20 and len(test) == 30 and len(train) == 250
    assert not ({q.doc for q in test} & {q.doc for q in train})
    with pytest.raises(ValueError):
        code.split_problems(probs, 200, 100)


def test_checks_pass_equivalent_bodies_and_fail_wrong_or_broken_ones():
    p = code.make_problem([("add {c}", "{x} + {c}", 3), ("double", "{x} * 2", None)])
    bodies = ["(x + 3) * 2", "2 * x + 6\nignored second line", "x * 2 + 3", "(x + 3 * 2",
              "undefined_name", "1 / 0"]
    res = run_batches([code.check_source(p, b) for b in bodies], timeout_s=5)
    assert [r.passed for r in res] == [True, True, False, False, False, False]


def test_sandbox_times_out_fails_and_is_isolated(tmp_path):
    r = run_program("while True:\n    pass\n", timeout_s=0.5)
    assert r.timed_out and not r.passed
    r = run_program("raise ValueError('boom')")
    assert not r.passed and r.returncode == 1 and "boom" in r.stderr
    r = run_program("import socket\nsocket.socket()")
    assert not r.passed and "network access is disabled" in r.stderr
    # fresh temporary working directory, empty environment, isolated mode
    r = run_program("import os, sys\nassert os.listdir('.') == ['program.py']\n"
                    "assert 'HOME' not in os.environ and sys.flags.isolated\n")
    assert r.passed, r.stderr
    assert run_program("raise SystemExit(0)").passed


def test_batched_sandbox_runs_each_program_alone_with_its_own_timeout():
    srcs = ["raise SystemExit(0)", "while True: pass", "import os; os.kill(os.getpid(), 9)",
            "x = 1\nraise SystemExit(0 if x == 1 else 1)", "globals()['leak'] = 1",
            "raise SystemExit(0 if 'leak' not in globals() else 1)"]
    res = run_batches(srcs, timeout_s=1.0, batch=4)
    assert [r.passed for r in res] == [True, False, False, True, True, True]
    assert res[1].timed_out and not res[0].timed_out
    assert [r.passed for r in run_many(srcs[:1] + srcs[3:4])] == [True, True]


def test_training_rows_and_sampled_completions_have_the_right_shapes():
    probs = code.make_problems(12, seed=0)
    tok = CharTokenizer.from_text("".join(p.source for p in probs))
    L = max(len(p.source) for p in probs)
    rows = code.encode_problems(probs, tok, L)
    assert rows.shape == (12, L + 1) and tok.decode(rows[0][rows[0] >= 0]) == probs[0].source
    x, y = code.function_batch(rows, 5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, L) and x.min() >= 0 and (y == -1).any()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=L, n_layer=1, n_head=2,
                          n_embd=16)).eval()
    outs = code.sample_completions(model, tok, [p.prompt for p in probs[:3]], 4, 6,
                                   torch.Generator().manual_seed(0), temperature=1.0)
    assert [len(o) for o in outs] == [4, 4, 4]
    assert all("\n" not in c and len(c) <= 6 for o in outs for c in o)
    greedy = code.sample_completions(model, tok, [probs[0].prompt] * 2, 2, 6,
                                     torch.Generator().manual_seed(0), temperature=0)
    assert len({c for o in greedy for c in o}) == 1  # greedy: one answer
    bits, n = code.gpt_bits(model, rows)
    assert n == int((rows[:, 1:] >= 0).sum()) and bits > 0
    body_at = torch.tensor([len(p.prompt) for p in probs])
    _, nb = code.gpt_bits(model, rows, body_at)
    assert nb == sum(len(p.source) - len(p.prompt) for p in probs)
