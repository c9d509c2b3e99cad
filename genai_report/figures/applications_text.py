"""Applications, measured (text): code generation scored by unit tests (pass@k) for a small
GPT against a Kneser-Ney n-gram, and BLEU/ROUGE on the encoder-decoder's number spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import figure


@dataclass(frozen=True)
class CodeCompletion:
    """Parameters of the code-generation demo.

    Attributes:
        n_problems: held-out test problems scored (at most the ``code-gpt`` test split).
        n_samples: completions sampled per problem (pass@k for k = 1..n_samples).
        temperature: sampling temperature of both models.
        max_chars: characters generated per completion at most.
        max_order: the longest n-gram order tried; the baseline's order is the one with the
            lowest bits per character on the validation problems.
        timeout_s: the sandbox's time limit per program.
    """

    n_problems: int = 200
    n_samples: int = 20
    temperature: float = 1.0
    max_chars: int = 28
    max_order: int = 10
    timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if self.n_samples < 10:
            raise ValueError(f"n_samples must be >= 10 (pass@10 is reported), got "
                             f"{self.n_samples}.")


@figure(
    "applications-code-completion",
    deps=("code-gpt",),
    params={"smoke": CodeCompletion(n_problems=10, n_samples=10, max_order=4),
            "quick": CodeCompletion(),
            "full": CodeCompletion(n_samples=50, max_order=12)},
    outputs=("code_completion.svg",),
    seed=70,
    title="Writing held-out functions from their docstrings: pass@k of a small GPT and of "
    "a Kneser-Ney n-gram.",
    caption="Left: share of held-out problems solved (every unit test passes, run in a "
    "sandbox) by at least one of k sampled completions, estimated without bias from more "
    "samples per problem (Chen et al. 2021); the diamonds at k = 1 are greedy decoding. "
    "Right: held-out bits per character of the two models, over whole functions and over "
    "the body line alone; the n-gram's order is the best on validation problems.",
    alt="Left: pass@k curves rising with k, the GPT's far above the n-gram's. Right: bars of "
    "bits per character, lower for the GPT, especially on the body line.",
)
def code_completion(ctx, p: CodeCompletion):
    """Sample completions of held-out problems, run their tests in a sandbox, pass@k; and
    held-out bits per character of the GPT against an order-tuned Kneser-Ney n-gram."""
    import random

    import matplotlib.pyplot as plt
    import torch

    from genai_report.applications import code
    from genai_report.applications.sandbox import run_batches
    from genai_report.artifacts.applications import CodeGPTTrain, code_problems, load_gpt
    from genai_report.metrics.text import is_valid_python
    from genai_report.models.ngram import KneserNey
    from genai_report.plotting import save_figure

    model, tok, blob = load_gpt(ctx.input("code-gpt", "model.pt"), ctx.device)
    train_p, val_p, test_p = code_problems(CodeGPTTrain(**blob["task"]))
    test_p = test_p[: p.n_problems]
    length = blob["length"]

    # likelihood: the same characters under both models
    kn = KneserNey(p.max_order).fit("".join(q.source for q in train_p), extra_vocab=tok.chars)
    val_bpc = {}
    for order in range(1, p.max_order + 1):
        kn.order = order
        b, n = code.kn_bits(kn, val_p)
        val_bpc[order] = b / n
    kn.order = min(val_bpc, key=val_bpc.get)
    rows = code.encode_problems(test_p, tok, length)
    body_at = torch.tensor([len(q.prompt) for q in test_p])
    bpc = {}
    for part, frm, body in (("function", None, False), ("body", body_at, True)):
        gb, gn = code.gpt_bits(model, rows, frm)
        kb, kn_n = code.kn_bits(kn, test_p, body_only=body)
        bpc[part] = {"gpt": gb / gn, "ngram": kb / kn_n, "chars": gn}

    # pass@k: sample, run each distinct completion's tests once in the sandbox
    prompts = [q.prompt for q in test_p]
    samples = {
        "gpt": code.sample_completions(model, tok, prompts, p.n_samples, p.max_chars,
                                       ctx.generator(1), p.temperature),
        "gpt_greedy": code.sample_completions(model, tok, prompts, 1, p.max_chars,
                                              ctx.generator(2), 0.0),
    }
    rng = random.Random(ctx.seed)
    samples["ngram"] = [[kn.sample(q, p.max_chars, rng, "\n", p.temperature).split("\n")[0]
                         for _ in range(p.n_samples)] for q in prompts]
    samples["ngram_greedy"] = [[kn.sample(q, p.max_chars, rng, "\n", 0.0).split("\n")[0]]
                               for q in prompts]
    todo = sorted({(i, c) for s in samples.values() for i, cs in enumerate(s) for c in cs})
    results = run_batches([code.check_source(test_p[i], c) for i, c in todo], p.timeout_s)
    passed = {k: r.passed for k, r in zip(todo, results, strict=True)}
    timeouts = sum(r.timed_out for r in results)
    ks = list(range(1, p.n_samples + 1))
    out = {}
    for name in ("gpt", "ngram"):
        correct = [sum(passed[i, c] for c in cs) for i, cs in enumerate(samples[name])]
        per = [[code.pass_at_k(p.n_samples, c, k) for c in correct] for k in ks]  # (K, N)
        curve = [sum(v) / len(v) for v in per]

        def se(v):  # standard error of the mean over problems
            m = sum(v) / len(v)
            return (sum((x - m) ** 2 for x in v) / max(1, len(v) - 1) / len(v)) ** 0.5

        greedy = sum(passed[i, cs[0]] for i, cs in enumerate(samples[f"{name}_greedy"]))
        out[name] = {"pass_at_1": curve[0], "pass_at_10": curve[9], "pass_at_k": curve,
                     "pass_at_1_se": se(per[0]), "pass_at_10_se": se(per[9]),
                     "greedy_pass": greedy / len(test_p),
                     "solved_by_some_sample": sum(c > 0 for c in correct) / len(correct),
                     "parses": sum(is_valid_python(q.prompt + c) for q, cs in
                                   zip(test_p, samples[name], strict=True) for c in cs)
                     / (len(test_p) * p.n_samples),
                     "distinct_per_problem": sum(len(set(cs)) for cs in samples[name])
                     / len(test_p)}

    # the same, by the number of steps the docstring asks for (harder problems gain more)
    by_steps = {}
    for n_steps in sorted({q.doc.count(" then ") + 1 for q in test_p}):
        rows_k = [i for i, q in enumerate(test_p) if q.doc.count(" then ") + 1 == n_steps]
        cor = [sum(passed[i, c] for c in samples["gpt"][i]) for i in rows_k]
        by_steps[str(n_steps)] = {
            "n": len(rows_k),
            "pass_at_1": sum(code.pass_at_k(p.n_samples, c, 1) for c in cor) / len(cor),
            "pass_at_10": sum(code.pass_at_k(p.n_samples, c, 10) for c in cor) / len(cor)}
    out["gpt"]["by_steps"] = by_steps
    hardest = max(by_steps, key=int)
    out["gpt"]["hardest"] = {"steps": int(hardest), **by_steps[hardest]}
    hard_rows = [i for i, q in enumerate(test_p) if q.doc.count(" then ") + 1 == int(hardest)]
    hard_cor = [sum(passed[i, c] for c in samples["gpt"][i]) for i in hard_rows]
    hard_curve = [sum(code.pass_at_k(p.n_samples, c, k) for c in hard_cor) / len(hard_cor)
                  for k in ks]
    # pass@10 - pass@1 per problem: its mean and standard error (a paired difference)
    gain = [code.pass_at_k(p.n_samples, sum(passed[i, c] for c in cs), 10)
            - code.pass_at_k(p.n_samples, sum(passed[i, c] for c in cs), 1)
            for i, cs in enumerate(samples["gpt"])]
    mg = sum(gain) / len(gain)
    out["gpt"]["sampling_gain"] = {"mean": mg, "se": (sum((g - mg) ** 2 for g in gain)
                                                      / max(1, len(gain) - 1) / len(gain)) ** 0.5}

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.1), gridspec_kw={"width_ratios": [1.4, 1]})
    for i, (name, label) in enumerate((("gpt", "GPT"), ("ngram", f"{kn.order}-gram KN"))):
        ax.plot(ks, out[name]["pass_at_k"], color=f"C{i}", label=f"{label}, T = {p.temperature:g}")
        ax.plot([1], [out[name]["greedy_pass"]], marker="D", ls="none", color=f"C{i}",
                label=f"{label}, greedy")
    ax.plot(ks, hard_curve, color="C0", ls="--", label=f"GPT, {hardest}-step problems")
    ax.set_xlabel("samples per problem, k")
    ax.set_ylabel("pass@k (held-out problems)")
    ax.set_ylim(0, 1)
    ax.set_xlim(0.5, p.n_samples + 0.5)
    ax.legend(fontsize=8, loc="center right")
    xs = [0, 1]
    for i, (name, label) in enumerate((("gpt", "GPT"), ("ngram", f"{kn.order}-gram KN"))):
        ax2.bar([x + (i - 0.5) * 0.38 for x in xs], [bpc["function"][name], bpc["body"][name]],
                0.38, color=f"C{i}", label=label)
    ax2.set_xticks(xs, ["whole function", "body line"])
    ax2.set_ylabel("held-out bits per character")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, ctx.output("code_completion.svg"))
    examples = [{"doc": q.doc, "truth": q.body, "gpt_greedy": g[0], "ngram_greedy": n[0],
                 "gpt_passed": passed[i, g[0]]}
                for i, (q, g, n) in enumerate(zip(test_p, samples["gpt_greedy"],
                                                  samples["ngram_greedy"], strict=True))][:8]
    return {**out, "bpc": bpc, "ngram_order": kn.order,
            "ngram_val_bpc_by_order": {str(k): v for k, v in val_bpc.items()},
            "n_problems": len(test_p), "n_samples": p.n_samples,
            "n_test_inputs": len(code.TEST_INPUTS),
            "temperature": p.temperature, "programs_run": len(todo),
            "programs_timed_out": timeouts, "examples": examples}


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
