"""Scaling: power-law fits, parameter and FLOP counts, the task data, a resumable sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genai_report.artifacts import scaling as scaling_artifacts
from genai_report.artifacts.scaling import ScalingRun, corpus_file, train_run
from genai_report.data import tasks
from genai_report.metrics.scaling import (
    bootstrap_exponent,
    bounds_hit,
    count_parameters,
    fit_log_linear,
    fit_parametric_loss,
    fit_power_law,
    flops_per_token,
    isoflop_optimum,
    optimal_size_exponent,
    training_flops,
)
from genai_report.models.gpt import GPT, GPTConfig
from genai_report.pipeline import Pipeline, RunOptions, keys
from genai_report.pipeline.registry import Node, Registry

ROOT = Path(__file__).resolve().parents[1]


# -- fits ----------------------------------------------------------------------------------
@pytest.mark.parametrize("E, A, alpha", [(1.69, 406.4, 0.34), (0.8, 12.0, 0.076), (2.5, 60.0, 0.6)])
def test_power_law_fit_recovers_alpha_and_E_from_noisy_points(E, A, alpha):
    rng = np.random.default_rng(0)
    n = np.geomspace(1e3, 1e7, 12)
    y = E + A * n ** (-alpha)
    noisy = y * (1 + 0.002 * rng.standard_normal(len(n)))
    fit = fit_power_law(n, noisy)
    assert fit.alpha == pytest.approx(alpha, rel=0.15)
    assert fit.E == pytest.approx(E, abs=0.05 * (y.max() - E) + 0.02)
    assert fit.r2 > 0.99
    low, high = bootstrap_exponent(n, noisy, fit, n_boot=100, seed=1)
    assert low <= fit.alpha <= high
    assert low < alpha * 1.3 and high > alpha / 1.3


def test_exact_power_law_is_recovered_to_high_precision():
    n = np.geomspace(10, 1e5, 6)
    fit = fit_power_law(n, 1.5 + 3.0 * n ** -0.4)
    assert (fit.E, fit.A, fit.alpha) == pytest.approx((1.5, 3.0, 0.4), rel=1e-4)
    assert fit(100.0) == pytest.approx(1.5 + 3.0 * 100 ** -0.4, rel=1e-6)
    pure = fit_power_law(n, 3.0 * n ** -0.4, with_offset=False)
    assert (pure.E, pure.alpha) == pytest.approx((0.0, 0.4), abs=1e-4)
    slope, _, r2 = fit_log_linear(n, 3.0 * n ** -0.4)
    assert slope == pytest.approx(-0.4) and r2 == pytest.approx(1.0)


def test_fit_rejects_too_few_or_non_positive_points():
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law([1, 2], [1, 2])
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([0, 1, 2], [3, 2, 1])


def test_isoflop_parabola_finds_the_minimum():
    n = np.geomspace(1e3, 1e6, 7)
    loss = 2.0 + 0.1 * (np.log(n) - np.log(3e4)) ** 2
    opt = isoflop_optimum(n, loss)
    assert opt["n_opt"] == pytest.approx(3e4, rel=1e-6)
    assert opt["loss_opt"] == pytest.approx(2.0) and opt["interior"]
    assert isoflop_optimum(n, -loss) is None  # opens downwards: no minimum
    assert isoflop_optimum(n[:2], loss[:2]) is None


def test_optimal_size_exponent_recovers_a_known_law_with_an_interval_around_it():
    rng = np.random.default_rng(0)
    n = np.geomspace(1e3, 1e6, 7)
    profiles = []
    for c in (1e12, 1e13, 1e14):
        n_opt = 0.05 * c ** 0.5  # 5e4 ... 5e5: inside the sizes
        loss = 2.0 + 0.1 * (np.log(n) - np.log(n_opt)) ** 2 + rng.normal(0, 0.01, len(n))
        profiles.append((c, n, loss))
    fit = optimal_size_exponent(profiles, n_boot=200, seed=1)
    assert fit["interior"] == 3 and fit["n_boot"] > 150
    assert fit["exponent"] == pytest.approx(0.5, abs=0.05)
    low, high = fit["ci"]
    assert low < fit["exponent"] < high and low < 0.5 < high and high - low < 0.3
    # A profile whose minimum falls outside its sizes counts for nothing.
    edge = [(c, n, 2.0 + 0.1 * (np.log(n) - np.log(1e7)) ** 2) for c, n, _ in profiles[:2]]
    fit = optimal_size_exponent(edge + profiles[2:], n_boot=20)
    assert fit["interior"] == 1 and np.isnan(fit["exponent"]) and fit["n_boot"] == 0


def test_isoflop_runs_spend_their_budget_in_at_least_min_steps():
    from genai_report.artifacts.isoflop import IsoFlopBudget, peak_lr, schedule

    p = IsoFlopBudget(flops=1e10, block_size=32, min_steps=1000)
    for tokens in (32_000, 50_000, 1e6, 2.4e7):
        batch, steps = schedule(tokens, p)
        assert steps >= 1000
        assert abs(batch * steps * 32 - tokens) <= batch * 32 / 2  # within half a step
    assert schedule(31_999, p) is None  # not even one window per step for 1,000 steps
    assert peak_lr(16, p) == pytest.approx(p.lr)  # 512 tokens per step: the reference
    assert peak_lr(4, p) == pytest.approx(p.lr / 2)  # a quarter of the tokens: half the rate
    assert peak_lr(10_000, p) == p.lr_max
    with pytest.raises(ValueError, match="at least 3 sizes"):
        IsoFlopBudget(flops=1e10, widths=(8, 16))
    with pytest.raises(ValueError, match="increasing"):
        IsoFlopBudget(flops=1e10, widths=(16, 8, 32))
    with pytest.raises(ValueError, match="flops"):
        IsoFlopBudget(flops=0)


# -- counts --------------------------------------------------------------------------------
def test_parameter_count_is_the_sum_of_tensor_sizes():
    V, T, L, d = 13, 16, 3, 32
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=2, n_embd=d))
    counts = count_parameters(model)
    unique = {id(p): p.numel() for p in model.state_dict(keep_vars=True).values()}
    assert counts["total"] == sum(unique.values()) == model.num_params(non_embedding=False)
    assert counts["embedding"] == V * d + T * d  # token (tied to the output) + position
    # per block: 12 d^2 in linear layers (no biases) + two LayerNorm weights; final LayerNorm
    assert counts["non_embedding"] == L * (12 * d * d + 2 * d) + d
    assert counts["total"] == counts["embedding"] + counts["non_embedding"]


def test_flop_count_matches_its_formula():
    N, L, T, d, D = 10_000, 2, 64, 32, 1_000_000
    assert flops_per_token(N, L, T, d) == 6 * N + 6 * L * T * d == 84_576
    assert training_flops(N, L, T, d, D) == 84_576 * D


def test_six_n_is_three_times_the_measured_forward_matmul_flops():
    from torch.utils.flop_counter import FlopCounterMode

    V, T, L, d = 13, 16, 2, 32
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=2, n_embd=d))
    with FlopCounterMode(display=False) as counter:  # the explicit attention path is counted
        model.attention_maps(torch.zeros(1, T, dtype=torch.long))
    measured = counter.get_total_flops() / T  # forward FLOPs per token
    linear = 2 * L * 12 * d * d  # 2 FLOPs per weight of the blocks' linear layers
    attention = 4 * L * T * d  # q k^T and a v over the full (unmasked) T x T grid
    assert measured == linear + attention + 2 * V * d  # + the tied output layer
    counts = count_parameters(model)
    # 6 N counts the blocks' matmuls (3 x forward); the LayerNorm weights add < 1 %.
    assert 6 * counts["non_embedding"] == pytest.approx(3 * linear, rel=0.01)


# -- task data -----------------------------------------------------------------------------
def test_addition_examples_are_reversed_sums_and_splits_are_disjoint():
    assert tasks.addition_example(7, 45, 2) == ("07+45=", "250")
    assert tasks.addition_example(99, 99, 2) == ("99+99=", "891")
    train, held = tasks.addition_split(2, 0.2, torch.Generator().manual_seed(0))
    assert len(train) + len(held) == 10_000 and len(held) == 2000
    assert not set(train) & set(held)
    words = tasks.reversal_examples(50, 5, "held_out", torch.Generator().manual_seed(0))
    others = tasks.reversal_examples(500, 5, "train", torch.Generator().manual_seed(1))
    assert all(a == p[:-1][::-1] for p, a in words)
    assert not {p for p, _ in words} & {p for p, _ in others}


def test_score_answers_on_a_perfect_and_a_uniform_model():
    examples = [tasks.addition_example(a, b, 1) for a, b in [(1, 2), (3, 4), (9, 9)]]
    chars = "\n+=0123456789"

    def encode(s):
        return torch.tensor([chars.index(c) for c in s])

    class Oracle(torch.nn.Module):
        def forward(self, idx):
            nxt = torch.zeros(idx.shape + (len(chars),))
            for i, (p, a) in enumerate(examples):
                full = encode("\n" + p + a)
                nxt[i, torch.arange(len(full) - 1), full[1:]] = 50.0
            return nxt, None

    perfect = tasks.score_answers(Oracle(), encode, examples)
    assert perfect["exact_match"] == 1.0 and perfect["answer_nll"] < 1e-6

    class Uniform(torch.nn.Module):
        def forward(self, idx):
            return torch.zeros(idx.shape + (len(chars),)), None

    flat = tasks.score_answers(Uniform(), encode, examples)
    assert flat["answer_nll"] == pytest.approx(np.log(len(chars)))


# -- the sweep -----------------------------------------------------------------------------
def _tiny(width, depth):
    return ScalingRun(width, depth, head_dim=8, block_size=12, batch_size=2, steps=3,
                      warmup_steps=1, evals=2, eval_batches=1, n_task_eval=4)


def _sweep(shapes):
    reg = Registry()
    for w, d in shapes:
        p = _tiny(w, d)
        reg.add(Node(f"run-d{w}-l{d}", train_run, "artifact",
                     {"smoke": p, "quick": p, "full": p}, ("model.pt", "run.json"), seed=50,
                     data=(corpus_file,)))
    return reg


def _run(reg, cache, **kw):
    return Pipeline(reg, cache_dir=cache, root=ROOT).run(
        RunOptions(profile="smoke", device="cpu", show_progress=False, **kw))


def test_a_killed_sweep_resumes_and_a_new_size_trains_alone(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    shapes = [(8, 1), (16, 1), (16, 2)]
    real = scaling_artifacts._train_run

    def killed_at_the_third(ctx, p):
        if (p.n_embd, p.n_layer) == (16, 2):
            raise KeyboardInterrupt  # the sweep is stopped while this size trains
        return real(ctx, p)

    monkeypatch.setattr(scaling_artifacts, "_train_run", killed_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        _run(_sweep(shapes), cache)
    monkeypatch.setattr(scaling_artifacts, "_train_run", real)

    resumed = _run(_sweep(shapes), cache)
    assert resumed.ran == ["run-d16-l2"]
    assert sorted(resumed.fresh) == ["run-d16-l1", "run-d8-l1"]
    grown = _run(_sweep([*shapes, (24, 1)]), cache)
    assert grown.ran == ["run-d24-l1"] and len(grown.fresh) == 3
    shrunk = _run(_sweep([(8, 1), (16, 2), (24, 1)]), cache)
    assert shrunk.ran == []
    rec = shrunk.records["run-d8-l1"].metrics
    assert rec["tokens"] == 3 * 2 * 12
    assert rec["flops"] == pytest.approx(rec["flops_per_token"] * rec["tokens"])
    assert rec["params"]["total"] == rec["params"]["embedding"] + rec["params"]["non_embedding"]
    assert [c["step"] for c in rec["curve"]] == [1, 3]


def test_the_sweep_list_is_outside_the_runs_cache_key():
    """Editing the list of sizes (in figures/scaling.py) must not re-key existing runs."""
    from genai_report.figures.scaling import RUNS
    from genai_report.pipeline import load_registry

    node = load_registry().get(RUNS[0])
    modules = {e.split(":")[0] for e, _ in keys.code_closure(node)}
    assert "genai_report.artifacts.scaling" in modules
    assert "genai_report.figures.scaling" not in modules


def test_parametric_loss_fit_recovers_chinchilla_like_constants():
    n, d = np.meshgrid(np.geomspace(1e4, 1e7, 6), np.geomspace(1e6, 1e9, 6))
    law = 1.69 + 406.4 * n ** -0.34 + 410.7 * d ** -0.28
    fit = fit_parametric_loss(n.ravel(), d.ravel(), law.ravel(), grid=80)
    assert (fit.alpha, fit.beta) == pytest.approx((0.34, 0.28), rel=0.05)
    assert fit.E == pytest.approx(1.69, abs=0.05) and fit.r2 > 0.999
    assert fit.as_dict()["a"] == pytest.approx(0.28 / 0.62, rel=0.05)
    # N*(C) minimises the law on the budget: nearby sizes at the same compute do worse.
    c = 1e18
    n_opt = float(fit.optimal_n(c))
    at = [fit(m, c / (6 * m)) for m in (n_opt / 1.5, n_opt, n_opt * 1.5)]
    assert at[1] < at[0] and at[1] < at[2]


def test_bounds_hit_flags_an_offset_pinned_at_zero_but_not_a_fitted_one():
    x = np.geomspace(1e3, 1e6, 8)
    with_floor = fit_power_law(x, 1.5 + 20 * x ** -0.3)
    assert with_floor.E > 1.0 and bounds_hit(with_floor) == []
    no_floor = fit_power_law(x, 20 * x ** -0.1 * (1 - 0.03 * np.log10(x)))  # bends down
    assert no_floor.E == 0.0 and bounds_hit(no_floor) == ["E"]
    assert bounds_hit(fit_power_law(x, 20 * x ** -0.1, with_offset=False),
                      with_offset=False) == []
    steep = fit_power_law(x, 1.0 + 1e9 * x ** -5.0, alpha_range=(1e-3, 3.0))
    assert "alpha" in bounds_hit(steep)


# -- distillation -----------------------------------------------------------------------
def test_soft_target_loss_is_the_kl_divergence_and_zero_at_the_teacher():
    from genai_report.artifacts.distill import soft_target_loss

    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 5, 7, generator=gen)  # (B, T, V)
    student = torch.randn(2, 5, 7, generator=gen)
    assert float(soft_target_loss(teacher, teacher, 1.0)) == pytest.approx(0.0, abs=1e-6)
    # KL(t || s) = cross-entropy of s under t minus the entropy of t, per position.
    t, log_s = teacher.softmax(-1), student.log_softmax(-1)
    expected = (t * (t.log() - log_s)).sum(-1).mean()
    assert float(soft_target_loss(student, teacher, 1.0)) == pytest.approx(float(expected),
                                                                          rel=1e-5)
    # A temperature softens both sides and the T^2 factor keeps the loss's scale.
    t2, log_s2 = (teacher / 2).softmax(-1), (student / 2).log_softmax(-1)
    expected2 = 4 * (t2 * (t2.log() - log_s2)).sum(-1).mean()
    assert float(soft_target_loss(student, teacher, 2.0)) == pytest.approx(float(expected2),
                                                                          rel=1e-5)
    # The gradient pulls the student toward the teacher: one step lowers the loss.
    s = student.clone().requires_grad_(True)
    soft_target_loss(s, teacher, 1.0).backward()
    moved = student - 5.0 * s.grad
    assert soft_target_loss(moved, teacher, 1.0) < soft_target_loss(student, teacher, 1.0)


def test_distill_settings_are_validated():
    from genai_report.artifacts.distill import Distill

    with pytest.raises(ValueError, match="temperature"):
        Distill(teacher="t", temperature=0)
    with pytest.raises(ValueError, match="seeds"):
        Distill(teacher="t", seeds=0)


def test_distilled_and_hard_label_students_trained_together_end_where_each_alone_ends(
        tmp_path):
    """scaling-distill trains every seed's two students as one ensemble; each must end
    where the student trained alone on its arm's targets, seed's weights and batches ends."""
    import json
    from types import SimpleNamespace

    from genai_report.artifacts.distill import Distill, _distill, soft_target_loss
    from genai_report.data.text import CharTokenizer, get_batch, load_corpus, split
    from genai_report.training.loop import TrainConfig, train

    tok = CharTokenizer.from_text(load_corpus(corpus_file()))
    torch.manual_seed(0)
    teacher = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2,
                            n_embd=16)).eval()
    path = tmp_path / "model.pt"
    torch.save({"config": vars(teacher.config), "state": teacher.state_dict(),
                "chars": tok.chars}, path)
    p = Distill(teacher="t", n_embd=16, steps=6, batch_size=4, warmup_steps=1, seeds=1,
                evals=3, eval_batches=2)
    ctx = SimpleNamespace(seed=53, device="cpu", progress=None,
                          input=lambda node, name: path,
                          output=lambda name: tmp_path / name)
    out = _distill(ctx, p)
    runs = json.loads((tmp_path / "distill.json").read_text())["runs"]
    train_ids, val_ids = split(tok.encode(load_corpus(corpus_file())), p.val_fraction)
    val_gen = torch.Generator().manual_seed(1234)
    val = [get_batch(val_ids, p.batch_size, 16, val_gen) for _ in range(p.eval_batches)]
    for arm in ("hard", "soft"):
        torch.manual_seed(ctx.seed * 100)
        alone = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=1,
                              n_embd=16))
        gen = torch.Generator().manual_seed(ctx.seed * 100)

        def loss_fn(m, step, gen=gen, arm=arm):
            x, y = get_batch(train_ids, p.batch_size, 16, gen)
            logits, hard = m(x, y)
            if arm == "hard":
                return hard
            with torch.no_grad():
                target = teacher(x)[0]  # (B, T, V)
            return soft_target_loss(logits, target, p.temperature)

        train(alone, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                                          min_lr_ratio=0.1, weight_decay=0.0, grad_clip=1.0))
        with torch.no_grad():
            expected = float(torch.stack([alone(x, y)[1] for x, y in val]).mean())
        assert runs[arm][0]["val_loss"] == pytest.approx(expected, abs=1e-4)
        assert runs[arm][0]["curve"][-1]["step"] == p.steps
    assert out["final"]["hard"]["mean"] == pytest.approx(runs["hard"][0]["val_loss"])


# -- adaptation (LoRA against full fine-tuning) ----------------------------------------------
def test_arithmetic_domain_mixes_widths_and_keeps_its_splits_apart():
    from genai_report.artifacts.adaptation import arithmetic_text

    train = arithmetic_text(400, "train", 4, torch.Generator().manual_seed(0)).splitlines()
    held = arithmetic_text(400, "held_out", 4, torch.Generator().manual_seed(1)).splitlines()
    assert len(train) == len(held) == 400
    widths = [len(line.split("+")[0]) for line in train]
    assert sorted(set(widths)) == [1, 2, 3, 4] and widths.count(4) == 100
    a, rest = train[0].split("+")
    b, total = rest.split("=")
    assert int(total[::-1]) == int(a) + int(b)  # the sum, written reversed
    def prompts(lines):
        return {line.split("=")[0] for line in lines}

    assert not prompts(train) & prompts(held)  # no held-out problem is trained on


def test_adaptation_settings_are_validated():
    from genai_report.artifacts.adaptation import Adaptation

    with pytest.raises(ValueError, match="ranks"):
        Adaptation(ranks=(0, 4))
    with pytest.raises(ValueError, match="max_digits"):
        Adaptation(max_digits=12)


def test_adaptation_paths_average_seeds_and_sort_by_learning():
    from genai_report.figures.scaling import _adaptation_paths

    res = {"before": {"target": 3.0, "english": 2.0}, "runs": {"full": [
        {"path": [{"target": 3.0, "english": 2.0}, {"target": 2.0, "english": 2.5},
                  {"target": 2.2, "english": 2.6}]},
        {"path": [{"target": 3.0, "english": 2.0}, {"target": 2.0, "english": 2.3},
                  {"target": 2.4, "english": 2.8}]}]}}
    learned, forgot = _adaptation_paths(res)["full"]
    assert learned == pytest.approx([0.0, 0.7, 1.0])  # the dip at the end is sorted in
    assert forgot == pytest.approx([0.0, 0.7, 0.4])
