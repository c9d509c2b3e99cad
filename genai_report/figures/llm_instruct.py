"""Instruction tuning, measured: exact match per task for the pre-trained GPT, the model
fine-tuned without instructions and the instruction-tuned model, under training phrasings,
held-out phrasings and never-seen words (models and scores from ``llms-instruct-runs``).
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure

LABELS = {"pretrained": "pre-trained", "control": "no-instruction control",
          "instructed": "instruction-tuned"}
SPLIT_LABELS = {"seen": "training phrasings", "held_out": "held-out phrasings",
                "new_word": "never-seen word"}


@dataclass(frozen=True)
class InstructPlot:
    """Nothing to set: the figure draws what ``llms-instruct-runs`` measured."""


def _visible(answer: str) -> str:
    """An answer as the page shows it: blank answers named rather than left invisible."""
    if not answer:
        return "(nothing)"
    return answer if answer.strip() else "(only spaces)"


def _letter_tasks(tasks: list[str]) -> list[str]:
    """The tasks whose input is letters (the ones only the instruction tells apart)."""
    from genai_report.data.instructions import TASKS

    return [t for t in tasks if TASKS[t].kind == "letters"]


def _summaries(res: dict) -> dict:
    """Accuracies over seeds: per task and split, and means over tasks per seed."""
    from genai_report.metrics.seeds import over_seeds

    tasks, splits, acc = res["tasks"], res["splits"], res["accuracy"]
    letters = _letter_tasks(tasks)
    out: dict = {"acc": {}, "mean": {}, "letters": {}}
    for m, by_task in acc.items():
        per_seed = isinstance(by_task[tasks[0]][splits[0]], list)
        wrap = over_seeds if per_seed else float
        out["acc"][m] = {t: {s: wrap(by_task[t][s]) for s in splits} for t in tasks}
        for key, group in (("mean", tasks), ("letters", letters)):
            if per_seed:
                n = len(by_task[tasks[0]][splits[0]])
                out[key][m] = {s: over_seeds([sum(by_task[t][s][i] for t in group) / len(group)
                                              for i in range(n)]) for s in splits}
            else:
                out[key][m] = {s: sum(by_task[t][s] for t in group) / len(group)
                               for s in splits}
    return out


@figure(
    "llms-instruct",
    deps=("llms-instruct-runs",),
    params={"smoke": InstructPlot(), "quick": InstructPlot(), "full": InstructPlot()},
    outputs=("instruct.svg",),
    seed=121,
    title="Fine-tuning on instructions makes the model do what it is told, also under "
    "phrasings it never saw; without the instructions it can only guess the task.",
    caption="Exact match on evaluation inputs never seen in fine-tuning; bars are means over "
    "fine-tuning seeds, whiskers their standard deviation, dots the seeds. Left: each task "
    "under its held-out phrasings, for the pre-trained GPT given the instruction, the same "
    "GPT fine-tuned on the same examples with the instruction blanked out, and the "
    "instruction-tuned model. The three letter tasks share one kind of input, so without "
    "the instruction a model can be right on at most one of them per input; the dashed line "
    "marks that ceiling (one in three) on their mean. Right: the instruction-tuned model "
    "under the phrasings it was trained on, held-out combinations of a known keyword and a "
    "known frame, and a keyword it never saw.",
    alt="Two grouped bar charts. Left: for the letter tasks upper, copy and title the "
    "instruction-tuned bars reach nearly one while the control bars are low and the "
    "pre-trained bars are at zero; for spell both fine-tuned models are near one. Right: "
    "the instruction-tuned model is near one under training and held-out phrasings, and "
    "much lower for a never-seen word on the letter tasks.",
)
def instruct(ctx, p: InstructPlot):
    """Plot accuracy per task and split; return the numbers and examples the page quotes."""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from genai_report.data.instructions import blind_loss_floor
    from genai_report.metrics.seeds import over_seeds
    from genai_report.plotting import save_figure

    res = json.loads(ctx.input("llms-instruct-runs", "results.json").read_text())
    tasks, acc = res["tasks"], res["accuracy"]
    letters = _letter_tasks(tasks)
    summ = _summaries(res)

    def values(m, group, split):
        """Per-seed values for a task, or the letter-task mean (``group == "letters"``)."""
        def seeds(t):
            v = acc[m][t][split]
            return v if isinstance(v, list) else [v]  # the pre-trained model: one value

        if group == "letters":
            return list(np.mean([seeds(t) for t in letters], axis=0))
        return seeds(group)

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(6.4, 2.9), sharey=True,
                                 gridspec_kw={"width_ratios": [1.25, 1], "wspace": 0.08})
    groups = [*letters, "letters", "spell"]
    names = {"letters": "letter\nmean", "title": "title", "upper": "upper", "copy": "copy",
             "spell": "spell"}

    def bars(ax, series, group_list, width):
        x = np.arange(len(group_list))
        for j, (key, split, color, label) in enumerate(series):
            off = (j - (len(series) - 1) / 2) * width
            for i, grp in enumerate(group_list):
                v = values(key, grp, split)
                ax.bar(x[i] + off, np.mean(v), width, color=color,
                       label=label if i == 0 else None,
                       yerr=np.std(v, ddof=1) if len(v) > 1 else None,
                       error_kw={"lw": 0.8, "capsize": 1.5})
                if len(v) > 1:
                    ax.plot([x[i] + off] * len(v), v, "o", ms=2, color="black", alpha=0.6,
                            zorder=3)
                if np.mean(v) < 0.02:  # a bar too short to see: say it is (near) zero
                    ax.text(x[i] + off, 0.01, "0", ha="center", va="bottom", fontsize=8,
                            color=color)
        ax.set_xticks(x, [names[g] for g in group_list], fontsize=8)
        return x

    x0 = bars(a0, [("pretrained", "held_out", "0.6", LABELS["pretrained"]),
                   ("control", "held_out", "C1", LABELS["control"]),
                   ("instructed", "held_out", "C0", LABELS["instructed"])], groups, 0.26)
    i_let = groups.index("letters")
    a0.plot([x0[i_let] - 0.45, x0[i_let] + 0.45], [1 / 3] * 2, ls="--", color="C3", lw=1.2,
            label="best possible without\ninstructions")
    a0.set_ylabel("exact match")
    a0.set_ylim(0, 1.08)
    a0.set_title("held-out phrasings", fontsize=9)
    a0.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1)
    bars(a1, [("instructed", "seen", "C0", SPLIT_LABELS["seen"]),
              ("instructed", "held_out", "C2", SPLIT_LABELS["held_out"]),
              ("instructed", "new_word", "C4", SPLIT_LABELS["new_word"])], [*letters, "spell"],
         0.26)
    a1.set_title("instruction-tuned model", fontsize=9)
    a1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1)
    save_figure(fig, ctx.output("instruct.svg"))

    def gap(split, group):
        a, b = acc["instructed"], acc["control"]
        return over_seeds([sum(a[t][split][i] - b[t][split][i] for t in group) / len(group)
                           for i in range(res["seeds"])])

    examples = {f"e{i}": {k: _visible(e[k]) if k in LABELS else e[k] for k in e}
                for i, e in enumerate(res["examples"])}
    return {
        **summ,
        "gap_held_out": gap("held_out", tasks),
        "gap_letters_held_out": gap("held_out", letters),
        "ceiling_letters": 1 / len(letters),
        "n_letter_tasks": len(letters),
        "examples": examples,
        "phrasings": {t: {s: ", ".join(f'"{w}"' for w in v) for s, v in ph.items()}
                      for t, ph in res["phrasings"].items()},
        "n_eval": res["n_eval"], "seeds": res["seeds"], "steps": res["steps"],
        "final_train_loss": {m: over_seeds(v) for m, v in res["final_train_loss"].items()},
        "control_loss_floor": blind_loss_floor(),
        "new_word_any_task": {m: over_seeds(v) if isinstance(v, list) else v
                              for m, v in res["new_word_any_task"].items()},
    }
