"""Applications, measured (text): code completion by a small code model against an
n-gram baseline, and BLEU/ROUGE on the encoder-decoder's number spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure


@dataclass(frozen=True)
class CodeCompletion:
    """Parameters of the code-completion demo.

    Attributes:
        n_lines: next-line tasks scored (drawn at random from held-out function bodies).
        line_context, line_chars: prompt characters and generation budget for a line.
        body_context, body_chars: prompt characters and generation budget for a body.
        max_bodies: function-body tasks scored at most.
        ngram_order: n of the baseline; ngram_chars: training characters it counts (0: all).
    """

    n_lines: int = 300
    line_context: int = 64
    line_chars: int = 64
    body_context: int = 64
    body_chars: int = 160
    max_bodies: int = 60
    ngram_order: int = 8
    ngram_chars: int = 0


@figure(
    "applications-code-completion",
    deps=("code-gpt",),
    params={"smoke": CodeCompletion(n_lines=8, line_context=32, line_chars=24, body_context=48,
                                    body_chars=48, max_bodies=4, ngram_chars=20000),
            "quick": CodeCompletion(),
            "full": CodeCompletion(n_lines=1000, max_bodies=200, ngram_order=10)},
    outputs=("code_completion.svg",),
    seed=70,
    title="Completing held-out Python: a small code GPT against an n-gram baseline.",
    caption="Left: how often the first word and the whole of the next line inside held-out "
    "functions are predicted exactly (the indentation is given), and the share of "
    "function bodies written from the signature that parse. The grey bar is the true body cut "
    "to the same character budget (a truncated body can fail to parse too). Right: examples "
    "of next-line completions (prompt tail, truth, model, baseline).",
    alt="Grouped bar chart comparing an n-gram baseline and a small character-level code model "
    "on next-line exact match and body syntax validity, with a panel of example completions "
    "in monospaced text.",
)
def code_completion(ctx, p: CodeCompletion):
    """Score next-line exact match and body syntax validity of the code GPT and an n-gram."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.applications import code
    from genai_report.artifacts.applications import load_gpt
    from genai_report.data.text import load_corpus
    from genai_report.metrics.text import exact_match, is_valid_python
    from genai_report.models.ngram import NGramModel
    from genai_report.plotting import save_figure

    model, tok, blob = load_gpt(ctx.input("code-gpt", "model.pt"), ctx.device)
    text = load_corpus("python")
    lo = blob["n_train_chars"]
    ngram = NGramModel(p.ngram_order).fit(text[: p.ngram_chars or lo])

    lines = code.line_tasks(text, lo)
    pick = torch.randperm(len(lines), generator=ctx.generator())[: p.n_lines].sort().values
    lines = [lines[int(i)] for i in pick]
    ctxs = [text[t.start - p.line_context:t.start] for t in lines]
    # the cursor sits after the indentation: the first character is not blank
    gpt_lines = [g.split("\n")[0] for g in code.gpt_complete(model, tok, ctxs, p.line_chars,
                                                             first_exclude=" \t\n")]
    ng_lines = [ngram.complete(c, p.line_chars, stop="\n", first_exclude=" \t\n")
                .split("\n")[0] for c in ctxs]
    truth = [t.line for t in lines]
    em = {"gpt": exact_match(gpt_lines, truth), "ngram": exact_match(ng_lines, truth)}
    first = {"gpt": exact_match([code.first_word(g) for g in gpt_lines],
                                [code.first_word(t) for t in truth]),
             "ngram": exact_match([code.first_word(g) for g in ng_lines],
                                  [code.first_word(t) for t in truth])}

    bodies = code.body_tasks(text, lo)[: p.max_bodies]
    bctx = [text[b.start - p.body_context:b.start] for b in bodies]
    gpt_b = code.gpt_complete(model, tok, bctx, p.body_chars)
    ng_b = [ngram.complete(c, p.body_chars) for c in bctx]

    def valid(completions):
        ok = [is_valid_python(code.function_source(b.header, cut)) and bool(cut.strip())
              for b, cut in ((b, code.cut_body(c, b.indent)) for b, c in
                             zip(bodies, completions, strict=True))]
        return sum(ok) / max(1, len(ok))

    truth_cut = [text[b.start:b.start + p.body_chars] for b in bodies]
    syn = {"gpt": valid(gpt_b), "ngram": valid(ng_b), "truth_truncated": valid(truth_cut)}

    fig, (ax, axt) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 1.6]})
    xs = range(3)
    ax.bar([x - 0.27 for x in xs], [first["ngram"], em["ngram"], syn["ngram"]], 0.27,
           label=f"{p.ngram_order}-gram baseline")
    ax.bar(list(xs), [first["gpt"], em["gpt"], syn["gpt"]], 0.27, label="code GPT")
    ax.bar([2.27], [syn["truth_truncated"]], 0.27, color="0.7", label="true body, same cut")
    ax.set_xticks(list(xs), ["first word\nof next line", "next line\nexact match",
                             "body parses"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of held-out tasks")
    ax.legend(fontsize=8, loc="upper left")
    axt.axis("off")
    rows = []
    # examples: the GPT's best (whole line, then first word right), then its first misses
    score = [2 * (g.strip() == t.strip()) + (code.first_word(g) == code.first_word(t))
             for g, t in zip(gpt_lines, truth, strict=True)]
    hits = sorted((i for i in range(len(truth)) if score[i]), key=lambda i: -score[i])[:3]
    misses = [i for i in range(len(truth)) if not score[i]][: 5 - len(hits)]
    for i in hits + misses:
        tail = (ctxs[i].split("\n")[-2:-1] or [""])[0][-48:]
        rows += [f"prompt  ...{tail}", f"truth   {truth[i].strip()[:60]}",
                 f"GPT     {gpt_lines[i].strip()[:60]}", f"n-gram  {ng_lines[i].strip()[:60]}", ""]
    axt.text(0, 1, "\n".join(rows), family="monospace", fontsize=7.5, va="top", parse_math=False,
             transform=axt.transAxes)
    save_figure(fig, ctx.output("code_completion.svg"))
    return {"next_line_exact_match": em, "first_word_accuracy": first,
            "body_syntax_validity": syn, "n_lines": len(lines),
            "n_bodies": len(bodies), "ngram_order": p.ngram_order,
            "examples": [{"truth": truth[i], "gpt": gpt_lines[i], "ngram": ng_lines[i]}
                         for i in hits + misses]}


# --------------------------------------------------------------------------- BLEU / ROUGE
@dataclass(frozen=True)
class Transduction:
    """Held-out numbers drawn (``n``; each distinct number is scored once) in the BLEU/ROUGE
    demo."""

    n: int = 1000


@figure(
    "applications-transduction-metrics",
    deps=("encdec-numbers",),
    params={"smoke": Transduction(n=50), "quick": Transduction(), "full": Transduction(n=5000)},
    outputs=("transduction_metrics.svg",),
    seed=71,
    title="Exact match, BLEU and ROUGE disagree about what a near miss is worth.",
    caption="The encoder-decoder spells out held-out numbers; the same outputs with their last "
    "word dropped are a near miss; a rule-based baseline reads the digits one by one "
    "(\"4021\" becomes \"four zero two one\"). Exact match, corpus BLEU-4 (sacrebleu, shown "
    "/100) and mean ROUGE F1 (rouge-score) of each against the true words.",
    alt="Grouped bar chart of exact match, BLEU, ROUGE-1, ROUGE-2 and ROUGE-L for the trained "
    "encoder-decoder, its outputs with the last word dropped, and a digit-by-digit baseline.",
)
def transduction_metrics(ctx, p: Transduction):
    """Score the encoder-decoder and a digit-by-digit baseline with EM, BLEU and ROUGE."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.data import transduction as td
    from genai_report.metrics.text import bleu, exact_match, rouge
    from genai_report.models.encdec import EncDecConfig, EncoderDecoder
    from genai_report.plotting import save_figure

    blob = torch.load(ctx.input("encdec-numbers", "model.pt"), weights_only=True)
    model = EncoderDecoder(EncDecConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    model = model.to(ctx.device).eval()
    src, _, numbers = td.make_dataset(p.n, "val", ctx.generator())
    first = {}  # score each held-out number once (the val split repeats the short ones)
    for i, n in enumerate(numbers):
        first.setdefault(n, i)
    keep = torch.tensor(sorted(first.values()))
    src, numbers = src[keep], [numbers[i] for i in keep.tolist()]
    pred = model.greedy_decode(src.to(ctx.device), td.MAX_TGT_LEN, td.BOS, td.EOS).cpu()
    refs = [" ".join(td.spell(n)) for n in numbers]
    model_out = [td.decode_words(r) for r in pred]
    systems = {
        "encoder-decoder": [" ".join(w) for w in model_out],
        "same, last word dropped": [" ".join(w[:-1]) for w in model_out],
        "digit-by-digit baseline": [" ".join(td.ONES[int(c)] for c in str(n)) for n in numbers],
    }
    scores = {}
    for name, hyps in systems.items():
        r = rouge(hyps, refs)
        scores[name] = {"exact_match": exact_match(hyps, refs), "bleu": bleu(hyps, refs),
                        "rouge1": r["rouge1"], "rouge2": r["rouge2"], "rougeL": r["rougeL"]}
    keys = ["exact_match", "bleu", "rouge1", "rouge2", "rougeL"]
    labels = ["exact match", "BLEU / 100", "ROUGE-1", "ROUGE-2", "ROUGE-L"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for k, (name, s) in enumerate(scores.items()):
        vals = [s[m] / (100 if m == "bleu" else 1) for m in keys]
        ax.bar([i + (k - 1) * 0.27 for i in range(len(keys))], vals, 0.27, label=name)
    ax.set_xticks(range(len(keys)), labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    save_figure(fig, ctx.output("transduction_metrics.svg"))
    wrong = [(n, h) for n, h, r in zip(numbers, systems["encoder-decoder"], refs, strict=True)
             if h != r][:5]
    return {"scores": {"model": scores["encoder-decoder"],
                       "truncated": scores["same, last word dropped"],
                       "baseline": scores["digit-by-digit baseline"]},
            "n": len(numbers), "errors": [{"number": n, "output": h, "truth": " ".join(td.spell(n))}
                                 for n, h in wrong]}
