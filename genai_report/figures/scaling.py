"""Figures of the Scaling chapter, and the sweep they are drawn from.

The sweep is listed here (see :mod:`genai_report.artifacts.scaling` for why not beside the
training code): one ``scaling-run-d<width>-l<depth>`` artifact per shape, each cached on its
own. ``smoke`` and ``quick`` train the small shapes; ``full`` (for a GPU) adds wider and
deeper ones. A shape outside a profile's sweep is registered but inactive there (it writes
an empty record at once). ``genai-report figures --jobs N`` trains independent runs in
parallel processes with ``cores // N`` torch threads each.

Beside the sweep, the chapter's other experiments are nodes of their own: one
``scaling-isoflop-budget<i>`` per compute budget (:mod:`genai_report.artifacts.isoflop`),
``scaling-finetune`` (LoRA against full fine-tuning on a far domain,
:mod:`genai_report.artifacts.adaptation`), ``scaling-distill``
(:mod:`genai_report.artifacts.distill`) and the emergence control's
``scaling-addition-d<width>`` (:mod:`genai_report.artifacts.emergence`).
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts.adaptation import Adaptation, adapt
from genai_report.artifacts.distill import Distill, distill
from genai_report.artifacts.emergence import AdditionWidths, train_widths
from genai_report.artifacts.isoflop import IsoFlopBudget, train_budget
from genai_report.artifacts.scaling import ScalingRun, corpus_file, train_run
from genai_report.pipeline import artifact, figure

SMALL_SHAPES = ((16, 1), (24, 1), (32, 1), (48, 1), (64, 2), (80, 2))
"""(width, depth) of the sweep in ``smoke`` and ``quick`` (about 3e3 to 1.5e5 parameters)."""
LARGE_SHAPES = ((128, 3), (192, 4), (256, 4), (384, 6), (512, 8))
"""Added in ``full`` (up to about 2.5e7 parameters)."""


def run_name(width: int, depth: int) -> str:
    """Node name of the sweep's run of this shape."""
    return f"scaling-run-d{width}-l{depth}"


def _run_params(width: int, depth: int) -> dict[str, ScalingRun]:
    small = (width, depth) in SMALL_SHAPES
    return {
        "smoke": ScalingRun(width, depth, active=small, block_size=16, batch_size=4, steps=8,
                            warmup_steps=1, evals=4, eval_batches=1, n_task_eval=20),
        "quick": ScalingRun(width, depth, active=small),
        "full": ScalingRun(width, depth, block_size=128, batch_size=64, steps=2000,
                           lr=min(3e-3, 0.4 / width), warmup_steps=100, evals=14,
                           eval_batches=20, n_task_eval=2000),
    }


RUNS = tuple(run_name(w, d) for w, d in SMALL_SHAPES + LARGE_SHAPES)
for _w, _d in SMALL_SHAPES + LARGE_SHAPES:
    artifact(run_name(_w, _d), params=_run_params(_w, _d), outputs=("model.pt", "run.json"),
             seed=50, data=(corpus_file,),
             # 4 evaluations: a curve past the warm-up keeps the 3 points a law is fitted to
             dry_run={"eval_batches": 2, "n_task_eval": 100, "evals": 4})(train_run)

artifact(
    "scaling-finetune",
    params={
        "smoke": Adaptation(ranks=(1, 4), steps=4, batch_size=4, seeds=2, train_lines=400,
                            eval_lines=100, eval_batches=1),
        "quick": Adaptation(),
        # sized from the dry run's per-step estimate on one H100 to stay near a node's 240 s
        "full": Adaptation(ranks=(1, 8, 64), steps=400, batch_size=16, lr_full=3e-5,
                           lr_lora=2e-4, train_lines=100_000, eval_lines=10_000,
                           eval_batches=20, evals=8),
    },
    outputs=("adaptation.json",),
    deps=("gpt-char",),
    seed=51,
    data=(corpus_file,),
    # Full-size steps of the 10M-parameter base take seconds each on a CPU: one seed and
    # one rank exercise both code paths (full fine-tuning, then LoRA, merge included).
    dry_run={"seeds": 1, "ranks": (4,), "eval_batches": 1, "train_lines": 20_000,
             "eval_lines": 2_000},
)(adapt)


@dataclass(frozen=True)
class Fits:
    """Parameters of the fits.

    Attributes:
        n_boot: bootstrap replicates for the exponents' intervals.
        budgets: IsoFLOP budgets (log-spaced inside the range three or more runs cover).
    """

    n_boot: int = 500
    budgets: int = 4


FITS = {"smoke": Fits(n_boot=20, budgets=2), "quick": Fits(), "full": Fits(budgets=6)}


def _runs(ctx) -> list[dict]:
    """Records of the active runs, smallest first (with their training times)."""
    runs = []
    for r in RUNS:
        ctx.input(r, "run.json")  # declared and present; its record adds the timings
        runs.append(ctx.input_metrics(r))
    return sorted((r for r in runs if r["active"]), key=lambda r: r["params"]["non_embedding"])


def _settled(run: dict) -> list[dict]:
    """Curve points past twice the warm-up (the warm-up itself is not a scaling regime)."""
    return [c for c in run["curve"] if c["step"] >= 2 * run["warmup_steps"]]


def _fit(x, y, n_boot: int, seed: int) -> dict:
    """``L = E + A x^-alpha`` with a bootstrap interval on alpha, the pure power law beside
    it, and ``at_bound``: the parameters that sit at a bound (see ``bounds_hit``)."""
    from genai_report.metrics.scaling import bootstrap_exponent, bounds_hit, fit_power_law

    fit = fit_power_law(x, y)
    low, high = bootstrap_exponent(x, y, fit, n_boot=n_boot, seed=seed)
    pure = fit_power_law(x, y, with_offset=False)
    return {**fit.as_dict(), "alpha_ci": [low, high], "alpha_no_offset": pure.alpha,
            "r2_no_offset": pure.r2, "at_bound": bounds_hit(fit)}


def _fit_label(fit: dict, exponent: str) -> str:
    """Legend text of a fit, flagging parameters at a bound."""
    label = f"fit: {exponent} = {fit['alpha']:.2f}, R² = {fit['r2']:.3f}"
    if "E" in fit["at_bound"]:
        label += "\n(offset E at its bound 0)"
    return label


def _frontier(runs: list[dict]) -> list[tuple[float, float]]:
    """Compute-efficient frontier: points no run beats with less or equal compute."""
    points = sorted((c["flops"], c["val_loss"]) for r in runs for c in _settled(r))
    out, best = [], float("inf")
    for flops, loss in points:
        if loss < best:
            out.append((flops, loss))
            best = loss
    return out


def _plain_log_ticks(ax) -> None:
    """Losses as plain numbers on a log y axis; no labels on the minor x ticks."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.1f"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _curve(x_lo, x_hi, fit, n=100):
    import numpy as np

    x = np.geomspace(x_lo, x_hi, n)
    return x, fit["E"] + fit["A"] * x ** (-fit["alpha"])


@figure(
    "scaling-laws",
    deps=RUNS,
    params=FITS,
    outputs=("laws.svg", "fits.json", "interactive.json"),
    title="Our GPTs follow power laws in parameters, data and compute",
    caption="Validation loss (nats per character) of the sweep on log axes, with fitted "
            "laws L = E + A x^(-alpha); grey bands mark extrapolation. Top left: final loss "
            "against non-embedding parameters. Top right: the largest model's loss against "
            "tokens seen. Bottom: every run's curve against training compute, coloured by "
            "size, and the compute-efficient frontier.",
    alt="Three log-log panels: loss falling with parameters, with tokens and with FLOPs, "
        "each with a fitted power law plus offset.",
)
def laws(ctx, p: Fits):
    """Fit L(N), L(D), L(C) with bootstrap intervals on the exponents."""
    import json
    import math

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.plotting import save_figure

    runs = _runs(ctx)
    n = [r["params"]["non_embedding"] for r in runs]
    loss_n = [r["val_loss"] for r in runs]
    fit_n = _fit(n, loss_n, p.n_boot, ctx.seed)
    big = runs[-1]
    pts = _settled(big)
    fit_d = _fit([c["tokens"] for c in pts], [c["val_loss"] for c in pts], p.n_boot, ctx.seed)
    front = _frontier(runs)
    fit_c = _fit([f for f, _ in front], [v for _, v in front], p.n_boot, ctx.seed)

    # Drawn for the column: L(N) and L(D) side by side, the compute panel across the foot.
    fig = plt.figure(figsize=(7.2, 6.4))
    grid = fig.add_gridspec(2, 2)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]),
            fig.add_subplot(grid[1, :])]
    ax = axes[0]
    ax.plot(n, loss_n, "o", color="C0", label="our runs")
    ax.plot(*_curve(min(n) / 1.5, max(n) * 1.5, fit_n), color="C0", alpha=0.6,
            label=_fit_label(fit_n, "α"))
    for lo, hi in ((min(n) / 1.5, min(n)), (max(n), max(n) * 1.5)):
        ax.axvspan(lo, hi, color="0.92", lw=0, zorder=0,
                   label="extrapolation" if lo > min(n) else None)
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N",
           ylabel="val. loss (nats/char)", title="L(N) at fixed data")
    ax = axes[1]
    for r in runs[:-1]:
        ax.plot([c["tokens"] for c in _settled(r)], [c["val_loss"] for c in _settled(r)],
                color="0.75", lw=1)
    ax.plot([c["tokens"] for c in pts], [c["val_loss"] for c in pts], "o", color="C1",
            label=f"largest model (N = {big['params']['non_embedding']:.2g})")
    ax.plot(*_curve(pts[0]["tokens"], pts[-1]["tokens"], fit_d), color="C1", alpha=0.6,
            label=_fit_label(fit_d, "β"))
    ax.set(xscale="log", yscale="log", xlabel="training tokens D", title="L(D), largest model")
    ax = axes[2]
    from matplotlib.colors import ListedColormap, LogNorm

    norm = LogNorm(vmin=min(n), vmax=max(n))
    # viridis without its pale-yellow top, which vanishes as a line on white
    sizes = ListedColormap(plt.cm.viridis(np.linspace(0.0, 0.85, 256)))
    for r in runs:
        ax.plot([c["flops"] for c in _settled(r)], [c["val_loss"] for c in _settled(r)],
                color=sizes(norm(r["params"]["non_embedding"])), lw=1.2)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=sizes), ax=ax, pad=0.02)
    bar.set_label("non-embedding parameters N")
    ax.plot(*zip(*front, strict=True), "k.", ms=4)
    ax.plot(*_curve(front[0][0], front[-1][0], fit_c), "k--", alpha=0.7,
            label="frontier " + _fit_label(fit_c, "α_C"))
    ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)",
           ylabel="val. loss (nats/char)", title="L(C), compute frontier")
    for ax in axes:
        ax.legend(fontsize=8)
        _plain_log_ticks(ax)
    fig.tight_layout()
    save_figure(fig, ctx.output("laws.svg"))
    _laws_view(ctx, runs, {"n": fit_n, "d": fit_d, "c": fit_c}, front, sizes, norm)
    out = {
        "n_models": len(runs),
        "n_min": min(n), "n_max": max(n),
        "decades_n": math.log10(max(n) / min(n)),
        "tokens_per_run": big["tokens"],
        "fit_n": fit_n, "fit_d": fit_d, "fit_c": fit_c,
        "largest_n": big["params"]["non_embedding"],
        "frontier_c_min": front[0][0], "frontier_c_max": front[-1][0],
        "frontier_best_loss": front[-1][1],
        "losses": {f"d{r['n_embd']}-l{r['n_layer']}": r["val_loss"] for r in runs},
        "train_s_total": sum(r["train_s"] for r in runs),
    }
    ctx.output("fits.json").write_text(json.dumps(out))
    return out


def _laws_view(ctx, runs: list[dict], fits: dict, front, sizes, norm) -> None:
    """The figure's three panels as an interactive view: hovering reads every run at one
    x, clicking a legend entry hides or shows a run or a fitted law."""
    from matplotlib.colors import to_hex

    from genai_report.plotting.interactive import (
        INTERACTIVE,
        lines_view,
        panel,
        series,
        write_view,
    )

    def color(r):
        return to_hex(sizes(norm(r["params"]["non_embedding"])))

    def name(r):
        return f"N = {r['params']['non_embedding']:,}"

    def law(label, fit, lo, hi):
        xs, ys = _curve(lo, hi, fit, n=40)
        text = _fit_label(fit, label).replace("\n", " ")
        return series(f"fitted law, {text}", list(xs), list(ys), color="#555555", dash=True,
                      points=False)

    n = [r["params"]["non_embedding"] for r in runs]
    by_n = panel([series("final loss of each run", n, [r["val_loss"] for r in runs],
                         color="#3b6fb6", width=0),
                  law("α", fits["n"], min(n), max(n))],
                 x_label="non-embedding parameters N", y_label="val. loss (nats/char)",
                 x_log=True, title="L(N) at fixed data")
    big = runs[-1]
    pts = _settled(big)
    by_d = panel([*(series(name(r), [c["tokens"] for c in _settled(r)],
                           [c["val_loss"] for c in _settled(r)], color=color(r),
                           points=r is big, width=2 if r is big else 1) for r in runs),
                  law("β", fits["d"], pts[0]["tokens"], pts[-1]["tokens"])],
                 x_label="training tokens D", y_label="val. loss (nats/char)",
                 x_log=True, title="L(D), every run (fit: the largest)")
    by_c = panel([*(series(name(r), [c["flops"] for c in _settled(r)],
                           [c["val_loss"] for c in _settled(r)], color=color(r))
                    for r in runs),
                  series("compute-efficient frontier", [f for f, _ in front],
                         [v for _, v in front], color="#000000", width=0),
                  law("α_C", fits["c"], front[0][0], front[-1][0])],
                 x_label="training compute C (FLOPs)", y_label="val. loss (nats/char)",
                 x_log=True, title="L(C), compute frontier", wide=True)
    write_view(ctx.output(INTERACTIVE), lines_view(
        [by_n, by_d, by_c],
        hint="Hover to read every run at one point; click a legend entry to hide or show a "
             "run or a fitted law. Losses on a linear axis here (their range is narrow); the "
             "static figure, kept for print, has both axes logarithmic."))


ISOFLOP_BUDGETS = {
    "smoke": (2e6, 4e6, 8e6),
    "quick": (2.5e10, 7.9e10, 2.5e11),
    "full": (3e11, 1e12, 3e12),
}
"""Training compute of each IsoFLOP profile, per profile (each set spans a decade)."""


def isoflop_name(i: int) -> str:
    """Node name of the ``i``-th (0-based) IsoFLOP budget, smallest first."""
    return f"scaling-isoflop-budget{i + 1}"


def _isoflop_params(i: int) -> dict[str, IsoFlopBudget]:
    b = {k: v[i] for k, v in ISOFLOP_BUDGETS.items()}
    return {
        "smoke": IsoFlopBudget(flops=b["smoke"], widths=(8, 12, 16), block_size=16,
                               min_steps=5, eval_batches=1, eval_batch_size=4),
        "quick": IsoFlopBudget(flops=b["quick"]),
        "full": IsoFlopBudget(flops=b["full"], widths=(24, 32, 48, 64, 96, 128, 192),
                              n_layer=2, block_size=64, eval_batches=32),
    }


ISOFLOP_RUNS = tuple(isoflop_name(i) for i in range(len(ISOFLOP_BUDGETS["quick"])))
for _i in range(len(ISOFLOP_BUDGETS["quick"])):
    artifact(isoflop_name(_i), params=_isoflop_params(_i), outputs=("budget.json",),
             seed=52 + _i, data=(corpus_file,), dry_run={"max_steps": 6})(train_budget)


@figure(
    "scaling-isoflop",
    deps=ISOFLOP_RUNS,
    params=FITS,
    outputs=("isoflop.svg",),
    title="IsoFLOP profiles: at each budget there is a best model size",
    caption="Left: at each training budget C, the validation loss of models of every size "
            "trained on exactly the tokens the budget buys (D = C / 6N, each run on a "
            "warm-up and cosine schedule of its own length, at least 1,000 steps), with a "
            "parabola in log N and its minimum (star). Right: the optimal size N* against "
            "compute: the power law through the minima with its 95% bootstrap band, the "
            "optimum of one law L(N, D) fitted to every run, and Chinchilla's 20 tokens "
            "per parameter for comparison.",
    alt="Left: U-shaped curves of loss against parameters, one per compute budget, with "
        "minima moving to larger models as compute grows. Right: optimal parameters rising "
        "with compute on log axes.",
)
def isoflop(ctx, p: Fits):
    """IsoFLOP profiles, their optima, the exponent of N*(C) and tokens per parameter."""
    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.metrics.scaling import (
        fit_parametric_loss,
        isoflop_optimum,
        optimal_size_exponent,
    )
    from genai_report.plotting import save_figure

    budgets = sorted((ctx.input_metrics(name) for name in ISOFLOP_RUNS),
                     key=lambda b: b["flops"])
    for name in ISOFLOP_RUNS:
        ctx.input(name, "budget.json")  # declared and present; the records hold the runs
    profiles = []
    for b in budgets:
        runs = [r for r in b["runs"] if r["trained"]]
        profiles.append((b["flops"], [r["n"] for r in runs], [r["val_loss"] for r in runs]))
    fit = optimal_size_exponent(profiles, n_boot=p.n_boot, seed=ctx.seed)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.2))
    optima = []
    for i, ((c, n, loss), b) in enumerate(zip(profiles, budgets, strict=True)):
        color = plt.cm.viridis(0.75 * i / max(1, len(profiles) - 1))
        ax.plot(n, loss, "o", color=color, ms=4, label=f"C = {c:.1e}")
        opt = isoflop_optimum(n, loss)
        ln = np.linspace(np.log(min(n)), np.log(max(n)), 60)
        if len(n) >= 3:
            ax.plot(np.exp(ln), np.polyval(np.polyfit(np.log(n), loss, 2), ln), color=color,
                    alpha=0.6, lw=1)
        trained = [r for r in b["runs"] if r["trained"]]
        best = min(trained, key=lambda r: r["val_loss"])
        entry = {"flops": c, "n_models": len(n), "min_steps": min(r["steps"] for r in trained),
                 "best_measured": {"n": best["n"], "val_loss": best["val_loss"]},
                 # the same keys with or without an optimum (NaN: the parabola opens down)
                 "n_opt": float("nan"), "loss_opt": float("nan"), "curvature": float("nan"),
                 "interior": False, "tokens": float("nan"), "tokens_per_param": float("nan")}
        if opt is not None:
            tokens = c / (6 * opt["n_opt"])
            entry.update(opt, tokens=tokens, tokens_per_param=tokens / opt["n_opt"])
            if opt["interior"]:
                ax.plot(opt["n_opt"], opt["loss_opt"], "*", color=color, ms=10, mec="k")
        optima.append(entry)
    ax.set(xscale="log", xlabel="non-embedding parameters N", ylabel="validation loss "
           "(nats/char)", title="IsoFLOP profiles")
    ax.legend(fontsize=8)
    good = [o for o in optima if o["interior"]]
    cs = np.geomspace(profiles[0][0] / 2, profiles[-1][0] * 2, 30)
    nan = float("nan")
    out = {"budgets": [c for c, _n, _l in profiles], "n_budgets": len(profiles),
           "optima": optima, "interior_optima": fit["interior"],
           "exponent_n_opt": fit["exponent"], "exponent_n_opt_ci": fit["ci"],
           "r2_n_opt": fit["r2"], "n_boot": fit["n_boot"],
           "tokens_per_param_median": float(np.median([o["tokens_per_param"] for o in good]))
           if good else nan,
           "sizes_per_budget": min(len(n) for _c, n, _l in profiles),
           "min_steps": min(o["min_steps"] for o in optima),
           "size_range": min(max(n) / min(n) for _c, n, _l in profiles),
           "budget_range": profiles[-1][0] / profiles[0][0]}
    if good:
        oc = np.array([o["flops"] for o in good])
        on = np.array([o["n_opt"] for o in good])
        ax2.plot(oc, on, "*", ms=10, color="C3", mec="k", label="IsoFLOP minima")
    if fit["interior"] >= 2:
        slope = fit["exponent"]
        icpt = np.mean(np.log(on) - slope * np.log(oc))
        centre = np.exp(np.mean(np.log(oc)))
        lines = [np.exp(icpt) * centre ** slope * (cs / centre) ** a for a in fit["ci"]]
        ax2.plot(cs, np.exp(icpt) * cs ** slope, color="C3",
                 label=f"fit: N* ∝ C^{slope:.2f} [{fit['ci'][0]:.2f}, {fit['ci'][1]:.2f}]")
        ax2.fill_between(cs, np.minimum(*lines), np.maximum(*lines), color="C3", alpha=0.15,
                         lw=0)
    if fit["interior"] >= 3:  # a comparison worth drawing only with three optima
        # Hoffmann et al. (2022): D* = 20 N* and C = 6 N D, so N* = sqrt(C / 120)
        ax2.plot(cs, np.sqrt(cs / 120), "k--", lw=1, label="Chinchilla: 20 tokens/param")
    # Approach 3: one law L(N, D) over the final loss of every run of every budget.
    pts = [(r["n"], r["tokens"], r["val_loss"]) for b in budgets for r in b["runs"]
           if r["trained"]]
    if len(pts) >= 5:
        law = fit_parametric_loss(*zip(*pts, strict=True))
        mid = float(np.sqrt(profiles[0][0] * profiles[-1][0]))
        n_mid = float(law.optimal_n(mid))
        out["parametric"] = {**law.as_dict(), "tokens_per_param": mid / 6 / n_mid ** 2,
                             "at_flops": mid}
        ax2.plot(cs, law.optimal_n(cs), color="C0", lw=1,
                 label=f"L(N, D) fit: N* ∝ C^{law.as_dict()['a']:.2f}")
    ax2.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)",
            ylabel="optimal size N*", title="Compute-optimal size")
    ax2.legend(fontsize=8)
    _plain_log_ticks(ax2)
    ax2.yaxis.set_major_formatter(plt.matplotlib.ticker.LogFormatterSciNotation())
    ax2.yaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    save_figure(fig, ctx.output("isoflop.svg"))
    return out


@figure(
    "scaling-emergence",
    deps=RUNS,
    params={"smoke": Fits(), "quick": Fits(), "full": Fits()},
    outputs=("emergence.svg",),
    title="Emergence and the metric that shows it",
    caption="Two tasks scored for every model of the sweep. Addition: held-out two-digit "
            "sums (written least significant digit first), a quarter of every training "
            "batch. Word completion: held-out English, a word's first two letters given, "
            "its next four asked. Left: exact match of the whole answer. Right: the "
            "per-character log-likelihood of the same answers. Dotted: (per-character "
            "accuracy)^k, the exact match that independent characters would give.",
    alt="Left: exact match against model size: zero, then a sudden rise for word "
        "completion; near zero, then a jump at the largest model for addition. Right: "
        "per-character log-likelihood of both tasks against size.",
)
def emergence(ctx, p: Fits):
    """Exact match (discontinuous) vs per-character likelihood (continuous) across sizes."""
    import matplotlib.pyplot as plt

    from genai_report.plotting import save_figure

    runs = _runs(ctx)
    n = [r["params"]["non_embedding"] for r in runs]
    series = {"word completion": ([r["completion"] for r in runs], 4, "C0")}
    if all(r.get("task") for r in runs):
        series["addition"] = ([r["task"] for r in runs], 3, "C3")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.6))
    for name, (t, k, color) in series.items():
        ax.plot(n, [x["exact_match"] for x in t], "o-", color=color, label=f"{name}: exact")
        ax.plot(n, [x["char_accuracy"] ** k for x in t], ":", color=color,
                label=f"(char accuracy)^{k}")
        ax2.plot(n, [-x["answer_nll"] for x in t], "o-", color=color, label=name)
    ax.set(xscale="log", xlabel="non-embedding parameters N", ylim=(-0.02, 1.02),
           ylabel="share of held-out answers", title="Discontinuous: exact match")
    ax2.set(xscale="log", xlabel="non-embedding parameters N",
            ylabel="log-likelihood (nats/char)", title="Continuous: likelihood")
    ax.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, ctx.output("emergence.svg"))
    out = {}
    for name, (t, _, _) in series.items():
        exact = [x["exact_match"] for x in t]
        jumps = [b - a for a, b in zip(exact, exact[1:], strict=False)]
        i = max(range(len(jumps)), key=jumps.__getitem__) if jumps else 0
        out[name.replace(" ", "_")] = {
            "sizes": {f"d{r['n_embd']}-l{r['n_layer']}": {"n": r["params"]["non_embedding"],
                                                          **x} for r, x in zip(runs, t,
                                                                               strict=True)},
            "smallest": t[0], "largest": t[-1], "before_jump": t[i],
            "after_jump": t[min(i + 1, len(t) - 1)],
            "jump_n_before": n[i], "jump_n_after": n[min(i + 1, len(n) - 1)],
            "largest_jump": max(jumps, default=0.0),
            "max_exact_before_jump": max(exact[:i + 1]),
        }
    return out


@figure(
    "scaling-returns",
    deps=("scaling-laws",),
    params={"smoke": Fits(), "quick": Fits(), "full": Fits()},
    outputs=("returns.svg",),
    title="Diminishing returns: each doubling buys less",
    caption="On linear axes, from our fitted laws: loss gained by each doubling of "
            "parameters (top left) and of compute (top right), and the parameters each "
            "further drop of the loss needs at the sweep's amount of data, read from the law "
            "in parameters, whose offset is fitted (bottom).",
    alt="Bars shrinking with every doubling of parameters and compute; a curve of the parameters "
        "needed rising steeply as the target loss falls.",
)
def returns(ctx, p: Fits):
    """Loss per doubling of N and C, and the parameters lower losses need (linear axes).

    A "reducible" loss ``L - E`` is read only from a fit whose offset ``E`` is not at its
    bound: the law in parameters, ``L(N)``. The compute frontier's fit is a pure power law
    when its offset sits at zero, and is then quoted only for what it says about the whole
    loss.
    """
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.plotting import save_figure

    rec = json.loads(ctx.input("scaling-laws", "fits.json").read_text())
    fn, fc = rec["fit_n"], rec["fit_c"]

    def law(f, x):
        return f["E"] + f["A"] * np.asarray(x, dtype=float) ** (-f["alpha"])

    ns = rec["n_min"] * 2.0 ** np.arange(0, 11)
    gain_n = law(fn, ns[:-1]) - law(fn, ns[1:])
    cs = rec["frontier_c_min"] * 2.0 ** np.arange(0, 11)
    gain_c = law(fc, cs[:-1]) - law(fc, cs[1:])
    floor_known = "E" not in fn["at_bound"]
    # Drawn for the column: the two bar charts side by side, the cost curve across the foot.
    fig = plt.figure(figsize=(7.2, 6.0))
    grid = fig.add_gridspec(2, 2)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]),
            fig.add_subplot(grid[1, :])]
    axes[0].bar(np.arange(1, 11), gain_n, color="C0")
    axes[0].set(xlabel=f"doubling of N (from {rec['n_min']:,})",
                ylabel="loss gained (nats/char)", title="Per doubling of parameters")
    axes[1].bar(np.arange(1, 11), gain_c, color="C1")
    axes[1].set(xlabel=f"doubling of C (from {rec['frontier_c_min']:.1e} FLOPs)",
                title="Per doubling of compute" + ("\n(pure power law)"
                                                    if "E" in fc["at_bound"] else ""))
    out = {
        "gain_first_doubling_n": float(gain_n[0]), "gain_tenth_doubling_n": float(gain_n[-1]),
        "gain_first_doubling_c": float(gain_c[0]), "gain_tenth_doubling_c": float(gain_c[-1]),
        "ratio_successive_doubling_c": float(2 ** (-fc["alpha"])),
        "c_offset_at_bound": "E" in fc["at_bound"], "n_offset_at_bound": not floor_known,
        "irreducible_from_n": fn["E"] if floor_known else None,
    }
    if floor_known:
        # N(L) = (A / (L - E))^(1 / alpha): parameters to reach loss L at the sweep's data,
        # relative to our largest model; targets down to a fifth less reducible loss.
        l_now = float(law(fn, rec["n_max"]))
        targets = np.linspace(l_now, fn["E"] + 0.8 * (l_now - fn["E"]), 40)
        multiple = ((l_now - fn["E"]) / (targets - fn["E"])) ** (1 / fn["alpha"])
        axes[2].plot(l_now - targets, multiple, color="C2")
        out.update({
            "params_to_halve_reducible_loss": float(2 ** (1 / fn["alpha"])),
            "params_for_tenth_less_reducible_loss": float((1 / 0.9) ** (1 / fn["alpha"])),
            "loss_now": l_now, "loss_tenth_less": float(fn["E"] + 0.9 * (l_now - fn["E"])),
        })
    else:
        axes[2].text(0.5, 0.5, "no floor fitted:\nthe offset E of L(N) is at its bound",
                     ha="center", va="center", transform=axes[2].transAxes, fontsize=9)
    axes[2].set(xlabel="loss below our largest model (nats/char)",
                ylabel="parameters, × our largest model's", title="What a lower loss costs")
    fig.tight_layout()
    save_figure(fig, ctx.output("returns.svg"))
    return out


def _adaptation_paths(res: dict) -> dict[str, tuple[list[float], list[float]]]:
    """Each method's mean ``(learned, forgot)`` at its checkpoints, learned increasing.

    Learned is the drop of the arithmetic loss from before adaptation, forgot the rise of
    the English loss; both are averaged over seeds at each checkpoint. Sorting by learned
    keeps :func:`numpy.interp` well defined where a noisy checkpoint dips.
    """
    import numpy as np

    before = res["before"]
    out = {}
    for name, runs in res["runs"].items():
        learned = np.mean([[before["target"] - c["target"] for c in r["path"]] for r in runs], 0)
        forgot = np.mean([[c["english"] - before["english"] for c in r["path"]] for r in runs], 0)
        order = np.argsort(learned)
        out[name] = (learned[order].tolist(), forgot[order].tolist())
    return out


@figure(
    "scaling-efficiency",
    deps=("scaling-finetune",),
    params={"smoke": Fits(), "quick": Fits(), "full": Fits()},
    outputs=("efficiency.svg",),
    title="Adapting to a far domain: what LoRA and full fine-tuning learn and forget",
    caption="The report's English GPT adapted to written-out arithmetic, a domain far from "
            "its pre-training text, for the same steps on the same batches: every weight "
            "trained, or LoRA adapters of several ranks. Left: held-out arithmetic loss "
            "against the share of parameters trained (before adaptation dotted). Right: "
            "what each method learned (drop in arithmetic loss) against what it forgot "
            "(rise in held-out English loss). Mean and sd over seeds.",
    alt="Left: arithmetic loss falling as the trained share of parameters grows, LoRA "
        "points left of the full fine-tuning point. Right: learning against forgetting, "
        "one point per method with error bars.",
)
def efficiency(ctx, p: Fits):
    """LoRA ranks vs full fine-tuning: learning the far domain against forgetting English."""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.plotting import save_figure

    rec = ctx.input_metrics("scaling-finetune")
    res = json.loads(ctx.input("scaling-finetune", "adaptation.json").read_text())
    methods = rec["methods"]
    lora = {k: v for k, v in methods.items() if v["rank"] is not None}
    full = methods["full"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.2))
    ax.errorbar([v["share"] for v in lora.values()], [v["target"]["mean"] for v in lora.values()],
                yerr=[v["target"]["sd"] for v in lora.values()], fmt="o-", color="C0",
                capsize=3, ms=4, label="LoRA")
    for v in lora.values():
        ax.annotate(f"r={v['rank']}", (v["share"], v["target"]["mean"]), fontsize=8,
                    textcoords="offset points", xytext=(4, 4))
    ax.errorbar([full["share"]], [full["target"]["mean"]], yerr=[full["target"]["sd"]],
                fmt="s", color="C3", ms=6, capsize=3, label="full fine-tuning")
    ax.axhline(rec["before"]["target"], color="0.5", ls=":", label="before")
    ax.set(xscale="log", xlabel="share of parameters trained",
           ylabel="held-out arithmetic loss", title="Learning the new domain")
    ax.legend(fontsize=8)
    paths = _adaptation_paths(res)
    blues = {name: plt.cm.Blues(0.45 + 0.5 * i / max(1, len(lora) - 1))
             for i, name in enumerate(sorted(lora, key=lambda k: lora[k]["rank"]))}
    for name, v in sorted(methods.items(), key=lambda kv: kv[1]["rank"] or 0):
        color = "C3" if v["rank"] is None else blues[name]
        learned, forgot = paths[name]
        ax2.plot(learned, forgot, "-", color=color, lw=1, alpha=0.8)
        ax2.errorbar(v["learned"]["mean"], v["forgot"]["mean"], xerr=v["learned"]["sd"],
                     yerr=v["forgot"]["sd"], fmt="s" if v["rank"] is None else "o",
                     color=color, capsize=3, ms=5,
                     label="full" if v["rank"] is None else f"LoRA r={v['rank']}")
    level = min(v["learned"]["mean"] for v in methods.values())
    ax2.axvline(level, color="0.5", ls=":", lw=1)
    ax2.legend(fontsize=8)
    ax2.set(xlabel="learned: arithmetic loss drop (nats)",
            ylabel="forgot: English loss rise (nats)", title="Learning against forgetting")
    fig.tight_layout()
    save_figure(fig, ctx.output("efficiency.svg"))
    smallest = min(lora.values(), key=lambda v: v["rank"])
    best = max(lora.values(), key=lambda v: v["learned"]["mean"])
    # Forgetting at the same amount learned: each method's mean path, read at the level
    # the method that learned least reached at its end (dotted in the right panel).
    matched = {name: float(np.interp(level, *paths[name])) for name in methods}
    return {
        "matched_learning": level, "forgot_at_matched": matched,
        "full_forgets_least_at_matched": all(matched["full"] <= matched[k] for k in lora),
        "lora_forgot_at_matched": {"min": min(matched[k] for k in lora),
                                   "max": max(matched[k] for k in lora)},
        "before": rec["before"], "base_params": rec["base_params"], "steps": rec["steps"],
        "full": full, "lora": lora, "smallest": smallest, "best": best,
        "smallest_gain_share": smallest["learned"]["mean"] / full["learned"]["mean"],
        "best_gain_share": best["learned"]["mean"] / full["learned"]["mean"],
        "lora_learns_less": all(v["learned"]["mean"] < full["learned"]["mean"]
                                for v in lora.values()),
        "lora_forgets_less": all(v["forgot"]["mean"] < full["forgot"]["mean"]
                                 for v in lora.values()),
        "max_merge_diff": max(v["merge_abs_diff"] for v in lora.values()),
    }


# --------------------------------------------------------------------------- distillation
artifact(
    "scaling-distill",
    params={
        "smoke": Distill(teacher=run_name(80, 2), steps=8, batch_size=4, warmup_steps=1,
                         seeds=2, evals=3, eval_batches=1),
        "quick": Distill(teacher=run_name(80, 2)),
        "full": Distill(teacher=run_name(512, 8), n_embd=128, n_layer=2, steps=1500,
                        batch_size=64, lr=2e-3, warmup_steps=100, seeds=3, evals=12,
                        eval_batches=20),
    },
    outputs=("distill.json",),
    deps=RUNS,
    seed=53,
    data=(corpus_file,),
    dry_run={"eval_batches": 1},
)(distill)


@figure(
    "scaling-distillation",
    deps=("scaling-distill",),
    params={"smoke": Fits(), "quick": Fits(), "full": Fits()},
    outputs=("distillation.svg",),
    title="Distillation: a small model learns faster from a large one's soft targets",
    caption="The same small GPT trained for the same steps on the same windows of English, "
            "from the same initial weights: on the corpus's next characters (hard labels) "
            "or on the sweep's largest model's next-character distributions (soft targets). "
            "Held-out cross-entropy against the true next characters, mean and spread over "
            "seeds; the teacher's own loss dashed. Right: each seed's final loss.",
    alt="Left: two falling learning curves on a log step axis, the soft-target one below the "
        "hard-label one, above a dashed teacher line. Right: final losses per seed for both.",
)
def distillation(ctx, p: Fits):
    """Learning curves of the student on hard labels and on the teacher's soft targets."""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.artifacts.distill import ARMS
    from genai_report.plotting import save_figure

    res = json.loads(ctx.input("scaling-distill", "distill.json").read_text())
    rec = ctx.input_metrics("scaling-distill")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.0),
                                  gridspec_kw={"width_ratios": [2.2, 1]})
    labels = {"hard": "hard labels", "soft": "soft targets (teacher)"}
    colors = {"hard": "C0", "soft": "C3"}
    for arm in ARMS:
        runs = res["runs"][arm]
        steps = np.array([c["step"] for c in runs[0]["curve"]])
        losses = np.array([[c["val_loss"] for c in r["curve"]] for r in runs])  # (seeds, evals)
        mean, sd = losses.mean(0), losses.std(0, ddof=1) if len(runs) > 1 else 0 * losses[0]
        keep = steps > 0  # a log axis has no step 0
        ax.plot(steps[keep], mean[keep], color=colors[arm], label=labels[arm])
        ax.fill_between(steps[keep], (mean - sd)[keep], (mean + sd)[keep],
                        color=colors[arm], alpha=0.2, lw=0)
        finals = [r["val_loss"] for r in runs]
        ax2.plot([ARMS.index(arm)] * len(finals), finals, "o", color=colors[arm], ms=4,
                 alpha=0.8)
        ax2.errorbar(ARMS.index(arm) + 0.18, rec["final"][arm]["mean"],
                     yerr=rec["final"][arm]["sd"], fmt="_", color="k", capsize=3)
    ax.axhline(rec["teacher_val_loss"], color="0.3", ls="--", lw=1,
               label=f"teacher ({rec['teacher_params']:,} params)")
    ax.set(xscale="log", xlabel="training step", ylabel="held-out loss (nats/char)",
           title=f"Student, {rec['student_params']:,} params")
    ax.legend(fontsize=8)
    ax2.set(xticks=range(len(ARMS)), xticklabels=[a for a in ARMS], xlim=(-0.5, 1.7),
            ylabel="final held-out loss", title="Each seed")
    fig.tight_layout()
    save_figure(fig, ctx.output("distillation.svg"))
    hard, soft = rec["final"]["hard"], rec["final"]["soft"]
    curves = {arm: np.array([[c["val_loss"] for c in r["curve"]] for r in res["runs"][arm]])
              for arm in ARMS}  # (seeds, evals) each
    gap = (curves["hard"] - curves["soft"]).mean(0)  # (evals,)
    steps = [c["step"] for c in res["runs"]["hard"][0]["curve"]]
    return {**rec, "gap_in_sd": rec["gap_hard_minus_soft"]["mean"]
            / max(hard["sd"], soft["sd"], 1e-12),
            "soft_wins_every_seed": all(v > 0 for v in rec["gap_hard_minus_soft"]["values"]),
            "size_ratio": rec["teacher_params"] / rec["student_params"],
            # a soft-target step adds the teacher's forward pass (about 2N FLOPs per token)
            # to the student's forward and backward (about 6N): its cost over a hard-label
            # step's
            "soft_step_flops_ratio": 1 + 2 * rec["teacher_params"] / (6 * rec["student_params"]),
            "gap_by_step": [{"step": t, "gap": float(g)} for t, g in zip(steps, gap,
                                                                         strict=True)]}


# --------------------------------------------------------------------------- emergence control
ADDITION_SIZES = (32, 64, 96)
"""Widths of the emergence control's models (two layers each), smoke and quick."""
ADDITION_SIZES_FULL = (128, 256)
"""Added in ``full``."""


def addition_name(width: int) -> str:
    """Node name of the emergence control's models of this width."""
    return f"scaling-addition-d{width}"


def _addition_params(width: int) -> dict[str, AdditionWidths]:
    small = width in ADDITION_SIZES
    heads = max(1, width // 32)
    return {
        "smoke": AdditionWidths(width, n_head=heads, active=small and width == 32, seeds=2,
                                max_digits=3, steps=20, batch=16, train_examples=600,
                                evals=3, n_eval=20),
        "quick": AdditionWidths(width, n_head=heads, active=small),
        "full": AdditionWidths(width, n_head=heads, seeds=5, steps=8000, batch=256,
                               train_examples=400000, evals=16, n_eval=1000),
    }


ADDITION_RUNS = tuple(addition_name(w) for w in ADDITION_SIZES + ADDITION_SIZES_FULL)
for _w in ADDITION_SIZES + ADDITION_SIZES_FULL:
    artifact(addition_name(_w), params=_addition_params(_w), outputs=("runs.json",),
             seed=60, dry_run={"n_eval": 50})(train_widths)


@dataclass(frozen=True)
class Control:
    """Parameters of the control figure: the exact-match level that marks a "jump"."""

    jump_level: float = 0.1


@figure(
    "scaling-emergence-control",
    deps=ADDITION_RUNS,
    params={"smoke": Control(), "quick": Control(), "full": Control()},
    outputs=("emergence_control.svg",),
    title="The control: exact match of k-digit sums against per-digit accuracy.",
    caption="GPTs of three widths, three seeds each, trained on additions of 1- to 6-digit "
            "operands mixed, and scored on held-out sums of each width at log-spaced "
            "checkpoints. Left and middle: the widest model's per-digit accuracy and exact "
            "match against training examples seen, one line per seed and operand width k. "
            "Right: exact match against (per-digit accuracy)^(k+1) at every checkpoint of "
            "every size and seed; the diagonal is equality.",
    alt="Three panels. Per-digit and exact-match accuracy of each seed against training "
        "examples, one line per operand width: flat, then rising when the model finds how "
        "to carry, exact match later and less far the longer the operands; and exact match "
        "plotted against per-digit accuracy to the power k plus one.",
)
def emergence_control(ctx, p: Control):
    """Per-digit accuracy (smooth) vs exact match (sharp, sharper with k); R² of p^(k+1)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.plotting import save_figure

    sizes = []
    for name in ADDITION_RUNS:
        ctx.input(name, "runs.json")
        rec = ctx.input_metrics(name)
        if rec.get("active"):
            sizes.append(rec)
    if not sizes:
        raise ValueError("No active scaling-addition-* run in this profile.")
    sizes.sort(key=lambda r: r["params"])
    widths = sizes[0]["widths"]
    cmap = plt.get_cmap("viridis")
    colors = {k: cmap(i / max(1, len(widths) - 1) * 0.85) for i, k in enumerate(widths)}

    # every (size, seed, checkpoint, width) point
    em, pred, pos_pred, ks = [], [], [], []
    for rec in sizes:
        for run in rec["runs"]:
            for row in run["curve"]:
                for k in widths:
                    s = row["by_k"][str(k)]
                    em.append(s["exact"])
                    pred.append(s["p"] ** (k + 1))
                    pos_pred.append(float(np.prod(s["p_position"])))
                    ks.append(k)
    em, pred, pos_pred, ks = map(np.asarray, (em, pred, pos_pred, ks))

    def r2(y, yhat):  # no fitted parameter: the prediction is taken as it is
        total = ((y - y.mean()) ** 2).sum()
        return float(1 - ((y - yhat) ** 2).sum() / total) if total > 0 else float("nan")

    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.7))
    big = sizes[-1]
    x = np.asarray([row["examples"] for row in big["runs"][0]["curve"]], dtype=float)
    out: dict = {"r2": r2(em, pred), "r2_positions": r2(em, pos_pred), "n_points": len(em),
                 "sizes": [r["params"] for r in sizes], "seeds": len(big["runs"]),
                 "widths": widths, "largest": {}, "p_at_jump": {}}
    for k in widths:
        ps = np.asarray([[row["by_k"][str(k)]["p"] for row in run["curve"]] for run in big["runs"]])
        es = np.asarray([[row["by_k"][str(k)]["exact"] for row in run["curve"]]
                         for run in big["runs"]])
        for ax, v in ((axes[0], ps), (axes[1], es)):
            for j, run in enumerate(v):  # every seed: averaging them would blur each jump
                ax.plot(x[1:], run[1:], color=colors[k], lw=0.9, alpha=0.8,
                        label=f"k = {k}" if j == 0 else None)
        out["largest"][str(k)] = {"p_final": float(ps[:, -1].mean()),
                                  "exact_final": float(es[:, -1].mean())}
        # per-digit accuracy where exact match first reaches the jump level, over every run
        at = [row["by_k"][str(k)]["p"] for rec in sizes for run in rec["runs"]
              for row in [next((r for r in run["curve"]
                                if r["by_k"][str(k)]["exact"] >= p.jump_level), None)]
              if row is not None]
        out["p_at_jump"][str(k)] = float(np.median(at)) if at else float("nan")
        axes[2].scatter(pred[ks == k], em[ks == k], s=6, color=colors[k], alpha=0.7)
    # when each run left the plateau: its first checkpoint with one-digit sums half right
    left = [next((r["examples"] for r in run["curve"] if r["by_k"]["1"]["exact"] >= 0.5), None)
            for rec in sizes for run in rec["runs"]]
    out["runs"] = len(left)
    out["runs_off_plateau"] = sum(v is not None for v in left)
    # the largest per-checkpoint rise of p, against its whole range: a jump, not a slope
    rises = [max(b["by_k"][str(k)]["p"] - a["by_k"][str(k)]["p"]
                 for a, b in zip(run["curve"], run["curve"][1:], strict=False))
             for rec in sizes for run in rec["runs"] for k in widths[:1]]
    out["largest_p_step_k1"] = float(np.median(rises))
    out["n_min"], out["n_max"] = min(out["sizes"]), max(out["sizes"])
    out["k_max"] = max(widths)
    jump = out["p_at_jump"]
    out["p_at_jump_shortest"] = jump[str(min(widths))]
    out["p_at_jump_middle"] = jump[str(widths[len(widths) // 2])]
    out["p_at_jump_longest"] = jump[str(max(widths))]
    axes[2].plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--")
    axes[0].set(xscale="log", ylim=(0, 1.02), xlabel="training examples seen",
                ylabel="per-digit accuracy p", title="Per digit")
    axes[1].set(xscale="log", ylim=(0, 1.02), xlabel="training examples seen",
                ylabel="exact match", title="Whole answer")
    axes[2].set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="p^(k+1)", ylabel="exact match",
                title=f"R² = {out['r2']:.2f}")
    for ax in axes[:2]:
        _plain_log_ticks(ax)
    axes[1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, ctx.output("emergence_control.svg"))
    return out
