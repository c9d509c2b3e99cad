"""Adapting a pre-trained GPT to a far domain: LoRA against full fine-tuning.

The base is the report's English character GPT (``gpt-char``). The target domain is far
from its pre-training text: written-out arithmetic, lines such as ``0427+0503=0390`` (sums
reversed, as in :mod:`genai_report.data.tasks`) with operands of one to ``max_digits``
digits, problems split between training and held-out by a hash of the operands. Each method
adapts the same base for the same steps on the same batches:

* ``full``: every weight trained;
* ``lora_r<k>``: the weights frozen and every attention and MLP matrix given a rank-``k``
  update (Hu et al. 2021, :mod:`genai_report.models.lora`), at a higher learning rate, as
  LoRA is usually run.

After adaptation each model is scored on held-out arithmetic (what it learned) and on the
base's own held-out English (what it forgot), over several seeds (the seed draws the
batches and LoRA's initial ``A``). Biderman et al. (2024) found that on far domains LoRA
learns less and forgets less than full fine-tuning; this study measures both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts._outputs import write_json
from genai_report.artifacts.scaling import _eval_steps, corpus_file, torch_threads


@dataclass(frozen=True)
class Adaptation:
    """The adaptation study.

    Attributes:
        base: node name of the pre-trained GPT (a ``gpt-char`` checkpoint).
        ranks: LoRA ranks compared with full fine-tuning.
        steps, batch_size: optimisation steps and windows of the target text per step.
        lr_lora, lr_full: peak learning rates (warm-up over a tenth, cosine to a tenth).
        seeds: adaptations per method.
        max_digits: widest operands of the arithmetic domain.
        train_lines, eval_lines: lines of arithmetic to train on and to score.
        eval_batches: fixed validation windows of each domain (batches of ``batch_size``).
        evals: checkpoints (log-spaced steps, the last after the final step) at which both
            losses are recorded, tracing each method's learning-forgetting path.
        threads: torch threads while training (0: leave torch's setting).
    """

    base: str = "gpt-char"
    ranks: tuple[int, ...] = (1, 4, 16)
    steps: int = 200
    batch_size: int = 8
    lr_lora: float = 5e-4
    lr_full: float = 1e-4
    seeds: int = 3
    max_digits: int = 4
    train_lines: int = 20_000
    eval_lines: int = 2_000
    eval_batches: int = 16
    evals: int = 6
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.ranks or any(r < 1 for r in self.ranks):
            raise ValueError(f"ranks must be positive, got {self.ranks}.")
        if self.seeds < 1 or self.steps < 1:
            raise ValueError("seeds and steps must be >= 1.")
        if not 1 <= self.max_digits <= 9:
            raise ValueError(f"max_digits must be in 1..9, got {self.max_digits}.")


def arithmetic_text(n_lines: int, split: str, max_digits: int, generator) -> str:
    """``n_lines`` additions, operand widths 1 to ``max_digits`` in equal shares, shuffled.

    Args:
        n_lines: lines of ``a+b=reversed sum``.
        split: ``"train"`` or ``"held_out"`` (disjoint problems, see
            :func:`genai_report.data.tasks.addition_examples`).
        max_digits: widest operands.
        generator: draws the problems and their order.
    """
    import torch

    from genai_report.data import tasks

    lines = []
    for k in range(1, max_digits + 1):
        share = n_lines // max_digits + (k <= n_lines % max_digits)
        lines += [p + a for p, a in tasks.addition_examples(k, share, split, generator)]
    order = torch.randperm(len(lines), generator=generator).tolist()
    return "".join(lines[i] + "\n" for i in order)


def adapt(ctx, p: Adaptation):
    """Adapt the base fully and with LoRA of each rank, per seed; score both domains."""
    with torch_threads(p.threads):
        return _adapt(ctx, p)


def _methods(p: Adaptation) -> list[tuple[str, int | None, float]]:
    """``(name, rank, learning rate)`` of each method; rank ``None`` is full fine-tuning."""
    return [("full", None, p.lr_full)] + [(f"lora_r{r}", r, p.lr_lora) for r in p.ranks]


def _adapt(ctx, p: Adaptation):
    import copy

    import torch

    from genai_report.artifacts.transformers import GPTTrain
    from genai_report.data.text import get_batch, load_corpus, split
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.lora import apply_lora, merge_lora, trainable_parameters
    from genai_report.pipeline.dryrun import REPEATS_KEY
    from genai_report.training.finetune import load_char_gpt
    from genai_report.training.loop import TrainConfig, train

    dev = ctx.device
    base, tok = load_char_gpt(ctx.input(p.base, "model.pt"), dev)
    T = base.config.block_size
    text_gen = torch.Generator().manual_seed(ctx.seed)
    target_train = tok.encode(arithmetic_text(p.train_lines, "train", p.max_digits, text_gen))
    target_val = tok.encode(arithmetic_text(p.eval_lines, "held_out", p.max_digits, text_gen))
    pre = GPTTrain()  # the base's own split: its held-out English was never trained on
    _, english_val = split(tok.encode(load_corpus(corpus_file())), pre.val_fraction,
                           pre.val_chunk)
    val_gen = torch.Generator().manual_seed(1234)
    fixed = {name: [get_batch(data, p.batch_size, T, val_gen) for _ in range(p.eval_batches)]
             for name, data in (("target", target_val), ("english", english_val))}

    @torch.no_grad()
    def losses(model) -> dict[str, float]:
        model.eval()
        return {name: float(torch.stack([model(x.to(dev), y.to(dev))[1]
                                         for x, y in batches]).mean())
                for name, batches in fixed.items()}

    before = losses(base)
    eval_at = set(_eval_steps(p.steps, p.evals))
    total = trainable_parameters(base)
    runs: dict[str, list[dict]] = {name: [] for name, _r, _lr in _methods(p)}
    shares: dict[str, float] = {}
    for seed in range(p.seeds):
        for name, rank, lr in _methods(p):
            model = copy.deepcopy(base)
            if rank is not None:
                apply_lora(model, rank, generator=ctx.generator(100 * seed + rank))
            shares[name] = trainable_parameters(model) / total
            data_gen = torch.Generator().manual_seed(ctx.seed * 100 + seed)  # same batches
            path = [{"step": 0, **before}]

            def loss_fn(m, step, data_gen=data_gen, path=path):
                if step in eval_at and step > 0:  # the model after `step` updates
                    path.append({"step": step, **losses(m)})
                    m.train()
                x, y = get_batch(target_train, p.batch_size, T, data_gen)  # (B, T) each
                return m(x.to(dev), y.to(dev))[1]

            cfg = TrainConfig(steps=p.steps, lr=lr, warmup_steps=max(1, p.steps // 10),
                              min_lr_ratio=0.1, weight_decay=0.0)
            hist = train(model, loss_fn, cfg, progress=ctx.progress, record_every=50)
            after = losses(model)
            path.append({"step": p.steps, **after})
            entry = {"seed": seed, "target": after["target"], "english": after["english"],
                     "train_s": hist.wall_time_s, "path": path}
            if rank is not None:  # inference with the update folded into the weights
                merge_lora(model)
                entry["merge_abs_diff"] = abs(losses(model)["target"] - after["target"])
            runs[name].append(entry)
    methods = {}
    for name, rank, lr in _methods(p):
        r = runs[name]
        learned = over_seeds([before["target"] - e["target"] for e in r])
        forgot = over_seeds([e["english"] - before["english"] for e in r])
        methods[name] = {
            "rank": rank, "lr": lr, "share": shares[name],
            "trainable": round(shares[name] * total),
            "target": over_seeds([e["target"] for e in r]),
            "english": over_seeds([e["english"] for e in r]),
            "learned": learned, "forgot": forgot,
            "train_s": sum(e["train_s"] for e in r) / len(r),
            "merge_abs_diff": max((e.get("merge_abs_diff", 0.0) for e in r), default=0.0),
        }
    out = {"base": p.base, "base_params": total, "before": before, "steps": p.steps,
           "tokens": p.steps * p.batch_size * T, "seeds": p.seeds, "methods": methods}
    write_json(ctx, "adaptation.json", {**out, "runs": runs}, indent=None)
    # each loop stands for one per seed (and per rank for LoRA) when a dry run cuts those
    return {**out, REPEATS_KEY: [["seeds"] if rank is None else ["seeds", "ranks"]
                                 for _ in range(p.seeds) for _, rank, _ in _methods(p)]}
