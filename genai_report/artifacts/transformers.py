"""Artifacts of the Transformers chapter.

* ``gpt-char``: a character-level GPT trained on the embedded English corpus (or the UTF-8
  file named by ``$GENAI_REPORT_TEXT_CORPUS``), with its loss history.
* ``encdec-numbers``: an encoder-decoder transformer that spells out numbers in words.
* ``bpe-english``: a small BPE tokenizer trained on the same corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts.scaling import torch_threads
from genai_report.pipeline import artifact


def _corpus():
    from genai_report.data.corpora import default_corpus_path

    return default_corpus_path()


@dataclass(frozen=True)
class GPTTrain:
    """Shape and training of the character-level GPT.

    Attributes:
        n_layer, n_head, n_embd, block_size, dropout: the model (see ``GPTConfig``).
        batch_size: windows per step.
        steps: optimisation steps.
        lr, min_lr_ratio, warmup_steps, weight_decay: AdamW with warm-up and cosine decay.
        eval_every: steps between evaluations.
        eval_batches: batches per loss estimate (the same batches at every evaluation).
        val_fraction: share of the corpus held out for validation.
        val_chunk: the held-out share is every k-th chunk of this many characters (the
            English corpus changes style along its length, so a tail would not be typical).
        compile: train through ``torch.compile``. ``benchmarks/bench_gpt.py`` measures it: on
            the 2-core CPU a compiled step is faster, but compiling costs more than it saves
            over a short run, so only the long ``full`` run uses it.
    """

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    batch_size: int = 12
    steps: int = 1500
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    eval_every: int = 100
    eval_batches: int = 10
    val_fraction: float = 0.1
    val_chunk: int = 10_000
    compile: bool = False


@artifact(
    "gpt-char",
    params={
        "smoke": GPTTrain(n_layer=1, n_head=2, n_embd=32, block_size=32, steps=20,
                          warmup_steps=5, eval_every=10, eval_batches=2),
        "quick": GPTTrain(),
        "full": GPTTrain(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2,
                         batch_size=64, steps=5000, warmup_steps=100, eval_every=250,
                         eval_batches=50, compile=True),
    },
    outputs=("model.pt", "history.json"),
    seed=30,
    dry_run={"eval_batches": 2},
    data=(_corpus,),
)
def gpt_char(ctx, p: GPTTrain):
    """Train a character-level GPT and record its training and validation loss."""
    import dataclasses
    import json
    import math
    import time

    import torch

    from genai_report.data.text import CharTokenizer, get_batch, load_corpus, sha256_of, split
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.loop import TrainConfig, train

    path = _corpus()
    text = load_corpus(path)
    tok = CharTokenizer.from_text(text)
    train_ids, val_ids = split(tok.encode(text), p.val_fraction, p.val_chunk)
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=p.block_size, n_layer=p.n_layer,
                       n_head=p.n_head, n_embd=p.n_embd, dropout=p.dropout)
    model = GPT(config).to(ctx.device)
    gen = ctx.generator(1)
    dev = ctx.device
    fwd = torch.compile(model) if p.compile else model  # shares model's parameters

    def loss_fn(m, step):
        x, y = get_batch(train_ids, p.batch_size, p.block_size, gen)  # (B, T) each
        return fwd(x.to(dev), y.to(dev))[1]

    eval_time = [0.0]

    def estimate(m):
        t0 = time.perf_counter()
        out = {}
        for name, data in (("train_loss", train_ids), ("val_loss", val_ids)):
            g = torch.Generator().manual_seed(ctx.seed + 7)  # same batches every time
            losses = [m(*(t.to(dev) for t in get_batch(data, p.batch_size, p.block_size, g)))[1]
                      for _ in range(p.eval_batches)]
            out[name] = float(torch.stack(losses).mean())
        eval_time[0] += time.perf_counter() - t0
        return out

    cfg = TrainConfig(steps=p.steps, lr=p.lr, weight_decay=p.weight_decay, betas=(0.9, 0.99),
                      warmup_steps=p.warmup_steps, min_lr_ratio=p.min_lr_ratio, grad_clip=1.0,
                      eval_every=p.eval_every)
    hist = train(model, loss_fn, cfg, eval_fn=estimate, progress=ctx.progress)
    train_s = hist.wall_time_s - eval_time[0]
    n_train = len(train_ids)
    torch.save({"config": dataclasses.asdict(config), "state": model.state_dict(),
                "chars": tok.chars, "val_text": tok.decode(val_ids[: p.val_chunk])},
               ctx.output("model.pt"))
    history = {"steps": hist.steps, "train_loss": hist.train_loss,
               "evals": [{"step": s, **m} for s, m in hist.evals]}
    ctx.output("history.json").write_text(json.dumps(history))
    last = hist.last_eval()
    return {
        "corpus": {"file": path.name, "sha256": sha256_of(path), "chars": len(text),
                   "vocab_size": tok.vocab_size, "train_chars": n_train,
                   "val_chars": len(val_ids)},
        "n_params": model.num_params(),
        "n_params_total": model.num_params(non_embedding=False),
        "steps": p.steps,
        "val_loss_nats": last["val_loss"],
        "train_loss_nats": last["train_loss"],
        "val_bpc": last["val_loss"] / math.log(2),
        "ms_per_iter": 1000 * train_s / p.steps,
        "tokens_per_s": p.steps * p.batch_size * p.block_size / train_s,
        "device": str(ctx.device),
        "compiled": p.compile,
    }


@dataclass(frozen=True)
class EncDecTrain:
    """Shape and training of the number-spelling encoder-decoder.

    Attributes:
        n_enc_layer, n_dec_layer, n_head, n_embd: the model (see ``EncDecConfig``).
        n_train, n_val: examples in the training pool and the held-out set watched during
            training.
        batch_size, steps, lr, warmup_steps: optimisation.
        n_eval_per_length: distinct held-out numbers scored per digit length at the end
            (all of them where there are fewer: two-digit numbers have ten).
        threads: torch threads while training (``0``: leave the pipeline's setting; ``1`` is
            faster on a two-core machine that is busy with other work).
    """

    n_enc_layer: int = 2
    n_dec_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    n_train: int = 50000
    n_val: int = 500
    batch_size: int = 64
    steps: int = 1000
    lr: float = 1e-3
    warmup_steps: int = 100
    n_eval_per_length: int = 400
    threads: int = 0


@artifact(
    "encdec-numbers",
    params={
        "smoke": EncDecTrain(n_enc_layer=1, n_dec_layer=1, n_embd=32, n_train=500, n_val=50,
                             steps=20, warmup_steps=5, n_eval_per_length=10),
        "quick": EncDecTrain(steps=600, warmup_steps=60),
        "full": EncDecTrain(n_enc_layer=3, n_dec_layer=3, n_embd=256, n_train=200000,
                            n_val=5000, batch_size=256, steps=5000, warmup_steps=200,
                            n_eval_per_length=2000),
    },
    outputs=("model.pt", "history.json"),
    seed=31,
)
def encdec_numbers(ctx, p: EncDecTrain):
    """Train an encoder-decoder to spell out numbers; score exact matches on held-out ones.

    Every one-digit number (and so every word) is in training; the held-out numbers have two
    to six digits, and the final score counts each distinct held-out number once, reported
    per digit length and pooled.
    """
    import dataclasses
    import json

    import torch

    from genai_report.data import transduction as td
    from genai_report.models.encdec import EncDecConfig, EncoderDecoder
    from genai_report.training.loop import TrainConfig, train

    gen = ctx.generator(1)
    dev = ctx.device
    src, tgt, _ = td.make_dataset(p.n_train, "train", gen)
    vsrc, vtgt, vnum = td.make_dataset(p.n_val, "val", ctx.generator(2))
    config = EncDecConfig(src_vocab=len(td.SRC_VOCAB), tgt_vocab=len(td.TGT_VOCAB),
                          max_len=td.MAX_TGT_LEN, n_enc_layer=p.n_enc_layer,
                          n_dec_layer=p.n_dec_layer, n_head=p.n_head, n_embd=p.n_embd)
    model = EncoderDecoder(config).to(dev)

    def loss_fn(m, step):
        i = torch.randint(len(src), (p.batch_size,), generator=gen)
        s, t = src[i].to(dev), tgt[i].to(dev)  # (B, S), (B, T)
        return m(s, t[:, :-1], t[:, 1:])[1]

    def evaluate(m):
        s, t = vsrc.to(dev), vtgt.to(dev)
        loss = m(s, t[:, :-1], t[:, 1:])[1]
        pred = m.greedy_decode(s, td.MAX_TGT_LEN, td.BOS, td.EOS).cpu()
        exact = [td.decode_words(pr) == td.spell(n) for pr, n in zip(pred, vnum, strict=True)]
        return {"val_loss": float(loss), "val_exact_match": sum(exact) / len(exact)}

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps, weight_decay=0.01,
                      eval_every=max(1, p.steps // 5))
    with torch_threads(p.threads):
        hist = train(model, loss_fn, cfg, eval_fn=evaluate, progress=ctx.progress)
    torch.save({"config": dataclasses.asdict(config), "state": model.state_dict()},
               ctx.output("model.pt"))
    ctx.output("history.json").write_text(json.dumps(
        {"steps": hist.steps, "train_loss": hist.train_loss,
         "evals": [{"step": s, **m} for s, m in hist.evals]}))
    last = hist.last_eval()
    by_len, n_by_len, right = {}, {}, 0
    for digits in range(2, td.MAX_DIGITS + 1):
        nums = td.held_out_numbers(digits, p.n_eval_per_length, ctx.generator(10 + digits))
        pred = model.greedy_decode(td.encode_numbers(nums).to(dev), td.MAX_TGT_LEN, td.BOS,
                                   td.EOS).cpu()
        ok = sum(td.decode_words(pr) == td.spell(n) for pr, n in zip(pred, nums, strict=True))
        by_len[str(digits)], n_by_len[str(digits)] = ok / len(nums), len(nums)
        right += ok
    return {
        "n_params": sum(q.numel() for q in model.parameters()),
        "steps": p.steps,
        "val_loss_nats": last["val_loss"],
        "held_out_exact_match": right / sum(n_by_len.values()),
        "exact_match_by_digits": by_len,
        "n_held_out_by_digits": n_by_len,
        "n_held_out": sum(n_by_len.values()),
        "wall_time_s": hist.wall_time_s,
    }


@dataclass(frozen=True)
class BPETrain:
    """The BPE tokenizer: merges to learn and how much of the training text to learn from.

    Attributes:
        num_merges: merges learned (vocabulary = characters + merges).
        train_chars: characters from the start of the training split used for learning.
    """

    num_merges: int = 1000
    train_chars: int = 200_000


@artifact(
    "bpe-english",
    params={"smoke": BPETrain(num_merges=30, train_chars=10_000), "quick": BPETrain(),
            "full": BPETrain(num_merges=4000, train_chars=800_000)},
    outputs=("bpe.json",),
    seed=32,
    data=(_corpus,),
)
def bpe_english(ctx, p: BPETrain):
    """Learn byte-pair-encoding merges from the start of the corpus."""
    import json

    from genai_report.data.bpe import BPETokenizer
    from genai_report.data.text import load_corpus

    text = load_corpus(_corpus())
    bpe = BPETokenizer.train(text[: p.train_chars], p.num_merges)
    ctx.output("bpe.json").write_text(json.dumps(
        {"alphabet": list(bpe.alphabet), "merges": [list(m) for m in bpe.merges]}))
    return {"vocab_size": bpe.vocab_size, "num_merges": len(bpe.merges),
            "first_merges": ["".join(m) for m in bpe.merges[:20]]}
