"""A dry run of a profile: full-size models and batches, a few optimisation steps each.

The ``full`` profile is what a release publishes, on a GPU. A shape error, a batch that
does not fit or a node that would take hours should not first be met by the release job.
``genai-report figures --profile full --dry-run`` runs every node with its ``full``
parameters except the lengths of its optimisation loops, which are cut to a few steps, on
the CPU and in a scratch cache, so every full-size model, batch and figure code path runs
end to end in minutes. While it runs, a :class:`StepMeter` in each node's process times
every optimiser step and counts every operator the node dispatches and its floating-point
operations, inside its steps and outside them. From those and the node's real step counts,
:func:`estimate` predicts each node's full run on a named GPU class.

How the pieces fit:

* :func:`dry_params` cuts each step field (:data:`STEP_FIELDS`) to its own small value
  (6, 8, 10, ...: two apart, so that an optimiser that made 8 steps, or 9 for a loop over
  ``range(steps + 1)``, is known to belong to the loop of the field cut to 8), clamps
  fields that must stay below them
  (:data:`CLAMPED`) and applies the node's own ``dry_run`` overrides (sample counts that
  would keep a CPU busy for minutes; these are *not* extrapolated, so they are listed in
  the report).
* :class:`StepMeter` hangs on PyTorch's global optimiser hooks, so it needs no change to
  any training loop (and no node's cache key changes). The time between two consecutive
  optimiser steps, of any optimiser, is one *segment*, charged to the optimiser that
  stepped at its end: for a GAN's alternating players each gets its own half of the
  iteration. In a dry run every operator runs under a counter (the counter's own cost
  per operator is measured when the meter starts and taken out of every time); a metered
  real run counts only every third segment and times the others. Each optimiser's first
  segment, which holds the set-up before its loop, belongs to the node's *rest*, as does
  everything after the last step. The counter tells a step's own operators from an
  evaluation (``no_grad`` work that starts in the forward pass of a module in ``eval()``
  mode): a node that evaluates every ``steps // 5`` steps evaluates at every step of a
  cut loop, and that work goes to the node's rest, not to each step. A recurrent layer
  (:data:`FUSED_ON_GPU`), which a CPU runs as a loop of small operators and a GPU as one
  cuDNN call, counts as one operator forward and one backward; its loop's operators count
  as kernels launched inside the call.
* :func:`estimate` models a GPU step as ``ops * op_overhead + kernels * kernel_launch +
  flops / sustained_flops + host``:
  small models such as ours are bound by launching kernels, not by arithmetic. ``ops``
  leaves out the step's operators on tensors a GPU run keeps on the CPU (a batch built
  row by row), which launch nothing; ``host`` is what those took here. The
  node's rest (data, sampling, evaluation, plotting) is costed the same way for the
  operators a GPU run would run on the GPU, plus its host time, which a GPU does not
  speed up: the seconds outside those operators (Python, NumPy, Matplotlib, and the
  operators on tensors that stay on the CPU, such as a data set built row by row; see
  :data:`_ON_DEVICE`), less the path issuing each GPU operator, which the per-operator
  overhead already prices (:attr:`Tally.lead_s`). A notebook's kernel, another process,
  meters itself and hands the result to the node's meter (:meth:`StepMeter.absorb`).

The GPU classes' constants are public peak numbers scaled by an efficiency, and the
per-operator overhead was calibrated against a measured ``full`` run on an H200 (see
:data:`GPU_CLASSES`); the estimate is a planning number, not a benchmark.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_report.pipeline import schedule
from genai_report.pipeline.errors import ConfigError, did_you_mean

log = logging.getLogger(__name__)

STEP_FIELDS: tuple[str, ...] = ("steps", "rm_steps", "rl_steps")
"""Parameter fields that count optimisation steps; a dry run cuts each to a few."""

FIRST_CAP = 6
"""The smallest step count a dry run gives a loop: one warm-up step, then timed and counted
ones (every third is counted). With two evaluations, after steps 3 and 6, an evaluation
lands in one timed step (the median drops it) and in no counted one."""

TIMED_CAP = 24
"""The first step field's length in a dry run on a GPU (:func:`dry_run` with an accelerator):
steps there take milliseconds, so more of them are timed (two in three), for a steadier
median."""

CAP_SPACING = 2
"""How far apart the step fields' dry lengths are: a loop over ``range(steps + 1)`` runs one
step more than its field, and must still match no other field's length."""

CLAMPED: dict[str, Any] = {"warmup_steps": 1, "evals": 2, "checkpoints": 2, "compile": False}
"""Fields a dry run sets no higher than this: warm-up must fit in the cut loop, periodic
evaluations and checkpoints run twice, and ``torch.compile`` on a CPU
builds C++ for minutes (the compiled path is a GPU path)."""

DRY_RUN_SUFFIX = "-dry-run"
"""Folder suffix of a kept scratch cache (never a real profile's folder)."""

METER_VERSION = 7
"""What :class:`StepMeter` counts, versioned: a kept scratch cache's entry metered by another
version is measured again (2: evaluations between steps are no longer charged to steps;
3: a dry run counts the node's work outside its steps too; 4: and tells the operators that
a GPU run would keep on the CPU from those it would run on the GPU; 5: and times the host
path issuing each of the latter, which the per-operator cost already holds; 6: a step's
operators on the CPU and its own host time are told apart from its GPU work as the rest's
are, and the counter's cost is calibrated as the median of interleaved rounds; 7: fused
attention is one call each way, also under vmap, whose batched tensors it unwraps)."""


@dataclass(frozen=True)
class GPUClass:
    """What a GPU class does for a small eager PyTorch model.

    Attributes:
        name: the product name shown in reports.
        fp32_tflops: peak dense FP32 throughput (TF32 is off by default for matmuls).
        efficiency: the fraction of peak a small model's kernels sustain.
        op_overhead_us: seconds per dispatched operator (launch plus Python and dispatcher
            overhead on the host), in microseconds.
        memory_gib: the card's memory.
        kernel_us: microseconds per kernel that a fused operator launches from inside its
            own C++ (cuDNN's loop over an RNN's time steps): a launch, with no Python and no
            dispatcher in between. An assumption, not yet fitted to a measured run.
        busy_us: microseconds the GPU itself is busy with one small kernel (the shortest a
            kernel runs), which nodes running at once cannot share. Part of
            ``op_overhead_us``, which is mostly the host's; an assumption, not yet fitted.
    """

    name: str
    fp32_tflops: float
    efficiency: float
    op_overhead_us: float
    memory_gib: float
    kernel_us: float = 5.0
    busy_us: float = 2.0

    def step_seconds(self, ops: float, flops: float, kernels: float = 0.0) -> float:
        """Predicted seconds of one step that dispatches ``ops`` operators and ``flops``,
        and whose fused operators launch ``kernels`` more kernels inside them."""
        return (ops * self.op_overhead_us * 1e-6 + kernels * self.kernel_us * 1e-6
                + self.flop_seconds(flops))

    def busy_seconds(self, ops: float, flops: float, kernels: float = 0.0) -> float:
        """Seconds the GPU itself is busy with ``ops`` operators, ``kernels`` kernels launched
        inside fused ones and ``flops``: its arithmetic, and at least :attr:`busy_us` per
        kernel. Nodes running at once share this time; their host time they do not."""
        return (ops + kernels) * self.busy_us * 1e-6 + self.flop_seconds(flops)

    def flop_seconds(self, flops: float) -> float:
        """Seconds of ``flops`` at the class's sustained rate (a fraction of FP32 peak)."""
        return flops / (self.fp32_tflops * 1e12 * self.efficiency)


GPU_CLASSES: dict[str, GPUClass] = {
    # op_overhead_us: fitted to the measured steps of the H200 run of 2026-11-30 (four
    # nodes at once on a 16-core virtual machine; benchmarks/results/, and
    # `benchmarks/bench_full_gpu.py compare`): 42 us per operator, host work and the
    # per-step synchronisation included. The other classes share the host-bound path.
    "h100": GPUClass("NVIDIA H100 SXM", fp32_tflops=67.0, efficiency=0.3, op_overhead_us=42.0,
                     memory_gib=80),
    "h200": GPUClass("NVIDIA H200", fp32_tflops=67.0, efficiency=0.3, op_overhead_us=42.0,
                     memory_gib=141),
    "a100": GPUClass("NVIDIA A100 SXM", fp32_tflops=19.5, efficiency=0.3, op_overhead_us=42.0,
                     memory_gib=80),
    "l4": GPUClass("NVIDIA L4", fp32_tflops=30.3, efficiency=0.25, op_overhead_us=45.0,
                   memory_gib=24),
}
"""The GPU classes an estimate can be made for (``--gpu``)."""

DEFAULT_GPU = "h100"

LEAD_CAP_S: float = max(c.op_overhead_us for c in GPU_CLASSES.values()) * 1e-6
"""The most host time before one operator that counts as the path issuing it (``lead_s``
of a :class:`Tally`): no more than any GPU class charges per operator, so that the host
time left is work of its own (a plot, a data set built in Python, a file written), never
the launch path that :attr:`GPUClass.op_overhead_us` already costs."""

NODE_BUDGET_S = 240.0
"""The goal for one node of the ``full`` profile on the default GPU class."""

PROFILE_BUDGET_S = 1200.0
"""The goal for the whole ``full`` profile on the default GPU class."""

GPU_JOBS = 4
"""Nodes at once on one GPU in the estimate's schedule (``--gpu-jobs``): the concurrency of
the measured run that :attr:`GPUClass.op_overhead_us` was fitted to (four nodes at once on a
16-core machine), so each node's predicted time already holds what sharing the GPU with
three others cost it then. Another count extrapolates from that run."""


def gpu_class(name: str) -> GPUClass:
    """The :class:`GPUClass` called ``name``, or a ConfigError listing them."""
    try:
        return GPU_CLASSES[name.lower()]
    except KeyError:
        raise ConfigError(
            f"Unknown GPU class '{name}'.{did_you_mean(name.lower(), GPU_CLASSES)} "
            f"Known classes: {', '.join(GPU_CLASSES)}."
        ) from None


# -- parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DryParams:
    """A node's dry-run parameters and what was cut.

    Attributes:
        params: the parameters the node runs with.
        caps: step field -> ``(dry value, full value)``; extrapolated by the estimate.
        overrides: other field -> ``(dry value, full value)``; not extrapolated.
    """

    params: Any
    caps: dict[str, tuple[int, int]]
    overrides: dict[str, tuple[Any, Any]]


def dry_params(params: Any, overrides: Mapping[str, Any] | None = None,
               first_cap: int = FIRST_CAP) -> DryParams:
    """Cut a node's parameters for a dry run.

    Args:
        params: the profile's parameters (a dataclass; anything else runs unchanged).
        overrides: the node's ``dry_run`` field -> value.
        first_cap: the step count of the first step field; the next get
            :data:`CAP_SPACING` more each.

    Raises:
        ConfigError: an override names a field the parameters lack.
    """
    overrides = dict(overrides or {})
    if not dataclasses.is_dataclass(params):
        if overrides:
            raise ConfigError(f"dry_run overrides {sorted(overrides)} need dataclass parameters.")
        return DryParams(params, {}, {})
    names = [f.name for f in dataclasses.fields(params)]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise ConfigError(
            f"dry_run overrides {unknown} are not fields of {type(params).__name__}"
            f"{did_you_mean(unknown[0], names)} (fields: {', '.join(names)})."
        )
    changes: dict[str, Any] = {}
    caps: dict[str, tuple[int, int]] = {}
    cap = first_cap
    for name in STEP_FIELDS:
        full = getattr(params, name, None)
        if name in names and isinstance(full, int) and not isinstance(full, bool):
            if full > cap:
                changes[name] = cap
                caps[name] = (cap, full)
            cap += CAP_SPACING
    for name, bound in CLAMPED.items():
        value = getattr(params, name, None)
        if name in names and value is not None and type(value) is type(bound) and value > bound:
            changes[name] = bound
    done: dict[str, tuple[Any, Any]] = {}
    for name, value in overrides.items():
        done[name] = (value, getattr(params, name))
        changes[name] = value
    return DryParams(dataclasses.replace(params, **changes), caps, done)


# -- metering -----------------------------------------------------------------------------

FUSED_ON_GPU: frozenset[str] = frozenset({"gru", "lstm", "rnn_tanh", "rnn_relu",
                                          "scaled_dot_product_attention"})
"""Operators that a CPU runs as many small operators but a GPU as one call. PyTorch's
recurrent layers loop over the time steps in ATen on a CPU (about ten operators per step and
layer, each seen by the counter; an LSTM may already be one oneDNN operator there) and call
cuDNN once forward and once backward on a GPU. Fused attention under ``vmap`` (an
:class:`~genai_report.training.ensemble.Ensemble`) runs once per member on a CPU, where
functorch has no batching rule for its CPU kernel (with the slicing and the gradients'
re-assembly around each), and once for all members on a GPU, whose kernels have one. The
counter charges such a call one operator each way and every other operator of the CPU's
version as a kernel launched inside it (:attr:`GPUClass.kernel_us`): an upper bound, since
cuDNN fuses a time step's gates and the batched attention launches none of them."""

_FUSED_KEY = "genai_report.dryrun.fused"
"""Key in an autograd node's ``metadata``: the fused call whose forward pass made it."""

_ON_DEVICE = "_genai_report_on_device"
"""Attribute the counter sets on a tensor that a GPU run would hold on the GPU: a module's
parameters and buffers, and every result of an operator that reads such a tensor (or one
that requires a gradient) or that runs inside a module's forward pass. An operator outside
any module that reads none of them (building a data set from Python lists, indexing it for
a batch) would run on the CPU in a GPU run too."""


@dataclass
class Tally:
    """What the operator counter saw in one of its two buckets: a step's own work, or the
    work that is no step (an evaluation; see :func:`_counter_mode`).

    Attributes:
        ops: operators, views excepted, that are no kernel of a fused call.
        flops: floating-point operations of every operator.
        kernels: operators inside a call of :data:`FUSED_ON_GPU` after its first: kernels
            the call launches on a GPU.
        dispatches: every operator seen, views included (each costs the counter's
            calibrated overhead).
        op_s: seconds inside the operators themselves.
        handler_s: seconds in the counter's handler itself.
        host_ops, host_flops, host_op_s: the share of ``ops``, ``flops`` and ``op_s`` on
            tensors that a GPU run keeps on the CPU (:data:`_ON_DEVICE`; a dry run only).
        lead_s: host seconds just before each operator (views included) on tensors a GPU
            run holds on the GPU, at most :data:`LEAD_CAP_S` each: the Python and
            dispatcher path that issues it, which a GPU's per-operator cost
            (:attr:`GPUClass.op_overhead_us`) already holds.
        host_lead_s: the same path before each operator on tensors a GPU run keeps on the
            CPU (the Python building a batch row by row), at most :data:`LEAD_CAP_S` each.
            With ``host_op_s``, what those operators cost on any machine.
    """

    ops: int = 0
    flops: int = 0
    kernels: int = 0
    dispatches: int = 0
    op_s: float = 0.0
    handler_s: float = 0.0
    host_ops: int = 0
    host_flops: int = 0
    host_op_s: float = 0.0
    lead_s: float = 0.0
    host_lead_s: float = 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                        for f in dataclasses.fields(self)})

    def __sub__(self, other: Tally) -> Tally:
        return Tally(**{f.name: getattr(self, f.name) - getattr(other, f.name)
                        for f in dataclasses.fields(self)})


@dataclass
class Segment:
    """The time between two optimiser steps, charged to the optimiser at its end.

    Attributes:
        loop, step: the optimiser's loop and its step that ended the segment.
        seconds: the segment's wall time.
        counted: whether the counter ran through it (then ``step_work``, ``other``,
            ``calls`` and ``optimizer_ops`` hold what it saw).
        step_work: the step's own operators.
        other: the operators that are no step (evaluations).
        calls: torch functions called (each costs the counter's function mode overhead).
        optimizer_ops: of ``step_work.ops``, the optimiser's own.
    """

    loop: int
    step: int
    seconds: float
    counted: bool = False
    step_work: Tally = field(default_factory=Tally)
    other: Tally = field(default_factory=Tally)
    calls: int = 0
    optimizer_ops: int = 0

    @property
    def total(self) -> Tally:
        """Both buckets together."""
        return self.step_work + self.other


@dataclass
class LoopUsage:
    """One optimiser's loop, as a dry run saw it.

    Attributes:
        params: trainable parameters of the optimiser (the model's size).
        steps: steps it made in the dry run.
        cpu_s_per_step: median seconds of its timed steps on the device the node ran on
            (the CPU in a dry run; ``nan`` if none).
        ops_per_step: operators one counted step dispatched (``nan`` if none counted).
        optimizer_ops: of those, the optimiser's own. On a CPU, PyTorch's optimisers loop
            over the parameters; on a GPU they use fused ``foreach`` kernels, a few per
            parameter group (:data:`FOREACH_OPS`), which the estimate counts instead.
        groups: the optimiser's parameter groups.
        flops_per_step: floating-point operations of that step.
        measured_s: seconds of its steps after the first, the work between steps
            excepted.
        between_steps_s: seconds of work under ``no_grad`` between its steps
            (evaluations), estimated from the counted steps; the node's rest, not steps.
        kernels_per_step: kernels that the step's fused operators (:data:`FUSED_ON_GPU`)
            launch inside them on a GPU, beyond ``ops_per_step``.
        host_ops_per_step, host_flops_per_step: of ``ops_per_step`` and
            ``flops_per_step``, the share on tensors a GPU run keeps on the CPU (a batch
            built row by row; :data:`_ON_DEVICE`). They launch no kernel.
        host_s_per_step: median seconds a step spends on those operators, their own time
            and the path issuing each (:attr:`Tally.host_lead_s`): what they cost a GPU run
            too, in place of a GPU's per-operator cost. The three ``host_`` fields are
            measured by a dry run only (zero otherwise).
    """

    params: int
    steps: int
    cpu_s_per_step: float
    ops_per_step: float
    flops_per_step: float
    measured_s: float
    optimizer_ops: float = 0.0
    groups: int = 1
    between_steps_s: float = 0.0
    kernels_per_step: float = 0.0
    host_ops_per_step: float = 0.0
    host_flops_per_step: float = 0.0
    host_s_per_step: float = 0.0


def _counter_mode(split_host: bool = False, in_out_s: float = 0.0,
                  call_s: float = 0.0):
    """A dispatch mode counting operators (views excepted) and their FLOPs.

    A step's own operators are tallied in ``step`` (a :class:`Tally`). An *evaluation* is
    tallied apart, in ``other``: the operators under ``no_grad`` from the forward pass of a
    module in ``eval()`` mode to the next operator with gradients on, outside the backward
    pass, the stretch from it to the optimiser's step (gradient clipping) and the step
    itself (``in_optimizer``, set by the meter's hooks). A loop cut to a few steps may
    evaluate at every step (a node that evaluates every ``steps // 5`` steps), and a full
    run evaluates only as often as its schedule says, so an evaluation is no part of a
    step. Work under ``no_grad`` in training mode or outside any module, such as a GAN's
    generator feeding its discriminator or an EMA update, stays part of the step.

    Operators inside a call of :data:`FUSED_ON_GPU` (forward, and backward through the
    autograd nodes the call made) count as ``kernels``, except the first each way, which is
    the call. The counter also keeps what it costs itself: its handler's seconds
    (``handler_s``), the operators it saw (``dispatches``, views included) and the torch
    functions called (``calls``), so that a meter can take that cost out of its times.

    Args:
        split_host: tell the operators a GPU run keeps on the CPU from those it runs on the
            GPU (:data:`_ON_DEVICE`), and time the host path that issues each of the
            latter (``lead_s``). A dry run's rest needs it; a step's cost does not.
        in_out_s, call_s: the counter's calibrated cost per operator and per torch function
            (:func:`counter_overhead_s`), taken out of each ``lead_s``.
    """
    import torch
    from torch._C import _functorch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.flop_counter import flop_registry

    in_backward = torch._C._current_graph_task_id
    current_node = torch._C._current_autograd_node
    Tensor = torch.Tensor

    def _on_device(values) -> bool:
        """True when any tensor among ``values`` (nested in lists) lives on the GPU in a
        GPU run."""
        for v in values:
            if isinstance(v, Tensor):
                if v.requires_grad or getattr(v, _ON_DEVICE, False):
                    return True
            elif isinstance(v, (list, tuple)) and _on_device(v):
                return True
        return False

    def _tag(out) -> None:
        if isinstance(out, Tensor):
            setattr(out, _ON_DEVICE, True)
        elif isinstance(out, (list, tuple)):
            for o in out:
                _tag(o)

    def _physical(t):
        """The tensor that a vmap's batched tensor wraps (through every level), or ``t``."""
        while isinstance(t, Tensor) and _functorch.is_batchedtensor(t):
            t = _functorch.get_unwrapped(t)
        return t

    class FusedCalls(TorchFunctionMode):
        """Marks the calls of :data:`FUSED_ON_GPU` for the counter: its operators while the
        call runs, and the autograd nodes it made, so that its backward pass is known."""

        def __init__(self, counter):
            super().__init__()
            self.counter = counter

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            self.counter.calls += 1
            if getattr(func, "__name__", None) not in FUSED_ON_GPU:
                return func(*args, **kwargs)
            counter = self.counter
            counter.n_fused += 1
            region = counter.n_fused
            counter.fused = region
            try:
                out = func(*args, **kwargs)
            finally:
                counter.fused = None
            # Tag the nodes between the call's outputs and its inputs (the graph it made),
            # on the tensors autograd sees: under vmap, those a batched tensor wraps.
            inputs = {t.grad_fn for t in map(_physical, tree_leaves((args, kwargs)))
                      if isinstance(t, torch.Tensor) and t.grad_fn is not None}
            stack = [t.grad_fn for t in map(_physical, tree_leaves(out))
                     if isinstance(t, torch.Tensor) and t.grad_fn is not None]
            while stack:
                node = stack.pop()
                if (node is None or node in inputs or type(node).__name__ == "AccumulateGrad"
                        or _FUSED_KEY in node.metadata):
                    continue
                node.metadata[_FUSED_KEY] = region
                stack.extend(fn for fn, _ in node.next_functions)
            return out

    class OpCounter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.step = Tally()  # a step's own operators
            self.other = Tally()  # evaluations: no step
            self.calls = 0  # torch functions called (each costs FusedCalls' overhead)
            self.n_fused = 0  # fused calls seen
            self._tagged: set[int] = set()  # modules whose parameters are tagged
            self.fused: int | None = None  # the fused call running now (its forward pass)
            self._charged: set = set()  # (pass, call) whose one operator was counted
            self._functions = FusedCalls(self)
            self.in_optimizer = False
            self.after_backward = False  # until the optimiser steps (the counter then stops)
            self.eval_depth = 0  # forward passes of eval()-mode modules in progress
            self.module_depth = 0  # forward passes of any module in progress
            self.in_eval = False  # from such a forward under no_grad to the next with grad
            self._hooks = []
            self._left: float | None = None  # when the handler last returned
            self._calls_left = 0  # self.calls then

        def __enter__(self):
            from torch.nn.modules.module import (
                register_module_forward_hook,
                register_module_forward_pre_hook,
            )

            def enter(module, args):
                self.eval_depth += not module.training
                self.module_depth += 1
                if split_host and id(module) not in self._tagged:  # weights live on the GPU
                    self._tagged.add(id(module))
                    for t in (*module.parameters(), *module.buffers()):
                        setattr(t, _ON_DEVICE, True)

            def leave(module, args, output):
                self.eval_depth -= not module.training
                self.module_depth -= 1

            self._hooks = [register_module_forward_pre_hook(enter),
                           register_module_forward_hook(leave)]
            self._functions.__enter__()
            return super().__enter__()

        def __exit__(self, *exc):
            for hook in self._hooks:
                hook.remove()
            self._hooks = []
            out = super().__exit__(*exc)
            self._functions.__exit__(*exc)
            return out

        def resume(self, now: float) -> None:
            """Count host time between operators from ``now`` on (a meter's hook ended)."""
            self._left, self._calls_left = now, self.calls

        def new_segment(self) -> None:
            """Forget where in a step the last one ended (an optimiser just stepped)."""
            self.in_optimizer = self.after_backward = self.in_eval = False
            self._charged.clear()

        def _kernel(self, backward: bool, func) -> bool:
            """True for an operator inside a fused call that is not the call's own (the
            first of its forward or of its backward pass is charged as the call)."""
            if self.fused is not None:
                call = ("forward", self.fused)
            elif backward:
                node = current_node()
                region = node.metadata.get(_FUSED_KEY) if node is not None else None
                if region is None:
                    return False
                call = ("backward", region)
            else:
                return False
            if func.is_view or call in self._charged:
                return True
            self._charged.add(call)
            return False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            entered = time.perf_counter()
            kwargs = kwargs or {}
            backward = in_backward() != -1
            if backward:
                self.after_backward = True
            if torch.is_grad_enabled():
                self.in_eval = False  # the next training forward pass ends an evaluation
            elif self.eval_depth > 0:
                self.in_eval = True
            training = self.in_optimizer or self.after_backward or not self.in_eval
            started = time.perf_counter()
            out = func(*args, **kwargs)
            done = time.perf_counter()
            seconds = done - started
            formula = flop_registry.get(func._overloadpacket)
            flops = int(formula(*args, **kwargs, out_val=out)) if formula is not None else 0
            kernel = (self.fused is not None or backward) and self._kernel(backward, func)
            tally = self.step if training else self.other
            tally.dispatches += 1
            tally.op_s += seconds
            tally.flops += flops
            if not func.is_view:
                if kernel:
                    tally.kernels += 1
                else:
                    tally.ops += 1
            if split_host:
                device = (backward or self.in_optimizer or self.module_depth > 0
                          or _on_device(args) or _on_device(kwargs.values()))
                # the host path that issued it: the seconds since the last operator, less
                # the counter's way in and out, at most LEAD_CAP_S (views too: the GPU's
                # per-operator cost was fitted per operator with its views' share)
                lead = (min(LEAD_CAP_S, max(0.0, entered - self._left - in_out_s
                                            - (self.calls - self._calls_left) * call_s))
                        if self._left is not None else 0.0)
                if device:
                    _tag(out)
                    tally.lead_s += lead
                else:
                    tally.host_ops += not func.is_view
                    tally.host_op_s += seconds
                    tally.host_flops += flops
                    tally.host_lead_s += lead
            # this handler's own time, measured; the way in and out of it is calibrated
            self._left = time.perf_counter()
            self._calls_left = self.calls
            tally.handler_s += (started - entered) + (self._left - done)
            return out

    return OpCounter()


_ACTIVE: list[StepMeter] = []
"""The meters running in this process, innermost last."""


def active_meter() -> StepMeter | None:
    """The innermost :class:`StepMeter` running in this process (``None`` if none): a node
    that hands work to another process (a notebook's kernel) meters it there and gives
    the result to this meter (:meth:`StepMeter.absorb`)."""
    return _ACTIVE[-1] if _ACTIVE else None


class StepMeter:
    """Times and counts optimiser steps in this process, through PyTorch's global hooks.

    Use as a context manager around one node's function; :meth:`summary` then returns
    what it saw. Nothing in the node's code changes.

    Args:
        count_all: count every operator the node dispatches, not only those of some steps
            (a dry run). Then the node's *rest*, its work outside optimiser steps (data,
            sampling, evaluation), is counted too, so that the estimate can cost it on a GPU
            instead of at its CPU time (:meth:`rest`). Counting slows each operator by the
            dispatch mode's overhead, measured when the meter starts and taken out of every
            time it reports. Without it (a metered real run), every third step is counted,
            :attr:`MAX_COUNTED` at most, and the others are timed as they ran.
        sync: on a CUDA GPU, wait for the GPU at the end of every step before reading the
            clock (a dry run on a GPU), so that a step's time is its own work, host and
            device, however short the loop: without it the host runs ahead of the GPU and
            a loop of a few steps looks as fast as launching them. A step then never
            overlaps the next one's launches, so it errs high, at most by the shorter of
            the two. Nothing to wait for on a CPU.
    """

    COUNT_EVERY = 3
    MAX_COUNTED = 24
    """Counted segments per node at most when not counting all: enough for a dry run's
    loops, and a metered real run pays the counting overhead only for these."""

    def __init__(self, count_all: bool = False, sync: bool = False) -> None:
        if count_all and sync:
            raise ValueError("A counting meter times the CPU; it cannot also synchronise a GPU.")
        self.count_all = count_all
        self.sync = sync
        self.segments: list[Segment] = []
        self.tail: Segment | None = None  # after the last step (count_all only)
        # The counter's own cost: its handler's time is measured; the way into and out of
        # it per dispatched operator, and per torch function called, are calibrated.
        self.overhead_s = self.call_overhead_s = 0.0
        self._loops: dict[int, int] = {}  # id(optimizer) -> loop index
        self._params: list[int] = []
        self._steps: list[int] = []
        self._keep: list[Any] = []  # optimisers stay alive so their ids stay unique
        self._handle = None
        self._pre_handle = None
        self._pre_ops = 0
        self._groups: list[int] = []
        self._counter = None
        self._seen: tuple[Tally, Tally, int] | None = None  # the counter's totals then
        self._last = 0.0
        self._started = 0.0
        self._peak_reset = False
        self._n_counted = 0
        self.wall_s: float | None = None
        # what meters in other processes measured while this one waited (absorb)
        self._absorbed: list[tuple[dict[str, Any], list[int | None]]] = []

    def __enter__(self) -> StepMeter:
        from torch.optim.optimizer import (
            register_optimizer_step_post_hook,
            register_optimizer_step_pre_hook,
        )

        self._peak_reset = _reset_peak_rss()
        self._cuda = _cuda_ready()
        if self._cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        if self.count_all:
            self.overhead_s, self.call_overhead_s = counter_overhead_s()
            self._counter = _counter_mode(split_host=True, in_out_s=self.overhead_s,
                                          call_s=self.call_overhead_s)
            self._counter.__enter__()
            self._seen = _totals(self._counter)
        self._handle = register_optimizer_step_post_hook(self._post)
        self._pre_handle = register_optimizer_step_pre_hook(self._pre)
        self._started = self._last = time.perf_counter()
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        now = time.perf_counter()
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self.count_all and self._counter is not None:
            self.tail = self._segment(-1, 0, now - self._last)
        self._stop_counting()
        for handle in (self._handle, self._pre_handle):
            if handle is not None:
                handle.remove()
        self._handle = self._pre_handle = None
        self.wall_s = now - self._started
        self._keep.clear()

    def _stop_counting(self) -> Any:
        """Leave the operator counter; returns it (None if none was counting)."""
        if self._counter is None:
            return None
        counter, self._counter = self._counter, None
        counter.__exit__(None, None, None)
        return counter

    def _segment(self, loop: int, step: int, seconds: float) -> Segment:
        """A counted segment from the counter's totals since the last one (count_all)."""
        step_work, other, calls = _totals(self._counter)
        seen_step, seen_other, seen_calls = self._seen
        self._seen = step_work, other, calls
        return Segment(loop=loop, step=step, seconds=seconds, counted=True,
                       step_work=step_work - seen_step, other=other - seen_other,
                       calls=calls - seen_calls)

    def _pre(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._pre_ops = self._counter.step.ops if self._counter is not None else 0
        if self._counter is not None:
            self._counter.in_optimizer = True

    def _post(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self.sync and self._cuda:
            import torch

            torch.cuda.synchronize()
        now = time.perf_counter()
        optimizer_ops = self._counter.step.ops - self._pre_ops if self._counter is not None else 0
        counted = None if self.count_all else self._stop_counting()
        key = id(optimizer)
        if key not in self._loops:
            self._loops[key] = len(self._params)
            self._keep.append(optimizer)
            self._params.append(sum(p.numel() for g in optimizer.param_groups
                                    for p in g["params"]))
            self._steps.append(0)
            self._groups.append(len(optimizer.param_groups))
        loop = self._loops[key]
        self._steps[loop] += 1
        if self.count_all:
            seg = self._segment(loop, self._steps[loop], now - self._last)
            seg.optimizer_ops = optimizer_ops
            self._counter.new_segment()
        else:
            seg = Segment(loop=loop, step=self._steps[loop], seconds=now - self._last)
        if counted is not None:
            seg.counted, seg.step_work, seg.other = True, counted.step, counted.other
            seg.calls, seg.optimizer_ops = counted.calls, optimizer_ops
        self.segments.append(seg)
        if counted is not None:
            self._n_counted += 1
        if (not self.count_all and len(self.segments) % self.COUNT_EVERY == 2
                and self._n_counted < self.MAX_COUNTED):
            self._counter = _counter_mode()
            self._counter.__enter__()
        self._last = time.perf_counter()
        if self.count_all and self._counter is not None:  # this hook's time is no host work
            self._counter.resume(self._last)

    def _step_seconds(self, seg: Segment) -> float:
        """A segment's step alone: its evaluation and the counter's overhead taken out."""
        if not self.count_all:
            return seg.seconds
        return max(0.0, seg.seconds - seg.other.op_s - self._overhead(seg))

    @staticmethod
    def _host_seconds(seg: Segment) -> float:
        """What a counted segment's step spends on operators a GPU run keeps on the CPU
        (count_all): their own time and the path issuing each."""
        return seg.step_work.host_op_s + seg.step_work.host_lead_s

    def _overhead(self, seg: Segment) -> float:
        """Seconds the counter itself added to a segment."""
        total = seg.total
        return (total.handler_s + total.dispatches * self.overhead_s
                + seg.calls * self.call_overhead_s)

    def absorb(self, usage: Mapping[str, Any], planned: Sequence[int | None] = ()) -> None:
        """Take in what a meter in another process measured while this one waited on it
        (a notebook's kernel, see :func:`genai_report.notebooks.execute_notebook`).

        Its loops join this meter's, after them; its rest joins this meter's rest, and
        its wall time leaves this meter's own host time (this process only waited).

        Args:
            usage: the other meter's :meth:`summary`.
            planned: the full length of each of its loops (``None``: matched to the
                node's step fields by length, as usual).
        """
        planned = list(planned) or [None] * len(usage["loops"])
        if len(planned) != len(usage["loops"]):
            raise ValueError(f"{len(planned)} planned lengths for {len(usage['loops'])} loops.")
        self._absorbed.append((dict(usage), planned))

    def planned_steps(self) -> list[int | None] | None:
        """Each loop's full length where a meter this one absorbed knew it (``None`` for the
        others), or ``None`` when nothing was absorbed."""
        if not self._absorbed:
            return None
        return [None] * len(self._params) + [n for _, planned in self._absorbed for n in planned]

    def loops(self) -> list[LoopUsage]:
        """Per optimiser: its size, steps and measured cost per step (this process's
        loops, then those of the meters it absorbed)."""
        return self._own_loops() + [
            LoopUsage(**{k: math.nan if v is None else v for k, v in u.items()})
            for usage, _ in self._absorbed for u in usage["loops"]]

    def _own_loops(self) -> list[LoopUsage]:
        out = []
        for loop, (params, steps) in enumerate(zip(self._params, self._steps, strict=True)):
            segs = [s for s in self.segments if s.loop == loop and s.step > 1]
            counted = sorted((s for s in segs if s.counted), key=lambda s: s.step_work.ops)
            if self.count_all:
                # Every segment was counted: its evaluation is known exactly, and the time
                # left is the step's own (the counter's overhead taken out).
                timed = [self._step_seconds(s) for s in segs]
                between = sum(s.other.op_s + s.other.handler_s
                              + s.other.dispatches * self.overhead_s for s in segs)
                cpu_s = statistics.median(timed) if timed else math.nan
                measured = sum(timed)
            else:
                timed = [s.seconds for s in segs if not s.counted]
                # The share of a step's time spent on work that is no step (an evaluation
                # between two steps): taken out of the step's cost, left to the node's rest.
                share = statistics.median(min(1.0, s.other.op_s / s.seconds) if s.seconds > 0
                                          else 0.0 for s in counted) if counted else 0.0
                cpu_s = statistics.median(timed) * (1.0 - share) if timed else math.nan
                measured = sum(s.seconds for s in segs) * (1.0 - share)
                between = sum(s.seconds for s in segs) * share
            out.append(LoopUsage(
                params=params,
                steps=steps,
                cpu_s_per_step=cpu_s,
                # the cheapest counted step: an evaluation that ran inside a step is no step
                ops_per_step=counted[0].step_work.ops if counted else math.nan,
                flops_per_step=counted[0].step_work.flops if counted else math.nan,
                measured_s=measured,
                optimizer_ops=counted[0].optimizer_ops if counted else 0.0,
                groups=self._groups[loop],
                between_steps_s=between,
                kernels_per_step=counted[0].step_work.kernels if counted else 0.0,
                host_ops_per_step=counted[0].step_work.host_ops if counted else 0.0,
                host_flops_per_step=counted[0].step_work.host_flops if counted else 0.0,
                host_s_per_step=(statistics.median(self._host_seconds(s) for s in segs)
                                 if self.count_all and segs else 0.0),
            ))
        # An optimiser with no counted step borrows from one of the same size and length
        # (the same model trained for another seed), else it is costed by its CPU time.
        for usage in out:
            if math.isnan(usage.ops_per_step):
                twin = next((u for u in out if not math.isnan(u.ops_per_step)
                             and (u.params, u.steps) == (usage.params, usage.steps)), None)
                if twin is not None:
                    usage.ops_per_step, usage.flops_per_step = twin.ops_per_step, twin.flops_per_step
                    usage.optimizer_ops = twin.optimizer_ops
                    usage.kernels_per_step = twin.kernels_per_step
                    usage.host_ops_per_step = twin.host_ops_per_step
                    usage.host_flops_per_step = twin.host_flops_per_step
                    usage.host_s_per_step = twin.host_s_per_step
        return out

    def rest(self) -> RestUsage | None:
        """The node's work outside optimiser steps, counted (``None`` unless count_all).

        That is everything before each optimiser's first step returns (building data and
        models, the first step), the evaluations between later steps, and everything after
        the last step (sampling, metrics, plotting).
        """
        if not self.count_all:
            return None
        rest = RestUsage()
        whole = [s.total for s in self.segments if s.step == 1]  # set-up and first step
        if self.tail is not None:
            whole.append(self.tail.total)
        between = [s.other for s in self.segments if s.step > 1]  # evaluations
        for tally in whole + between:
            rest.ops += tally.ops - tally.host_ops
            rest.host_ops += tally.host_ops
            rest.kernels += tally.kernels
            rest.flops += tally.flops - tally.host_flops
            rest.op_s += tally.op_s - tally.host_op_s
            rest.lead_s += tally.lead_s
        rest.cpu_s = (sum(max(0.0, s.seconds - self._overhead(s)) for s in self.segments
                          if s.step == 1)
                      + (max(0.0, self.tail.seconds - self._overhead(self.tail))
                         if self.tail is not None else 0.0)
                      + sum(t.op_s for t in between))
        for usage, _ in self._absorbed:  # this process waited; the other one worked
            rest.cpu_s = max(0.0, rest.cpu_s - float(usage["wall_s"]))
            other = usage.get("rest")
            if other is not None:
                for f in dataclasses.fields(RestUsage):  # host_s follows from the sums
                    setattr(rest, f.name, getattr(rest, f.name) + other.get(f.name, 0))
            else:  # not counted there: its time outside its loops stays host time
                rest.cpu_s += max(0.0, float(usage["wall_s"]) - sum(
                    float(u["measured_s"]) for u in usage["loops"]))
        rest.host_s = max(0.0, rest.cpu_s - rest.op_s)
        return rest

    def summary(self) -> dict[str, Any]:
        """What the node's run measured, JSON-able."""
        peak_gpu = None
        if self._cuda:
            import torch

            peak_gpu = torch.cuda.max_memory_allocated() / 2**20
        rest = self.rest()
        peak_rss = _peak_rss_mib() if self._peak_reset else None
        for usage, _ in self._absorbed:  # the other process's peak, if higher
            if usage.get("peak_rss_mib") is not None:
                peak_rss = max(peak_rss or 0.0, float(usage["peak_rss_mib"]))
        out = {
            "meter_version": METER_VERSION,
            "timed": self.sync,  # steps timed to the GPU's end (a dry run on a GPU)
            "wall_s": self.wall_s if self.wall_s is not None else time.perf_counter() - self._started,
            "peak_rss_mib": peak_rss,
            "peak_gpu_mib": peak_gpu,
            # what counting cost, taken out of every time above: the handler's own seconds
            # in all, and the calibrated microseconds per operator and per function call
            "counter": ({"handler_s": sum(s.total.handler_s
                                          for s in (*self.segments, self.tail)),
                         "operator_us": self.overhead_s * 1e6,
                         "call_us": self.call_overhead_s * 1e6}
                        if self.count_all and self.tail is not None else None),
            "rest": dataclasses.asdict(rest) if rest is not None else None,
            # JSON has no NaN: a measurement that was not made is null
            "loops": [{k: None if isinstance(v, float) and math.isnan(v) else v
                       for k, v in dataclasses.asdict(u).items()} for u in self.loops()],
        }
        planned = self.planned_steps()
        if planned is not None:  # loops of another process that knew their full lengths
            out["planned_steps"] = planned
        return out


@dataclass
class RestUsage:
    """A node's work outside its optimiser steps, as a counting meter saw it.

    Attributes:
        ops: operators dispatched (views excepted) on tensors that a GPU run holds on the
            GPU (see :data:`_ON_DEVICE`).
        flops: their floating-point operations.
        op_s: seconds inside those operators on the CPU.
        cpu_s: its seconds on the CPU, the counter's overhead taken out.
        host_s: of those, the seconds outside the GPU's operators: Python, NumPy, plotting,
            file writing, and the operators on tensors a GPU run keeps on the CPU
            (``host_ops``). Work a GPU does not speed up.
        host_ops: operators on tensors a GPU run keeps on the CPU.
        kernels: kernels that fused operators (:data:`FUSED_ON_GPU`) launch inside them on
            a GPU, beyond ``ops``.
        lead_s: of ``host_s``, the path that issues the GPU's operators (Python, modules'
            calls, the dispatcher), at most :data:`LEAD_CAP_S` before each: already in a
            GPU's per-operator cost, so the estimate takes it out of the host time.
    """

    ops: int = 0
    host_ops: int = 0
    kernels: int = 0
    flops: int = 0
    op_s: float = 0.0
    cpu_s: float = 0.0
    host_s: float = 0.0
    lead_s: float = 0.0

    def own_host_s(self, gpu: GPUClass) -> float:
        """Host seconds that are work of their own on ``gpu``: ``host_s`` less the path
        issuing the operators, which ``gpu`` charges per operator already (never more than
        it charges)."""
        return max(0.0, self.host_s - min(self.lead_s, self.ops * gpu.op_overhead_us * 1e-6))


def _totals(counter: Any) -> tuple[Tally, Tally, int]:
    """The running totals of an operator counter: its two tallies (copies) and its calls."""
    return dataclasses.replace(counter.step), dataclasses.replace(counter.other), counter.calls


def counter_overhead_s(rounds: int = 100, repeats: int = 15) -> tuple[float, float]:
    """Seconds the operator counter adds beyond its handler's own measured time, measured on
    this machine now: per operator dispatched (the way into the handler and out of it), and
    per torch function called.

    A small mix of operators runs without the counter, under its function half alone and
    under all of it, in ``repeats`` interleaved rounds after a warm-up; each round gives
    one value of each cost, and the median is kept. Rounds side by side see the same load
    (another node on the other core), and the median drops the few that a pause hit.
    """
    import torch

    x = torch.ones(8, 8)

    def run() -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            torch.addmm(x, x, x).relu_().view(64).sum()  # 4 calls, 4 operators (1 a view)
        return time.perf_counter() - started

    counter = _counter_mode()
    run()
    with counter:  # warm-up: the first calls through the modes build their caches
        run()
    in_out, per_call = [], []
    for _ in range(repeats):
        plain = run()
        with counter._functions:  # the function mode alone: a call's share
            calls = run()
        handler_s, dispatches = counter.step.handler_s, counter.step.dispatches
        with counter:
            both = run()
        handler = (counter.step.handler_s - handler_s) / (counter.step.dispatches - dispatches)
        call = (calls - plain) / (4 * rounds)
        per_call.append(call)
        in_out.append((both - plain) / (4 * rounds) - call - handler)
    return max(0.0, statistics.median(in_out)), max(0.0, statistics.median(per_call))


def _cuda_ready() -> bool:
    """True when torch sees a CUDA GPU (then its peak memory is metered too)."""
    import torch

    return torch.cuda.is_available()


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- estimate -----------------------------------------------------------------------------


@dataclass
class NodeEstimate:
    """One node's dry run and its predicted full run.

    Attributes:
        node: its name.
        dry_wall_s: the dry run's wall time on this machine.
        peak_rss_mib: the dry run's peak resident memory (full-size model and batches).
        loops: each optimiser loop: dry steps, full steps, seconds per step (CPU, GPU).
        cpu_full_s: predicted full run on this CPU.
        gpu_full_s: predicted full run on the GPU class.
        other_s: time outside optimiser steps on this CPU (data, sampling, evaluation,
            plotting).
        other_gpu_s: the same work on the GPU class: its host time (outside any operator)
            as it is, its operators and FLOPs costed like a step's. A dry run metered by a
            meter that did not count it (version 2) leaves it at ``other_s``.
        not_extrapolated: fields cut by the node's overrides, ``name: dry/full`` (marked
            where the loops they repeat are scaled back up, :data:`REPEATS_KEY`).
        busy_s: of ``gpu_full_s``, the seconds the GPU itself is busy
            (:meth:`GPUClass.busy_seconds`): what nodes running at once must share.
        deps: the nodes it waits for (set by the dry run; its schedule needs them).
        peak_gpu_mib: the GPU memory it allocated at most (a dry run on a GPU; else
            ``None``).
    """

    node: str
    dry_wall_s: float
    peak_rss_mib: float | None
    loops: list[dict[str, Any]] = field(default_factory=list)
    cpu_full_s: float = 0.0
    gpu_full_s: float = 0.0
    other_s: float = 0.0
    other_gpu_s: float = 0.0
    not_extrapolated: list[str] = field(default_factory=list)
    busy_s: float = 0.0
    deps: list[str] = field(default_factory=list)
    peak_gpu_mib: float | None = None

    @property
    def peak_mib(self) -> float:
        """Its peak memory on the GPU where measured, else on the CPU (a proxy: the same
        models and batches, plus the interpreter and the data kept on the host)."""
        return float(self.peak_gpu_mib if self.peak_gpu_mib is not None
                     else self.peak_rss_mib or 0.0)


FOREACH_OPS = 12
"""Kernels of one fused (``foreach``) AdamW step per parameter group on a GPU."""


def gpu_ops(usage: LoopUsage) -> float:
    """Operators a step of ``usage`` dispatches on a GPU: those on the CPU's tensors left
    out, and the optimiser's per-parameter loop (how PyTorch steps on a CPU) replaced by
    its fused kernels."""
    ops = usage.ops_per_step - usage.host_ops_per_step
    if usage.optimizer_ops <= 0:
        return ops
    return ops - usage.optimizer_ops + FOREACH_OPS * usage.groups


def gpu_step_seconds(usage: LoopUsage, gpu: GPUClass) -> float:
    """Predicted seconds of one step of ``usage`` on ``gpu``: its GPU operators, kernels and
    FLOPs costed by the class, plus its own host work as the CPU measured it."""
    return gpu.step_seconds(gpu_ops(usage), usage.flops_per_step - usage.host_flops_per_step,
                            _num(usage.kernels_per_step)) + usage.host_s_per_step


def full_steps(dry_steps: int, caps: Mapping[str, tuple[int, int]]) -> tuple[int, str | None]:
    """The full-run step count of a loop that made ``dry_steps`` steps in the dry run.

    A loop whose length matches a cut field's dry value (or, failing that, the value plus
    one, for ``range(steps + 1)``) runs that field's full value; any other loop was not
    cut.
    """
    for extra in (0, 1):
        for name, (dry, full) in caps.items():
            if dry_steps == dry + extra:
                return full + extra, name
    return dry_steps, None


def _num(value: float) -> float:
    """A count that was not measured (``nan``) as zero."""
    return 0.0 if math.isnan(value) else value


PLANNED_STEPS_KEY = "dry_run_full_steps"
"""A metric a node may return when its loops' lengths are derived rather than a step field
(each IsoFLOP run's steps follow from its budget): the full step count of each optimiser's
loop, in the order the loops ran. :func:`estimate` then uses it in place of the caps."""

DERIVED_STEPS_KEY = "dry_run_derived_steps"
"""A metric a node may return when some loops run a number of steps derived from a step
field rather than the field itself (a control trained on as many tokens as another model,
a model trained for as many FLOPs as another): per optimiser loop, in the order the loops
ran, ``[field, factor]`` for a loop of ``max(1, round(factor * field))`` steps, or ``None``
for a loop matched to its field by length (:func:`full_steps`). The factor must not depend
on the cut fields; :func:`estimate` checks each derived loop's dry length against it."""


REPEATS_KEY = "dry_run_repeated_over"
"""A metric a node may return when its ``dry_run`` overrides cut how many times some loops
run (fewer seeds, fewer LoRA ranks) because even a few full-size steps of each would keep
a CPU busy too long: per optimiser loop, in the order the loops ran, the cut fields it
stands for (``["seeds", "ranks"]``: the full run trains one such loop per seed and rank),
or ``None``. :func:`estimate` scales such a loop by each field's full count over its dry
count (a number, or a sequence's length), so the loops it did not run are counted; a
field the overrides did not cut counts once."""


def _count(value: Any) -> int:
    """How many runs a field's value makes: its length if a sequence, else the number."""
    if isinstance(value, (list, tuple)):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(type(value).__name__)


def _repeats(node: str, loop: int, declared: Any,
             overrides: Mapping[str, tuple[Any, Any]]) -> float:
    """How many full-run loops loop ``loop`` stands for (:data:`REPEATS_KEY`)."""
    if declared is None:
        return 1.0
    if not isinstance(declared, (list, tuple)) or not all(isinstance(f, str) for f in declared):
        raise ValueError(f"{node}: {REPEATS_KEY}[{loop}] must be a list of field names or "
                         f"null, got {declared!r}.")
    factor = 1.0
    for name in declared:
        if name not in overrides:
            continue  # not cut: the dry run ran every one of them
        dry, full = overrides[name]
        try:
            factor *= _count(full) / _count(dry)
        except (TypeError, ZeroDivisionError):
            raise ValueError(f"{node}: {REPEATS_KEY}[{loop}] names '{name}', whose values "
                             f"{dry!r} (dry) and {full!r} (full) count no runs.") from None
    return factor


def derived_steps(factor: float, value: int) -> int:
    """Steps of a loop derived from a step field (:data:`DERIVED_STEPS_KEY`) by ``factor``
    when that field is ``value``: what the node runs and what the estimate extrapolates."""
    return max(1, round(factor * value))


def _derived_full(node: str, loop: int, dry_steps: int, declared: Any,
                  caps: Mapping[str, tuple[int, int]]) -> tuple[int, str]:
    """The full length of loop ``loop`` declared ``[field, factor]``, checked against the
    ``dry_steps`` it ran."""
    try:
        name, factor = declared
        factor = float(factor)
    except (TypeError, ValueError):
        raise ValueError(f"{node}: {DERIVED_STEPS_KEY}[{loop}] must be [field, factor] or "
                         f"null, got {declared!r}.") from None
    dry, full = caps.get(name, (None, None))
    if dry is None:  # the field was not cut: the loop ran its full length
        return dry_steps, name
    if derived_steps(factor, dry) != dry_steps:
        raise ValueError(f"{node}: loop {loop} ran {dry_steps} steps, but {DERIVED_STEPS_KEY} "
                         f"declares round({factor:g} * {name}) = "
                         f"{derived_steps(factor, dry)} with {name} = {dry}.")
    return derived_steps(factor, full), f"{name} x {factor:.3g}"


def estimate(node: str, usage: Mapping[str, Any], caps: Mapping[str, tuple[int, int]],
             overrides: Mapping[str, tuple[Any, Any]], gpu: GPUClass,
             planned: list[int | None] | None = None,
             derived: list[Any] | None = None,
             repeated: list[Any] | None = None, *, timed: bool = False) -> NodeEstimate:
    """Predict ``node``'s full run from its dry run's :meth:`StepMeter.summary`.

    ``timed``: the dry run ran on ``gpu`` itself (a timed meter, ``StepMeter(sync=True)``):
    each loop's step costs what it took there, and the node's rest what it took there,
    rather than what the class's cost model makes of the operators counted on a CPU. Its
    loops' busy time still comes from the model, from the operators their counted steps
    dispatched; its rest, which such a meter does not count, adds none.

    ``planned`` (the node's :data:`PLANNED_STEPS_KEY` metric, or the lengths a meter in
    another process knew, ``planned_steps`` in the usage) gives each loop's full step count
    where it is not ``None``; ``derived`` (its :data:`DERIVED_STEPS_KEY` metric)
    tells how loops' lengths follow from a step field, and ``repeated`` (its
    :data:`REPEATS_KEY` metric) which loops stand for several that the overrides cut. Each
    must hold one entry per loop.

    Raises:
        ValueError: a declaration that does not fit the loops the dry run saw.
    """
    wall = float(usage["wall_s"])
    loops = [LoopUsage(**{k: math.nan if v is None else v for k, v in u.items()})
             for u in usage["loops"]]
    for key, declared in ((PLANNED_STEPS_KEY, planned), (DERIVED_STEPS_KEY, derived),
                          (REPEATS_KEY, repeated)):
        if declared is not None and len(declared) != len(loops):
            raise ValueError(f"{node} declared {len(declared)} loop(s) in {key} but ran "
                             f"{len(loops)} optimiser loops.")
    scaled = {name for names in (repeated or ()) if isinstance(names, (list, tuple))
              for name in names}
    # A loop never counted is costed at the median GPU/CPU ratio of the counted ones.
    ratios = [gpu_step_seconds(u, gpu) / u.cpu_s_per_step
              for u in loops if not math.isnan(u.ops_per_step) and u.cpu_s_per_step > 0]
    ratio = statistics.median(ratios) if ratios else 1.0
    est = NodeEstimate(node=node, dry_wall_s=wall, peak_rss_mib=usage.get("peak_rss_mib"),
                       peak_gpu_mib=usage.get("peak_gpu_mib"),
                       not_extrapolated=[
                           f"{k}: {d}/{f}" + (" (its loops scaled)" if k in scaled else "")
                           for k, (d, f) in overrides.items()])
    in_loops = 0.0
    cpu_extra = 0.0
    gpu_loops = 0.0
    for i, u in enumerate(loops):
        if planned is not None and planned[i] is not None:
            steps, by = planned[i], PLANNED_STEPS_KEY
        elif derived is not None and derived[i] is not None:
            steps, by = _derived_full(node, i, u.steps, derived[i], caps)
        else:
            steps, by = full_steps(u.steps, caps)
        repeats = _repeats(node, i, repeated[i], overrides) if repeated is not None else 1.0
        cpu_step = u.cpu_s_per_step if not math.isnan(u.cpu_s_per_step) else (
            u.measured_s / max(1, u.steps - 1))
        if timed:
            gpu_step = cpu_step  # measured on the GPU
        elif not math.isnan(u.ops_per_step):
            gpu_step = gpu_step_seconds(u, gpu)
        else:
            gpu_step = cpu_step * ratio
        in_loops += u.measured_s
        cpu_extra += (repeats * steps - u.steps) * cpu_step
        gpu_loops += repeats * steps * gpu_step
        if not math.isnan(u.ops_per_step):
            est.busy_s += repeats * steps * gpu.busy_seconds(
                gpu_ops(u), u.flops_per_step - u.host_flops_per_step, _num(u.kernels_per_step))
        else:  # not counted: all of it, so that a schedule is never too hopeful
            est.busy_s += repeats * steps * gpu_step
        est.loops.append({
            "params": u.params, "dry_steps": u.steps, "full_steps": steps, "field": by,
            "repeats": repeats,
            "cpu_s_per_step": cpu_step, "gpu_s_per_step": gpu_step,
            "ops_per_step": u.ops_per_step, "gpu_ops_per_step": gpu_ops(u),
            "kernels_per_step": _num(u.kernels_per_step),
            "host_ops_per_step": u.host_ops_per_step, "host_s_per_step": u.host_s_per_step,
            "flops_per_step": u.flops_per_step,
        })
    rest = usage.get("rest")
    if timed:  # measured on the GPU: the rest is what it took there
        est.other_s = est.other_gpu_s = max(0.0, wall - in_loops)
        est.cpu_full_s = wall + cpu_extra
    elif rest is not None:  # counted: its operators run on the GPU, its own host time as it is
        counted = RestUsage(**{k: v for k, v in rest.items()
                                if k in RestUsage.__dataclass_fields__})
        est.other_s = counted.cpu_s
        est.other_gpu_s = counted.own_host_s(gpu) + gpu.step_seconds(
            counted.ops, counted.flops, counted.kernels)
        est.busy_s += gpu.busy_seconds(counted.ops, counted.flops, counted.kernels)
        est.cpu_full_s = est.other_s + in_loops + cpu_extra
    else:  # not counted: at its CPU time, an upper bound for the parts a GPU speeds up
        est.other_s = est.other_gpu_s = max(0.0, wall - in_loops)
        est.cpu_full_s = wall + cpu_extra
    est.gpu_full_s = est.other_gpu_s + gpu_loops
    return est


@dataclass(frozen=True)
class Schedule:
    """The predicted wall time of a profile with several nodes at once on one GPU.

    Attributes:
        jobs: nodes at once.
        wall_s: the runner's own list schedule (longest chain of work first) of the
            nodes' predicted times, each node taking its time as if the GPU kept pace.
        chain_s: the longest chain of predicted times through the dependencies (no number
            of jobs goes below it).
        busy_s: the seconds the GPU itself is busy, summed over every node (no number of
            jobs goes below it either: nodes at once share the GPU).
        serial_s: the nodes' predicted times, node after node.
        memory_mib: the ``jobs`` largest peaks of memory added up: what the card must hold
            if those nodes meet (:attr:`NodeEstimate.peak_mib`).
        memory_on_gpu: every peak was measured on a GPU (else some are the CPU's proxy).
    """

    jobs: int
    wall_s: float
    chain_s: float
    busy_s: float
    serial_s: float
    memory_mib: float = 0.0
    memory_on_gpu: bool = False

    @property
    def predicted_s(self) -> float:
        """The schedule's wall time, or the GPU's busy time where that is longer."""
        return max(self.wall_s, self.busy_s)


def schedule_estimates(estimates: Sequence[NodeEstimate], jobs: int) -> Schedule:
    """:class:`Schedule` of ``estimates`` (in dependency order) with ``jobs`` nodes at once,
    ordered as the runner orders them (:func:`~genai_report.pipeline.schedule.critical_path_first`).

    Raises:
        ConfigError: ``jobs`` below 1.
    """
    if jobs < 1:
        raise ConfigError(f"--gpu-jobs must be at least 1, not {jobs}.")
    seconds = {e.node: e.gpu_full_s for e in estimates}
    nodes = [_Job(e.node, tuple(e.deps)) for e in estimates]
    order = schedule.critical_path_first(nodes, seconds)
    peaks = sorted((e.peak_mib for e in estimates), reverse=True)
    return Schedule(jobs=jobs, wall_s=schedule.simulate(order, seconds, jobs),
                    chain_s=max(schedule.bottom_levels(nodes, seconds).values(), default=0.0),
                    busy_s=sum(e.busy_s for e in estimates),
                    serial_s=sum(seconds.values()),
                    memory_mib=sum(peaks[:jobs]),
                    memory_on_gpu=bool(estimates) and all(e.peak_gpu_mib is not None
                                                          for e in estimates))


@dataclass(frozen=True)
class _Job:
    """A node as the scheduler sees it: its name and what it waits for."""

    name: str
    deps: tuple[str, ...]


# -- the run ------------------------------------------------------------------------------


@dataclass
class DryRunReport:
    """A dry run of a profile and its estimate on a GPU class.

    Attributes:
        profile: the profile whose parameters ran.
        gpu: the GPU class key (``h100``...).
        estimates: one per node that ran.
        failed: node -> traceback.
        skipped: node -> why.
        wall_s: the whole dry run on this machine.
        reused: nodes whose fresh entry in a kept scratch cache was reused (not run).
        registered: nodes the registry holds (more than ran under ``only``).
        gpu_jobs: nodes at once in the predicted schedule (:data:`GPU_JOBS`).
        timed_on: the device whose timed steps the estimate extrapolates (a timed dry run,
            e.g. ``cuda (NVIDIA H200)``); ``None`` when it costs operators counted on a CPU.
    """

    profile: str
    gpu: str
    estimates: list[NodeEstimate] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    reused: list[str] = field(default_factory=list)
    registered: int = 0
    gpu_jobs: int = GPU_JOBS
    timed_on: str | None = None

    @property
    def ok(self) -> bool:
        """True when every node ran (or was reused from a kept scratch cache)."""
        return not self.failed and not self.skipped

    @property
    def total_gpu_s(self) -> float:
        """The predicted full run, node after node, on one GPU of the class."""
        return sum(e.gpu_full_s for e in self.estimates)

    @property
    def schedule(self) -> Schedule:
        """The predicted run with :attr:`gpu_jobs` nodes at once on one GPU of the class."""
        return schedule_estimates(self.estimates, self.gpu_jobs)

    def over_budget(self, budget_s: float = NODE_BUDGET_S) -> list[NodeEstimate]:
        """Nodes predicted to take longer than ``budget_s`` on the GPU class."""
        return [e for e in self.estimates if e.gpu_full_s > budget_s]

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-able data (what ``--estimate-out`` writes)."""
        gpu = gpu_class(self.gpu)
        plan = self.schedule
        return {
            "profile": self.profile,
            "gpu": self.gpu,
            "gpu_name": gpu.name,
            "gpu_class": dataclasses.asdict(gpu),
            "dry_run_wall_s": round(self.wall_s, 1),
            "total_gpu_s": round(self.total_gpu_s, 1),
            "timed_on": self.timed_on,
            "schedule": _rounded({**dataclasses.asdict(plan), "predicted_s": plan.predicted_s}),
            "node_budget_s": NODE_BUDGET_S,
            "profile_budget_s": PROFILE_BUDGET_S,
            "failed": sorted(self.failed),
            "reused": sorted(self.reused),
            "registered": self.registered,
            "nodes": {e.node: _rounded(dataclasses.asdict(e)) for e in self.estimates},
        }

    def table(self) -> str:
        """A plain-text table, slowest predicted node first, with the totals."""
        gpu = gpu_class(self.gpu)
        plan = self.schedule
        lines = [f"{'node':34} {'dry s':>6} {'peak MiB':>8} {'steps dry->full':>17} "
                 f"{'s/step':>10} {'rest s':>7} {'est ' + self.gpu + ' s':>9}"]
        for e in sorted(self.estimates, key=lambda e: -e.gpu_full_s):
            steps = ", ".join(f"{lp['dry_steps']}->{lp['full_steps']}" for lp in e.loops[:2])
            steps += " ..." if len(e.loops) > 2 else ""
            per = [lp["cpu_s_per_step"] for lp in e.loops if not math.isnan(lp["cpu_s_per_step"])]
            flag = "  > budget" if e.gpu_full_s > NODE_BUDGET_S else ""
            lines.append(
                f"{e.node:34} {e.dry_wall_s:6.1f} {e.peak_rss_mib or 0:8.0f} {steps[:17]:>17} "
                f"{(max(per) if per else 0):10.3f} {e.other_gpu_s:7.1f} {e.gpu_full_s:9.1f}{flag}")
        basis = (f"extrapolated from the steps timed on {self.timed_on}" if self.timed_on
                 else f"on one {gpu.name}")
        lines.append(
            f"Predicted {self.profile} profile {basis}: {self.total_gpu_s / 60:.1f} min "
            f"node after node, {plan.predicted_s / 60:.1f} min with {plan.jobs} at once "
            f"(longest chain {plan.chain_s / 60:.1f} min, the GPU busy {plan.busy_s / 60:.1f} "
            f"min; goal {PROFILE_BUDGET_S / 60:.0f} min; the {plan.jobs} largest peaks of "
            f"memory {plan.memory_mib / 1024:.1f} GiB, measured on the "
            f"{'GPU' if plan.memory_on_gpu else 'CPU'}, of the card's {gpu.memory_gib} GiB"
            f"{', MORE THAN IT HOLDS' if plan.memory_mib > gpu.memory_gib * 1024 else ''}"
            f"); slowest node "
            f"{max((e.gpu_full_s for e in self.estimates), default=0):.0f} s (goal "
            f"{NODE_BUDGET_S:.0f} s); outside optimiser steps (rest) "
            f"{sum(e.other_gpu_s for e in self.estimates) / 60:.1f} min. Dry run: {len(self.estimates)} node(s) in "
            f"{self.wall_s:.0f} s on this machine"
            + (f", {len(self.reused)} of them reused from the scratch cache." if self.reused
               else "."))
        return "\n".join(lines)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6 if abs(value) < 1 else 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def dry_run(
    registry: Any,
    root: Path,
    *,
    profile: str = "full",
    gpu: str = DEFAULT_GPU,
    only: tuple[str, ...] = (),
    jobs: int = 1,
    cache_dir: Path | None = None,
    show_progress: bool = True,
    first_cap: int | None = None,
    force: bool = False,
    gpu_jobs: int = GPU_JOBS,
    device: str = "cpu",
    timed: bool | None = None,
) -> DryRunReport:
    """Dry-run ``profile`` in a scratch cache and estimate it on ``gpu``.

    On the CPU (the default) every operator is counted and the estimate costs them on the
    GPU class. On a GPU (``device="cuda"``), the loops are cut the same way but each step
    is timed there, to the GPU's end, and the estimate extrapolates those times: a few
    minutes of a GPU check the whole profile's estimate node by node.

    Args:
        registry: the nodes (:class:`~genai_report.pipeline.registry.Registry`).
        root: the project root.
        profile: whose parameters run (``full`` is the point).
        gpu: the GPU class to estimate for (:data:`GPU_CLASSES`).
        only: these nodes and their dependencies (default: all).
        jobs: nodes at once (each in its own process).
        cache_dir: the scratch cache; default a temporary folder removed afterwards. It
            must not be the project's ``figures/``. A kept scratch cache makes the next dry
            run incremental: a node whose dry-run key (code, cut parameters, data, inputs)
            is unchanged is not run again, and its estimate comes from its record's usage.
        show_progress: draw progress bars.
        first_cap: step count of a node's first step field (default :data:`FIRST_CAP`,
            :data:`TIMED_CAP` when timed).
        force: run every node even when its entry in ``cache_dir`` is fresh (to measure
            again, e.g. after the step meter changed).
        gpu_jobs: nodes at once on the GPU in the predicted schedule (:data:`GPU_JOBS`).
        device: where the nodes run: ``cpu``, or the GPU being estimated (``cuda``).
        timed: time the steps rather than count every operator (default: on a GPU). A
            timed dry run on a CPU predicts that CPU's full run (the tests use it).
    """
    import shutil
    import tempfile

    from genai_report.pipeline.registry import Registry
    from genai_report.pipeline.runner import Pipeline, RunOptions

    target = gpu_class(gpu)  # fails before anything runs
    if gpu_jobs < 1:
        raise ConfigError(f"--gpu-jobs must be at least 1, not {gpu_jobs}.")
    if device not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"A dry run runs on cpu, cuda or mps, not on '{device}'.")
    timed = device != "cpu" if timed is None else timed
    if device != "cpu" and not timed:
        raise ConfigError(f"Counting every operator is a CPU dry run; on {device} the steps "
                          "are timed (leave out timed=False).")
    first_cap = first_cap or (TIMED_CAP if timed else FIRST_CAP)
    if cache_dir is not None and Path(cache_dir).resolve() == (Path(root) / "figures").resolve():
        raise ConfigError(
            f"A dry run never writes into {cache_dir}, which holds real outputs. Leave out "
            "--cache-dir (a temporary folder) or name a scratch folder.")
    cut: dict[str, DryParams] = {}
    nodes = {}
    for node in registry.topological(only or None):
        try:
            cut[node.name] = dry_params(node.params_for(profile), node.dry_run, first_cap)
        except ConfigError as exc:
            raise ConfigError(f"Node '{node.name}': {exc}") from None
        nodes[node.name] = dataclasses.replace(
            node, params={**node.params, profile: cut[node.name].params})
    scratch = Path(cache_dir) if cache_dir is not None else Path(
        tempfile.mkdtemp(prefix="genai-report" + DRY_RUN_SUFFIX + "-"))
    started = time.perf_counter()
    try:
        pipeline = Pipeline(Registry(nodes), cache_dir=scratch, root=root)
        for name in nodes:  # measured by an older meter: measure again
            record = pipeline.store.read_record(profile, name)
            usage = (record.usage or {}) if record is not None else {}
            if record is not None and (usage.get("meter_version") != METER_VERSION
                                       or bool(usage.get("timed")) != timed):
                log.info("%s: its kept dry run was metered by another version or in the "
                         "other mode (timed or counted); running it again.", name)
                shutil.rmtree(pipeline.store.entry_dir(profile, name), ignore_errors=True)
        run = pipeline.run(RunOptions(profile=profile, device=device, jobs=jobs,
                                      force=force or cache_dir is None,
                                      show_progress=show_progress,
                                      meter="timed" if timed else "all"),
                           raise_on_failure=False)
    finally:
        if cache_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    report = DryRunReport(profile=profile, gpu=gpu.lower(), failed=dict(run.failed),
                          skipped=dict(run.skipped), wall_s=time.perf_counter() - started,
                          reused=list(run.fresh), registered=len(registry.nodes),
                          gpu_jobs=gpu_jobs, timed_on=None)
    for name in nodes:
        record = run.records.get(name)
        if record is not None and record.usage is not None:
            dp = cut[name]
            metrics = record.metrics if isinstance(record.metrics, dict) else {}
            try:
                est = estimate(
                    name, record.usage, dp.caps, dp.overrides, target,
                    metrics.get(PLANNED_STEPS_KEY, record.usage.get("planned_steps")),
                    metrics.get(DERIVED_STEPS_KEY), metrics.get(REPEATS_KEY), timed=timed)
                if timed:
                    report.timed_on = report.timed_on or record.device
            except ValueError as exc:  # its declarations do not fit its loops
                report.failed[name] = f"{exc} Fix the node's declaration."
                continue
            est.deps = [d for d in nodes[name].deps if d in nodes]
            report.estimates.append(est)
    return report
