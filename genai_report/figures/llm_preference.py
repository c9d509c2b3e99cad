"""Preference tuning, measured: the reward-KL frontier of best-of-n, DPO and RL, and what
happens to the gold reward when the proxy is optimised hard (runs from
``llms-preference-runs``).
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure

RUNS = "llms-preference-runs"
RL_MOVED_KL = 0.5
"""KL (nats) from which the RL trajectory is compared with best-of-n: closer to the
reference, both are the reference model and their difference is sampling noise."""


@dataclass(frozen=True)
class PreferencePlot:
    """How the figures are drawn; the numbers come from ``llms-preference-runs``.

    Attributes:
        max_kl: right end of the KL axis in nats (RL runs further; its far end is summarised
            in the metrics and the over-optimisation figure).
    """

    max_kl: float = 12.0

    def __post_init__(self) -> None:
        if self.max_kl <= 0:
            raise ValueError(f"max_kl must be > 0, got {self.max_kl}.")


def _summary(res: dict) -> dict:
    """Per-seed curves turned into means and standard deviations over seeds."""
    import numpy as np

    runs = res["runs"]

    def stack(get):
        return np.array([get(r) for r in runs], dtype=float)  # (seeds, ...)

    bon = {k: stack(lambda r, k=k: [e[k] for e in r["bon"]]) for k in ("kl", "gold", "proxy")}
    dpo = {k: stack(lambda r, k=k: [e[k] for e in r["dpo"]])
           for k in ("kl", "kl_mc", "gold", "proxy", "repeats", "implicit_accuracy_gold")}
    rl = {k: stack(lambda r, k=k: [e[k] for e in r["rl"]["trace"]])
          for k in ("kl", "gold", "proxy", "repeats")}
    return {"bon": bon, "dpo": dpo, "rl": rl}


def _sqrt_axis(ax, max_kl: float) -> None:
    """KL on a square-root axis (Gao et al., 2023, plot rewards against sqrt(KL))."""
    import numpy as np

    ax.set_xscale("function", functions=(lambda x: np.sqrt(np.clip(x, 0, None)), np.square))
    steps = (0, 0.5, 1, 2, 4, 8, 16) if max_kl <= 16 else (0, 1, 4, 16, 32, 64, 128)
    ticks = [t for t in steps if t <= max_kl]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlim(0, max_kl)
    ax.set_xlabel("KL(policy ‖ reference), nats")


@figure(
    "llms-preference-frontier",
    deps=(RUNS,),
    params={"smoke": PreferencePlot(), "quick": PreferencePlot(), "full": PreferencePlot()},
    outputs=("frontier.svg",),
    seed=131,
    title="At equal distance from the reference model, best-of-n against the reward model "
    "buys more gold reward than DPO; DPO and RL can go further, and RL too far.",
    caption="Gold reward (the rater's score) of continuations against their KL divergence "
    "from the pre-trained model, on a square-root axis; means over seeds, bars their "
    "standard deviation. Best-of-n keeps the sample the reward model likes best among n "
    "(n = 1, 2, 4, ..., plotted at the upper bound KL = log n - (n-1)/n); the dashed line picks by the gold reward "
    "itself, the best any selection can do. DPO is trained on the same comparisons as the "
    "reward model, one point per beta. The thin line is REINFORCE against the reward model, "
    "step by step, until it leaves the plot.",
    alt="A line chart of gold reward against KL. The best-of-n curve rises steadily from the "
    "reference point; the gold-selected curve rises faster above it. DPO points for "
    "different beta lie below the best-of-n curve at their KL. The RL trajectory rises, "
    "then falls steeply as its KL grows.",
)
def frontier(ctx, p: PreferencePlot):
    """Gold reward against KL for best-of-n, DPO at each beta and the RL trajectory."""
    import json
    import math

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.metrics.seeds import over_seeds
    from genai_report.plotting import save_figure

    res = json.loads(ctx.input(RUNS, "results.json").read_text())
    s = _summary(res)
    bon, dpo, rl = s["bon"], s["dpo"], s["rl"]
    ns, betas = res["ns"], res["betas"]
    kl_bon = bon["kl"][0]  # the same for every seed
    oracle = np.array([e["gold"] for e in res["oracle"]])

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(kl_bon, oracle, "--", color="0.45", lw=1.2, label="best-of-n, gold reward picks")
    ax.errorbar(kl_bon, bon["gold"].mean(0), yerr=bon["gold"].std(0, ddof=1)
                if len(bon["gold"]) > 1 else None, color="C0", marker="o", ms=3.5, lw=1.5,
                capsize=2, label="best-of-n, reward model picks")
    for i, n in enumerate(ns):
        if n in (2, 8, 64) or n == ns[-1]:
            ax.annotate(f"n={n}", (kl_bon[i], bon["gold"].mean(0)[i]), xytext=(-5, 5),
                        textcoords="offset points", fontsize=8, color="C0", ha="right")
    rl_kl, rl_gold = rl["kl"].mean(0), rl["gold"].mean(0)
    keep = rl_kl <= p.max_kl
    ax.plot(rl_kl[keep], rl_gold[keep], color="C3", lw=0.9, alpha=0.8, marker=".", ms=3,
            label="REINFORCE vs reward model")
    sd = (lambda a: a.std(0, ddof=1)) if len(dpo["gold"]) > 1 else (lambda a: None)
    ax.errorbar(dpo["kl"].mean(0), dpo["gold"].mean(0), xerr=sd(dpo["kl"]),
                yerr=sd(dpo["gold"]), fmt="s", color="C2", ms=5, capsize=2, lw=1, label="DPO")
    for j, beta in enumerate(betas):
        x, y = dpo["kl"].mean(0)[j], dpo["gold"].mean(0)[j]
        if x <= p.max_kl:
            ax.annotate(f"β={beta:g}", (x, y), xytext=(6, -9), textcoords="offset points",
                        fontsize=8, color="C2")
    ax.axhline(res["ref_gold"], color="0.7", lw=0.8, ls=":")
    _sqrt_axis(ax, p.max_kl)
    ax.set_ylabel("gold reward")
    handles, labels = ax.get_legend_handles_labels()
    order = [labels.index(k) for k in ("best-of-n, reward model picks",
                                         "best-of-n, gold reward picks", "DPO",
                                         "REINFORCE vs reward model")]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8,
              loc="lower right")
    save_figure(fig, ctx.output("frontier.svg"))

    # DPO against best-of-n at the same KL (linear interpolation of the best-of-n means)
    bon_mean = bon["gold"].mean(0)
    bon_sd = bon["gold"].std(0, ddof=1) if len(bon["gold"]) > 1 else np.zeros_like(bon_mean)
    per_beta = []
    for j, beta in enumerate(betas):
        k, g = float(dpo["kl"].mean(0)[j]), float(dpo["gold"].mean(0)[j])
        inside = k <= kl_bon[-1]
        at = float(np.interp(k, kl_bon, bon_mean)) if inside else None
        at_sd = float(np.interp(k, kl_bon, bon_sd)) if inside else None
        # dominated: some best-of-n point is no further from the reference and no worse
        dominated = bool(np.any((kl_bon <= k) & (bon_mean >= g)))
        # best-of-n would need n with log n - (n - 1) / n = KL to go as far
        lo, hi = 1.0, 2.0
        while math.log(hi) - (hi - 1) / hi < k:
            lo, hi = hi, 2 * hi
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if math.log(mid) - (mid - 1) / mid < k else (lo, mid)
        per_beta.append({
            "beta": beta, "kl": over_seeds(dpo["kl"][:, j]), "kl_mc": over_seeds(dpo["kl_mc"][:, j]),
            "gold": over_seeds(dpo["gold"][:, j]), "proxy": over_seeds(dpo["proxy"][:, j]),
            "implicit_accuracy_gold": over_seeds(dpo["implicit_accuracy_gold"][:, j]),
            "within_bon_range": inside, "bon_gold_at_kl": at, "bon_gold_sd_at_kl": at_sd,
            "gold_minus_bon": None if at is None else g - at, "bon_n_at_kl": hi,
            "dominated_by_bon": dominated})
    comparable = [b for b in per_beta if b["within_bon_range"]]
    # RL against best-of-n at the same KL, once RL has moved (KL >= 0.5) and within range
    moved = (rl_kl >= RL_MOVED_KL) & (rl_kl <= kl_bon[-1])
    rl_gap = rl_gold[moved] - np.interp(rl_kl[moved], kl_bon, bon_mean)
    best = max(per_beta, key=lambda b: b["gold"]["mean"])
    return {
        "ref_gold": res["ref_gold"],
        "bon_max_n": ns[-1],
        "bon_max_kl": float(kl_bon[-1]),
        "bon_gold": {str(n): over_seeds(bon["gold"][:, i]) for i, n in enumerate(ns)},
        "oracle_gold": {str(n): float(oracle[i]) for i, n in enumerate(ns)},
        "bon_gold_max": over_seeds(bon["gold"][:, -1]),
        "oracle_gold_max": float(oracle[-1]),
        "dpo": per_beta,
        "dpo_best_beta": best["beta"],
        "dpo_best_gold": best["gold"],
        "dpo_best_kl": best["kl"],
        "n_betas": len(betas),
        "n_betas_comparable": len(comparable),
        "n_betas_above_bon": sum(b["gold_minus_bon"] > (b["bon_gold_sd_at_kl"] or 0)
                                 for b in comparable),
        "n_betas_dominated": sum(b["dominated_by_bon"] for b in per_beta),
        "max_gold_minus_bon": max((b["gold_minus_bon"] for b in comparable), default=float("nan")),
        "min_gold_minus_bon": min((b["gold_minus_bon"] for b in comparable),
                                  default=float("nan")),
        "max_kl_mc_gap": max(abs(b["kl"]["mean"] - b["kl_mc"]["mean"]) for b in per_beta),
        "rl_peak_gold": over_seeds([max(r) for r in rl["gold"]]),
        "rl_gold_minus_bon": float(rl_gap.mean()) if rl_gap.size else float("nan"),
        "rl_gold_minus_bon_max": float(rl_gap.max()) if rl_gap.size else float("nan"),
        "rl_steps_compared": int(moved.sum()),
        "rl_moved_kl": RL_MOVED_KL,
    }


@figure(
    "llms-preference-overoptimisation",
    deps=(RUNS,),
    params={"smoke": PreferencePlot(), "quick": PreferencePlot(max_kl=64.0),
            "full": PreferencePlot(max_kl=64.0)},
    outputs=("overoptimisation.svg",),
    seed=132,
    title="Optimising the reward model harder raises its score without limit; the gold "
    "reward follows at first, then falls.",
    caption="The reward model's score (proxy, dashed) and the rater's gold reward (solid) "
    "against KL from the pre-trained model, on a square-root axis, both in gold units (the "
    "proxy is shifted to agree with the gold reward on reference samples). Left: best-of-n "
    "for n = 1 to the largest n, with the gold-selected curve for comparison. Right: "
    "REINFORCE against the reward model with a small KL penalty, measured on each step's "
    "batch; lines are means over seeds, bands their range; the circle marks the step of "
    "highest gold reward.",
    alt="Two panels of reward against KL. Left: proxy and gold both rise with n, the proxy "
    "faster, so a gap opens. Right: the proxy climbs and levels off high; the gold reward "
    "climbs with it at first, peaks at a few nats and then drops below where it started.",
)
def overoptimisation(ctx, p: PreferencePlot):
    """Proxy and gold reward as optimisation pressure grows: best-of-n and RL."""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.metrics.seeds import over_seeds
    from genai_report.plotting import save_figure

    res = json.loads(ctx.input(RUNS, "results.json").read_text())
    s = _summary(res)
    bon, rl = s["bon"], s["rl"]
    kl_bon = bon["kl"][0]
    oracle = np.array([e["gold"] for e in res["oracle"]])

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(6.4, 2.9), gridspec_kw={"wspace": 0.28})
    a0.plot(kl_bon, bon["proxy"].mean(0), "--", color="C0", marker="o", ms=3,
            label="proxy (reward model)")
    a0.plot(kl_bon, bon["gold"].mean(0), "-", color="C1", marker="o", ms=3, label="gold")
    a0.plot(kl_bon, oracle, ":", color="0.45", lw=1.2, label="gold, gold-selected")
    for v in ("proxy", "gold"):
        if len(bon[v]) > 1:
            a0.fill_between(kl_bon, bon[v].min(0), bon[v].max(0), lw=0, alpha=0.2,
                            color="C0" if v == "proxy" else "C1")
    _sqrt_axis(a0, float(kl_bon[-1]) * 1.05)
    a0.set_title(f"best-of-n, n = 1 … {res['ns'][-1]}", fontsize=9)
    a0.set_ylabel("reward (gold units)")
    a0.legend(fontsize=8, loc="upper left")

    kl, gold, proxy = rl["kl"].mean(0), rl["gold"].mean(0), rl["proxy"].mean(0)
    order = np.argsort(kl)
    a1.plot(kl[order], proxy[order], "--", color="C0", lw=1.3, label="proxy")
    a1.plot(kl[order], gold[order], "-", color="C1", lw=1.3, label="gold")
    if len(rl["gold"]) > 1:
        for v, c in (("proxy", "C0"), ("gold", "C1")):
            a1.fill_between(kl[order], rl[v].min(0)[order], rl[v].max(0)[order], lw=0,
                            alpha=0.2, color=c)
    peak = int(np.argmax(gold))
    a1.plot(kl[peak], gold[peak], "o", mfc="none", mec="black", ms=7, mew=1)
    a1.axhline(res["ref_gold"], color="0.7", lw=0.8, ls=":")
    a0.axhline(res["ref_gold"], color="0.7", lw=0.8, ls=":")
    _sqrt_axis(a1, max(p.max_kl if p.max_kl >= kl.max() else float(kl.max()) * 1.05, 1.0))
    a1.set_title(f"REINFORCE vs reward model, KL penalty {res['rl_kl_coef']:g}", fontsize=9)
    a1.legend(fontsize=8, loc="lower left")
    save_figure(fig, ctx.output("overoptimisation.svg"))

    per_seed_peak = [int(np.argmax(r)) for r in rl["gold"]]
    n_seeds = len(rl["gold"])
    return {
        "ref_gold": res["ref_gold"],
        "bon_gap": {str(n): over_seeds(bon["proxy"][:, i] - bon["gold"][:, i])
                    for i, n in enumerate(res["ns"])},
        "bon_max_n": res["ns"][-1],
        "bon_gap_max": over_seeds(bon["proxy"][:, -1] - bon["gold"][:, -1]),
        "bon_gold_gain": over_seeds(bon["gold"][:, -1] - bon["gold"][:, 0]),
        "bon_proxy_gain": over_seeds(bon["proxy"][:, -1] - bon["proxy"][:, 0]),
        "oracle_gold_gain": float(oracle[-1] - oracle[0]),
        "rl": {
            "peak_step": over_seeds(per_seed_peak),
            "peak_gold": over_seeds([rl["gold"][i, j] for i, j in enumerate(per_seed_peak)]),
            "peak_kl": over_seeds([rl["kl"][i, j] for i, j in enumerate(per_seed_peak)]),
            "peak_proxy": over_seeds([rl["proxy"][i, j] for i, j in enumerate(per_seed_peak)]),
            "final_gold": over_seeds(rl["gold"][:, -1]),
            "final_proxy": over_seeds(rl["proxy"][:, -1]),
            "final_kl": over_seeds(rl["kl"][:, -1]),
            "final_repeats": over_seeds(rl["repeats"][:, -1]),
            "start_gold": over_seeds(rl["gold"][:, 0]),
            "start_proxy": over_seeds(rl["proxy"][:, 0]),
            "steps": res["rl_steps"],
            "kl_coef": res["rl_kl_coef"],
            "seeds": n_seeds,
        },
        "ref_repeats": res["ref_repeats"],
    }
