"""Post-training weight quantization of a GPT's linear layers: round-to-nearest and GPTQ.

Weights are stored as signed ``bits``-bit integer codes times a float16 scale, one scale per
output channel (row) or per group of ``group_size`` consecutive inputs in a row. Symmetric
round-to-nearest (RTN) is the baseline of Dettmers et al. (2022, "LLM.int8()", their
"vector-wise" quantization) and Frantar et al. (2023). GPTQ (Frantar et al., 2023, "GPTQ:
Accurate Post-Training Quantization for Generative Pre-trained Transformers", Algorithm 1)
quantizes one input column at a time and pushes each column's rounding error onto the
columns not yet quantized, weighted by the inverse Hessian ``H = 2 X^T X`` of the layer's
reconstruction error on calibration inputs ``X``.

This module simulates the storage: :func:`quantize_gpt` returns a copy of the model whose
weights are the dequantized codes, and :func:`storage_bytes` counts what the packed codes,
scales and remaining float32 tensors would occupy. It measures quality and size, not speed
(there are no int4 kernels here).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from genai_report.models.gpt import GPT

SCALE_BYTES = 2
"""Bytes per stored scale (float16)."""


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize.

    Attributes:
        bits: code width, 2..8 (codes in ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]``).
        group_size: inputs sharing one scale within a row; ``None`` is one scale per row.
        method: ``"rtn"`` (round to nearest) or ``"gptq"`` (error feedback, needs
            calibration inputs).
        damp: GPTQ's damping, a fraction of the mean diagonal of ``H`` added to it.
    """

    bits: int
    group_size: int | None = None
    method: str = "rtn"
    damp: float = 0.01

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 8:
            raise ValueError(f"bits must be in 2..8, got {self.bits}.")
        if self.group_size is not None and self.group_size < 1:
            raise ValueError(f"group_size must be >= 1 or None, got {self.group_size}.")
        if self.method not in ("rtn", "gptq"):
            raise ValueError(f"method must be 'rtn' or 'gptq', got {self.method!r}.")

    @property
    def qmax(self) -> int:
        """Largest code magnitude."""
        return 2 ** (self.bits - 1) - 1

    @property
    def label(self) -> str:
        """Short name, e.g. ``gptq-int4-g32``."""
        g = f"-g{self.group_size}" if self.group_size else ""
        return f"{self.method}-int{self.bits}{g}"

    def bits_per_weight(self, in_features: int) -> float:
        """Code bits plus the share of a float16 scale, per weight of a row this long."""
        group = self.group_size or in_features
        return self.bits + 8 * SCALE_BYTES / min(group, in_features)


@dataclass
class QuantizedWeight:
    """Integer codes and scales of one weight matrix.

    Attributes:
        codes: ``(out, in)`` int8 codes.
        scales: ``(out, n_groups)`` scales (float16 values held in float32).
        spec: how they were made.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    spec: QuantSpec

    def dequantize(self) -> torch.Tensor:
        """The float weight the codes stand for, ``(out, in)``."""
        out, n_in = self.codes.shape
        group = self.spec.group_size or n_in
        scale = self.scales.repeat_interleave(group, dim=1)[:, :n_in]  # (out, in)
        return self.codes.float() * scale

    def nbytes(self) -> int:
        """Bytes of the packed codes (``bits`` per weight) and the float16 scales."""
        return (self.codes.numel() * self.spec.bits + 7) // 8 + self.scales.numel() * SCALE_BYTES


def _scales(w: torch.Tensor, qmax: int) -> torch.Tensor:
    """Symmetric scales ``max|w| / qmax`` over the last dim, rounded to float16."""
    s = w.abs().amax(dim=-1) / qmax
    s = s.clamp_min(1e-8).half().float()
    return s


def _round(w: torch.Tensor, scale: torch.Tensor, qmax: int) -> torch.Tensor:
    return torch.clamp(torch.round(w / scale), -qmax, qmax)


def quantize_rtn(w: torch.Tensor, spec: QuantSpec) -> QuantizedWeight:
    """Round every weight to the nearest code of its row's (or group's) scale.

    Args:
        w: a weight matrix ``(out, in)``.
        spec: bits and grouping (``method`` is ignored).

    Returns:
        The codes and scales.
    """
    out, n_in = w.shape
    group = spec.group_size or n_in
    pad = (-n_in) % group
    wp = torch.nn.functional.pad(w.float(), (0, pad)).view(out, -1, group)  # (out, G, g)
    scales = _scales(wp, spec.qmax)  # (out, G)
    codes = _round(wp, scales[..., None], spec.qmax).view(out, -1)[:, :n_in]
    return QuantizedWeight(codes.to(torch.int8), scales, spec)


def quantize_gptq(w: torch.Tensor, hessian: torch.Tensor, spec: QuantSpec) -> QuantizedWeight:
    """GPTQ: quantize columns left to right, correcting later columns for each error.

    Frantar et al. (2023), Algorithm 1, without the lazy block updates (our layers are
    narrow): with ``U`` the upper Cholesky factor of ``H^{-1}``, after rounding column
    ``i`` its error ``e = (w_i - q_i) / U_ii`` is subtracted from the later columns as
    ``W[:, j] -= e * U_ij``. Group scales are set from the (already corrected) weights when
    the first column of a group is reached.

    Args:
        w: a weight matrix ``(out, in)``.
        hessian: ``X^T X`` of the layer's calibration inputs, ``(in, in)``.
        spec: bits, grouping and damping.

    Returns:
        The codes and scales.
    """
    W = w.double().clone()  # (out, in)
    out, n_in = W.shape
    H = hessian.double().clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += spec.damp * torch.diag(H).mean() * torch.eye(n_in, dtype=H.dtype)
    # U = chol(H^{-1})^T: row i holds how column i's error spreads to later columns
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    group = spec.group_size or n_in
    codes = torch.zeros(out, n_in, dtype=torch.int8)
    scales = torch.zeros(out, (n_in + group - 1) // group)
    scale = None
    for i in range(n_in):
        if i % group == 0:
            scale = _scales(W[:, i: i + group].float(), spec.qmax).double()  # (out,)
            scales[:, i // group] = scale.float()
        q = _round(W[:, i], scale, spec.qmax)  # (out,)
        codes[:, i] = q.to(torch.int8)
        err = (W[:, i] - q * scale) / U[i, i]  # (out,)
        W[:, i + 1:] -= err[:, None] * U[i, i + 1:][None, :]
    return QuantizedWeight(codes, scales, spec)


def quantizable_linears(model: GPT) -> dict[str, nn.Linear]:
    """The linear layers of the transformer blocks (not the tied embedding/output layer)."""
    return {name: mod for name, mod in model.named_modules()
            if isinstance(mod, nn.Linear) and name.startswith("blocks.")}


@torch.no_grad()
def calibration_hessians(model: GPT, batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """``X^T X`` of every quantizable layer's inputs over ``batches`` of token ids."""
    linears = quantizable_linears(model)
    hess = {name: torch.zeros(m.in_features, m.in_features, dtype=torch.float64)
            for name, m in linears.items()}
    hooks = []
    for name, mod in linears.items():
        def hook(_m, args, _out, name=name):
            x = args[0].reshape(-1, args[0].size(-1)).double()  # (B*T, in)
            hess[name] += x.T @ x
        hooks.append(mod.register_forward_hook(hook))
    try:
        for ids in batches:
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    return hess


@torch.no_grad()
def quantize_gpt(model: GPT, spec: QuantSpec, hessians: dict[str, torch.Tensor] | None = None
                 ) -> tuple[GPT, dict[str, QuantizedWeight]]:
    """A copy of ``model`` with every block's linear weights quantized and dequantized.

    Embeddings (and the output layer tied to them), LayerNorms and biases stay float32.

    Args:
        model: the float model (unchanged).
        spec: the quantization.
        hessians: from :func:`calibration_hessians`; required for ``method="gptq"``.

    Returns:
        ``(quantized_model, weights)``: the simulated model and each layer's codes.
    """
    if spec.method == "gptq" and hessians is None:
        raise ValueError("GPTQ needs calibration Hessians; see calibration_hessians().")
    qmodel = copy.deepcopy(model)
    weights: dict[str, QuantizedWeight] = {}
    for name, mod in quantizable_linears(qmodel).items():
        if spec.method == "rtn":
            qw = quantize_rtn(mod.weight, spec)
        else:
            qw = quantize_gptq(mod.weight, hessians[name], spec)
        mod.weight.copy_(qw.dequantize())
        weights[name] = qw
    return qmodel, weights


def storage_bytes(model: GPT, weights: dict[str, QuantizedWeight] | None = None) -> int:
    """Bytes to store ``model``: packed quantized weights, everything else float32.

    Tied tensors are counted once.

    Args:
        model: the model (float or quantized copy).
        weights: its quantized weights by module name (None: all float32).

    Returns:
        The byte count.
    """
    weights = weights or {}
    quantized = {id(dict(model.named_modules())[n].weight) for n in weights}
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or id(p) in quantized:
            continue
        seen.add(id(p))
        total += 4 * p.numel()
    return total + sum(qw.nbytes() for qw in weights.values())
