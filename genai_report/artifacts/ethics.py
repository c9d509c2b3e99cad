"""Models trained for the "Ethics, measured" page.

``memorization-gpts``: character GPTs of several sizes trained for many epochs on a small
slice of the English corpus, each scored for verbatim extraction at several points of
training (the models are not kept; the record is the result).
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import artifact


def _corpus():
    from genai_report.data.corpora import default_corpus_path

    return default_corpus_path()


@dataclass(frozen=True)
class MemorizationRuns:
    """Model sizes, training length and the extraction test.

    Attributes:
        widths: ``n_embd`` of each model (``n_layer`` = ``layers``, 4 heads).
        layers: transformer blocks of every model.
        train_chars: characters of training text (small, so it is seen many times).
        block_size, batch_size, steps, lr: training.
        checkpoints: number of evenly spaced evaluations (the last at ``steps``).
        prefix_len, suffix_len: the extraction test (prompt and continuation, characters).
        n_prompts: prompts from the training text and from held-out text at each evaluation.
    """

    widths: tuple[int, ...] = (32, 64, 128)
    layers: int = 2
    train_chars: int = 4000
    block_size: int = 64
    batch_size: int = 16
    steps: int = 500
    lr: float = 3e-3
    checkpoints: int = 4
    prefix_len: int = 32
    suffix_len: int = 24
    n_prompts: int = 100


@artifact(
    "memorization-gpts",
    params={"smoke": MemorizationRuns(layers=1, train_chars=3000, steps=12,
                                      checkpoints=2, prefix_len=8, suffix_len=8, n_prompts=16),
            "quick": MemorizationRuns(),
            "full": MemorizationRuns(widths=(64, 128, 256, 512), layers=4, train_chars=100000,
                                     block_size=128, batch_size=64, steps=6000, checkpoints=8,
                                     prefix_len=64, suffix_len=50, n_prompts=1000)},
    outputs=("runs.json",),
    seed=62,
    dry_run={"n_prompts": 50},
    data=(_corpus,),
)
def memorization_gpts(ctx, p: MemorizationRuns):
    """Train GPTs of several widths on a small text; measure verbatim extraction over training."""
    import json

    from genai_report.data.text import CharTokenizer, get_batch, load_corpus
    from genai_report.ethics.memorization import extraction, sample_positions
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.loop import TrainConfig, train

    text = load_corpus(_corpus())
    train_text = text[: p.train_chars]
    held_text = text[len(text) // 2: len(text) // 2 + p.train_chars]  # never trained on
    tok = CharTokenizer.from_text(text)
    train_ids, held_ids = tok.encode(train_text), tok.encode(held_text)
    span = p.prefix_len + p.suffix_len
    pos_train = sample_positions(len(train_ids), p.n_prompts, span, ctx.generator(1))
    pos_held = sample_positions(len(held_ids), p.n_prompts, span, ctx.generator(2))
    every = max(1, p.steps // p.checkpoints)
    runs = []
    for k, width in enumerate(p.widths):
        model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=p.block_size,
                              n_layer=p.layers, n_head=4 if width % 4 == 0 else 1,
                              n_embd=width)).to(ctx.device)
        gen = ctx.generator(10 + k)

        def loss_fn(m, step, gen=gen):
            x, y = get_batch(train_ids, p.batch_size, p.block_size, gen)
            return m(x.to(ctx.device), y.to(ctx.device))[1]

        def evaluate(m):
            tr = extraction(m, train_ids, pos_train, p.prefix_len, p.suffix_len)
            he = extraction(m, held_ids, pos_held, p.prefix_len, p.suffix_len)
            return {"train_extractable": tr["extractable"], "train_mean_match": tr["mean_match"],
                    "held_extractable": he["extractable"], "held_mean_match": he["mean_match"]}

        hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr,
                                                 warmup_steps=p.steps // 20, eval_every=every),
                     eval_fn=evaluate, progress=ctx.progress, record_every=10)
        epochs = [s * p.batch_size * p.block_size / len(train_ids) for s, _ in hist.evals]
        runs.append({"width": width, "n_params": model.num_params(),
                     "evals": [{"step": s, "epochs": e, **m}
                               for (s, m), e in zip(hist.evals, epochs, strict=True)],
                     "last_loss": sum(hist.train_loss[-5:]) / len(hist.train_loss[-5:])})
    ctx.output("runs.json").write_text(json.dumps(runs, indent=1))
    final = {f"w{r['width']}": r["evals"][-1] for r in runs}
    return {"runs": runs, "final": final, "train_chars": p.train_chars,
            "prefix_len": p.prefix_len, "suffix_len": p.suffix_len, "n_prompts": p.n_prompts}
