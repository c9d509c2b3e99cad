"""Several independent models of one architecture, trained as one batched model.

A report runs the same small model several times: over seeds, for the spread a claim
needs, or over data sets and settings. One after the other, each run's step launches every
kernel again, and on a GPU a model this small is bound by those launches, not by its
arithmetic (see :mod:`genai_report.pipeline.dryrun`). :class:`Ensemble` stacks the
members' parameters on a leading member axis ``(K, ...)`` and runs one forward pass for
all of them with :func:`torch.func.vmap`, so a step launches about as many kernels as one
member's step did, whatever ``K`` is.

The members stay independent:

* each member's output depends only on its own parameters and its own slice of the
  inputs, so the summed loss gives each member exactly its own gradient;
* Adam and AdamW update every number on its own, so one optimiser over the stacked
  parameters makes each member's update;
* gradient clipping, which would couple them through one global norm, is done per member
  (:meth:`Ensemble.clip_grad_norm_`), and so is weight decay, whose rank rule
  (:func:`~genai_report.training.loop.make_optimizer`) would take a stacked bias for a
  matrix (:func:`train_ensemble`).

Only the order of floating-point additions in the batched kernels differs from training
the members one by one, so the same seeds give runs that agree in distribution, not to the
last bit. Members are built the usual way (their own seed each) and their trained weights
are written back into them (:meth:`Ensemble.unstack_into`), so checkpoints and everything
downstream are unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from genai_report.training.loop import TrainConfig, TrainHistory, lr_at, train


class _Method(nn.Module):
    """Calls ``module.<name>`` as ``forward`` (what :func:`torch.func.functional_call`
    calls), so an ensemble can run any method of its members, not only ``forward``."""

    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        self.module = module
        self.name = name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.module, self.name)(*args, **kwargs)


class Ensemble(nn.Module):
    """``K`` models of one architecture as one module with stacked parameters.

    Args:
        members: the models, all of the same class and shapes (each initialised as it
            would be on its own). Their parameters are copied; :meth:`unstack_into`
            writes the trained ones back.
        randomness: what a random operator inside the members does (``torch.func.vmap``'s
            flag): ``"error"`` refuses one (noise is drawn outside, each member's from its
            own generator, so a member's run is its run alone); ``"different"`` lets each
            member draw its own, from the global generator (dropout in a model trained
            with it: each member's masks are its own, its run matches its run alone in
            distribution, not draw for draw).

    Calling the ensemble runs every member's ``forward`` at once: each tensor argument
    carries the member axis first, ``(K, ...)``, and so does each output.
    :meth:`call` runs another method the same way.
    """

    RANDOMNESS = ("error", "different")

    def __init__(self, members: Sequence[nn.Module], randomness: str = "error"):
        super().__init__()
        members = list(members)
        if len(members) < 1:
            raise ValueError("An ensemble needs at least one member.")
        if randomness not in self.RANDOMNESS:
            raise ValueError(f"randomness must be one of {self.RANDOMNESS}, got {randomness!r}.")
        self.randomness = randomness
        shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in members]
        odd = [i for i, s in enumerate(shapes) if type(members[i]) is not type(members[0])
               or s != shapes[0]]
        if odd:
            raise ValueError(f"Ensemble members must share one architecture; member(s) {odd} "
                             f"differ from member 0 ({type(members[0]).__name__}).")
        params, buffers = torch.func.stack_module_state(members)
        self.names = list(params)
        # Tied weights (a GPT's output layer is its token embedding) are stacked once, under
        # the first name; the others are aliases that a member's state_dict still lists.
        first: dict[int, str] = {}
        self.aliases: dict[str, str] = {}
        for name, tensor in members[0].named_parameters(remove_duplicate=False):
            if first.setdefault(id(tensor), name) != name:
                self.aliases[name] = first[id(tensor)]
        # (K, *shape) each; a list, since parameter names hold dots that a dict refuses
        self.stacked = nn.ParameterList(nn.Parameter(params[n]) for n in self.names)
        self.buffer_names = list(buffers)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer_{i}", buffers[name])
        # A stateless copy to call with the stacked state; kept out of the module tree so
        # its (meta) parameters are not trained.
        object.__setattr__(self, "_template", copy.deepcopy(members[0]).to("meta"))

    @property
    def size(self) -> int:
        """The number of members, ``K``."""
        return self.stacked[0].shape[0]

    def train(self, mode: bool = True) -> Ensemble:
        """Sets training mode on the ensemble and on the members' shared template."""
        super().train(mode)
        self._template.train(mode)
        return self

    def _state(self, prefix: str = "") -> dict[str, torch.Tensor]:
        state = {prefix + n: p for n, p in zip(self.names, self.stacked, strict=True)}
        state.update({prefix + n: getattr(self, f"buffer_{i}")
                      for i, n in enumerate(self.buffer_names)})
        state.update({prefix + alias: state[prefix + name]
                      for alias, name in self.aliases.items()})
        return state

    def call(self, method: str, *args: Any) -> Any:
        """Every member's ``method(*args)`` at once.

        Tensor arguments carry the member axis first, ``(K, ...)``; other values go to
        every member as they are. The method must be deterministic given its inputs (draw
        noise outside, each member's from its own generator, and pass it in), unless the
        ensemble was made with ``randomness="different"``.
        """
        module = _Method(self._template, method)

        def one(state: dict[str, torch.Tensor], *a: Any) -> Any:
            return torch.func.functional_call(module, state, a)

        dims = tuple(0 if isinstance(a, torch.Tensor) else None for a in args)
        return torch.func.vmap(one, in_dims=(0, *dims), randomness=self.randomness)(
            self._state("module."), *args)

    def forward(self, *args: Any) -> Any:
        """Every member's ``forward`` at once (see :meth:`call`)."""
        return self.call("forward", *args)

    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Clip each member's gradient to norm ``max_norm`` on its own; returns the
        ``(K,)`` norms before clipping.

        The same rule as :func:`torch.nn.utils.clip_grad_norm_` on one member: gradients
        are scaled by ``max_norm / (norm + 1e-6)`` when that is below one.
        """
        grads = [p.grad for p in self.stacked if p.grad is not None]
        if not grads:
            return torch.zeros(self.size)
        k = self.size
        # A few kernels whatever the number of tensors: one (K, total) copy for the norms,
        # one fused multiply for the scaling (what clip_grad_norm_ does with foreach).
        norms = torch.linalg.vector_norm(torch.cat([g.reshape(k, -1) for g in grads], 1), dim=1)
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # (K,)
        torch._foreach_mul_(grads, [scale.view(-1, *([1] * (g.dim() - 1))) for g in grads])
        return norms

    @torch.no_grad()
    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s ``state_dict`` (copies, off the ensemble's tensors)."""
        if not 0 <= k < self.size:
            raise IndexError(f"member {k} of an ensemble of {self.size}")
        state = {n: t[k].detach().clone() for n, t in self._state().items()
                 if n not in self.aliases}
        state.update({alias: state[name] for alias, name in self.aliases.items()})
        return state

    def unstack_into(self, members: Sequence[nn.Module]) -> None:
        """Write each member's trained parameters and buffers into ``members[k]``."""
        if len(members) != self.size:
            raise ValueError(f"{len(members)} module(s) given for an ensemble of {self.size}.")
        for k, module in enumerate(members):
            module.load_state_dict(self.member_state(k))


@dataclass
class EnsembleHistory(TrainHistory):
    """What an ensemble's training measured: :class:`TrainHistory` (whose losses are the
    members' sum) and each member's own loss.

    Attributes:
        member_loss: at each recorded step, every member's loss, ``[records][K]``.
    """

    member_loss: list[list[float]] = field(default_factory=list)

    def first_loss(self) -> list[float]:
        """Each member's loss at the first recorded step."""
        return list(self.member_loss[0])

    def last_loss(self, records: int = 10) -> list[float]:
        """Each member's loss averaged over the last ``records`` recorded steps."""
        tail = self.member_loss[-records:]
        return [sum(col) / len(tail) for col in zip(*tail, strict=True)]


def train_ensemble(ensemble: Ensemble, loss_fn: Callable[[Ensemble, int], torch.Tensor],
                   config: TrainConfig, *, record_every: int = 1,
                   **kwargs: Any) -> EnsembleHistory:
    """:func:`~genai_report.training.loop.train` for an :class:`Ensemble`.

    ``loss_fn(ensemble, step)`` returns every member's loss, ``(K,)``; their sum is
    minimised (so each member gets its own gradient), and each member's loss is kept at
    the steps ``train`` records (``record_every``). Other keyword arguments go to ``train``.

    Two settings would couple the members or miss their rule if ``train`` applied them to
    the stacked parameters, so they are applied here, per member, as the backward pass
    finishes (when the last stacked parameter's gradient has accumulated), before the
    optimiser steps:

    * ``grad_clip`` clips each member's gradient norm on its own;
    * ``weight_decay`` decays the parameters of rank >= 2 *in a member* (a stacked bias
      has rank 2 but is a bias), as AdamW would: ``p *= 1 - lr * weight_decay`` at the
      step's learning rate, before the Adam update.

    Raises:
        ValueError: when ``loss_fn`` does not return one loss per member, or a backward
            pass left some stacked parameter without a gradient (a member's parameter the
            loss does not use), which per-member clipping and decay need.
    """
    clip, decay = config.grad_clip, config.weight_decay
    decayed = [p for p in ensemble.stacked if p.dim() - 1 >= 2]  # (K, *member shape) each
    accumulated = [0]  # stacked parameters whose gradient this backward pass has completed
    current = [0]  # the step in progress
    recorded: list[torch.Tensor] = []  # (K,) each

    def on_grad(_param: torch.Tensor) -> None:
        accumulated[0] += 1
        if accumulated[0] < len(ensemble.stacked):
            return
        accumulated[0] = 0
        if clip > 0:
            ensemble.clip_grad_norm_(clip)
        if decay > 0 and decayed:
            with torch.no_grad():
                torch._foreach_mul_(decayed, 1.0 - lr_at(current[0], config) * decay)

    def check_all_had_gradients(step: int) -> None:
        if accumulated[0]:
            unused = [n for n, p in zip(ensemble.names, ensemble.stacked, strict=True)
                      if p.grad is None]
            raise ValueError(f"Step {step}'s loss gave no gradient to {', '.join(unused)}; "
                             "per-member clipping and weight decay need every parameter in "
                             "the loss (or train with grad_clip=0 and weight_decay=0).")

    def summed_loss(ens: Ensemble, step: int) -> torch.Tensor:
        check_all_had_gradients(step - 1)
        current[0] = step
        per_member = loss_fn(ens, step)
        if per_member.shape != (ens.size,):
            raise ValueError(f"The ensemble's loss_fn must return one loss per member, shape "
                             f"({ens.size},); got {tuple(per_member.shape)}.")
        if step % record_every == 0 or step == config.steps - 1:
            recorded.append(per_member.detach())
        return per_member.sum()

    hooked = clip > 0 or decay > 0
    handles = ([p.register_post_accumulate_grad_hook(on_grad) for p in ensemble.stacked]
               if hooked else [])
    try:
        hist = train(ensemble, summed_loss,
                     dataclasses.replace(config, grad_clip=0.0, weight_decay=0.0),
                     record_every=record_every, **kwargs)
        check_all_had_gradients(config.steps - 1)
    finally:
        for handle in handles:
            handle.remove()
    return EnsembleHistory(**{f.name: getattr(hist, f.name) for f in dataclasses.fields(hist)},
                           member_loss=torch.stack(recorded).tolist() if recorded else [])
