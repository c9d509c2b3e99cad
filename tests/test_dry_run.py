"""The dry run of a profile: cut step loops, metered optimiser steps, the GPU estimate."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import sys
import textwrap
import time
import uuid

import pytest
import torch

from genai_report.pipeline import ConfigError
from genai_report.pipeline.dryrun import (
    GPU_CLASSES,
    GPU_JOBS,
    LEAD_CAP_S,
    TIMED_CAP,
    NodeEstimate,
    RestUsage,
    StepMeter,
    _counter_mode,
    dry_params,
    dry_run,
    estimate,
    full_steps,
    gpu_class,
    gpu_ops,
    gpu_step_seconds,
    schedule_estimates,
)
from genai_report.pipeline.registry import Registry


@dataclasses.dataclass(frozen=True)
class P:
    steps: int = 1000
    rl_steps: int = 80
    warmup_steps: int = 100
    compile: bool = True
    n_eval: int = 5000


def test_dry_params_cut_each_step_field_to_its_own_length():
    cut = dry_params(P(), {"n_eval": 50})
    assert cut.params == P(steps=6, rl_steps=8, warmup_steps=1, compile=False, n_eval=50)
    assert cut.caps == {"steps": (6, 1000), "rl_steps": (8, 80)}
    assert cut.overrides == {"n_eval": (50, 5000)}
    # A loop already shorter than its cut runs as it is and is not extrapolated.
    assert dry_params(P(steps=3)).caps == {"rl_steps": (8, 80)}


def test_dry_params_reject_an_unknown_override():
    with pytest.raises(ConfigError, match="n_evals.*Did you mean 'n_eval'"):
        dry_params(P(), {"n_evals": 1})


def test_full_steps_maps_a_loop_to_its_field_by_length():
    caps = {"steps": (4, 1000), "rl_steps": (6, 80)}
    assert full_steps(4, caps) == (1000, "steps")
    assert full_steps(5, caps) == (1001, "steps")  # range(steps + 1)
    assert full_steps(6, caps) == (80, "rl_steps")
    assert full_steps(7, caps) == (81, "rl_steps")  # range(rl_steps + 1)
    assert full_steps(40, caps) == (40, None)  # a loop that was not cut
    # a field's own length before another field's length plus one
    assert full_steps(5, {"steps": (4, 1000), "rm_steps": (5, 50)}) == (50, "rm_steps")


def _linear_step(model, opt, x):
    loss = model(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_step_meter_charges_alternating_optimisers_their_own_halves():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.nn.Linear(64, 64), torch.nn.Linear(64, 32)
    opt_a, opt_b = torch.optim.AdamW(a.parameters()), torch.optim.SGD(b.parameters())
    x = torch.randn(16, 64, generator=gen)
    with StepMeter() as meter:
        for _ in range(7):  # like a GAN: one step of each player per iteration
            _linear_step(a, opt_a, x)
            _linear_step(b, opt_b, x)
    loops = meter.loops()
    assert [(u.params, u.steps) for u in loops] == [(64 * 64 + 64, 7), (64 * 32 + 32, 7)]
    # forward addmm + the weight-gradient matmul (x needs no gradient): 2 * (2 * B * in * out)
    assert loops[0].flops_per_step == 2 * 2 * 16 * 64 * 64
    assert loops[1].flops_per_step == 2 * 2 * 16 * 64 * 32
    assert all(u.ops_per_step > 5 and u.cpu_s_per_step > 0 for u in loops)
    # The optimiser's own operators are told apart (a GPU fuses them into a few kernels).
    assert all(0 < u.optimizer_ops < u.ops_per_step for u in loops)
    summary = meter.summary()
    assert summary["wall_s"] >= sum(u.measured_s for u in loops)
    # Leaving the meter removes its hook: later steps are not seen.
    _linear_step(a, opt_a, x)
    assert meter.loops()[0].steps == 7


@pytest.mark.parametrize("count_all", [False, True], ids=["sampled", "counting-all"])
def test_an_evaluation_between_every_step_is_not_charged_to_the_steps(count_all):
    """A loop cut to a few steps whose node evaluates every `steps // 5` steps now
    evaluates at every step; the meter must not cost each full-run step an evaluation."""
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(64, 64)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(16, 64, generator=gen)
    held_out = torch.randn(4096, 64, generator=gen)

    ema = [q.detach().clone() for q in model.parameters()]

    rests = {}

    def run(evaluate: bool, average: bool = True) -> list:
        with StepMeter(count_all=count_all) as meter:
            for _ in range(10):
                loss = model(x).square().mean()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # no_grad, yet a step's
                opt.step()
                if average:  # an EMA of the weights: no_grad, outside any module, every step
                    with torch.no_grad():
                        for e, q in zip(ema, model.parameters(), strict=True):
                            e.mul_(0.9).add_(q, alpha=0.1)
                if evaluate:  # as training.loop.train evaluates: eval() mode, no_grad
                    model.eval()
                    with torch.no_grad():
                        for _ in range(20):
                            model(held_out).softmax(-1).mean()
                    model.train()
        rests[evaluate, average] = meter.rest()
        return meter.loops()

    plain, with_eval = run(False)[0], run(True)[0]
    # Gradient clipping and the EMA belong to the step although they run under no_grad.
    assert plain.between_steps_s == 0
    assert plain.ops_per_step > run(False, average=False)[0].ops_per_step
    # The step's own operators and FLOPs are the same with or without the evaluation.
    assert with_eval.ops_per_step == plain.ops_per_step
    assert with_eval.flops_per_step == plain.flops_per_step
    # Its time goes to the node's rest, not to the step.
    assert with_eval.between_steps_s > 0 and plain.between_steps_s == 0
    est = estimate("n", {"wall_s": with_eval.measured_s + with_eval.between_steps_s + 0.1,
                         "loops": [dataclasses.asdict(with_eval)]}, {"steps": (10, 10_000)},
                   {}, gpu_class("h100"))
    assert est.other_s >= with_eval.between_steps_s
    if count_all:  # the evaluations' operators and FLOPs are the rest's, counted
        evals = rests[True, True].ops - rests[False, True].ops
        assert evals >= 9 * 20 * 3  # 9 evaluations after a step's end, 20 x (addmm, softmax, mean)
        assert rests[True, True].flops - rests[False, True].flops >= 9 * 20 * 2 * 4096 * 64 * 64
    else:
        assert rests[True, True] is None


def test_a_counting_meter_counts_the_work_outside_steps():
    """A dry run's meter counts a node's data, sampling and host work as well, so that the
    estimate can cost them on a GPU rather than at their CPU time."""
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(64, 64)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(16, 64, generator=gen)
    frozen = torch.nn.Linear(64, 64).requires_grad_(False)
    with StepMeter(count_all=True) as meter:
        data = torch.randn(512, 64, generator=gen)  # before the first step
        table = torch.zeros(300, 8)  # a data set built row by row: stays on the CPU
        for i in range(300):
            table[i, : i % 8 + 1] = torch.arange(i % 8 + 1.0)
        for _ in range(6):
            _linear_step(model, opt, x)
        with torch.no_grad():  # sampling after the last step, in training mode
            for _ in range(50):
                model(data).tanh()
            frozen(data).relu()  # a frozen module's weights are on the GPU too
        time.sleep(0.2)  # host work: no operator at all
    (loop,) = meter.loops()
    with StepMeter() as sampled:
        for _ in range(7):
            _linear_step(model, opt, x)
    # The steps are counted as a metered real run counts them.
    assert loop.ops_per_step == sampled.loops()[0].ops_per_step
    assert loop.flops_per_step == sampled.loops()[0].flops_per_step
    assert loop.steps == 6 and loop.between_steps_s == 0
    rest = meter.rest()
    # The model's and the frozen module's operators run on the GPU in a GPU run (and the
    # first step, whose segment holds the set-up before the loop) ...
    assert 2 * 51 <= rest.ops <= 2 * 51 + loop.ops_per_step + 5
    assert rest.flops >= 51 * 2 * 512 * 64 * 64
    # ... the data set's construction on the CPU, with the host's other work.
    assert 2 * 300 <= rest.host_ops <= 2 * 300 + 10  # arange and the copy into the row
    assert rest.host_s >= 0.15 and rest.cpu_s >= rest.host_s + rest.op_s - 1e-9
    summary = json.loads(json.dumps(meter.summary(), allow_nan=False))
    assert summary["rest"]["ops"] == rest.ops
    assert summary["counter"]["handler_s"] > 0 and summary["counter"]["operator_us"] >= 0
    gpu = gpu_class("h100")
    est = estimate("n", summary, {"steps": (6, 1000)}, {}, gpu)
    # The rest's operators are costed on the GPU; its own host time stays as it was.
    assert est.other_s == pytest.approx(rest.cpu_s)
    assert rest.own_host_s(gpu) >= 0.15  # the sleep is work of its own
    assert est.other_gpu_s == pytest.approx(rest.own_host_s(gpu)
                                            + gpu.step_seconds(rest.ops, rest.flops))
    assert est.gpu_full_s == pytest.approx(est.other_gpu_s + 1000 * est.loops[0]["gpu_s_per_step"])


def test_the_host_path_issuing_gpu_operators_is_not_costed_twice():
    """A GPU's per-operator cost holds the Python path that issues each operator; the
    rest's host time must not charge that path again. Host work of its own stays, even
    when an operator follows it: at most the cap is taken from it."""
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(8, 8) for _ in range(4)])
    x = torch.randn(1, 8, generator=gen)
    with StepMeter(count_all=True) as meter:
        with torch.no_grad():
            for _ in range(200):  # decoding: small operators issued one by one from Python
                x = model(x).tanh()
            time.sleep(0.2)  # host work of its own, just before an operator
            x.sum()
    rest = meter.rest()
    assert rest.ops >= 200 * 5 and rest.host_ops == 0
    assert 0 < rest.lead_s <= rest.ops * LEAD_CAP_S
    # (the calibrated cost of counting is taken out of the times: a few ms either way here)
    assert rest.host_s >= 0.15
    gpu = gpu_class("h100")
    own = rest.own_host_s(gpu)
    assert own == pytest.approx(rest.host_s - min(rest.lead_s, rest.ops * gpu.op_overhead_us * 1e-6))
    assert own >= 0.15  # the pause is no issuing path: at most LEAD_CAP_S of it is taken
    summary = json.loads(json.dumps(meter.summary(), allow_nan=False))
    assert summary["rest"]["lead_s"] == pytest.approx(rest.lead_s)
    est = estimate("n", summary, {}, {}, gpu)
    assert est.other_gpu_s == pytest.approx(own + gpu.step_seconds(rest.ops, rest.flops))
    # An estimate file written before the lead was timed estimates as it did then.
    del summary["rest"]["lead_s"]
    old = estimate("n", summary, {}, {}, gpu)
    assert old.other_gpu_s == pytest.approx(rest.host_s + gpu.step_seconds(rest.ops, rest.flops))


def test_a_steps_operators_on_the_cpu_are_costed_at_their_host_time_not_as_launches():
    """A batch built row by row from Python stays on the CPU in a GPU run: its operators
    launch no kernel, and cost a GPU run what they cost here."""
    model = torch.nn.Linear(16, 16)
    opt = torch.optim.AdamW(model.parameters())

    def meter_steps(rows: int, count_all: bool = True):
        with StepMeter(count_all=count_all) as meter:
            for _ in range(7):
                batch = torch.zeros(rows, 16)  # (rows, 16), filled row by row
                for i in range(rows):
                    batch[i, : i % 16 + 1] = torch.arange(i % 16 + 1.0)
                loss = model(batch).square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return meter.loops()[0]

    few, many = meter_steps(2), meter_steps(200)
    assert many.ops_per_step - few.ops_per_step == 2 * 198  # arange and the copy into a row
    assert many.host_ops_per_step - few.host_ops_per_step == 2 * 198
    assert gpu_ops(many) == gpu_ops(few)  # the same model step on the GPU
    assert many.host_s_per_step > few.host_s_per_step > 0
    gpu = gpu_class("h100")
    assert gpu_step_seconds(many, gpu) == pytest.approx(gpu.step_seconds(
        gpu_ops(many), many.flops_per_step - many.host_flops_per_step) + many.host_s_per_step)
    est = estimate("n", {"wall_s": 1.0, "loops": [dataclasses.asdict(many)]},
                   {"steps": (7, 100)}, {}, gpu)
    assert est.loops[0]["gpu_s_per_step"] == pytest.approx(gpu_step_seconds(many, gpu))
    assert est.loops[0]["host_ops_per_step"] == many.host_ops_per_step
    # A metered real run tells no host work apart: it costs what it measured.
    sampled = meter_steps(200, count_all=False)
    assert sampled.ops_per_step == many.ops_per_step
    assert sampled.host_ops_per_step == sampled.host_s_per_step == 0


def test_a_counter_that_does_not_split_host_work_tags_nothing():
    """A metered real run's counter counts steps only: no tensor is tagged and no host
    time is split off (that is the dry run's rest)."""
    model = torch.nn.Linear(8, 8)
    counter = _counter_mode()
    with counter:
        out = model(torch.randn(2, 8)).relu()
        torch.arange(4.0).sum()
    assert counter.step.ops >= 4 and counter.other.ops == 0
    assert counter.step.host_ops == 0 and counter.step.lead_s == 0
    assert not any(hasattr(t, "_genai_report_on_device") for t in (*model.parameters(), out))
    assert RestUsage().own_host_s(gpu_class("h100")) == 0


@pytest.mark.parametrize("count_all", [False, True], ids=["sampled", "counting-all"])
def test_a_recurrent_layer_is_one_gpu_call_each_way_whatever_its_length(count_all):
    """A CPU runs nn.GRU as a loop of small operators over the time steps; a GPU calls
    cuDNN once forward and once backward. The step's operators must not grow with the
    sequence, the loop's operators are counted as kernels launched inside the call."""
    def meter_steps(length: int):
        torch.manual_seed(0)
        rnn = torch.nn.GRU(8, 16, batch_first=True)
        head = torch.nn.Linear(16, 4)
        opt = torch.optim.AdamW([*rnn.parameters(), *head.parameters()])
        x = torch.randn(4, length, 8, generator=torch.Generator().manual_seed(1))
        with StepMeter(count_all=count_all) as meter:
            for _ in range(7):
                out, _ = rnn(x)  # (B, T, H)
                loss = head(out).square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            rnn.eval()
            with torch.no_grad():  # sampling one step at a time, after training
                for t in range(length):
                    rnn(x[:, t:t + 1])
        return meter.loops()[0], meter.rest()

    (short, short_rest), (long, long_rest) = meter_steps(10), meter_steps(40)
    assert short.ops_per_step == long.ops_per_step
    assert long.kernels_per_step > short.kernels_per_step > 10 * 10  # ~10 per time step, more backward
    assert long.flops_per_step > 3 * short.flops_per_step  # the arithmetic is all still there
    if count_all:  # 30 more one-step calls, each one operator and its zero initial state
        assert long_rest.ops - short_rest.ops == 2 * 30 and long_rest.kernels > short_rest.kernels
    gpu = gpu_class("h100")
    est = estimate("n", {"wall_s": 1.0, "loops": [dataclasses.asdict(long)]},
                   {"steps": (7, 1000)}, {}, gpu)
    assert est.loops[0]["gpu_s_per_step"] == pytest.approx(gpu.step_seconds(
        est.loops[0]["gpu_ops_per_step"], long.flops_per_step - long.host_flops_per_step,
        long.kernels_per_step) + long.host_s_per_step)
    assert est.loops[0]["kernels_per_step"] == long.kernels_per_step


@pytest.mark.parametrize("count_all", [False, True], ids=["sampled", "counting-all"])
@pytest.mark.filterwarnings("ignore:There is a performance drop")
def test_an_ensembles_attention_is_one_gpu_call_each_way_whatever_its_members(count_all):
    """Under vmap a CPU runs fused attention once per member (functorch has no batching
    rule for its CPU kernel); a GPU runs it once. The step's operators must not grow with
    the members; the per-member calls, and the slicing and re-assembly around them, are
    counted as kernels inside the one call."""
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.ensemble import Ensemble

    def meter_step(members: int):
        torch.manual_seed(0)
        cfg = GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16)
        ensemble = Ensemble([GPT(cfg) for _ in range(members)])
        opt = torch.optim.AdamW(ensemble.parameters())
        x = torch.randint(0, 20, (members, 4, 16), generator=torch.Generator().manual_seed(1))
        with StepMeter(count_all=count_all) as meter:
            for _ in range(7):
                _, loss = ensemble(x, x)  # (K,)
                opt.zero_grad()
                loss.sum().backward()
                opt.step()
        return meter.loops()[0]

    one, three = meter_step(1), meter_step(3)
    assert three.ops_per_step - one.ops_per_step <= 8  # not 2 layers x 2 members x 8 more
    assert three.kernels_per_step > one.kernels_per_step + 2 * 2 * 4
    assert three.flops_per_step == pytest.approx(3 * one.flops_per_step, rel=0.01)


def test_estimate_extrapolates_loops_and_keeps_the_rest():
    gpu = GPU_CLASSES["h100"]
    usage = {"wall_s": 10.0, "peak_rss_mib": 100.0, "loops": [
        {"params": 10, "steps": 4, "cpu_s_per_step": 0.5, "ops_per_step": 100.0,
         "flops_per_step": 1e9, "measured_s": 1.5},
        {"params": 10, "steps": 40, "cpu_s_per_step": 0.1, "ops_per_step": math.nan,
         "flops_per_step": math.nan, "measured_s": 3.9},
    ]}
    est = estimate("n", usage, {"steps": (4, 1000)}, {"n_eval": (5, 50)}, gpu)
    step = gpu.step_seconds(100, 1e9)
    ratio = step / 0.5  # the uncounted loop is costed at the counted one's GPU/CPU ratio
    assert est.other_s == pytest.approx(10.0 - 1.5 - 3.9)
    assert est.other_gpu_s == est.other_s  # a meter that did not count the rest: CPU time
    assert est.gpu_full_s == pytest.approx(est.other_s + 1000 * step + 40 * 0.1 * ratio)
    assert est.cpu_full_s == pytest.approx(10.0 + 996 * 0.5)
    assert est.loops[0]["full_steps"] == 1000 and est.loops[1]["field"] is None
    assert est.not_extrapolated == ["n_eval: 5/50"]


def test_estimate_takes_loop_lengths_a_node_planned_over_the_caps():
    gpu = GPU_CLASSES["h100"]
    loop = {"params": 10, "steps": 6, "cpu_s_per_step": 0.2, "ops_per_step": 100.0,
            "flops_per_step": 1e9, "measured_s": 1.0}
    usage = {"wall_s": 5.0, "peak_rss_mib": 100.0, "loops": [loop, loop]}
    est = estimate("n", usage, {}, {"max_steps": (6, 0)}, gpu, planned=[1000, 1250])
    assert [lp["full_steps"] for lp in est.loops] == [1000, 1250]
    assert est.cpu_full_s == pytest.approx(5.0 + (994 + 1244) * 0.2)
    with pytest.raises(ValueError, match=r"3 loop\(s\) in dry_run_full_steps but ran 2"):
        estimate("n", usage, {}, {}, gpu, planned=[1, 2, 3])


def test_estimate_scales_loops_that_stand_for_several_the_overrides_cut():
    """A node whose dry run trains one seed and one LoRA rank of three each declares which
    cut fields each loop stands for; the estimate counts the loops it did not run."""
    gpu = GPU_CLASSES["h100"]
    loop = {"params": 10, "steps": 6, "cpu_s_per_step": 0.2, "ops_per_step": 100.0,
            "flops_per_step": 1e9, "measured_s": 1.0}
    usage = {"wall_s": 5.0, "peak_rss_mib": 100.0, "loops": [loop, loop]}
    caps = {"steps": (6, 400)}
    overrides = {"seeds": (1, 3), "ranks": ((4,), (1, 8, 64)), "eval_batches": (1, 20)}
    plain = estimate("n", usage, caps, overrides, gpu)
    est = estimate("n", usage, caps, overrides, gpu, repeated=[["seeds"], ["seeds", "ranks"]])
    step = plain.loops[0]["gpu_s_per_step"]
    assert [lp["repeats"] for lp in est.loops] == [3, 9]
    assert est.gpu_full_s - plain.gpu_full_s == pytest.approx((2 + 8) * 400 * step)
    assert est.cpu_full_s - plain.cpu_full_s == pytest.approx((2 + 8) * 400 * 0.2)
    assert "seeds: 1/3 (its loops scaled)" in est.not_extrapolated
    assert "eval_batches: 1/20" in est.not_extrapolated
    # a field the overrides did not cut ran every time already
    assert estimate("n", usage, caps, {}, gpu, repeated=[["seeds"], None]).gpu_full_s == (
        pytest.approx(estimate("n", usage, caps, {}, gpu).gpu_full_s))
    with pytest.raises(ValueError, match=r"must be a list of field names or null"):
        estimate("n", usage, caps, overrides, gpu, repeated=["seeds", None])
    with pytest.raises(ValueError, match="'eval_batches', whose values"):
        estimate("n", usage, caps, {"eval_batches": ("a", "b")}, gpu,
                 repeated=[["eval_batches"], None])
    with pytest.raises(ValueError, match=r"1 loop\(s\) in .* but ran 2"):
        estimate("n", usage, caps, overrides, gpu, repeated=[None])


def test_estimate_extrapolates_a_loop_derived_from_a_step_field():
    """A control trained on as many tokens as another model runs round(1.5 * steps): 9 of
    a dry run's 6, so no field's length matches it; the node's declaration does."""
    gpu = GPU_CLASSES["h100"]
    loop = {"params": 10, "steps": 6, "cpu_s_per_step": 0.2, "ops_per_step": 100.0,
            "flops_per_step": 1e9, "measured_s": 1.0}
    usage = {"wall_s": 5.0, "peak_rss_mib": 100.0, "loops": [loop, {**loop, "steps": 9}]}
    caps = {"steps": (6, 1500)}
    undeclared = estimate("n", usage, caps, {}, gpu)
    assert [lp["full_steps"] for lp in undeclared.loops] == [1500, 9]  # what went wrong
    est = estimate("n", usage, caps, {}, gpu, derived=[None, ["steps", 1.5]])
    assert [lp["full_steps"] for lp in est.loops] == [1500, 2250]
    assert est.gpu_full_s > undeclared.gpu_full_s
    with pytest.raises(ValueError, match=r"loop 1 ran 9 steps.*round\(2 \* steps\) = 12"):
        estimate("n", usage, caps, {}, gpu, derived=[None, ["steps", 2.0]])
    with pytest.raises(ValueError, match=r"must be \[field, factor\] or null"):
        estimate("n", usage, caps, {}, gpu, derived=[None, "steps"])
    with pytest.raises(ValueError, match=r"1 loop\(s\) in .* but ran 2"):
        estimate("n", usage, caps, {}, gpu, derived=[None])
    # a field the dry run did not cut: the loop ran its full length already
    assert estimate("n", usage, {}, {}, gpu, derived=[None, ["steps", 1.5]]).loops[1][
        "full_steps"] == 9


def test_the_gpu_is_busy_for_the_arithmetic_and_each_kernel_of_a_step():
    gpu = GPU_CLASSES["h100"]
    usage = {"wall_s": 10.0, "peak_rss_mib": 100.0, "loops": [
        {"params": 10, "steps": 4, "cpu_s_per_step": 0.5, "ops_per_step": 100.0,
         "flops_per_step": 1e9, "measured_s": 1.5, "kernels_per_step": 20.0,
         "host_ops_per_step": 30.0, "host_flops_per_step": 1e8, "host_s_per_step": 0.001}]}
    est = estimate("n", usage, {"steps": (4, 1000)}, {}, gpu)
    # The 70 GPU operators, their 20 inner kernels and the GPU's FLOPs, 1000 times; the
    # operators on the CPU and the host's launch path are not the GPU's time.
    per_step = 90 * gpu.busy_us * 1e-6 + 9e8 / (gpu.fp32_tflops * 1e12 * gpu.efficiency)
    assert est.busy_s == pytest.approx(1000 * per_step)
    assert 0 < est.busy_s < est.gpu_full_s
    # A loop that was never counted is all busy, so that a schedule is never too hopeful.
    usage["loops"][0].update(ops_per_step=math.nan, flops_per_step=math.nan)
    uncounted = estimate("n", usage, {"steps": (4, 1000)}, {}, gpu)
    assert uncounted.busy_s == pytest.approx(uncounted.gpu_full_s - uncounted.other_gpu_s)


def _est(node, seconds, busy, *deps, peak=None, peak_gpu=None):
    return NodeEstimate(node=node, dry_wall_s=1.0, peak_rss_mib=peak, gpu_full_s=seconds,
                        busy_s=busy, deps=list(deps), peak_gpu_mib=peak_gpu)


def test_the_schedule_of_nodes_at_once_is_bounded_by_the_chain_and_the_busy_gpu():
    nodes = [_est("model", 100.0, 10.0), _est("plot", 50.0, 5.0, "model"),
             _est("a", 60.0, 30.0), _est("b", 60.0, 30.0)]
    one = schedule_estimates(nodes, 1)
    assert one.wall_s == one.serial_s == 270.0 and one.predicted_s == 270.0
    two = schedule_estimates(nodes, 2)  # model and its plot on one worker, a and b on the other
    assert (two.wall_s, two.chain_s, two.busy_s) == (150.0, 150.0, 75.0)
    assert two.predicted_s == 150.0
    # When the nodes' GPU work adds up to more than the schedule, the GPU is the bound.
    busy = [dataclasses.replace(e, busy_s=e.gpu_full_s * 0.9) for e in nodes]
    assert schedule_estimates(busy, 4).predicted_s == pytest.approx(0.9 * 270.0)
    with pytest.raises(ConfigError, match="--gpu-jobs must be at least 1"):
        schedule_estimates(nodes, 0)


def test_the_schedule_adds_up_the_largest_peaks_of_memory_that_may_meet():
    nodes = [_est("a", 1.0, 0.0, peak=1000.0), _est("b", 1.0, 0.0, peak=3000.0),
             _est("c", 1.0, 0.0, peak=2000.0, peak_gpu=500.0), _est("d", 1.0, 0.0)]
    # c's GPU peak stands for it where measured; d measured none.
    assert schedule_estimates(nodes, 2).memory_mib == 4000.0
    assert schedule_estimates(nodes, 3).memory_mib == 4500.0
    assert not schedule_estimates(nodes, 2).memory_on_gpu
    on_gpu = [_est("a", 1.0, 0.0, peak=9e3, peak_gpu=100.0),
              _est("b", 1.0, 0.0, peak=9e3, peak_gpu=200.0)]
    plan = schedule_estimates(on_gpu, 4)
    assert plan.memory_mib == 300.0 and plan.memory_on_gpu


def test_unknown_gpu_class_names_the_known_ones():
    with pytest.raises(ConfigError, match="Unknown GPU class 'h10'.*h100"):
        gpu_class("h10")


NODES = '''
import json
from dataclasses import dataclass

from genai_report.pipeline.registry import Node


@dataclass(frozen=True)
class T:
    steps: int
    width: int
    fail: bool = False
    factor: float = 0.0  # above 0: declare the loop derived from steps by this factor


def train(ctx, p):
    import torch
    if p.fail:
        raise RuntimeError("exploded on purpose")
    gen = ctx.generator()
    model = torch.nn.Linear(p.width, p.width)
    opt = torch.optim.AdamW(model.parameters())
    for _ in range(p.steps):
        loss = model(torch.randn(8, p.width, generator=gen)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ctx.output("w.json").write_text(json.dumps({"steps": p.steps}))
    if p.factor:
        return {"dry_run_derived_steps": [["steps", p.factor]]}


def plot(ctx, p):
    steps = json.loads(ctx.input("train", "w.json").read_text())["steps"]
    ctx.output("plot.svg").write_text(f"<svg>{steps}</svg>")
    return {"steps": steps}


def make_nodes(fail=False, factor=0.0):
    params = {"smoke": T(2, 4), "quick": T(50, 16), "full": T(2000, 32, fail, factor)}
    return [Node("train", train, "artifact", params, ("w.json",)),
            Node("plot", plot, "figure", params, ("plot.svg",), deps=("train",), alt="x")]
'''


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    name = f"dry_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "nodes.py").write_text(textwrap.dedent(NODES))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    def registry(**kw):
        sys.modules.pop(f"{name}.nodes", None)
        reg = Registry()
        for node in importlib.import_module(f"{name}.nodes").make_nodes(**kw):
            reg.add(node)
        return reg

    return registry


def test_dry_run_runs_full_sizes_briefly_in_a_scratch_cache(tiny, tmp_path):
    scratch = tmp_path / "scratch"
    report = dry_run(tiny(), tmp_path, gpu="a100", cache_dir=scratch, show_progress=False)
    assert report.ok and [e.node for e in report.estimates] == ["train", "plot"]
    train = report.estimates[0]
    assert train.loops[0]["dry_steps"] == 6 and train.loops[0]["full_steps"] == 2000
    assert train.loops[0]["params"] == 32 * 32 + 32  # the full width ran
    assert train.gpu_full_s > 0 and train.cpu_full_s > train.dry_wall_s
    # The figure saw the cut artifact; nothing went near the project's real outputs.
    assert json.loads((scratch / "full" / "plot" / "record.json").read_text())[
        "metrics"] == {"steps": 6}
    assert not (tmp_path / "figures").exists()
    data = report.as_json()
    assert data["gpu"] == "a100" and set(data["nodes"]) == {"train", "plot"}
    assert "Predicted full profile on one NVIDIA A100" in report.table()
    assert f"with {GPU_JOBS} at once" in report.table()
    # The schedule's nodes wait for their dependencies: the plot for the model it reads.
    assert report.estimates[1].deps == ["train"] and report.estimates[0].deps == []
    plan = data["schedule"]
    assert plan["jobs"] == GPU_JOBS and plan["serial_s"] == pytest.approx(
        data["total_gpu_s"], abs=0.1)
    assert plan["chain_s"] == pytest.approx(plan["wall_s"], rel=1e-3)  # a chain of two
    assert plan["predicted_s"] == pytest.approx(max(plan["wall_s"], plan["busy_s"]), rel=1e-3)


def test_a_declaration_that_does_not_fit_the_loops_fails_its_node(tiny, tmp_path):
    """A node whose declared derived loop length disagrees with the loop it ran is named
    among the failures, with the fix; the estimate of the rest still comes out."""
    fits = dry_run(tiny(factor=1.0), tmp_path, show_progress=False)
    assert fits.ok and fits.estimates[0].loops[0]["full_steps"] == 2000
    wrong = dry_run(tiny(factor=2.0), tmp_path, show_progress=False)
    assert list(wrong.failed) == ["train"]
    assert "loop 0 ran 6 steps" in wrong.failed["train"]
    assert "Fix the node's declaration" in wrong.failed["train"]
    assert [e.node for e in wrong.estimates] == ["plot"]


def test_a_kept_scratch_cache_makes_the_next_dry_run_incremental(tiny, tmp_path):
    scratch = tmp_path / "scratch"
    first = dry_run(tiny(), tmp_path, cache_dir=scratch, show_progress=False)
    again = dry_run(tiny(), tmp_path, cache_dir=scratch, show_progress=False)
    assert first.reused == [] and sorted(again.reused) == ["plot", "train"]
    # The estimate of a reused node comes from its record: the same numbers.
    assert again.as_json()["nodes"] == first.as_json()["nodes"]
    assert "2 of them reused from the scratch cache" in again.table()
    forced = dry_run(tiny(), tmp_path, cache_dir=scratch, show_progress=False, force=True)
    assert forced.reused == [] and forced.ok
    # An entry metered by another version of the meter is measured again.
    record = scratch / "full" / "train" / "record.json"
    data = json.loads(record.read_text())
    data["usage"]["meter_version"] = 1
    record.write_text(json.dumps(data))
    remeasured = dry_run(tiny(), tmp_path, cache_dir=scratch, show_progress=False)
    assert "train" not in remeasured.reused and remeasured.ok


def test_the_estimate_table_shows_what_the_estimate_file_holds(tiny, tmp_path):
    from genai_report.mkdocs_plugin.plugin import estimate_table

    data = dry_run(tiny(), tmp_path, gpu="l4", show_progress=False).as_json()
    data["nodes"]["train"]["gpu_full_s"] = 300.0  # over the 240 s goal
    text = estimate_table(data, shown_over_s=0.0)
    assert "Predicted on one NVIDIA L4 (s)" in text
    assert "| `train` |" in text and "6 → 2000" in text and "**over the goal**" in text
    assert "1 node(s) over the 240 s goal per node" in text
    outside = sum(e["other_gpu_s"] for e in data["nodes"].values()) / 60
    assert (f"Of the total, {outside:.1f} min is the nodes' work outside their optimiser loops"
            in text and "its operators costed on the GPU" in text)
    assert f"| {data['nodes']['train']['other_gpu_s']:.0f} | 300 **over the goal** |" in text
    total = data["total_gpu_s"] / 60
    assert f"**{total:.1f} min**" in text
    assert "other nodes" in estimate_table(data, shown_over_s=1e9)
    assert "does not scale back up" not in text
    plan = data["schedule"]
    assert (f"With {plan['jobs']} nodes at once on that GPU (`--jobs {plan['jobs']}`), the "
            f"runner's own schedule of these predictions takes **{plan['wall_s'] / 60:.1f} min**"
            in text and f"longest chain of dependent nodes, {plan['chain_s'] / 60:.1f} min" in text)
    data["schedule"]["busy_s"] = data["schedule"]["predicted_s"] = 10 * plan["wall_s"]
    assert (f"which is the bound here: **{10 * plan['wall_s'] / 60:.1f} min**."
            in estimate_table(data))
    peaks = sorted((e["peak_rss_mib"] for e in data["nodes"].values()), reverse=True)
    assert (f"largest peaks of memory add up to {sum(peaks[:GPU_JOBS]) / 1024:.1f} GiB of the "
            "card's 24 GiB (measured on the CPU" in estimate_table(data))
    data["schedule"]["memory_mib"] = 30 * 1024.0
    assert "**more than it holds**" in estimate_table(data)
    del data["schedule"]  # an estimate file from before the schedule
    assert "nodes at once" not in estimate_table(data)
    for node in data["nodes"].values():  # an estimate file from meter version 2
        del node["other_gpu_s"]
    assert "at this machine's CPU time, an upper bound" in estimate_table(data)
    data["nodes"]["train"]["not_extrapolated"] = ["n_eval: 200/10000"]
    assert ("1 node(s) ran part of their work at a smaller size that the estimate does not "
            "scale back up (their `dry_run` overrides; the estimate file lists each field, dry "
            "and full): `train`." in estimate_table(data))


def test_dry_run_reports_a_failing_node_and_skips_its_dependents(tiny, tmp_path):
    report = dry_run(tiny(fail=True), tmp_path, show_progress=False)
    assert not report.ok
    assert "exploded on purpose" in report.failed["train"]
    assert "plot" in report.skipped


def test_dry_run_refuses_the_real_outputs_folder(tiny, tmp_path):
    with pytest.raises(ConfigError, match="never writes into"):
        dry_run(tiny(), tmp_path, cache_dir=tmp_path / "figures", show_progress=False)


def test_dry_run_of_real_full_profile_models(tmp_path):
    """The report's own full-size digit models run a few steps each, and extrapolate."""
    from genai_report.pipeline import load_registry

    registry = load_registry()
    only = ("digits-classifier", "digits-vae", "digits-gan")
    report = dry_run(registry, tmp_path, only=only, show_progress=False)
    assert report.ok, report.failed
    by_name = {e.node: e for e in report.estimates}
    for name in only:
        full = registry.get(name).params_for("full")
        loops = by_name[name].loops
        assert loops and all(lp["full_steps"] == full.steps for lp in loops)
        assert by_name[name].gpu_full_s > 0 and by_name[name].peak_rss_mib
    assert len(by_name["digits-gan"].loops) == 2  # generator and discriminator


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cli_dry_run_on_a_gpu_needs_one(monkeypatch, caplog, tmp_path):
    from genai_report.cli import main

    monkeypatch.setenv("GENAI_REPORT_DEVICE", "cuda")
    assert main(["figures", "--profile", "full", "--dry-run", "--only", "digits-vae",
                 "--scratch", str(tmp_path / "scratch")]) == 2
    assert "Device 'cuda' was requested but torch" in caplog.text
    assert "Install a CUDA build of torch" in caplog.text


def test_cli_dry_run_refuses_no_nodes_at_once(caplog):
    from genai_report.cli import main

    assert main(["figures", "--profile", "full", "--dry-run", "--gpu-jobs", "0",
                 "--only", "digits-vae"]) == 2
    assert "--gpu-jobs must be at least 1, not 0" in caplog.text


def test_a_timed_dry_run_extrapolates_the_steps_it_timed(tiny, tmp_path):
    """A dry run on a GPU times each step (to the GPU's end) instead of counting every
    operator, and the estimate extrapolates those times. Its path runs here on the CPU."""
    scratch = tmp_path / "scratch"
    counted = dry_run(tiny(), tmp_path, cache_dir=scratch, show_progress=False)
    timed = dry_run(tiny(), tmp_path, cache_dir=scratch, show_progress=False, timed=True)
    # A counted entry is no timed one: the kept scratch cache's entries run again.
    assert timed.ok and timed.reused == [] and timed.timed_on == "cpu"
    train = timed.estimates[0]
    loop = train.loops[0]
    assert loop["dry_steps"] == TIMED_CAP and loop["full_steps"] == 2000  # more steps timed
    # Each step costs what it took here; the rest what it took here.
    assert loop["gpu_s_per_step"] == loop["cpu_s_per_step"]
    assert train.gpu_full_s == pytest.approx(train.other_gpu_s + 2000 * loop["cpu_s_per_step"])
    assert train.other_gpu_s == train.other_s
    record = json.loads((scratch / "full" / "train" / "record.json").read_text())
    assert record["usage"]["timed"] is True and record["usage"]["rest"] is None
    assert "extrapolated from the steps timed on cpu" in timed.table()
    assert timed.as_json()["timed_on"] == "cpu" and counted.as_json()["timed_on"] is None
    from genai_report.mkdocs_plugin.plugin import estimate_table

    assert "extrapolated from its steps timed on cpu, node after node" in estimate_table(
        timed.as_json())
    assert "on one NVIDIA H100 SXM, node after node" in estimate_table(counted.as_json())
    # The busy time comes from the operators of the steps it counted (one in three).
    assert 0 < train.busy_s < train.gpu_full_s
    again = dry_run(tiny(), tmp_path, cache_dir=scratch, show_progress=False, timed=True)
    assert sorted(again.reused) == ["plot", "train"]  # the timed entries are kept
    with pytest.raises(ConfigError, match="Counting every operator is a CPU dry run"):
        dry_run(tiny(), tmp_path, device="cuda", timed=False, show_progress=False)
    with pytest.raises(ConfigError, match="not on 'tpu'"):
        dry_run(tiny(), tmp_path, device="tpu", show_progress=False)


def test_a_timed_meter_counts_some_steps_and_cannot_count_all():
    with pytest.raises(ValueError, match="cannot also synchronise"):
        StepMeter(count_all=True, sync=True)
    model = torch.nn.Linear(4, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with StepMeter(sync=True) as meter:
        for _ in range(9):
            model(torch.randn(2, 4)).sum().backward()
            opt.step()
    summary = meter.summary()
    assert summary["timed"] is True
    (loop,) = summary["loops"]
    assert loop["steps"] == 9 and loop["ops_per_step"] > 0 and loop["cpu_s_per_step"] > 0


def test_run_options_refuse_an_unknown_meter():
    from genai_report.pipeline.runner import RunOptions

    with pytest.raises(ConfigError, match="meter must be False, True, 'all' or 'timed'"):
        RunOptions(meter="everything")


def test_metered_usage_is_strict_json():
    with StepMeter() as meter:
        model = torch.nn.Linear(4, 4)
        opt = torch.optim.SGD(model.parameters())
        _linear_step(model, opt, torch.ones(2, 4))  # one step: nothing timed or counted
    text = json.dumps(meter.summary(), allow_nan=False)
    assert json.loads(text)["loops"][0]["ops_per_step"] is None
