"""The ``inference-masked`` figure: the same blocks trained causally and BERT-style.

Both twins are trained on a language of the corpus's most frequent words, drawn
independently (:mod:`genai_report.data.words`), where the best possible guess at a missing
letter from its word's beginning, and from both its ends, can be computed exactly. They are
compared at filling in one missing letter (where the bidirectional model should win) and at
predicting and writing text left to right (where it should lose).
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.figures._inference_common import corpus_file
from genai_report.figures.inference_models import SmallLM, _train_together
from genai_report.pipeline import figure


@dataclass(frozen=True)
class MaskedLM(SmallLM):
    """The masked-versus-causal comparison on a language of independent words.

    The inherited fields are the blocks and their training, the same for both twins;
    ``train_chars`` and ``eval_chars`` are the lengths of the sampled training and held-out
    texts (see :class:`genai_report.data.words.Lexicon`).

    Attributes:
        lexicon_size: the language's words, the corpus's most frequent ones.
        mask_rate: share of positions the masked model predicts (BERT's 15%).
        n_blanks: held-out letters blanked out, one per window.
        l2r_windows: held-out windows predicted left to right.
        n_samples, sample_chars: samples per model and their length in characters.
    """

    block_size: int = 16
    batch_size: int = 64
    train_chars: int | None = 1_000_000
    eval_chars: int = 60_000
    lexicon_size: int = 64
    mask_rate: float = 0.15
    n_blanks: int = 512
    l2r_windows: int = 64
    n_samples: int = 32
    sample_chars: int = 96

    def __post_init__(self) -> None:
        if self.train_chars is None or self.train_chars <= self.block_size:
            raise ValueError(f"train_chars must be a number > block_size={self.block_size}, "
                             f"got {self.train_chars}.")
        if self.eval_chars < self.block_size * self.l2r_windows:
            raise ValueError(f"eval_chars={self.eval_chars} must hold l2r_windows="
                             f"{self.l2r_windows} windows of {self.block_size}.")
        if not 0 < self.mask_rate < 1:
            raise ValueError(f"mask_rate must be in (0, 1), got {self.mask_rate}.")


@figure(
    "inference-masked",
    params={"smoke": MaskedLM(n_layer=1, n_head=2, n_embd=16, batch_size=4, steps=6,
                              warmup_steps=1, train_chars=20_000, eval_chars=2_000,
                              n_blanks=16, l2r_windows=4, n_samples=2, sample_chars=16),
            "quick": MaskedLM(),
            "full": MaskedLM(n_layer=4, n_embd=128, steps=3000, lr=1e-3, warmup_steps=100,
                             seeds=3, n_blanks=2000, l2r_windows=256, n_samples=64)},
    outputs=("masked.svg",),
    seed=95,
    data=(corpus_file,),
    title="Trained to fill blanks, the same blocks fill a missing letter better than any "
          "left-to-right reader could, and write far worse.",
    caption="The same blocks trained on the same windows of a language of the corpus's "
            "most frequent words, drawn independently, for the same steps: causally (next "
            "character) and bidirectionally with BERT's 15% masking; bars are means, dots "
            "seeds. Left: share of held-out missing letters guessed right: the masked "
            "model in one pass; the causal model from the left only, and by scoring each "
            "letter with the whole window (one pass per letter); the lines are the best "
            "possible guesses from the word list, from the word's beginning and from both "
            "ends. Middle: bits per character predicting held-out text left to right; the "
            "line is the language's entropy. Right: share of the words in each model's "
            "samples that are words of the language.",
    alt="Left: the masked model's bar is above the causal model's left-only bar and above "
        "the best-from-the-left line; the causal model scoring every letter is highest, near "
        "the best-from-both-sides line. Middle and right: the causal model predicts text in "
        "fewer bits and writes real words far more often than the masked model.",
)
def masked(ctx, p: MaskedLM):
    """Train causal and masked twins; missing letters, left-to-right loss, samples."""
    import math

    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F

    from genai_report.data.text import CharTokenizer, get_batch, load_corpus
    from genai_report.data.words import ALPHABET, Lexicon, letter_blanks
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.models.masked import bidirectional, mask_tokens
    from genai_report.plotting import save_figure

    dev = ctx.device
    lex = Lexicon.from_text(load_corpus(corpus_file()), p.lexicon_size)
    tok = CharTokenizer(ALPHABET)
    train_ids = tok.encode(lex.sample(p.train_chars, ctx.generator(2)))
    val_text = lex.sample(p.eval_chars, ctx.generator(3))
    V, T = tok.vocab_size, p.block_size
    MASK = V  # one extra id, in both models' vocabularies for a like-for-like comparison
    config = GPTConfig(vocab_size=V + 1, block_size=T, n_layer=p.n_layer, n_head=p.n_head,
                       n_embd=p.n_embd)
    n_win = len(val_text) // T
    x_val = tok.encode(val_text[: n_win * T]).view(n_win, T)  # (W, T)
    picks = letter_blanks(val_text, T, p.n_blanks, ctx.generator(1))
    blanks = x_val[torch.tensor([w for w, *_ in picks])]  # (N, T)
    pos = torch.tensor([q for _, q, *_ in picks])  # (N,)
    rows = torch.arange(p.n_blanks)
    answer = blanks[rows, pos]  # (N,)
    truth = [tok.chars[int(a)] for a in answer]
    # the best possible guesses, from the word list: its beginning, or both of its ends
    bayes_left = sum(lex.best_from_left(a) == c
                     for (_, _, a, _), c in zip(picks, truth, strict=True))
    bayes_both = sum(lex.best_from_both(a, b) == c
                     for (_, _, a, b), c in zip(picks, truth, strict=True))
    counts = torch.bincount(train_ids, minlength=V)
    blank_unigram = float((answer == counts[1:].argmax() + 1).float().mean())
    l2r = x_val[: p.l2r_windows].to(dev)  # (W, T)
    letters = torch.arange(1, V)  # id 0 is the space; the blank is known to be a letter
    L = len(letters)

    def best_letter(logits):
        return logits[..., 1:V].argmax(-1).cpu() + 1

    @torch.no_grad()
    def rescore(model, chunk=64):
        """Fill each blank with every letter; keep the one the whole window makes likeliest."""
        hits = 0
        for i in range(0, p.n_blanks, chunk):
            b, q = blanks[i: i + chunk], pos[i: i + chunk]
            n = len(b)
            cand = b[:, None, :].repeat(1, L, 1)  # (n, L, T)
            cand[torch.arange(n)[:, None], torch.arange(L)[None], q[:, None]] = letters
            flat = cand.view(n * L, T).to(dev)
            logp = F.log_softmax(model(flat[:, :-1])[0][..., :V], -1)  # (nL, T-1, V)
            tok_logp = logp.gather(-1, flat[:, 1:, None])[..., 0].cpu()  # (nL, T-1)
            # log p(letter | left) + log p(right | left, letter): targets from q on
            after = torch.arange(T - 1)[None] >= (q - 1).repeat_interleave(L)[:, None]
            score = (tok_logp * after).sum(-1).view(n, L)
            hits += int((letters[score.argmax(-1)] == answer[i: i + chunk]).sum())
        return hits / p.n_blanks

    @torch.no_grad()
    def sample(next_logits, gen):
        x = torch.zeros(p.n_samples, 1, dtype=torch.long, device=dev)  # a space: a word starts
        for _ in range(p.sample_chars):
            probs = next_logits(x)[..., :V].softmax(-1)  # (S, V)
            x = torch.cat([x, torch.multinomial(probs.cpu(), 1, generator=gen).to(dev)], 1)
        return x

    def real_words(x):
        """Share of the complete words written that are words of the language."""
        written = [w for row in x.cpu() for w in tok.decode(row).split(" ")[1:-1] if w]
        return sum(w in lex.words for w in written) / max(1, len(written))

    keys = ("blank_masked", "blank_causal_left", "blank_causal_rescore", "l2r_bpc_causal",
            "l2r_bpc_masked", "real_words_causal", "real_words_masked")
    res = {k: [] for k in keys}
    texts, train_s = {}, 0.0
    trained = {}
    for kind in ("causal", "masked"):  # each kind's seeds as one ensemble
        models, batches, masks = [], [], []
        for seed in range(p.seeds):
            torch.manual_seed(ctx.seed + seed)  # the same initial weights for both kinds
            model = GPT(config).to(dev)
            models.append(bidirectional(model) if kind == "masked" else model)
            batches.append(ctx.generator(100 + seed))  # the same windows for both kinds
            masks.append(ctx.generator(200 + seed))

        def loss_fn(ens, step, kind=kind, batches=batches, masks=masks):
            xs, ys = [], []
            for gen, mask_gen in zip(batches, masks, strict=True):
                x, y = get_batch(train_ids, p.batch_size, T, gen)  # (B, T)
                if kind == "masked":
                    inp, y = mask_tokens(x, MASK, V, mask_gen, p.mask_rate)
                    y[0, 0] = x[0, 0] if (y < 0).all() else y[0, 0]  # one target at least
                    x = inp
                xs.append(x)
                ys.append(y)
            return ens(torch.stack(xs).to(dev), torch.stack(ys).to(dev))[1]  # (K,)

        train_s += _train_together(ctx, models, loss_fn, p, p.steps, f"{kind}, {p.seeds} seeds")
        trained[kind] = models
    for seed in range(p.seeds):
        causal, mlm = trained["causal"][seed], trained["masked"][seed]
        with torch.no_grad():
            inp = blanks.clone()
            inp[rows, pos] = MASK
            hit = best_letter(mlm(inp.to(dev))[0][rows, pos]) == answer
            res["blank_masked"].append(float(hit.float().mean()))
            hit = best_letter(causal(blanks.to(dev))[0][rows, pos - 1]) == answer
            res["blank_causal_left"].append(float(hit.float().mean()))
            res["blank_causal_rescore"].append(rescore(causal))
            nll_c = F.cross_entropy(causal(l2r[:, :-1])[0][..., :V].flatten(0, 1),
                                    l2r[:, 1:].flatten())
            nll_m = []
            for t in range(1, T):  # x_t from x_<t alone: [MASK] at t, nothing to its right
                inp = torch.cat([l2r[:, :t], torch.full_like(l2r[:, :1], MASK)], 1)
                nll_m.append(F.cross_entropy(mlm(inp)[0][:, t, :V], l2r[:, t],
                                             reduction="none"))
            res["l2r_bpc_causal"].append(float(nll_c) / math.log(2))
            res["l2r_bpc_masked"].append(float(torch.stack(nll_m).mean()) / math.log(2))
        gen = ctx.generator(300 + seed)
        s_c = sample(lambda x, m=causal: m(x[:, -T:])[0][:, -1], gen)
        # the masked model predicts a [MASK] appended after the text, nothing to its right
        s_m = sample(lambda x, m=mlm: m(torch.cat([x[:, -(T - 1):],
                                                   torch.full_like(x[:, :1], MASK)], 1))[0][:, -1],
                     gen)
        res["real_words_causal"].append(real_words(s_c))
        res["real_words_masked"].append(real_words(s_m))
        if seed == 0:
            texts = {"causal": tok.decode(s_c[0, 1:].cpu()),
                     "masked": tok.decode(s_m[0, 1:].cpu())}
    out = {k: over_seeds(v) for k, v in res.items()}
    bounds = {"bayes_left": bayes_left / p.n_blanks, "bayes_both": bayes_both / p.n_blanks,
              "blank_unigram": blank_unigram, "entropy_bpc": lex.entropy_bits_per_char()}

    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(7.2, 3.0),
                                     gridspec_kw={"width_ratios": [1.5, 1, 1]})
    bars = [("masked\n(1 pass)", "blank_masked", "C1"),
            ("causal,\nleft only", "blank_causal_left", "C0"),
            (f"causal,\n{L} passes", "blank_causal_rescore", "C5")]
    for i, (_, k, color) in enumerate(bars):
        a0.bar(i, out[k]["mean"], color=color, alpha=0.8, width=0.6)
        a0.scatter([i] * len(out[k]["values"]), out[k]["values"], color="black", s=10,
                   zorder=3)
    a0.axhline(bounds["bayes_both"], color="C2", ls="-.", lw=1, label="best, both ends")
    a0.axhline(bounds["bayes_left"], color="C3", ls="--", lw=1, label="best, beginning")
    a0.axhline(blank_unigram, color="C7", ls=":", lw=1, label="commonest letter")
    a0.set_xticks(range(3), [b[0] for b in bars], fontsize=8)
    a0.set_ylabel("missing letters guessed right")
    a0.set_ylim(0, 1.25)
    a0.set_yticks([0, 0.25, 0.5, 0.75, 1])
    a0.legend(fontsize=8, loc="upper center", ncol=2, handlelength=1.8, columnspacing=0.8)
    for ax, k, label in ((a1, "l2r_bpc", "bits per character,\nleft to right"),
                         (a2, "real_words", "sampled words that\nare in the list")):
        for i, (kind, color) in enumerate((("causal", "C0"), ("masked", "C1"))):
            o = out[f"{k}_{kind}"]
            ax.bar(i, o["mean"], width=0.6, color=color, alpha=0.8)
            ax.scatter([i] * len(o["values"]), o["values"], color="black", s=10, zorder=3)
        ax.set_xticks(range(2), ["causal", "masked"], fontsize=8)
        ax.set_ylabel(label)
    a1.axhline(bounds["entropy_bpc"], color="C2", ls="-.", lw=1, label="entropy")
    a1.legend(fontsize=8, loc="upper left")
    a1.set_ylim(0, 1.4 * max(out["l2r_bpc_masked"]["mean"], out["l2r_bpc_causal"]["mean"]))
    a2.set_ylim(0, 1)
    fig.tight_layout()
    save_figure(fig, ctx.output("masked.svg"))
    return {**out, **bounds, "samples": texts, "train_s": train_s, "vocab_size": V,
            "letters": L, "lexicon_size": p.lexicon_size,
            "lexicon_examples": ", ".join(lex.words[:8]),
            "mean_word_length": sum(len(w) * q for w, q in zip(lex.words, lex.probs, strict=True)),
            "seeds": p.seeds, "n_blanks": p.n_blanks, "threads": torch.get_num_threads()}
