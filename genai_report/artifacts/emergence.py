"""The control experiment for "emergent" abilities (Schaeffer et al. 2023), on addition.

If a model gets each digit of an answer right with probability ``p``, independently, it
gets a whole ``(k + 1)``-digit sum right with probability about ``p ** (k + 1)``. A smooth
rise of ``p`` with scale then looks like a sudden jump in exact match, sharper the longer
the answer. This module trains small character-level GPTs on additions of operands of
every width ``k = 1 .. max_digits`` mixed together (written in one fixed field, sums least
significant digit first, :mod:`genai_report.data.tasks`), and scores held-out sums of each
width at log-spaced checkpoints: per-digit accuracy and exact match of the ``k + 1`` digits
of the sum, at every checkpoint of every size and seed. The figure (``scaling-emergence-control``) compares exact match with
``p ** (k + 1)``.

The sizes are registered in :mod:`genai_report.figures.scaling`, as the sweep's are, so a
new size trains alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts._outputs import write_json

VOCAB = "0123456789+=\n"
"""The characters of the addition stream; a character's id is its index."""


@dataclass(frozen=True)
class AdditionWidths:
    """One model size of the control, trained with several seeds.

    Attributes:
        n_embd, n_layer, n_head: the GPT's shape.
        active: ``False`` for a size outside this profile (the node writes empty outputs).
        seeds: independently initialised and trained models of this size.
        max_digits: operand widths ``1 .. max_digits`` are mixed in training and scored.
        steps, batch, lr, warmup: training (AdamW, cosine after a warm-up over the
            fraction ``warmup`` of the steps); a batch is
            ``batch`` examples, one per row.
        train_examples: distinct training examples (all widths together).
        evals: log-spaced checkpoints scored (the last after the final step).
        n_eval: held-out sums scored per width at each checkpoint.
    """

    n_embd: int
    n_layer: int = 2
    n_head: int = 2
    active: bool = True
    seeds: int = 3
    max_digits: int = 6
    steps: int = 1000
    batch: int = 64
    train_examples: int = 60000
    lr: float = 3e-3
    warmup: float = 0.05
    evals: int = 12
    n_eval: int = 300

    def __post_init__(self) -> None:
        if not 1 <= self.max_digits <= 9:
            raise ValueError(f"max_digits must be in 1..9, got {self.max_digits}.")
        if self.seeds < 1 or self.evals < 2:
            raise ValueError("seeds must be >= 1 and evals >= 2.")


def encode_rows(texts: list[str]):
    """Strings of one length over :data:`VOCAB` -> ids ``(len(texts), length)``, in one
    pass over their bytes (a data set of hundreds of thousands of rows, encoded row by row,
    would cost millions of small host operators).

    Raises:
        ValueError: when the strings differ in length or hold a character not in VOCAB.
    """
    import numpy as np
    import torch

    if not texts:
        return torch.zeros(0, 0, dtype=torch.long)
    length = len(texts[0])
    if any(len(t) != length for t in texts):
        raise ValueError("encode_rows needs strings of one length.")
    table = np.full(256, -1, dtype=np.int64)
    table[[ord(c) for c in VOCAB]] = np.arange(len(VOCAB))
    data = "".join(texts).encode("ascii", errors="replace")
    ids = table[np.frombuffer(data, dtype=np.uint8)].reshape(len(texts), length)
    if (ids < 0).any():
        bad = sorted({c for t in texts for c in t if c not in VOCAB})
        raise ValueError(f"Characters {bad} are not in the vocabulary {VOCAB!r}.")
    return torch.from_numpy(ids)


def train_widths(ctx, p: AdditionWidths) -> dict:
    """Train ``p.seeds`` GPTs of one size; score every width at every checkpoint."""
    if not p.active:
        out = {"active": False}
        write_json(ctx, "runs.json", out)
        return out
    runs = _train_seeds(ctx, p)
    out = {"active": True, "n_embd": p.n_embd, "n_layer": p.n_layer,
           "params": runs[0]["params"], "widths": list(range(1, p.max_digits + 1)),
           "runs": runs}
    write_json(ctx, "runs.json", out)
    return out


def in_field(example: tuple[str, str], digits: int) -> tuple[str, str]:
    """The same addition written with both operands zero-padded to ``digits`` digits.

    Every problem then has one layout (``"000123+000045="`` and a ``digits + 1``-character
    reversed sum), so the model learns one procedure and the widths differ only in how many
    of the sum's digits a ``k``-digit problem has: ``k + 1``, the ones that are scored.
    """
    from genai_report.data.tasks import addition_example

    a, b = (int(v) for v in example[0].rstrip("=").split("+"))
    return addition_example(a, b, digits)


def _rows(p: AdditionWidths, n: int, gen):
    """``n`` training rows ``(inputs, targets)`` of shape ``(n, T)``, one example per row.

    Each row is ``"\n" + prompt + answer`` at position 0, as the evaluation feeds it, with
    the operands in a field of ``max_digits`` (see :func:`in_field`); widths
    ``1 .. max_digits`` are equally common. Only the answer's characters are targets (the
    operands are random, nothing to learn); the rest is ``-1``.
    """
    import torch

    from genai_report.data import tasks

    per_width = -(-n // p.max_digits)
    examples = [in_field(ex, p.max_digits) for k in range(1, p.max_digits + 1)
                for ex in tasks.addition_examples(k, per_width, "train", gen)]
    order = torch.randperm(len(examples), generator=gen)[:n].tolist()
    # one layout for every problem (in_field): "\n" + prompt + answer fills the row
    prompt, answer = (len(part) for part in examples[0])
    x = encode_rows(["\n" + examples[i][0] + examples[i][1] for i in order])  # (n, T)
    y = torch.full_like(x, -1)
    a0 = 1 + prompt  # the first answer character's position
    y[:, a0 - 1: a0 - 1 + answer] = x[:, a0: a0 + answer]
    return x, y


def _train_seeds(ctx, p: AdditionWidths) -> list[dict]:
    """Train the ``p.seeds`` GPTs of one size as one :class:`~genai_report.training.ensemble.Ensemble`.

    Each seed keeps its own initialisation, training rows and batch draws (its own
    generator), as it would trained alone; every seed is scored at every checkpoint.
    """
    import torch

    from genai_report.artifacts.scaling import _eval_steps
    from genai_report.data import tasks
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    models, gens, rows = [], [], []
    for seed in range(p.seeds):
        gens.append(ctx.generator(1000 * seed))
        torch.manual_seed(ctx.seed + 1000 * seed)  # the model's initialisation
        models.append(GPT(GPTConfig(vocab_size=len(VOCAB), block_size=3 * p.max_digits + 4,
                                    n_layer=p.n_layer, n_head=p.n_head,
                                    n_embd=p.n_embd)).to(ctx.device))
        rows.append(_rows(p, p.train_examples, gens[-1]))  # (N, T) inputs and targets
    tests = {}  # width -> (held-out rows "\n" + prompt + answer, encoded once; prompt length)
    for k in range(1, p.max_digits + 1):
        examples = [in_field(ex, p.max_digits) for ex in
                    tasks.addition_examples(k, p.n_eval, "held_out", ctx.generator(7 + k))]
        tests[k] = (encode_rows(["\n" + q + a for q, a in examples]), len(examples[0][0]))
    n_params = models[0].num_params()
    checkpoints = set(_eval_steps(p.steps, p.evals))
    curves: list[list[dict]] = [[] for _ in models]
    ensemble = Ensemble(models)

    def score_all(step: int) -> None:
        ensemble.unstack_into(models)
        for model, curve in zip(models, curves, strict=True):
            curve.append(_score(model, step, tests, ctx.device))

    def loss_fn(ens, step):
        if step in checkpoints:
            score_all(step)
        idx = [torch.randint(len(x), (p.batch,), generator=g)
               for (x, _), g in zip(rows, gens, strict=True)]
        x = torch.stack([x[i] for (x, _), i in zip(rows, idx, strict=True)])  # (K, B, T)
        y = torch.stack([y[i] for (_, y), i in zip(rows, idx, strict=True)])  # (K, B, T)
        return ens(x.to(ctx.device), y.to(ctx.device))[1]  # (K,)

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=int(p.warmup * p.steps),
                      weight_decay=0.1)
    hist = train_ensemble(ensemble, loss_fn, cfg, progress=ctx.progress, record_every=10)
    score_all(p.steps)
    runs = []
    for seed, (curve, last) in enumerate(zip(curves, hist.last_loss(10), strict=True)):
        for row in curve:
            row["examples"] = row["step"] * p.batch
            row["flops"] = 6 * n_params * row["examples"] * (3 * p.max_digits + 4)
        runs.append({"seed": seed, "params": n_params, "curve": curve, "last_loss": last,
                     "train_time_s": hist.wall_time_s / len(models)})
    return runs


def _score(model, step: int, tests: dict, device) -> dict:
    """Per-digit accuracy ``p``, accuracy at each answer position, and exact match per width.

    ``tests`` maps each width ``k`` to ``(ids, prompt_len)``: the held-out rows ``"\n" +
    prompt + answer``, encoded once ``(N, L)``, and the prompt's length. Teacher-forced,
    like :func:`genai_report.data.tasks.score_answers`: an answer is an exact match when
    every one of its digits is the model's greedy choice given the right digits before it,
    which is what greedy decoding produces.
    """
    import torch

    model.eval()
    by_k = {}
    with torch.no_grad():
        for k, (ids, prompt_len) in tests.items():
            ids = ids.to(device)  # (N, L)
            logits = model(ids[:, :-1])[0]  # (N, L-1, V)
            start = 1 + prompt_len  # the first answer digit's position
            # the k + 1 digits of the sum (least significant first); the rest are zeros
            pred = logits[:, start - 1:start + k].argmax(-1)  # (N, k+1)
            hit = (pred == ids[:, start:start + k + 1]).float()  # (N, k+1)
            by_k[str(k)] = {"exact": float(hit.prod(1).mean()), "p": float(hit.mean()),
                            "p_position": hit.mean(0).tolist()}
    return {"step": step, "by_k": by_k}
