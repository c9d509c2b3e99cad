"""Knowledge distillation: a small GPT trained on a larger one's soft targets.

Hinton et al. (2015) train a small *student* to match the output distribution of a large
*teacher* instead of the one-hot next token. For a language model (word-level distillation,
Kim & Rush 2016) the loss at every position is the KL divergence from the teacher's
next-character distribution to the student's, both softened by a temperature ``T`` and
scaled by ``T^2`` so the gradients keep their size. The soft target says, at every position,
how plausible *each* character is, which the one-hot label does not.

:func:`distill` trains the same student twice per seed (every student at once, as one
:class:`~genai_report.training.ensemble.Ensemble`), from the same initial weights and on
the same batches: once on the corpus's next characters (``hard``) and once on the teacher's
distributions over the same windows (``soft``), for the same number of steps. Both are
scored by the same held-out cross-entropy against the true next characters, at log-spaced
steps, so the curves compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts._outputs import write_json
from genai_report.artifacts.scaling import _eval_steps, corpus_file, torch_threads

ARMS = ("hard", "soft")
"""Training targets compared: the corpus's next characters, the teacher's distributions."""


@dataclass(frozen=True)
class Distill:
    """The distillation study.

    Attributes:
        teacher: node name of the sweep run whose model teaches.
        n_embd, n_layer, head_dim: the student's shape (heads of ``head_dim``).
        steps, batch_size, lr, warmup_steps: the student's training, the same for both arms
            (AdamW, warm-up then cosine decay to a tenth).
        temperature: softening of both distributions in the ``soft`` arm.
        seeds: students per arm (each seed shares initial weights and batches across arms).
        evals: evaluations at log-spaced steps (the last after the final step).
        eval_batches: fixed validation batches per evaluation.
        val_fraction: tail of the corpus held out (the sweep's split).
        threads: torch threads while training (0: leave torch's setting).
    """

    teacher: str
    n_embd: int = 32
    n_layer: int = 1
    head_dim: int = 16
    steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 50
    temperature: float = 1.0
    seeds: int = 3
    evals: int = 8
    eval_batches: int = 8
    val_fraction: float = 0.1
    threads: int = 1

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}.")
        if self.evals < 2:
            raise ValueError(f"evals must be >= 2 to draw a curve, got {self.evals}.")


def soft_target_loss(student_logits, teacher_logits, temperature: float):
    """``T^2 KL(teacher_T || student_T)``, averaged over positions.

    Args:
        student_logits, teacher_logits: ``(B, T, V)``.
        temperature: ``T``; both distributions are ``softmax(logits / T)``.

    Returns:
        The scalar loss (nats, times ``T^2``).
    """
    import torch.nn.functional as F

    V = student_logits.size(-1)
    log_p_student = F.log_softmax(student_logits.reshape(-1, V) / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.reshape(-1, V) / temperature, dim=-1)
    # KL(t || s) = sum_v t_v (log t_v - log s_v), mean over the B*T positions
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature ** 2


def distill(ctx, p: Distill):
    """Train the student on hard labels and on the teacher's soft targets, per seed."""
    with torch_threads(p.threads):
        return _distill(ctx, p)


def _distill(ctx, p: Distill):
    import torch

    from genai_report.data.text import CharTokenizer, get_batch, load_corpus, split
    from genai_report.metrics.scaling import count_parameters
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    saved = torch.load(ctx.input(p.teacher, "model.pt"), map_location="cpu")
    tok = CharTokenizer(saved["chars"])
    dev = ctx.device
    teacher = GPT(GPTConfig(**saved["config"]))
    teacher.load_state_dict(saved["state"])
    teacher.to(dev).eval().requires_grad_(False)
    T = teacher.config.block_size
    train_ids, val_ids = split(tok.encode(load_corpus(corpus_file())), p.val_fraction)
    val_gen = torch.Generator().manual_seed(1234)  # the sweep's validation windows
    val_batches = [get_batch(val_ids, p.batch_size, T, val_gen) for _ in range(p.eval_batches)]

    @torch.no_grad()
    def val_loss(m) -> float:
        return float(torch.stack([m(x.to(dev), y.to(dev))[1] for x, y in val_batches]).mean())

    config = GPTConfig(vocab_size=tok.vocab_size, block_size=T, n_layer=p.n_layer,
                       n_head=max(1, p.n_embd // p.head_dim), n_embd=p.n_embd)
    # Every seed's two students train at once, as one ensemble. Seed s's students start
    # from the same weights and draw the same batches (generators seeded alike), each
    # member its own, as it would alone.
    members, gens, keys = [], [], []
    for seed in range(p.seeds):
        torch.manual_seed(ctx.seed * 100 + seed)
        init = GPT(config).state_dict()  # the same initial weights in both arms
        for arm in ARMS:
            student = GPT(config)
            student.load_state_dict(init)
            members.append(student.to(dev))
            gens.append(torch.Generator().manual_seed(ctx.seed * 100 + seed))  # same batches
            keys.append((arm, seed))
    k = len(members)
    soft = [i for i, (arm, _) in enumerate(keys) if arm == "soft"]
    eval_at = _eval_steps(p.steps, p.evals)
    curves: list[list[dict]] = [[] for _ in members]

    @torch.no_grad()
    def record(ens, step: int) -> None:
        """Every member's mean loss over the fixed validation batches."""
        total = torch.zeros(k)
        for x, y in val_batches:
            total += ens(x.expand(k, *x.shape).to(dev), y.expand(k, *y.shape).to(dev))[1].cpu()
        for curve, loss in zip(curves, (total / len(val_batches)).tolist(), strict=True):
            curve.append({"step": step, "val_loss": loss})

    def loss_fn(ens, step):
        if step in eval_at:  # the models after `step` updates
            ens.eval()
            record(ens, step)
            ens.train()
        xs, ys = zip(*(get_batch(train_ids, p.batch_size, T, gen) for gen in gens), strict=True)
        x, y = torch.stack(xs).to(dev), torch.stack(ys).to(dev)  # (K, B, T) each
        logits, hard = ens(x, y)  # (K, B, T, V), (K,)
        with torch.no_grad():
            target, _ = teacher(x[soft].flatten(0, 1))  # (S * B, T, V)
        target = target.view(len(soft), *logits.shape[1:])  # (S, B, T, V)
        losses = list(hard.unbind())
        for j, i in enumerate(soft):
            losses[i] = soft_target_loss(logits[i], target[j], p.temperature)
        return torch.stack(losses)  # (K,)

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                      min_lr_ratio=0.1, weight_decay=0.0, grad_clip=1.0)
    ensemble = Ensemble(members)
    hist = train_ensemble(ensemble, loss_fn, cfg, progress=ctx.progress, record_every=100)
    ensemble.eval()
    record(ensemble, p.steps)
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for (arm, seed), curve in zip(keys, curves, strict=True):  # seeds in order, per arm
        runs[arm].append({"seed": seed, "val_loss": curve[-1]["val_loss"], "curve": curve,
                          "train_s": hist.wall_time_s / k})  # its share of the training
    final = {arm: over_seeds([r["val_loss"] for r in runs[arm]]) for arm in ARMS}
    gap = over_seeds([h["val_loss"] - s["val_loss"]
                      for h, s in zip(runs["hard"], runs["soft"], strict=True)])
    out = {
        "teacher": p.teacher,
        "teacher_params": count_parameters(teacher)["non_embedding"],
        "student_params": count_parameters(GPT(config))["non_embedding"],
        "teacher_val_loss": val_loss(teacher),
        "steps": p.steps, "tokens": p.steps * p.batch_size * T, "temperature": p.temperature,
        "final": final, "gap_hard_minus_soft": gap,
        "train_s": hist.wall_time_s,  # every student of both arms, trained together
    }
    write_json(ctx, "distill.json", {**out, "runs": runs}, indent=None)
    return out
