"""Scaling-law measurements: parameter and FLOP counts, power-law fits, IsoFLOP optima.

* :func:`count_parameters` splits a model's parameters into embedding and non-embedding
  ones (Kaplan et al., 2020, count only the latter in ``N``).
* :func:`training_flops` is the training compute of Kaplan et al. (2020), Table 1:
  ``C = 6 N D + 6 n_layer n_ctx d_model D``: the ``6 N`` rule (a forward pass costs about
  ``2 N`` per token, the backward pass twice that) plus the attention scores.
* :func:`fit_power_law` fits ``L(x) = E + A x^(-alpha)`` by least squares: for a fixed
  ``alpha`` the model is linear in ``E`` and ``A``, so the fit is a one-dimensional search
  over ``alpha`` with a linear solve inside (no optimiser to tune, no starting point).
* :func:`bootstrap_exponent` gives a percentile interval on ``alpha`` by resampling the
  fit's residuals (the design points stay fixed, which suits a handful of model sizes).
* :func:`fit_parametric_loss` fits ``L(N, D) = E + A N^(-alpha) + B D^(-beta)`` to every
  (size, tokens, loss) point and :meth:`ParametricLoss.optimal_n` minimises it under a
  compute budget ``C = 6 N D`` (Hoffmann et al., 2022, approach 3 and equation 4).
* :func:`isoflop_optimum` fits a parabola in ``log N`` to one IsoFLOP profile and returns its
  minimum (Hoffmann et al., 2022, approach 2); :func:`optimal_size_exponent` fits
  ``N* ∝ C^a`` across budgets with a residual-bootstrap interval on ``a``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def count_parameters(model) -> dict[str, int]:
    """Parameter counts read from a model's tensors (a tied tensor counts once).

    Embedding parameters are those of ``nn.Embedding`` modules (token and position
    tables); with weight tying the output layer shares the token table and so is an
    embedding parameter too. Everything else is non-embedding.

    Args:
        model: a ``torch.nn.Module``.

    Returns:
        ``{"total", "embedding", "non_embedding"}``.
    """
    from torch import nn

    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    seen: set[int] = set()
    total = embedding = 0
    for p in model.parameters():  # parameters() already yields a tied tensor once
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if id(p) in embedding_ids:
            embedding += p.numel()
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


def flops_per_token(n_params: int, n_layer: int, n_ctx: int, d_model: int) -> float:
    """Training FLOPs per token: ``6 N + 6 n_layer n_ctx d_model`` (Kaplan et al., Table 1).

    Args:
        n_params: non-embedding parameters ``N``.
        n_layer: transformer blocks.
        n_ctx: context length the model trains on.
        d_model: width (``d_attn = d_model`` in our GPT).

    Returns:
        FLOPs per training token (forward and backward).
    """
    return 6.0 * n_params + 6.0 * n_layer * n_ctx * d_model


def training_flops(n_params: int, n_layer: int, n_ctx: int, d_model: int, tokens: float) -> float:
    """Training compute ``C = (6 N + 6 n_layer n_ctx d_model) D`` for ``D = tokens``."""
    return flops_per_token(n_params, n_layer, n_ctx, d_model) * float(tokens)


@dataclass(frozen=True)
class PowerLawFit:
    """``L(x) = E + A x^(-alpha)`` fitted to points.

    Attributes:
        E: the irreducible loss (the offset, >= 0).
        A: the scale.
        alpha: the exponent.
        r2: coefficient of determination of the fit, in loss units.
        n_points: points fitted.
    """

    E: float
    A: float
    alpha: float
    r2: float
    n_points: int

    def __call__(self, x):
        """The fitted loss at ``x`` (scalar or array)."""
        return self.E + self.A * np.asarray(x, dtype=float) ** (-self.alpha)

    def as_dict(self) -> dict[str, float]:
        """The fit as a JSON-able dict."""
        return asdict(self)


def _solve_linear(z: np.ndarray, y: np.ndarray, with_offset: bool) -> tuple[float, float, float]:
    """Least squares of ``y = E + A z`` with ``E >= 0`` (or ``E = 0``); returns E, A, SSE."""
    e, a, err = _solve_many(z[None, :], y, with_offset)
    return float(e[0]), float(a[0]), float(err[0])


def _solve_many(z: np.ndarray, y: np.ndarray, with_offset: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_solve_linear` for every row of ``z`` ``(G, n)`` at once, in closed form.

    With an offset, the ordinary least-squares line; where its ``E`` is negative (or the
    row is constant), the best line through the origin instead, which is then the
    constrained optimum (the objective is convex and ``E = 0`` is the boundary).
    """
    through_origin = (z @ y) / np.einsum("gn,gn->g", z, z)  # (G,)
    err0 = np.sum((y - through_origin[:, None] * z) ** 2, axis=1)
    if not with_offset:
        return np.zeros(len(z)), through_origin, err0
    zc = z - z.mean(axis=1, keepdims=True)  # (G, n)
    szz = np.einsum("gn,gn->g", zc, zc)
    ok = szz > 1e-300
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(ok, zc @ (y - y.mean()) / np.where(ok, szz, 1.0), 0.0)
    e = y.mean() - a * z.mean(axis=1)
    err = np.sum((y - e[:, None] - a[:, None] * z) ** 2, axis=1)
    use = ok & (e >= 0)
    return (np.where(use, e, 0.0), np.where(use, a, through_origin),
            np.where(use, err, err0))


def fit_power_law(x, y, *, with_offset: bool = True, alpha_range: tuple[float, float] = (1e-3, 3.0),
                  grid: int = 600) -> PowerLawFit:
    """Fit ``y = E + A x^(-alpha)`` by least squares in ``y``.

    For each ``alpha`` on a log-spaced grid the best ``E >= 0`` and ``A`` solve a linear
    least-squares problem (in closed form, every grid point at once); the best grid point
    is then refined on ever finer grids between its neighbours.
    ``x`` is rescaled by its geometric mean inside, so ``A`` is well conditioned; the
    returned ``A`` is in the caller's units.

    Args:
        x: positive abscissae (parameters, tokens or FLOPs).
        y: losses.
        with_offset: fit the offset ``E``; ``False`` fixes ``E = 0`` (a pure power law).
        alpha_range: search interval for ``alpha``.
        grid: grid points over the interval.

    Returns:
        The :class:`PowerLawFit`.

    Raises:
        ValueError: fewer than 3 points, or a non-positive ``x``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"Need matching 1-D x and y with at least 3 points, got shapes "
                         f"{x.shape} and {y.shape}.")
    if np.any(x <= 0):
        raise ValueError("x must be positive to fit a power law.")
    scale = float(np.exp(np.mean(np.log(x))))
    u = x / scale

    def errors(alphas: np.ndarray) -> np.ndarray:
        return _solve_many(u[None, :] ** (-alphas[:, None]), y, with_offset)[2]  # (G,)

    grid_alphas = np.exp(np.linspace(np.log(alpha_range[0]), np.log(alpha_range[1]), grid))
    i = int(np.argmin(errors(grid_alphas)))
    a_lo = grid_alphas[max(i - 1, 0)]
    a_hi = grid_alphas[min(i + 1, grid - 1)]
    while a_hi - a_lo > 1e-12 * a_hi:  # a finer grid between the best point's neighbours
        fine = np.linspace(a_lo, a_hi, 65)
        j = int(np.argmin(errors(fine)))
        a_lo, a_hi = fine[max(j - 1, 0)], fine[min(j + 1, 64)]
    alpha = 0.5 * (a_lo + a_hi)
    e, a_scaled, err = _solve_linear(u ** (-alpha), y, with_offset)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - err / total if total > 0 else 1.0
    # A (x/s)^-alpha = A s^alpha x^-alpha
    return PowerLawFit(E=e, A=a_scaled * scale ** alpha, alpha=float(alpha), r2=float(r2),
                       n_points=len(x))


def bounds_hit(fit: PowerLawFit, *, with_offset: bool = True,
               alpha_range: tuple[float, float] = (1e-3, 3.0), rtol: float = 0.01) -> list[str]:
    """The parameters of a power-law fit that sit at a bound of their search range.

    A fit at a bound is degenerate: the data do not determine that parameter (an offset
    ``E`` pinned at zero says only that the data show no floor yet), and quantities that
    depend on it, such as a "reducible" loss ``L - E``, must not be read from it.

    Args:
        fit: the fit, from :func:`fit_power_law`.
        with_offset: whether ``E`` was fitted (a fixed ``E = 0`` is not a bound hit).
        alpha_range: the exponent's search interval given to :func:`fit_power_law`.
        rtol: relative distance to a bound that counts as at it.

    Returns:
        The names among ``"E"`` and ``"alpha"`` that are at a bound, in that order.
    """
    hit = []
    if with_offset and fit.E <= 0.0:
        hit.append("E")
    lo, hi = alpha_range
    if fit.alpha <= lo * (1 + rtol) or fit.alpha >= hi * (1 - rtol):
        hit.append("alpha")
    return hit


def bootstrap_exponent(x, y, fit: PowerLawFit, *, n_boot: int = 500, level: float = 0.95,
                       seed: int = 0, with_offset: bool = True) -> tuple[float, float]:
    """Percentile interval on ``alpha`` from a residual bootstrap of ``fit``.

    Each replicate adds resampled residuals (with replacement) to the fitted values at the
    same ``x`` and refits.

    Args:
        x, y: the points ``fit`` was fitted to.
        fit: the fit.
        n_boot: replicates.
        level: coverage of the interval.
        seed: seed of the NumPy generator.
        with_offset: as in :func:`fit_power_law`.

    Returns:
        ``(low, high)``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    fitted = fit(x)
    resid = y - fitted
    alphas = []
    for _ in range(n_boot):
        y_b = fitted + rng.choice(resid, size=len(resid), replace=True)
        alphas.append(fit_power_law(x, y_b, with_offset=with_offset, grid=150).alpha)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(alphas, [tail, 100 - tail])
    return float(low), float(high)


def fit_log_linear(x, y) -> tuple[float, float, float]:
    """Least squares of ``log y = slope log x + intercept``.

    Returns:
        ``(slope, intercept, r2)`` (natural logarithms).
    """
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    slope, intercept = np.polyfit(lx, ly, 1)
    pred = slope * lx + intercept
    total = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ly - pred) ** 2)) / total if total > 0 else 1.0
    return float(slope), float(intercept), r2


def isoflop_optimum(n_params, losses) -> dict[str, float] | None:
    """Minimum of a parabola in ``log N`` fitted to one IsoFLOP profile.

    Args:
        n_params: model sizes that spent the same compute.
        losses: their losses.

    Returns:
        ``{"n_opt", "loss_opt", "curvature", "interior"}``, or ``None`` with fewer than 3
        points or a parabola that opens downwards. ``interior`` says whether the minimum
        lies inside the sizes measured (outside, it is an extrapolation).
    """
    n = np.asarray(n_params, dtype=float)
    loss = np.asarray(losses, dtype=float)
    if len(n) < 3:
        return None
    ln = np.log(n)
    a, b, c = np.polyfit(ln, loss, 2)
    if a <= 0:
        return None
    # d/dlogN (a l^2 + b l + c) = 0  ->  l* = -b / 2a
    l_opt = -b / (2 * a)
    return {
        "n_opt": float(np.exp(l_opt)),
        "loss_opt": float(a * l_opt ** 2 + b * l_opt + c),
        "curvature": float(a),
        "interior": bool(ln.min() <= l_opt <= ln.max()),
    }


def optimal_size_exponent(profiles, *, n_boot: int = 500, level: float = 0.95,
                          seed: int = 0) -> dict:
    """Exponent ``a`` of ``N*(C) ∝ C^a`` from IsoFLOP profiles, with a bootstrap interval.

    Each profile's optimum is the minimum of a parabola in ``log N``
    (:func:`isoflop_optimum`); ``a`` is the slope of ``log N*`` against ``log C`` over the
    profiles whose minimum is interior. Each bootstrap replicate adds residuals resampled
    within every profile to that profile's parabola, refits every optimum and the slope.

    Args:
        profiles: ``(flops, n_params, losses)`` per budget.
        n_boot: replicates.
        level: coverage of the interval.
        seed: seed of the NumPy generator.

    Returns:
        ``{"optima", "interior", "exponent", "r2", "ci", "n_boot"}``: one optimum (or
        ``None``) per profile, the count of interior ones, the slope and its R² (NaN with
        fewer than two interior optima), the percentile interval (NaN likewise) and the
        replicates that had two interior optima to fit.
    """
    optima = [isoflop_optimum(n, loss) for _c, n, loss in profiles]
    good = [(c, o["n_opt"]) for (c, _n, _l), o in zip(profiles, optima, strict=True)
            if o is not None and o["interior"]]
    nan = float("nan")
    out = {"optima": optima, "interior": len(good), "exponent": nan, "r2": nan,
           "ci": [nan, nan], "n_boot": 0}
    if len(good) < 2:
        return out
    slope, _icpt, r2 = fit_log_linear(*zip(*good, strict=True))
    out.update(exponent=slope, r2=r2)
    rng = np.random.default_rng(seed)
    fits = []
    for _c, n, loss in profiles:
        ln, y = np.log(np.asarray(n, dtype=float)), np.asarray(loss, dtype=float)
        fitted = np.polyval(np.polyfit(ln, y, 2), ln)
        fits.append((np.asarray(n, dtype=float), fitted, y - fitted))
    slopes = []
    for _ in range(n_boot):
        pts = []
        for (c, _n, _l), (n, fitted, resid) in zip(profiles, fits, strict=True):
            o = isoflop_optimum(n, fitted + rng.choice(resid, size=len(resid), replace=True))
            if o is not None and o["interior"]:
                pts.append((c, o["n_opt"]))
        if len(pts) >= 2:
            slopes.append(fit_log_linear(*zip(*pts, strict=True))[0])
    if slopes:
        tail = 100 * (1 - level) / 2
        out["ci"] = [float(v) for v in np.percentile(slopes, [tail, 100 - tail])]
    out["n_boot"] = len(slopes)
    return out


@dataclass(frozen=True)
class ParametricLoss:
    """``L(N, D) = E + A N^(-alpha) + B D^(-beta)`` (Hoffmann et al., 2022, equation 2).

    Attributes:
        E, A, B, alpha, beta: the law's constants.
        r2: coefficient of determination over the fitted points.
        n_points: points fitted.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    r2: float
    n_points: int

    def __call__(self, n, d):
        """The fitted loss at ``n`` parameters and ``d`` tokens."""
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n ** (-self.alpha) + self.B * d ** (-self.beta)

    def optimal_n(self, flops):
        """``N*(C) = G (C / 6)^(beta / (alpha + beta))``, ``G = (alpha A / beta B)^(1 / (alpha + beta))``."""
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        return g * (np.asarray(flops, dtype=float) / 6) ** (self.beta / (self.alpha + self.beta))

    def as_dict(self) -> dict[str, float]:
        """The fit as a JSON-able dict, with the compute-optimal exponent ``a`` of N*(C)."""
        return {**asdict(self), "a": self.beta / (self.alpha + self.beta)}


def fit_parametric_loss(n, d, loss, *, exponents: tuple[float, float] = (0.02, 2.0),
                        grid: int = 60) -> ParametricLoss:
    """Least-squares fit of ``L = E + A N^(-alpha) + B D^(-beta)`` with ``E, A, B >= 0``.

    For each ``(alpha, beta)`` on a log-spaced grid the law is linear in ``E, A, B``; grid
    points whose linear solution has a negative coefficient are skipped.

    Args:
        n, d, loss: one entry per measured point (model size, tokens seen, loss).
        exponents: search interval of both exponents.
        grid: grid points per exponent.

    Returns:
        The best :class:`ParametricLoss`.

    Raises:
        ValueError: fewer than 5 points, or no grid point with non-negative coefficients.
    """
    n, d, y = (np.asarray(v, dtype=float) for v in (n, d, loss))
    if len(y) < 5:
        raise ValueError(f"Need at least 5 points to fit 5 constants, got {len(y)}.")
    sn, sd = np.exp(np.mean(np.log(n))), np.exp(np.mean(np.log(d)))
    u, v = n / sn, d / sd

    def search(alphas, betas, best):
        for a in alphas:
            for b in betas:
                design = np.stack([np.ones_like(y), u ** (-a), v ** (-b)], axis=1)  # (P, 3)
                coef, *_ = np.linalg.lstsq(design, y, rcond=None)
                if np.any(coef < 0):
                    continue
                err = float(np.sum((design @ coef - y) ** 2))
                if best is None or err < best[0]:
                    best = (err, a, b, coef)
        return best

    coarse = np.exp(np.linspace(*np.log(exponents), grid))
    best = search(coarse, coarse, None)
    if best is not None:  # refine around the best coarse point
        step = coarse[1] / coarse[0]
        best = search(best[1] * step ** np.linspace(-1, 1, 21),
                      best[2] * step ** np.linspace(-1, 1, 21), best)
    if best is None:
        raise ValueError("No fit with non-negative E, A, B; the losses may not fall with N "
                         "and D. Check the runs.")
    err, a, b, (e, a_coef, b_coef) = best
    total = float(np.sum((y - y.mean()) ** 2))
    return ParametricLoss(E=float(e), A=float(a_coef * sn ** a), B=float(b_coef * sd ** b),
                          alpha=float(a), beta=float(b),
                          r2=1.0 - err / total if total > 0 else 1.0, n_points=len(y))
