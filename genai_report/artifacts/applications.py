"""Models trained for the "Applications, measured" and "Ethics, measured" pages.

* ``code-gpt``: a character-level GPT trained on the Python source corpus (the Copilot idea at
  toy scale), with the tail of the corpus held out for the completion tasks.
* ``skewed-diffusion``: a class-conditional digits diffusion model trained on a deliberately
  skewed class mix, to see whether its samples reproduce the skew.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.data.digits import data_file
from genai_report.pipeline import artifact


def _python_corpus():
    from genai_report.data.corpora import corpus_path

    return corpus_path("python")


@dataclass(frozen=True)
class CodeGPTTrain:
    """Shape and training of the code model (see ``GPTConfig`` and ``TrainConfig``).

    Attributes:
        n_layer, n_head, n_embd, block_size: the GPT.
        batch_size, steps, lr, warmup_steps: optimisation.
        val_fraction: tail of the corpus held out (the completion tasks come from it).
    """

    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    block_size: int = 128
    batch_size: int = 8
    steps: int = 1500
    lr: float = 3e-3
    warmup_steps: int = 50
    val_fraction: float = 0.1


@artifact(
    "code-gpt",
    params={
        "smoke": CodeGPTTrain(n_layer=1, n_head=2, n_embd=32, block_size=128, batch_size=2,
                              steps=15, warmup_steps=2),
        "quick": CodeGPTTrain(),
        "full": CodeGPTTrain(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64,
                             steps=6000, lr=1e-3, warmup_steps=200),
    },
    outputs=("model.pt",),
    seed=60,
    data=(_python_corpus,),
)
def code_gpt(ctx, p: CodeGPTTrain):
    """Train a character-level GPT on the Python corpus; record its held-out loss."""
    import dataclasses
    import math

    import torch

    from genai_report.data.text import CharTokenizer, get_batch, load_corpus, split
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.loop import TrainConfig, train

    text = load_corpus("python")
    tok = CharTokenizer.from_text(text)
    train_ids, val_ids = split(tok.encode(text), p.val_fraction)
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=p.block_size, n_layer=p.n_layer,
                       n_head=p.n_head, n_embd=p.n_embd)
    model = GPT(config).to(ctx.device)
    gen, dev = ctx.generator(1), ctx.device

    def loss_fn(m, step):
        x, y = get_batch(train_ids, p.batch_size, p.block_size, gen)  # (B, T)
        return m(x.to(dev), y.to(dev))[1]

    def evaluate(m):
        g = torch.Generator().manual_seed(ctx.seed + 7)
        losses = [m(*(t.to(dev) for t in get_batch(val_ids, 16, p.block_size, g)))[1]
                  for _ in range(4)]
        return {"val_loss": float(torch.stack(losses).mean())}

    hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                                             weight_decay=0.1),
                 eval_fn=evaluate, progress=ctx.progress, record_every=10)
    torch.save({"config": dataclasses.asdict(config), "state": model.state_dict(),
                "chars": tok.chars, "n_train_chars": len(train_ids)}, ctx.output("model.pt"))
    val = hist.last_eval()["val_loss"]
    return {"n_params": model.num_params(), "steps": p.steps, "val_loss_nats": val,
            "val_bpc": val / math.log(2), "train_time_s": hist.wall_time_s,
            "train_chars": len(train_ids), "val_chars": len(val_ids),
            "epochs": p.steps * p.batch_size * p.block_size / len(train_ids)}


def load_gpt(path, device="cpu"):
    """Rebuild a GPT and its tokenizer from a ``model.pt`` of ``code-gpt`` or ``gpt-char``."""
    import torch

    from genai_report.data.text import CharTokenizer
    from genai_report.models.gpt import GPT, GPTConfig

    blob = torch.load(path, weights_only=True)
    model = GPT(GPTConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    return model.to(device).eval(), CharTokenizer(blob["chars"]), blob


@dataclass(frozen=True)
class SkewedFit:
    """The skewed-class diffusion model.

    Attributes:
        ratio: class k is drawn with probability proportional to ``ratio ** k``.
        steps, batch, lr, timesteps, p_uncond: as in ``digits-diffusion``.
        hidden, depth: the MLP denoiser's width and number of residual blocks.
    """

    ratio: float = 0.7
    steps: int = 1500
    batch: int = 128
    lr: float = 1e-3
    hidden: int = 192
    depth: int = 2
    timesteps: int = 200
    p_uncond: float = 0.3


@artifact(
    "skewed-diffusion",
    params={"smoke": SkewedFit(steps=20, batch=32, hidden=32, depth=1, timesteps=20),
            "quick": SkewedFit(),
            "full": SkewedFit(steps=20000, batch=256, hidden=512, depth=3, timesteps=1000)},
    outputs=("diffusion.pt",),
    seed=61,
    data=(data_file,),
)
def skewed_diffusion(ctx, p: SkewedFit):
    """Train a class-conditional diffusion model on digits drawn with a geometric class skew."""
    import torch

    from genai_report.data import digits
    from genai_report.models.diffusion import Diffusion, DiffusionConfig
    from genai_report.training.loop import TrainConfig, train

    d = digits.load()
    mix = torch.tensor([p.ratio**k for k in range(10)], dtype=torch.float64)
    mix = mix / mix.sum()
    # per-example weight = class share / class count, so classes appear in proportion `mix`
    counts = torch.bincount(d.y_train, minlength=10).double()
    weights = (mix / counts)[d.y_train]
    x, y = d.x_train.to(ctx.device), d.y_train.to(ctx.device)
    gen = ctx.generator()
    model = Diffusion(DiffusionConfig(data_shape=(1, 8, 8), timesteps=p.timesteps,
                                      hidden=p.hidden, depth=p.depth, n_classes=10,
                                      clip=1.0)).to(ctx.device)

    def loss_fn(m, step):
        i = torch.multinomial(weights, p.batch, replacement=True, generator=gen).to(ctx.device)
        return m.loss(x[i], y[i], generator=gen, p_uncond=p.p_uncond)

    hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20),
                 progress=ctx.progress, record_every=10)
    torch.save({**model.checkpoint(), "mix": mix.tolist()}, ctx.output("diffusion.pt"))
    return {"train_mix": mix.tolist(), "steps": p.steps, "train_time_s": hist.wall_time_s,
            "last_loss": sum(hist.train_loss[-10:]) / len(hist.train_loss[-10:])}
