"""Models trained for the "Applications, measured" and "Ethics, measured" pages.

* ``code-gpt``: a character-level GPT trained on generated one-line Python functions
  (docstring in words, body one ``return`` line), with problems held out for pass@k.
* ``skewed-diffusion``: class-conditional digits diffusion models trained on a deliberately
  skewed class mix, to see whether their samples reproduce the skew, and the same models
  trained on a balanced mix as the control.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.data.digits import data_file
from genai_report.pipeline import artifact


@dataclass(frozen=True)
class CodeGPTTrain:
    """The code-generation task and the GPT trained on it (see ``GPTConfig``, ``TrainConfig``
    and :mod:`genai_report.applications.code`).

    Attributes:
        n_problems: distinct problems generated (``n_val`` and ``n_test`` of them held out).
        max_steps: arithmetic steps per problem at most.
        problem_seed: seed of the problem generator.
        n_layer, n_head, n_embd: the GPT (its block holds the longest function).
        batch_size, steps, lr, warmup_steps: optimisation (batches of whole functions).
    """

    n_problems: int = 6400
    n_val: int = 200
    n_test: int = 200
    max_steps: int = 4
    problem_seed: int = 0
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    batch_size: int = 32
    steps: int = 1200
    lr: float = 5e-3
    warmup_steps: int = 50

    def __post_init__(self) -> None:
        if self.n_val < 1 or self.n_test < 1 or self.n_val + self.n_test >= self.n_problems:
            raise ValueError(f"Need n_val, n_test >= 1 and n_val + n_test < n_problems; got "
                             f"{self.n_val}, {self.n_test}, {self.n_problems}.")


def code_problems(p: CodeGPTTrain):
    """``(train, val, test)`` problems of a ``code-gpt`` parameter set."""
    from genai_report.applications import code

    probs = code.make_problems(p.n_problems, p.problem_seed, p.max_steps)
    return code.split_problems(probs, p.n_val, p.n_test)


@artifact(
    "code-gpt",
    params={
        "smoke": CodeGPTTrain(n_problems=400, n_val=20, n_test=20, n_layer=1, n_head=2,
                              n_embd=32, batch_size=8, steps=30, warmup_steps=3),
        "quick": CodeGPTTrain(),
        "full": CodeGPTTrain(n_problems=20000, n_layer=4, n_head=4, n_embd=128,
                             batch_size=128, steps=4000, lr=2e-3, warmup_steps=200),
    },
    outputs=("model.pt",),
    seed=60,
)
def code_gpt(ctx, p: CodeGPTTrain):
    """Train a character-level GPT on generated one-line Python functions; record its
    held-out loss (bits per character over whole validation functions)."""
    import dataclasses
    import math

    import torch

    from genai_report.applications import code
    from genai_report.data.text import CharTokenizer
    from genai_report.models.gpt import GPT, GPTConfig
    from genai_report.training.loop import TrainConfig, train

    train_p, val_p, test_p = code_problems(p)
    tok = CharTokenizer.from_text("".join(q.source for q in (*train_p, *val_p, *test_p)))
    length = max(len(q.source) for q in (*train_p, *val_p, *test_p))
    rows, val_rows = (code.encode_problems(ps, tok, length) for ps in (train_p, val_p))
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=length, n_layer=p.n_layer,
                       n_head=p.n_head, n_embd=p.n_embd)
    model = GPT(config).to(ctx.device)
    gen, dev = ctx.generator(1), ctx.device

    def loss_fn(m, step):
        x, y = code.function_batch(rows, p.batch_size, gen)  # (B, L)
        return m(x.to(dev), y.to(dev))[1]

    def evaluate(m):
        return {"val_bpc": code.gpt_bits(m, val_rows)[0] / (val_rows[:, 1:] >= 0).sum().item()}

    hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                                             weight_decay=0.1),
                 eval_fn=evaluate, progress=ctx.progress, record_every=10)
    torch.save({"config": dataclasses.asdict(config), "state": model.state_dict(),
                "chars": tok.chars, "length": length, "task": dataclasses.asdict(p)},
               ctx.output("model.pt"))
    train_chars = int((rows[:, 1:] >= 0).sum())
    return {"n_params": model.num_params(), "steps": p.steps,
            "val_bpc": hist.last_eval()["val_bpc"],
            "val_loss_nats": hist.last_eval()["val_bpc"] * math.log(2),
            "train_time_s": hist.wall_time_s, "n_train_problems": len(train_p),
            "n_val_problems": len(val_p), "n_test_problems": len(test_p),
            "train_chars": train_chars,
            "epochs": p.steps * p.batch_size / len(train_p)}


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
    """The skewed-class diffusion models and their balanced control.

    Attributes:
        ratio: class k is drawn with probability proportional to ``ratio ** k`` (the
            control draws every class equally often; everything else is the same).
        seeds: independent models of each kind.
        steps, batch, lr, timesteps, p_uncond: as in ``digits-diffusion``.
        hidden, depth: the MLP denoiser's width and number of residual blocks.
    """

    ratio: float = 0.7
    seeds: int = 3
    steps: int = 1500
    batch: int = 128
    lr: float = 1e-3
    hidden: int = 192
    depth: int = 2
    timesteps: int = 200
    p_uncond: float = 0.3

    def __post_init__(self):
        if not 0 < self.ratio < 1:
            raise ValueError(f"ratio must be in (0, 1) for a skew, got {self.ratio}.")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}.")


@artifact(
    "skewed-diffusion",
    params={"smoke": SkewedFit(seeds=1, steps=20, batch=32, hidden=32, depth=1, timesteps=20),
            "quick": SkewedFit(),
            "full": SkewedFit(seeds=5, steps=20000, batch=256, hidden=512, depth=3,
                              timesteps=1000)},
    outputs=("diffusion.pt",),
    seed=61,
    data=(data_file,),
)
def skewed_diffusion(ctx, p: SkewedFit):
    """Train class-conditional digits diffusion models on a geometric class skew, and the
    same models on a balanced mix as the control, over several seeds.

    The ``2 * seeds`` models share one architecture, so they train at once as one
    :class:`~genai_report.training.ensemble.Ensemble` (one batched step instead of one
    per model); each keeps its own initialisation, data stream and noise, drawn from its
    own generator as if it trained alone.
    """
    import torch

    from genai_report.data import digits
    from genai_report.models.diffusion import Diffusion, DiffusionConfig, ensemble_loss
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    d = digits.load()
    mixes = {"skewed": torch.tensor([p.ratio**k for k in range(10)], dtype=torch.float64),
             "balanced": torch.ones(10, dtype=torch.float64)}
    counts = torch.bincount(d.y_train, minlength=10).double()
    members = []  # (kind, per-example weights, generator, model), in checkpoint order
    for kind, mix in mixes.items():
        mixes[kind] = mix = mix / mix.sum()
        # per-example weight = class share / class count, so classes appear in proportion `mix`
        weights = (mix / counts)[d.y_train]
        for s in range(p.seeds):
            gen = ctx.generator(100 * s + (kind == "balanced"))
            torch.manual_seed(ctx.seed + 100 * s)
            model = Diffusion(DiffusionConfig(data_shape=(1, 8, 8), timesteps=p.timesteps,
                                              hidden=p.hidden, depth=p.depth, n_classes=10,
                                              clip=1.0)).to(ctx.device)
            members.append((kind, weights, gen, model))
    ensemble = Ensemble([m.denoiser for *_, m in members]).to(ctx.device)
    gens = [gen for _kind, _w, gen, _model in members]

    def loss_fn(ens, step):
        # each member's batch, then its noise (ensemble_loss), from its own generator
        idx = torch.stack([torch.multinomial(weights, p.batch, replacement=True, generator=gen)
                           for _kind, weights, gen, _model in members])  # (K, B)
        x0, y = d.x_train[idx].to(ctx.device), d.y_train[idx].to(ctx.device)  # (K, B, ...)
        return ensemble_loss(ens, members[0][3], x0, gens, y, p_uncond=p.p_uncond)  # (K,)

    hist = train_ensemble(ensemble, loss_fn,
                          TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20),
                          progress=ctx.progress, record_every=10)
    ensemble.unstack_into([m.denoiser for *_, m in members])
    models, losses = {k: [] for k in mixes}, {k: [] for k in mixes}
    for (kind, _w, _g, model), loss in zip(members, hist.last_loss(), strict=True):
        models[kind].append(model.checkpoint())
        losses[kind].append(loss)
    torch.save({"models": models, "mixes": {k: m.tolist() for k, m in mixes.items()}},
               ctx.output("diffusion.pt"))
    return {"train_mix": mixes["skewed"].tolist(), "steps": p.steps, "seeds": p.seeds,
            "train_time_s": hist.wall_time_s, "last_loss": losses}
