"""Artifacts of the "What a token costs" page.

* ``inference-draft-gpt``: a one-layer character GPT trained on the same corpus and split as
  ``gpt-char`` (so the same vocabulary), the draft model of speculative decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import artifact


def _corpus():
    from genai_report.data.corpora import default_corpus_path

    return default_corpus_path()


@dataclass(frozen=True)
class DraftTrain:
    """Shape and training of the draft model.

    Attributes:
        n_layer, n_head, n_embd, block_size: the GPT (``block_size`` as ``gpt-char``'s).
        batch_size, steps, lr, warmup_steps: optimisation.
        eval_batches: batches of the held-out loss.
    """

    n_layer: int = 1
    n_head: int = 2
    n_embd: int = 64
    block_size: int = 64
    batch_size: int = 16
    steps: int = 1000
    lr: float = 3e-3
    warmup_steps: int = 30
    eval_batches: int = 10


@artifact(
    "inference-draft-gpt",
    params={
        "smoke": DraftTrain(n_embd=16, block_size=32, batch_size=4, steps=10, warmup_steps=2,
                            eval_batches=2),
        "quick": DraftTrain(),
        "full": DraftTrain(n_layer=2, n_head=4, n_embd=128, block_size=256, batch_size=32,
                           steps=3000, lr=2e-3, warmup_steps=100, eval_batches=20),
    },
    outputs=("model.pt",),
    seed=90,
    data=(_corpus,),
)
def inference_draft_gpt(ctx, p: DraftTrain):
    """Train the small draft GPT of speculative decoding on gpt-char's corpus and split."""
    import dataclasses
    import math

    import torch

    from genai_report.data.text import CharTokenizer, get_batch, load_corpus, split
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.loop import TrainConfig, train

    text = load_corpus(_corpus())
    tok = CharTokenizer.from_text(text)
    train_ids, val_ids = split(tok.encode(text), 0.1, 10_000)  # gpt-char's split
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=p.block_size, n_layer=p.n_layer,
                       n_head=p.n_head, n_embd=p.n_embd)
    model = GPT(config).to(ctx.device)
    gen, dev = ctx.generator(1), ctx.device

    def loss_fn(m, step):
        x, y = get_batch(train_ids, p.batch_size, p.block_size, gen)  # (B, T)
        return m(x.to(dev), y.to(dev))[1]

    def evaluate(m):
        g = torch.Generator().manual_seed(ctx.seed + 7)
        losses = [m(*(t.to(dev) for t in get_batch(val_ids, p.batch_size, p.block_size, g)))[1]
                  for _ in range(p.eval_batches)]
        return {"val_loss": float(torch.stack(losses).mean())}

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps, weight_decay=0.1,
                      eval_every=0)
    hist = train(model, loss_fn, cfg, eval_fn=evaluate, progress=ctx.progress)
    torch.save({"config": dataclasses.asdict(config), "state": model.state_dict(),
                "chars": tok.chars}, ctx.output("model.pt"))
    val = hist.last_eval()["val_loss"]
    return {"n_params": model.num_params(), "steps": p.steps, "val_loss_nats": val,
            "val_bpc": val / math.log(2), "train_time_s": hist.wall_time_s}
