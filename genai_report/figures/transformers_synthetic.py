"""Transformers chapter, measured on synthetic tasks where the effect is large: induction heads
forming in a two-layer attention-only model, in-context linear regression, and associative
recall under a growing memory load and lag, for a transformer and a GRU of the same size.

Each node trains its own small models (nothing here is shared with other figures).
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts.transformers import torch_threads as _threads
from genai_report.pipeline import figure


@dataclass(frozen=True)
class InductionTrain:
    """Attention-only transformers on repeated random tokens (Olsson et al., 2022).

    Attributes:
        vocab: token ids.
        length: tokens per sequence (the context).
        min_period, max_period: length of the repeated random segment.
        n_head, n_embd: heads per layer and width (the same for the 1- and 2-layer models).
        batch_size, steps, lr: training; the same for both models.
        eval_every: steps between measurements of the losses and the induction score.
        eval_sequences: held-out sequences (segment repeated exactly twice) per measurement.
        seeds: independent runs of each model.
        threads: torch threads while training (``0``: leave the pipeline's setting).
    """

    vocab: int = 64
    length: int = 64
    min_period: int = 4
    max_period: int = 32
    n_head: int = 2
    n_embd: int = 64
    batch_size: int = 32
    steps: int = 600
    lr: float = 1e-3
    eval_every: int = 25
    eval_sequences: int = 128
    seeds: int = 2
    threads: int = 1


def _train_induction(ctx, p: InductionTrain, n_layer: int) -> list[dict]:
    """Train the ``p.seeds`` attention-only models of ``n_layer`` layers as one
    :class:`~genai_report.training.ensemble.Ensemble`; measure each on fixed held-out
    sequences.

    Seed ``s`` initialises its model after ``torch.manual_seed(ctx.seed + 1000 s +
    n_layer)`` and draws its batches from its own generator, as it would trained alone (a
    test checks it against a model trained on its own).

    Returns:
        One run per seed: its measurements along training (``evals``), the phase change's
        step and width, the last measurement, its best head and that head's map on one
        held-out sequence.
    """
    import math

    import torch
    import torch.nn.functional as F

    from genai_report.data.synthetic import copy_masks, repeated_tokens
    from genai_report.metrics.incontext import induction_score
    from genai_report.models.small_transformers import AttentionOnlyTransformer, AttnOnlyConfig
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    models, gens = [], []
    for seed in range(p.seeds):
        torch.manual_seed(ctx.seed + 1000 * seed + n_layer)  # initial weights
        models.append(AttentionOnlyTransformer(AttnOnlyConfig(
            vocab_size=p.vocab, block_size=p.length, n_layer=n_layer, n_head=p.n_head,
            n_embd=p.n_embd)))
        gens.append(ctx.generator(1000 * seed + 1))
    ensemble = Ensemble(models)
    k = ensemble.size
    x_ev, S_ev, P_ev = repeated_tokens(p.eval_sequences, p.vocab, p.length, p.min_period,
                                       p.max_period, ctx.generator(7), copies="two")
    first, second = copy_masks(S_ev, P_ev, p.length)  # (B, T-1) each

    def loss_fn(ens, step):
        x = torch.stack([repeated_tokens(p.batch_size, p.vocab, p.length, p.min_period,
                                         p.max_period, gen, copies="tile")[0]
                         for gen in gens])  # (K, B, T)
        logits = ens(x)  # (K, B, T, V)
        return F.cross_entropy(logits[:, :, :-1].reshape(-1, p.vocab),
                               x[:, :, 1:].reshape(-1),
                               reduction="none").view(k, -1).mean(1)  # (K,)

    def evaluate(ens):
        logits, maps = ens.call("attention_maps", x_ev.expand(k, *x_ev.shape))
        # (K, B, T, V), (K, L, B, H, T, T)
        out = []
        for i in range(k):
            nll = F.cross_entropy(logits[i, :, :-1].transpose(1, 2), x_ev[:, 1:],
                                  reduction="none")  # (B, T-1)
            score = induction_score(maps[i], S_ev, P_ev)  # (L, H)
            out.append({"first_copy_loss": float(nll[first].mean()),
                        "second_copy_loss": float(nll[second].mean()),
                        "induction_score": float(score.max()), "scores": score.tolist()})
        return {"members": out}

    with torch.no_grad():
        before = evaluate(ensemble.eval())["members"]
    cfg = TrainConfig(steps=p.steps, lr=p.lr, eval_every=p.eval_every, min_lr_ratio=1.0)
    hist = train_ensemble(ensemble, loss_fn, cfg, eval_fn=evaluate, progress=ctx.progress)
    ensemble.unstack_into(models)
    return [_induction_run(p, model, [{"step": 0, **before[i]}]
                           + [{"step": s, **m["members"][i]} for s, m in hist.evals], x_ev)
            | {"chance_loss": math.log(p.vocab),
               "example": {"period": int(S_ev[0]), "start": int(P_ev[0])}}
            for i, model in enumerate(models)]


def _induction_run(p: InductionTrain, model, evals: list[dict], x_ev) -> dict:
    """One trained model's run: the phase change (the interval over which the second-copy
    loss falls fastest, and how long the fall takes), its best head and that head's map."""
    import torch

    last = evals[-1]
    drops = [evals[i - 1]["second_copy_loss"] - evals[i]["second_copy_loss"]
             for i in range(1, len(evals))]
    i_fast = 1 + max(range(len(drops)), key=drops.__getitem__) if drops else 0
    # how long it takes: steps from a quarter to three quarters of the whole fall
    hi_, lo_ = evals[0]["second_copy_loss"], last["second_copy_loss"]

    def crossing(frac):
        level = hi_ - frac * (hi_ - lo_)
        return next((e["step"] for e in evals if e["second_copy_loss"] <= level), last["step"])

    width = crossing(0.75) - crossing(0.25)
    with torch.no_grad():
        _, maps = model.attention_maps(x_ev[:1])  # (L, 1, H, T, T)
    li, hi = divmod(int(torch.tensor(last["scores"]).argmax()), p.n_head)
    return {"evals": evals, "phase_step": evals[i_fast]["step"], "phase_width": width,
            "last": last, "best": {"layer": li, "head": hi}, "example_map": maps[li, 0, hi],
            "n_params": model.num_params()}


@figure(
    "transformers-induction",
    params={
        "smoke": InductionTrain(length=16, max_period=8, n_embd=16, steps=20, eval_every=10,
                                eval_sequences=8, seeds=2),
        "quick": InductionTrain(),
        "full": InductionTrain(length=128, max_period=64, n_embd=128, steps=3000,
                               batch_size=64, eval_every=50, eval_sequences=512, seeds=5,
                               threads=0),
    },
    outputs=("induction.svg",),
    seed=41,
    title="Induction heads form abruptly in a two-layer attention-only transformer, and never "
    "in one layer.",
    caption="Attention-only transformers trained on random tokens whose random segment "
    "repeats, measured on held-out sequences where a segment appears exactly twice. Left: "
    "loss on the first copy (unpredictable) and on the second copy (predictable by looking "
    "up what followed the same token before), in nats; the dotted line is the loss of a "
    "uniform guess. Middle: induction score of the best head, the attention that a position "
    "in the second copy pays to the token after the earlier occurrence of its own token. "
    "Lines are means over seeds, bands their range. Right: the best head of the two-layer "
    "model on one held-out sequence; crosses mark the induction targets.",
    alt="Two line charts against training step and a heat map. For the two-layer model the "
    "second-copy loss stays near the first-copy loss, then drops within a few dozen steps "
    "while its induction score jumps from near zero to most of the attention; the one-layer "
    "model's curves stay flat. The heat map shows a bright off-diagonal stripe, one period "
    "behind the diagonal, over the second copy.",
)
def induction(ctx, p: InductionTrain):
    """Train 1- and 2-layer attention-only models over seeds; plot the phase change."""
    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.data.synthetic import repeated_tokens
    from genai_report.metrics.incontext import uniform_induction_score
    from genai_report.metrics.seeds import over_seeds
    from genai_report.plotting import save_figure

    with _threads(p.threads):
        runs = {n: _train_induction(ctx, p, n) for n in (2, 1)}
    _, S_ev, P_ev = repeated_tokens(p.eval_sequences, p.vocab, p.length, p.min_period,
                                    p.max_period, ctx.generator(7), copies="two")
    uniform = uniform_induction_score(S_ev, P_ev, p.length)

    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.5),
                             gridspec_kw={"width_ratios": [1, 1, 0.85], "wspace": 0.42})
    a0, a1, a2 = axes
    styles = {2: ("C0", "two layers"), 1: ("C1", "one layer")}
    for n, rs in runs.items():
        color, label = styles[n]
        steps = [e["step"] for e in rs[0]["evals"]]
        for key, ls, what in (("second_copy_loss", "-", "2nd copy"),
                              ("first_copy_loss", "--", "1st copy")):
            v = np.array([[e[key] for e in r["evals"]] for r in rs])  # (seeds, evals)
            a0.plot(steps, v.mean(0), color=color, ls=ls, lw=1.3, label=f"{label}, {what}")
            a0.fill_between(steps, v.min(0), v.max(0), color=color, alpha=0.2, lw=0)
        v = np.array([[e["induction_score"] for e in r["evals"]] for r in rs])
        a1.plot(steps, v.mean(0), color=color, lw=1.3, label=label)
        a1.fill_between(steps, v.min(0), v.max(0), color=color, alpha=0.2, lw=0)
    a0.axhline(runs[2][0]["chance_loss"], color="0.5", ls=":", lw=1)
    a0.set_xlabel("step")
    a0.set_ylabel("loss (nats / token)")
    a0.set_ylim(0, None)
    a0.legend(fontsize=8, loc="lower left", handlelength=1.6)
    a1.axhline(uniform, color="0.5", ls=":", lw=1, label="uniform attention")
    a1.set_xlabel("step")
    a1.set_ylabel("induction score")
    a1.set_ylim(0, 1)
    a1.legend(fontsize=8, loc="upper left")
    best = runs[2][0]
    amap = best["example_map"].numpy()
    S, P0 = best["example"]["period"], best["example"]["start"]
    a2.imshow(amap, cmap="viridis", vmin=0, vmax=1, rasterized=True)
    q = np.arange(P0 + S, P0 + 2 * S - 1)
    a2.scatter(q - S + 1, q, marker="x", s=6, lw=0.6, color="C3")
    a2.set_title(f"layer {best['best']['layer']}, head {best['best']['head']}", fontsize=9)
    a2.set_xlabel("key position")
    a2.set_ylabel("query position")
    a2.grid(False)
    save_figure(fig, ctx.output("induction.svg"))

    def seeds(n, key):
        return over_seeds([r["last"][key] for r in runs[n]])

    return {
        "second_copy_loss": seeds(2, "second_copy_loss"),
        "first_copy_loss": seeds(2, "first_copy_loss"),
        "induction_score": seeds(2, "induction_score"),
        "one_layer_induction_score": seeds(1, "induction_score"),
        "one_layer_second_copy_loss": seeds(1, "second_copy_loss"),
        "one_layer_first_copy_loss": seeds(1, "first_copy_loss"),
        "phase_change_step": over_seeds([r["phase_step"] for r in runs[2]]),
        "phase_change_width": over_seeds([r["phase_width"] for r in runs[2]]),
        "steps": p.steps,
        "uniform_score": uniform,
        "chance_loss": runs[2][0]["chance_loss"],
        "best_head": best["best"],
        "n_params": {"two_layer": runs[2][0]["n_params"], "one_layer": runs[1][0]["n_params"]},
        "history": {f"layers_{n}": [[{k: e[k] for k in ("step", "first_copy_loss",
                                                          "second_copy_loss",
                                                          "induction_score")}
                                     for e in r["evals"]] for r in rs]
                    for n, rs in runs.items()},
    }


@dataclass(frozen=True)
class RegressionTrain:
    """In-context linear regression (Garg et al., 2022) with a small GPT over vectors.

    Attributes:
        dim: dimension ``d`` of the inputs ``x``.
        k: examples per prompt; the model predicts each ``y_i`` from the ``i`` before it.
        n_layer, n_head, n_embd: the model.
        batch_size, steps, lr, warmup_steps: training (a fresh ``w`` for every prompt).
        eval_prompts: held-out prompts the errors are averaged over.
        threads: torch threads while training (``0``: leave the pipeline's setting).
    """

    dim: int = 3
    k: int = 8
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    batch_size: int = 64
    steps: int = 1500
    lr: float = 2e-3
    warmup_steps: int = 50
    eval_prompts: int = 2000
    threads: int = 1


@figure(
    "transformers-icl-regression",
    params={
        "smoke": RegressionTrain(k=4, n_embd=16, steps=20, warmup_steps=2, eval_prompts=50),
        "quick": RegressionTrain(),
        "full": RegressionTrain(dim=8, k=20, n_layer=6, n_head=4, n_embd=128, batch_size=128,
                                steps=20000, lr=5e-4, warmup_steps=500, threads=0),
    },
    outputs=("icl_regression.svg",),
    seed=48,
    title="A transformer learns regression in context: its error falls with the number of "
    "examples in the prompt, well below nearest neighbour's.",
    caption="Each prompt is x1, y1, ..., xk, yk with y = w . x / sqrt(d) for a new random w "
    "per prompt, never seen in training. Mean squared error of the prediction of y_i from "
    "the i examples before it (y has unit variance, so 1 is the error of predicting 0), "
    "averaged over held-out prompts, for the trained model and four estimators that see "
    "the same examples. The dotted line marks i = d, where least squares becomes exact.",
    alt="Line chart of squared error against the number of in-context examples. The "
    "transformer's error falls from about one as examples accumulate, below nearest "
    "neighbour and the mean of the earlier y, while least squares reaches zero at d "
    "examples.",
)
def icl_regression(ctx, p: RegressionTrain):
    """Train a GPT on regression prompts; compare its in-context error with baselines."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data.synthetic import regression_prompts
    from genai_report.metrics.incontext import regression_baselines
    from genai_report.models.small_transformers import VectorGPT, VectorGPTConfig
    from genai_report.plotting import save_figure
    from genai_report.training.loop import TrainConfig, train

    torch.manual_seed(ctx.seed)
    model = VectorGPT(VectorGPTConfig(n_in=p.dim + 1, block_size=2 * p.k,
                                      n_layer=p.n_layer, n_head=p.n_head, n_embd=p.n_embd))
    gen = ctx.generator(1)

    def loss_fn(m, step):
        z, _, y = regression_prompts(p.batch_size, p.k, p.dim, gen)
        return ((m(z)[:, 0::2] - y) ** 2).mean()  # predictions sit on the x tokens

    with _threads(p.threads):
        cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps)
        hist = train(model, loss_fn, cfg, progress=ctx.progress, record_every=10)
        z, x, y = regression_prompts(p.eval_prompts, p.k, p.dim, ctx.generator(2))
        with torch.no_grad():
            preds = {"transformer": model(z)[:, 0::2], **regression_baselines(x, y)}
    sq = {name: (pr - y) ** 2 for name, pr in preds.items()}  # (N, k) each
    errors = {name: e.mean(0).tolist() for name, e in sq.items()}
    stderr = {name: (e.std(0) / len(e) ** 0.5).tolist() for name, e in sq.items()}

    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    shown = {"transformer": ("C0", "o", "transformer (trained)"),
             "least_squares": ("C2", "s", "least squares"),
             "nearest_neighbour": ("C1", "^", "nearest neighbour"),
             "mean": ("C4", "v", "mean of earlier y"), "zero": ("C5", "", "predict 0")}
    ks = list(range(p.k))
    for name, (color, marker, label) in shown.items():
        ax.errorbar(ks, errors[name], yerr=stderr[name], color=color, marker=marker, ms=4,
                    lw=1.3, capsize=2, label=label)
    ax.axvline(p.dim, color="0.5", ls=":", lw=1)
    ax.set_xticks(ks)
    ax.set_xlabel("in-context examples i")
    ax.set_ylabel("squared error")
    ax.set_ylim(0, 1.6)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, ctx.output("icl_regression.svg"))
    last = {name: e[-1] for name, e in errors.items()}
    past_d = {name: sum(e[p.dim:]) / len(e[p.dim:]) for name, e in errors.items()}
    return {"errors": errors, "stderr": stderr, "at_last": last, "past_d": past_d,
            "dim": p.dim, "k": p.k, "n_params": model.num_params(),
            "final_train_loss": hist.train_loss[-1]}


@dataclass(frozen=True)
class RecallTrain:
    """Associative recall under a growing load, for a transformer and a GRU of one size.

    Each training sequence holds between 1 and ``max_pairs`` key-value pairs and a gap of
    0 to ``max_lag`` filler tokens before the query (both drawn per sequence), so one
    training run of each model is scored at every load and every lag.

    Attributes:
        max_lag: longest lag (filler tokens between the pairs and the query).
        max_pairs: the largest number of key-value pairs to remember.
        n_keys: distinct keys (at least ``max_pairs``); values are one of eight.
        eval_pairs: memory loads scored, at the longest lag.
        eval_lags: lags scored, at ``lag_pairs`` pairs.
        lag_pairs: the load of the lag sweep.
        n_layer, n_head, n_embd: the GPT; the GRU (one layer, the same embedding width) gets
            the hidden size that brings its parameter count closest to the GPT's.
        batch_size, steps, warmup_steps: training, the same for both.
        lr_transformer, lr_gru: each model's learning rate, the best of short trial runs
            on this task (GPT: 2e-3; 5e-3 diverged. GRU: 1e-2 against 3e-3 and 2e-2).
        eval_sequences: held-out sequences per point.
        seeds: independent runs of each model.
        threads: torch threads while training (``0``: leave the pipeline's setting).
    """

    max_lag: int = 16
    max_pairs: int = 16
    n_keys: int = 16
    eval_pairs: tuple[int, ...] = (1, 2, 4, 8, 16)
    eval_lags: tuple[int, ...] = (0, 4, 8, 16)
    lag_pairs: int = 4
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    batch_size: int = 64
    steps: int = 1000
    lr_transformer: float = 2e-3
    lr_gru: float = 1e-2
    warmup_steps: int = 30
    eval_sequences: int = 500
    seeds: int = 1
    threads: int = 1

    def __post_init__(self):
        if not 1 <= self.max_pairs <= self.n_keys:
            raise ValueError(f"max_pairs must be in [1, n_keys={self.n_keys}], "
                             f"got {self.max_pairs}.")
        if not all(1 <= n <= self.max_pairs for n in (*self.eval_pairs, self.lag_pairs)):
            raise ValueError(f"eval_pairs and lag_pairs must lie in [1, {self.max_pairs}].")
        if not all(0 <= lag <= self.max_lag for lag in self.eval_lags):
            raise ValueError(f"eval_lags must lie in [0, max_lag={self.max_lag}].")


def _recall_models(p: RecallTrain, vocab: int):
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.models.rnn import CharGRU

    gpt = GPT(GPTConfig(vocab_size=vocab, block_size=p.max_lag + p.max_pairs + 1,
                        n_layer=p.n_layer, n_head=p.n_head, n_embd=p.n_embd))
    target = gpt.num_params(non_embedding=False)

    def gru_params(h):  # embedding, one GRU layer (3 gates, two biases each), read-out
        return vocab * p.n_embd + 3 * h * (p.n_embd + h) + 6 * h + h * vocab + vocab

    hidden = min(range(8, 1025, 4), key=lambda h: abs(gru_params(h) - target))
    gru = CharGRU(vocab, n_embd=p.n_embd, hidden=hidden, n_layer=1)
    assert gru.num_params() == gru_params(hidden)
    return gpt, gru


@figure(
    "transformers-recall",
    params={
        "smoke": RecallTrain(max_lag=4, max_pairs=4, n_keys=4, eval_pairs=(1, 4),
                             eval_lags=(0, 4), lag_pairs=2, n_layer=1, n_embd=16, steps=20,
                             warmup_steps=2, eval_sequences=20),
        "quick": RecallTrain(),
        "full": RecallTrain(max_lag=64, max_pairs=32, n_keys=32,
                            eval_pairs=(1, 2, 4, 8, 16, 32), eval_lags=(0, 16, 32, 64),
                            steps=4000, batch_size=128, eval_sequences=2000, seeds=3,
                            threads=0),
    },
    outputs=("recall.svg",),
    seed=49,
    title="Recall under load: a transformer and a GRU of the same size, trained alike, "
    "scored by how many pairs they must hold and how far back.",
    caption="Each sequence holds some key-value pairs, a run of filler tokens (the lag), then "
    "one of the keys; the model must name that key's value (chance: one in eight). "
    "A two-layer GPT and a one-layer GRU with the same number of parameters are trained "
    "with the same data and steps, each at its own best learning rate, on loads and lags "
    "drawn from the whole range, and scored on held-out sequences. Left: accuracy against "
    "the number of pairs, at the longest lag. Right: accuracy against the lag, at a fixed "
    "load.",
    alt="Two line charts of recall accuracy for the transformer and the GRU: against the "
    "number of pairs (left) and against the lag (right), with chance marked; the values are "
    "given in the text.",
)
def recall(ctx, p: RecallTrain):
    """Train a GPT and a GRU on associative recall; score both by load and by lag."""
    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F

    from genai_report.data.synthetic import recall_batch, recall_vocab
    from genai_report.metrics.seeds import over_seeds
    from genai_report.plotting import save_figure
    from genai_report.training.loop import TrainConfig, train

    n_values = 8
    task = {"n_keys": p.n_keys, "n_values": n_values, "max_pairs": p.max_pairs}
    base = recall_vocab(p.n_keys, n_values, 8)
    vocab = base + n_values  # answer tokens come last
    lrs = {"transformer": p.lr_transformer, "gru": p.lr_gru}
    by_pairs = {"transformer": [], "gru": []}  # per seed: accuracy at each load
    by_lag = {"transformer": [], "gru": []}  # per seed: accuracy at each lag
    n_params = {}

    def accuracy(model, seed, **where):
        x, ans, _, _ = recall_batch(p.eval_sequences, p.max_lag, ctx.generator(seed), **task,
                                    **where)
        with torch.no_grad():
            guess = model(x)[0][:, -1, base:].argmax(-1)  # (B,): among the answers
        return float((guess == ans).float().mean())

    with _threads(p.threads):
        for s in range(p.seeds):
            torch.manual_seed(ctx.seed + 100 * s)
            models = dict(zip(("transformer", "gru"), _recall_models(p, vocab), strict=True))
            for name, model in models.items():
                gen = ctx.generator(100 * s + 1)

                def loss_fn(m, step, gen=gen):
                    x, ans, _, _ = recall_batch(p.batch_size, p.max_lag, gen, **task)
                    logits = m(x)[0][:, -1, base:]  # (B, n_values): the answers, at the query
                    return F.cross_entropy(logits, ans)

                cfg = TrainConfig(steps=p.steps, lr=lrs[name], warmup_steps=p.warmup_steps)
                train(model, loss_fn, cfg, progress=ctx.progress, record_every=10)
                by_pairs[name].append([accuracy(model, 50 + j, n_pairs=n, lag=p.max_lag)
                                       for j, n in enumerate(p.eval_pairs)])
                by_lag[name].append([accuracy(model, 80 + j, n_pairs=p.lag_pairs, lag=lag)
                                     for j, lag in enumerate(p.eval_lags)])
                n_params[name] = sum(q.numel() for q in model.parameters())
    gru_state = models["gru"].gru.hidden_size

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.7), sharey=True)
    styles = (("transformer", "C0", "o", "transformer (GPT, 2 layers)"),
              ("gru", "C1", "s", "GRU, same parameter count"))
    for ax, acc, xs in ((axes[0], by_pairs, p.eval_pairs), (axes[1], by_lag, p.eval_lags)):
        for name, color, marker, label in styles:
            rows = torch.tensor(acc[name])  # (seeds, points)
            ax.errorbar(list(xs), (100 * rows.mean(0)).tolist(),
                        yerr=(100 * rows.std(0)).tolist() if len(rows) > 1 else None,
                        color=color, marker=marker, ms=4, lw=1.3, capsize=2, label=label)
        ax.axhline(100 / n_values, color="0.5", ls=":", lw=1, label="chance")
    axes[0].set_xscale("log", base=2)
    axes[0].set_xticks(list(p.eval_pairs), [str(n) for n in p.eval_pairs])
    axes[0].set_xlabel(f"pairs to remember (lag {p.max_lag})")
    axes[1].set_xlabel(f"lag ({p.lag_pairs} pairs)")
    axes[0].set_ylabel("recall accuracy (%)")
    axes[0].set_ylim(0, 105)
    axes[0].legend(fontsize=8, loc="lower left")
    save_figure(fig, ctx.output("recall.svg"))

    def summary(acc):
        return {name: [over_seeds([r[j] for r in rows]) for j in range(len(rows[0]))]
                for name, rows in acc.items()}

    pairs, lags = summary(by_pairs), summary(by_lag)
    lag_spread = {name: over_seeds([max(r) - min(r) for r in rows])
                  for name, rows in by_lag.items()}
    return {
        "eval_pairs": list(p.eval_pairs), "eval_lags": list(p.eval_lags),
        "by_pairs": pairs, "by_lag": lags, "lag_spread": lag_spread,
        "transformer_hardest": pairs["transformer"][-1], "gru_hardest": pairs["gru"][-1],
        "transformer_one_pair": pairs["transformer"][0], "gru_one_pair": pairs["gru"][0],
        "hardest_pairs": p.eval_pairs[-1], "longest_lag": p.max_lag,
        "chance": 1 / n_values, "n_params": n_params, "lr": lrs, "gru_state": gru_state,
    }
