"""Instruction tuning of the pre-trained character GPT, against a no-instruction control.

``llms-instruct-runs`` starts from ``gpt-char``'s weights and fine-tunes two models per seed
on one stream of examples of four string tasks (:mod:`genai_report.data.instructions`):

* **instruction-tuned**: each prompt carries its instruction (``"pls caps >qxb"``);
* **control**: the same prompts with the instruction blanked out, the same answers, the
  same steps and settings (Wei et al., 2022, ablate FLAN the same way: fine-tuning on the
  same tasks without the instructions).

Every model, and the pre-trained GPT itself, is scored by exact match on evaluation inputs
never drawn in training, for each task under its training phrasings, its held-out
phrasings and a word never seen in fine-tuning. The models themselves are not kept: the
scores, and the first seed's answers to a few requests, are what the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts.scaling import torch_threads
from genai_report.pipeline import artifact


@dataclass(frozen=True)
class InstructTune:
    """Fine-tuning and evaluation of the instruction-tuned and control models.

    Attributes:
        steps, batch_size, lr, warmup_steps, min_lr_ratio: AdamW with warm-up and cosine
            decay (the same for both models; every weight is trained).
        seeds: independent pairs of runs (each pair shares its stream of examples).
        n_eval: evaluation examples per task and split (the same for every model).
        threads: torch threads while training (``0``: leave the pipeline's setting).
    """

    steps: int = 250
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    seeds: int = 2
    n_eval: int = 60
    threads: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.n_eval < 1:
            raise ValueError("steps, batch_size and n_eval must be >= 1.")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}.")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps={self.steps}], got "
                             f"{self.warmup_steps}.")


MODELS = ("pretrained", "control", "control_instructed", "instructed")
"""Scored models: the pre-trained GPT given the instructions, the control on its own blank
prompts and given the instructions, and the instruction-tuned model."""


def _example(task: str, split: str, inputs: dict):
    """The first ``split`` phrasing of ``task`` on the shown input of its kind."""
    from genai_report.data.instructions import TASKS, Example, phrasings

    x = inputs[TASKS[task].kind]
    return Example(task, phrasings(task)[split][0], x, TASKS[task].solve(x)), split


def _finetune(ctx, p: InstructTune, runs: list[tuple[bool, int]]):
    """Fine-tune a fresh copy of ``gpt-char`` per ``(instructed, seed)`` in ``runs``, all
    as one :class:`~genai_report.training.ensemble.Ensemble`.

    Run ``(instructed, seed)`` draws seed ``seed``'s stream of examples (the same for both
    models of a seed) and trains on it with or without the instruction, as it would alone:
    each member's batch is packed on its own, then padded to the longest member's length
    (a pad after a sequence's end changes no earlier position, and is no target), and its
    loss is its own mean (a test checks it against a model fine-tuned on its own). Where
    the base has dropout, each member draws its own masks.

    Returns:
        ``(models, tok, history)``: the models in the order of ``runs``, the tokenizer and
        the :class:`~genai_report.training.ensemble.EnsembleHistory`.
    """
    import torch
    import torch.nn.functional as F

    from genai_report.data.instructions import draw_examples
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.finetune import load_char_gpt, pack
    from genai_report.training.loop import TrainConfig

    models, gens = [], []
    for _, seed in runs:
        model, tok = load_char_gpt(ctx.input("gpt-char", "model.pt"), ctx.device)
        models.append(model)
        gens.append(ctx.generator(100 + seed))  # the same stream for both models of a seed
    pad = int(tok.encode(" ")[0])  # pack's own padding

    def loss_fn(ens, step):
        batches = [pack([e.pair(instructed) for e in draw_examples(p.batch_size, gen)], tok)
                   for (instructed, _), gen in zip(runs, gens, strict=True)]  # (B, T_k) each
        T = max(x.size(1) for x, _ in batches)
        x = torch.stack([F.pad(x, (0, T - x.size(1)), value=pad) for x, _ in batches])
        y = torch.stack([F.pad(y, (0, T - y.size(1)), value=-1) for _, y in batches])
        return ens(x.to(ctx.device), y.to(ctx.device))[1]  # x, y: (K, B, T); (K,)

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                      min_lr_ratio=p.min_lr_ratio, grad_clip=1.0)
    # gpt-char's dropout (full profile) draws each member's own masks
    ensemble = Ensemble(models, randomness="different")
    hist = train_ensemble(ensemble, loss_fn, cfg, progress=ctx.progress)
    ensemble.unstack_into(models)
    return [m.eval() for m in models], tok, hist


@artifact(
    "llms-instruct-runs",
    deps=("gpt-char",),
    params={
        "smoke": InstructTune(steps=4, batch_size=4, warmup_steps=1, seeds=2, n_eval=3),
        "quick": InstructTune(),
        "full": InstructTune(steps=600, lr=1e-3, warmup_steps=40, seeds=3, n_eval=300,
                             threads=0),
    },
    outputs=("results.json",),
    seed=120,
    dry_run={"n_eval": 20},
)
def instruct_runs(ctx, p: InstructTune):
    """Train instruction-tuned and control models over seeds; score every model."""
    import time

    from genai_report.artifacts._outputs import write_json
    from genai_report.data import instructions as ins
    from genai_report.training.finetune import answer_scores, greedy_answers, load_char_gpt

    evals = {(t, s): ins.eval_examples(t, s, p.n_eval, ctx.generator(10 + i))
             for i, (t, s) in enumerate((t, s) for t in ins.TASKS for s in ins.SPLITS)}
    letters = [t for t in ins.TASKS if ins.TASKS[t].kind == "letters"]

    def score(model, tok, instructed: bool) -> dict:
        out: dict = {t: {} for t in ins.TASKS}
        for (t, s), ex in evals.items():
            hits = answer_scores(model, tok, [e.pair(instructed) for e in ex], ctx.device)
            out[t][s] = sum(hits["exact"]) / len(ex)
        return out

    def any_task(model, tok, instructed: bool) -> float:
        """Share of new-word letter examples answered as *some* letter task would."""
        ex = [e for t in letters for e in evals[(t, "new_word")]]
        hit = [0.0] * len(ex)
        for other in letters:  # the answers differ, so at most one can be the greedy one
            pairs = [(e.pair(instructed)[0], ins.TASKS[other].solve(e.x)) for e in ex]
            hit = [h + a for h, a in zip(hit, answer_scores(model, tok, pairs,
                                                            ctx.device)["exact"], strict=True)]
        return sum(hit) / len(hit)

    # what the page shows: one letter input under every task, and one number
    g = ctx.generator(5)
    inputs = {"letters": ins.TASKS["upper"].draw(g, True),
              "number": ins.TASKS["spell"].draw(g, True)}
    shown = [_example(t, "held_out", inputs) for t in ins.TASKS]
    shown += [_example(t, "new_word", inputs) for t in letters]

    def answers(model, tok, instructed: bool) -> list[str]:
        return greedy_answers(model, tok, [e.pair(instructed)[0] for e, _ in shown], 12,
                              ctx.device)

    base, tok = load_char_gpt(ctx.input("gpt-char", "model.pt"), ctx.device)
    acc: dict = {"pretrained": score(base, tok, True),
                 **{m: {t: {s: [] for s in ins.SPLITS} for t in ins.TASKS}
                    for m in MODELS[1:]}}
    said = {"pretrained": answers(base, tok, True)}
    valid: dict = {"pretrained": any_task(base, tok, True), "control": [], "instructed": []}
    final_loss: dict = {"control": [], "instructed": []}
    kinds = (("control", False), ("instructed", True))
    runs = [(seed, name, instructed) for seed in range(p.seeds) for name, instructed in kinds]
    with torch_threads(p.threads):
        t0 = time.perf_counter()  # every model of every seed fine-tunes at once
        models, tok, hist = _finetune(ctx, p, [(instructed, seed) for seed, _, instructed in runs])
        train_s = time.perf_counter() - t0
        for i, ((seed, name, instructed), model) in enumerate(zip(runs, models, strict=True)):
            tail = [losses[i] for losses in hist.member_loss[-20:]]
            final_loss[name].append(sum(tail) / len(tail))
            scores = {name: score(model, tok, instructed)}
            valid[name].append(any_task(model, tok, instructed))
            if name == "control":
                scores["control_instructed"] = score(model, tok, True)
            for m, res in scores.items():
                for t in ins.TASKS:
                    for s in ins.SPLITS:
                        acc[m][t][s].append(res[t][s])
            if seed == 0:
                said[name] = answers(model, tok, instructed)
    examples = [{"task": e.task, "instruction": e.instruction, "x": e.x, "answer": e.answer,
                 "split": split, **{m: said[m][i] for m in said}}
                for i, (e, split) in enumerate(shown)]
    results = {"tasks": list(ins.TASKS), "splits": list(ins.SPLITS), "accuracy": acc,
               "new_word_any_task": valid,
               "examples": examples, "final_train_loss": final_loss,
               "phrasings": {t: ins.phrasings(t) for t in ins.TASKS},
               "n_eval": p.n_eval, "seeds": p.seeds, "steps": p.steps,
               "control_prompt": shown[0][0].pair(False)[0],
               "instructed_prompt": shown[0][0].pair(True)[0]}
    write_json(ctx, "results.json", results)
    return {"train_time_s": train_s, "train_time_per_run_s": train_s / len(runs),
            "final_train_loss": final_loss, "steps": p.steps, "seeds": p.seeds}
