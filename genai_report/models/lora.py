"""Low-rank adaptation (LoRA) of linear layers (Hu et al., 2021).

A frozen weight ``W`` (out x in) is adapted by a trainable low-rank product:
``y = W x + (alpha / r) B A x`` with ``A`` (r x in) drawn from a Gaussian and ``B``
(out x r) started at zero, so an adapted model starts as the pretrained one (Hu et al.,
2021, section 4.1). :meth:`LoRALinear.merge` folds ``(alpha / r) B A`` into ``W`` so
inference costs nothing extra; :meth:`LoRALinear.unmerge` restores the frozen weight
bit for bit (it keeps a copy rather than subtracting, which would round).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class LoRALinear(nn.Module):
    """An ``nn.Linear`` with a frozen weight and a trainable rank-``r`` update.

    Args:
        base: the layer to adapt; its parameters are frozen in place.
        rank: ``r >= 1``.
        alpha: the update is scaled by ``alpha / rank`` (default ``alpha = rank``).
        generator: source of ``A``'s initial values.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}.")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.rank = rank
        self.scaling = (alpha if alpha is not None else rank) / rank
        w = base.weight
        a = torch.randn(rank, base.in_features, generator=generator, dtype=w.dtype)
        self.lora_A = nn.Parameter((a / math.sqrt(base.in_features)).to(w.device))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=w.dtype,
                                               device=w.device))  # (out, r)
        self.merged = False
        self._frozen: torch.Tensor | None = None

    def delta_weight(self) -> torch.Tensor:
        """The update ``(alpha / r) B A``, shaped like the base weight ``(out, in)``."""
        return self.scaling * self.lora_B @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)  # (..., out)
        if self.merged:
            return y
        # y = W x + (alpha / r) B (A x)
        return y + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight (no-op if already merged)."""
        if self.merged:
            return
        self._frozen = self.base.weight.detach().clone()
        self.base.weight.add_(self.delta_weight())
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the frozen base weight exactly (no-op if not merged)."""
        if not self.merged:
            return
        self.base.weight.copy_(self._frozen)
        self._frozen = None
        self.merged = False


DEFAULT_TARGETS = ("c_attn", "c_proj", "c_fc")


def apply_lora(model: nn.Module, rank: int, alpha: float | None = None,
               targets: Sequence[str] = DEFAULT_TARGETS,
               generator: torch.Generator | None = None) -> list[str]:
    """Freeze every parameter of ``model`` and wrap the targeted linear layers in LoRA.

    Args:
        model: the model, changed in place.
        rank: LoRA rank.
        alpha: LoRA scale numerator (default: ``rank``).
        targets: attribute names of the ``nn.Linear`` layers to adapt (in a GPT: the
            attention's ``c_attn``, ``c_proj`` and the MLP's ``c_fc``, ``c_proj``).
        generator: source of the ``A`` matrices.

    Returns:
        Qualified names of the wrapped layers.

    Raises:
        ValueError: no layer matched ``targets``.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                setattr(parent, child_name, LoRALinear(child, rank, alpha, generator))
                wrapped.append(f"{parent_name}.{child_name}" if parent_name else child_name)
    if not wrapped:
        raise ValueError(f"No nn.Linear named one of {tuple(targets)} in the model; pass "
                         "the attribute names of the layers to adapt as targets=.")
    return wrapped


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    """Every :class:`LoRALinear` inside ``model``."""
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> None:
    """Merge every LoRA update of ``model`` into its base weight."""
    for layer in lora_layers(model):
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo :func:`merge_lora`, restoring the frozen weights exactly."""
    for layer in lora_layers(model):
        layer.unmerge()


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad`` (tied tensors counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
