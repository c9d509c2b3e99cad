"""Multimodal models on the digits: a tiny CLIP and a text-to-image diffusion model.

``digits-clip`` trains the contrastive image–text model of :mod:`genai_report.models.clip` on
digits paired with the generated captions of :mod:`genai_report.data.captions`, once per
seed, beside a supervised classifier with the *same* image tower, steps, batch, learning rate
and augmentation (the like-for-like baseline for zero-shot classification). It measures
zero-shot accuracy from the prompts ``"a zero"`` … ``"a nine"``, a linear probe on the frozen
image features, retrieval both ways against chance, and whether the embedding can tell the
attributes (thick/thin, leaning left/right) apart from text alone.

``digits-text-to-image`` trains the digits U-Net conditioned on the first seed's frozen
caption embeddings (:class:`~genai_report.models.text_to_image.TextDiffusion`) and samples
it from prompts at several classifier-free guidance scales: adherence (how often a judge
classifier reads the digit asked for, and the CLIP score), quality and diversity (FID in the
judge's features against the test split, recall), each over several sampling seeds; and
prompts with attributes that a class label cannot express, measured on the samples' own
pixels. The judge is ``digits-clip``'s first supervised classifier: it never sees a caption.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from genai_report.artifacts._digits_common import DIGITS
from genai_report.artifacts._outputs import write_json
from genai_report.pipeline import artifact


# --------------------------------------------------------------------------- CLIP
@dataclass(frozen=True)
class ClipFit:
    """Training of the tiny CLIP and of its supervised twin.

    Attributes:
        steps, batch, lr, warmup_steps, weight_decay: AdamW with warm-up and cosine decay,
            the same for CLIP and for the supervised classifier.
        embed_dim, text_width, text_layers: the model's shape (see
            :class:`~genai_report.models.clip.ClipConfig`).
        p_say: probability that a training caption names each true attribute.
        shift: random shift augmentation of the images, in pixels (both models).
        seeds: independent trainings of both models.
        probe_c: inverse L2 strength of the linear probe (logistic regression).
    """

    steps: int = 600
    batch: int = 128
    lr: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 0.05
    embed_dim: int = 32
    text_width: int = 64
    text_layers: int = 2
    p_say: float = 0.5
    shift: int = 1
    seeds: int = 3
    probe_c: float = 1.0

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}.")
        if not 0 <= self.p_say <= 1:
            raise ValueError(f"p_say must be in [0, 1], got {self.p_say}.")
        if self.steps < 1 or self.batch < 2:
            raise ValueError(f"steps must be >= 1 and batch >= 2, got {self.steps}, {self.batch}.")


RECALL_AT = (1, 5)
"""The ``k`` of retrieval recall@k."""


def _shifted(x, gen, shift: int):
    """Images rolled by one random shift of up to ``shift`` pixels (the classifier's augmentation)."""
    import torch

    if not shift:
        return x
    dx, dy = torch.randint(-shift, shift + 1, (2,), generator=gen).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def retrieval(sim, truth_of_query, ks=RECALL_AT) -> dict:
    """Recall@k and its chance level for one retrieval direction.

    Args:
        sim: ``(Q, C)`` similarity of each query to each candidate.
        truth_of_query: ``(Q, C)`` boolean, which candidates are correct for each query.
        ks: the ``k`` values.

    Returns:
        ``{"recall_at_k": share of queries with a correct candidate among the top k,
        "chance_at_k": the same for a uniformly random ranking}`` for each ``k``.
    """
    import math

    import torch

    out = {}
    Q, C = sim.shape
    order = sim.argsort(dim=1, descending=True)  # (Q, C)
    ranked_truth = torch.gather(truth_of_query, 1, order)  # (Q, C)
    n_true = truth_of_query.sum(1).tolist()
    for k in ks:
        out[f"recall_at_{k}"] = float(ranked_truth[:, :k].any(1).float().mean())
        # P(no correct among k random picks without replacement), per query
        miss = [math.comb(C - t, k) / math.comb(C, k) if C - t >= k else 0.0 for t in n_true]
        out[f"chance_at_{k}"] = 1 - sum(miss) / Q
    return out


@artifact(
    "digits-clip",
    params={
        "smoke": ClipFit(steps=10, batch=32, warmup_steps=2, seeds=2),
        "quick": ClipFit(),
        "full": ClipFit(steps=5000, batch=512, embed_dim=64, text_width=128, seeds=5),
    },
    outputs=("clip.pt", "judge.pt", "clip.json"),
    seed=160,
    data=DIGITS,
)
def digits_clip(ctx, p: ClipFit):
    """Train CLIP and the supervised classifier per seed; score zero-shot, probe, retrieval."""
    import torch

    from genai_report.data import captions as cap
    from genai_report.data import digits
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.clip import ClipConfig
    from genai_report.training.loop import TrainConfig

    d = digits.load()
    dev = ctx.device
    attrs = cap.Attributes.fit(d.x_train, d.y_train)
    stroke_tr, lean_tr = attrs.of(d.x_train, d.y_train)
    stroke_te, lean_te = attrs.of(d.x_test, d.y_test)
    texts = cap.all_captions()
    ids = cap.encode_batch(texts).to(dev)  # (90, MAX_LEN): every caption, encoded once a step
    x_tr, y_tr = d.x_train.to(dev), d.y_train.to(dev)
    x_te, y_te = d.x_test.to(dev), d.y_test.to(dev)
    cfg = ClipConfig(embed_dim=p.embed_dim, text_width=p.text_width, text_layers=p.text_layers)
    train_cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                            min_lr_ratio=0.1, weight_decay=p.weight_decay, grad_clip=1.0)
    prompts = cap.encode_batch([cap.caption(k) for k in range(10)]).to(dev)  # "a zero" ...
    full_te = cap.caption_index(d.y_test, stroke_te, lean_te)  # (N_test,) each image's caption

    clips, sups, clip_hist, sup_hist = _train_clip_seeds(ctx, p, cfg, train_cfg, x_tr, y_tr,
                                                         ids, stroke_tr, lean_tr, d.y_train)
    runs = []
    for seed, (model, sup) in enumerate(zip(clips, sups, strict=True)):
        losses = [r[seed] for r in clip_hist.member_loss[-5:]]
        runs.append(_score_clip(model, sup, x_tr, y_tr, x_te, y_te, ids, prompts, full_te,
                                stroke_te, lean_te, p.probe_c)
                    | {"seed": seed, "final_loss": sum(losses) / len(losses),
                       "temperature": float(1 / model.scale().detach())})
    first_model, judge = clips[0], sups[0]

    keys = ("zero_shot_accuracy", "supervised_accuracy", "linear_probe_accuracy",
            "stroke_accuracy", "slant_accuracy", "temperature",
            *(f"{direction}.recall_at_{k}" for direction in ("image_to_text", "text_to_image")
              for k in RECALL_AT))

    def value(run, key):
        head, _, tail = key.partition(".")
        return run[head][tail] if tail else run[head]

    summary = {k: over_seeds(value(r, k) for r in runs) for k in keys}
    out = {
        "zero_shot_accuracy": summary["zero_shot_accuracy"],
        "supervised_accuracy": summary["supervised_accuracy"],
        "linear_probe_accuracy": summary["linear_probe_accuracy"],
        "zero_shot_gap": over_seeds(r["supervised_accuracy"] - r["zero_shot_accuracy"]
                                    for r in runs),
        "stroke_accuracy": summary["stroke_accuracy"],
        "slant_accuracy": summary["slant_accuracy"],
        "image_to_text": {f"recall_at_{k}": summary[f"image_to_text.recall_at_{k}"] for k in RECALL_AT}
        | {f"chance_at_{k}": runs[0]["image_to_text"][f"chance_at_{k}"] for k in RECALL_AT},
        "text_to_image": {f"recall_at_{k}": summary[f"text_to_image.recall_at_{k}"] for k in RECALL_AT}
        | {f"chance_at_{k}": runs[0]["text_to_image"][f"chance_at_{k}"] for k in RECALL_AT},
        "temperature": summary["temperature"],
        # every seed's model trains at once: each ensemble's wall time (a metric; no output
        # file holds a "train_s", so the outputs repeat byte for byte)
        "train_s": {"clip": clip_hist.wall_time_s, "supervised": sup_hist.wall_time_s},
        "n_captions": len(texts),
        "n_test": len(y_te),
        "steps": p.steps,
        "seeds": p.seeds,
        "attribute_share_said": {"thick": float((stroke_tr == 1).float().mean()),
                                 "thin": float((stroke_tr == 2).float().mean())},
    }
    torch.save({**first_model.cpu().checkpoint(),
                "attributes": {k: getattr(attrs, k).tolist()
                               for k in ("ink_low", "ink_high", "slant_low", "slant_high")}},
               ctx.output("clip.pt"))
    # the first supervised twin also judges the text-to-image samples (digits-text-to-image)
    torch.save({"config": asdict(judge.config), "state": judge.cpu().state_dict()},
               ctx.output("judge.pt"))
    embedding = _embedding_sample(first_model.to(dev), x_te, y_te, prompts)
    write_json(ctx, "clip.json", {**out, "runs": runs, "embedding": embedding}, indent=None)
    return out


@functools.cache
def _clip_loss_class():
    """The module class an ensemble of CLIPs trains through: a
    :class:`~genai_report.models.clip.Clip` whose forward is a training step's contrastive
    loss (built on first use, so that importing this module does not import torch)."""
    import torch

    from genai_report.models.clip import clip_loss

    class ClipLoss(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, img, said, ids):  # (B, 1, 8, 8), (B,), (captions, MAX_LEN)
            m = self.clip
            return clip_loss(m.encode_image(img), m.encode_text(ids)[said], m.scale(), said)

    return ClipLoss


def _train_clip_seeds(ctx, p: ClipFit, cfg, train_cfg, x_tr, y_tr, ids, stroke_tr, lean_tr,
                      y_cpu):
    """Train every seed's CLIP as one :class:`~genai_report.training.ensemble.Ensemble`, and
    every seed's supervised twin as another.

    Seed ``s`` initialises both models after ``torch.manual_seed(ctx.seed * 100 + s)`` and
    draws each model's batches, captions and shifts from its own generator seeded the same,
    so the twins see the same images with the same shifts, and each member trains as it
    would alone (a test checks it against a model trained on its own).

    Returns:
        ``(clips, supervised, clip_history, supervised_history)``, the models in ``eval()``
        mode, one per seed.
    """
    import torch
    import torch.nn.functional as F

    from genai_report.data import captions as cap
    from genai_report.metrics.fid import DigitsClassifier
    from genai_report.models.clip import Clip, image_config
    from genai_report.training.ensemble import Ensemble, train_ensemble

    dev = x_tr.device
    clips, sups = [], []
    for seed in range(p.seeds):
        torch.manual_seed(ctx.seed * 100 + seed)
        clips.append(Clip(cfg).to(dev))
        torch.manual_seed(ctx.seed * 100 + seed)
        sups.append(DigitsClassifier(image_config(cfg)).to(dev))

    def batches(gens, with_captions: bool):
        """Each member's batch, from its own generator: ``(K, B, 1, 8, 8)`` images, their
        ``(K, B)`` labels and caption indices."""
        imgs, labels, said = [], [], []
        for gen in gens:
            idx = torch.randint(0, len(x_tr), (p.batch,), generator=gen)
            # the twin draws the captions too, unused, to stay in step with CLIP's batches
            said.append(cap.sample_captions(y_cpu[idx], stroke_tr[idx], lean_tr[idx], gen,
                                            p.p_say).to(dev))  # (B,) caption indices
            imgs.append(_shifted(x_tr[idx.to(dev)], gen, p.shift))
            labels.append(y_tr[idx.to(dev)])
        return torch.stack(imgs), torch.stack(labels), torch.stack(said) if with_captions else None

    def gens():
        return [torch.Generator().manual_seed(ctx.seed * 100 + s) for s in range(p.seeds)]

    members = [_clip_loss_class()(m) for m in clips]
    clip_gens = gens()
    every = ids.expand(p.seeds, *ids.shape)  # (K, captions, MAX_LEN)

    def clip_step(ens, step):
        img, _, said = batches(clip_gens, True)
        return ens(img, said, every)  # (K,)

    ensemble = Ensemble(members)
    clip_hist = train_ensemble(ensemble, clip_step, train_cfg, progress=ctx.progress,
                               record_every=50)
    ensemble.unstack_into(members)

    sup_gens = gens()  # the same batches

    def sup_step(ens, step):
        img, labels, _ = batches(sup_gens, False)
        logits = ens(img)  # (K, B, 10)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(),
                               reduction="none").view(p.seeds, -1).mean(1)  # (K,)

    sup_ensemble = Ensemble(sups)
    sup_hist = train_ensemble(sup_ensemble, sup_step, train_cfg, progress=ctx.progress,
                              record_every=50)
    sup_ensemble.unstack_into(sups)
    return ([m.eval() for m in clips], [m.eval() for m in sups], clip_hist, sup_hist)


def _score_clip(model, sup, x_tr, y_tr, x_te, y_te, ids, prompts, full_te, stroke_te, lean_te,
                probe_c: float) -> dict:
    """Zero-shot, supervised and linear-probe accuracy, retrieval, attribute accuracy."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from genai_report.data import captions as cap

    with torch.no_grad():
        img = model.encode_image(x_te)  # (N, D)
        zero_shot = (img @ model.encode_text(prompts).T).argmax(1)  # (N,)
        supervised = sup(x_te).argmax(1)
        all_txt = model.encode_text(ids)  # (90, D)
        feats_tr = model.image(x_tr).cpu().numpy()
        feats_te = model.image(x_te).cpu().numpy()
    probe = LogisticRegression(C=probe_c, max_iter=2000).fit(feats_tr, y_tr.cpu().numpy())
    probe_acc = float((probe.predict(feats_te) == y_te.cpu().numpy()).mean())

    # image -> text: rank the 90 captions; the correct one is the image's full caption
    sim = (img @ all_txt.T).cpu()  # (N, 90)
    truth = torch.zeros_like(sim, dtype=torch.bool)
    truth[torch.arange(len(full_te)), full_te] = True
    i2t = retrieval(sim, truth)
    # text -> image: each full caption present in the test split ranks the test images
    present = full_te.unique()
    t2i = retrieval(sim.T[present], present[:, None] == full_te[None, :])

    def attribute_accuracy(values, kind: str) -> float:
        """Given the true digit, does the right attribute prompt score higher than the other?"""
        which = values > 0
        if not which.any():
            return float("nan")
        digits_ = y_te.cpu()[which]
        first = cap.encode_batch([cap.caption(int(k), 1, 0) if kind == "stroke"
                                  else cap.caption(int(k), 0, 1) for k in digits_])
        second = cap.encode_batch([cap.caption(int(k), 2, 0) if kind == "stroke"
                                   else cap.caption(int(k), 0, 2) for k in digits_])
        with torch.no_grad():
            e = img[which.to(img.device)]
            s1 = (e * model.encode_text(first.to(e.device))).sum(1)
            s2 = (e * model.encode_text(second.to(e.device))).sum(1)
        guess = torch.where(s1 > s2, 1, 2).cpu()
        return float((guess == values[which]).float().mean())

    return {
        "zero_shot_accuracy": float((zero_shot == y_te).float().mean()),
        "supervised_accuracy": float((supervised == y_te).float().mean()),
        "linear_probe_accuracy": probe_acc,
        "image_to_text": i2t,
        "text_to_image": t2i,
        "stroke_accuracy": attribute_accuracy(stroke_te, "stroke"),
        "slant_accuracy": attribute_accuracy(lean_te, "slant"),
    }


def _embedding_sample(model, x_te, y_te, prompts, n: int = 300) -> dict:
    """Joint-space coordinates for the figure: test images and the ten prompts, in 2-D (PCA)."""
    import torch

    with torch.no_grad():
        img = model.encode_image(x_te[:n])  # (n, D)
        txt = model.encode_text(prompts)  # (10, D)
    both = torch.cat([img, txt]).cpu()
    centred = both - both.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    xy = centred @ v[:2].T  # (n + 10, 2)
    return {"images": xy[:n].tolist(), "labels": y_te[:n].tolist(), "prompts": xy[n:].tolist()}


# --------------------------------------------------------------------------- text to image
@dataclass(frozen=True)
class TextToImageFit:
    """Training and evaluation of the caption-conditioned digits diffusion model.

    Attributes:
        steps, batch, lr: training (AdamW, warm-up over a twentieth of the steps, cosine).
        channels, attention, timesteps, schedule, ema: the U-Net DDPM (see
            :class:`~genai_report.models.diffusion.DiffusionConfig`).
        p_uncond: share of captions dropped to "no caption" (for guidance).
        p_say: probability that a training caption names each true attribute.
        guidance: classifier-free guidance scales compared (0: unconditional).
        chosen_guidance: the scale of the sample grid and of the attribute prompts.
        n_per_prompt: samples per digit prompt at each scale, per sampling seed.
        n_per_attribute: samples per attribute prompt.
        sample_seeds: sampling seeds per guidance scale.
        ddim_steps: DDIM steps of every sample.
    """

    steps: int = 1500
    batch: int = 128
    lr: float = 2e-3
    channels: tuple[int, ...] = (16, 32)
    attention: bool = True
    timesteps: int = 1000
    schedule: str = "cosine"
    ema: float = 0.999
    p_uncond: float = 0.1
    p_say: float = 0.5
    guidance: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0)
    chosen_guidance: float = 2.0
    n_per_prompt: int = 30
    n_per_attribute: int = 20
    sample_seeds: int = 3
    ddim_steps: int = 20

    def __post_init__(self) -> None:
        if self.chosen_guidance not in self.guidance:
            raise ValueError(f"chosen_guidance {self.chosen_guidance} must be one of the "
                             f"guidance scales {self.guidance}.")
        if 0.0 not in self.guidance or 1.0 not in self.guidance:
            raise ValueError("guidance must include 0 (unconditional) and 1 (no guidance).")
        if self.sample_seeds < 1 or self.n_per_prompt < 1 or self.n_per_attribute < 1:
            raise ValueError("sample_seeds, n_per_prompt and n_per_attribute must be >= 1.")


ATTRIBUTE_PROMPTS = (("thick", 1, 0), ("thin", 2, 0), ("left", 0, 1), ("right", 0, 2))
"""(name, stroke index, slant index) of the attribute prompts: ``"a thick seven"``,
``"a thin seven"``, ``"a seven leaning left"``, ``"a seven leaning right"``."""


@artifact(
    "digits-text-to-image",
    deps=("digits-clip",),
    params={
        "smoke": TextToImageFit(steps=10, batch=32, channels=(8, 16), timesteps=50,
                                guidance=(0.0, 1.0, 2.0), n_per_prompt=2, n_per_attribute=2,
                                sample_seeds=2, ddim_steps=4),
        "quick": TextToImageFit(),
        "full": TextToImageFit(steps=10000, channels=(64, 128), ema=0.9995,
                               guidance=(0.0, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0), n_per_prompt=135,
                               n_per_attribute=50, sample_seeds=5, ddim_steps=50),
    },
    outputs=("text_to_image.pt", "samples.pt", "eval.json"),
    seed=161,
    data=DIGITS,
    dry_run={"sample_seeds": 1, "n_per_prompt": 4, "n_per_attribute": 2},
)
def digits_text_to_image(ctx, p: TextToImageFit):
    """Train the caption-conditioned U-Net; score prompts across guidance scales."""
    import torch

    from genai_report.data import captions as cap
    from genai_report.data import digits
    from genai_report.metrics.fid import DigitsEvaluator, load_classifier
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.clip import Clip
    from genai_report.models.diffusion import EMA, DiffusionConfig
    from genai_report.models.text_to_image import TextDiffusion
    from genai_report.training.loop import TrainConfig, train

    d = digits.load()
    dev = ctx.device
    # the judge: digits-clip's supervised classifier (the CLIP image tower's twin, trained
    # on labels); its features also give the FID, with real train-vs-test digits as floor
    evaluator = DigitsEvaluator(load_classifier(ctx.input("digits-clip", "judge.pt"), dev),
                                d.x_test)
    fid_floor = evaluator(d.x_train)["fid"]
    blob = torch.load(ctx.input("digits-clip", "clip.pt"), weights_only=True)
    clip = Clip.load(blob, dev).requires_grad_(False)
    attrs = cap.Attributes(**{k: torch.tensor(v) for k, v in blob["attributes"].items()})
    with torch.no_grad():  # the frozen text encoder, once for every caption
        table = clip.encode_text(cap.encode_batch(cap.all_captions()).to(dev))  # (90, D)
    stroke, lean = attrs.of(d.x_train, d.y_train)
    x_tr = d.x_train.to(dev)

    model = TextDiffusion(DiffusionConfig(data_shape=(1, 8, 8), timesteps=p.timesteps,
                                          denoiser="unet", channels=p.channels,
                                          attention=p.attention, clip=1.0,
                                          schedule=p.schedule), table.size(1)).to(dev)
    ema = EMA(model, p.ema)
    gen = ctx.generator()

    def loss_fn(m, step):
        if step:
            ema.update(m)  # the weights after the previous optimiser step
        idx = torch.randint(0, len(x_tr), (p.batch,), generator=gen)
        said = cap.sample_captions(d.y_train[idx], stroke[idx], lean[idx], gen, p.p_say)
        return m.loss(x_tr[idx.to(dev)], table[said.to(dev)], generator=gen,
                      p_uncond=p.p_uncond)

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=max(1, p.steps // 20))
    hist = train(model, loss_fn, cfg, progress=ctx.progress, record_every=10)
    ema.update(model)
    model = ema.shadow.eval()
    torch.save(model.checkpoint(), ctx.output("text_to_image.pt"))

    digit_prompts = torch.arange(10).repeat_interleave(p.n_per_prompt)  # (10 n,)
    cond = table[cap.caption_index(digit_prompts, torch.zeros_like(digit_prompts),
                                   torch.zeros_like(digit_prompts)).to(dev)]  # "a seven" ...

    def draw(scale: float, c, g):
        return model.sample(len(c), generator=g, y=c, guidance_scale=scale, method="ddim",
                            steps=p.ddim_steps).clamp(-1, 1)

    def adherence(samples, digits_asked, c) -> tuple[float, float]:
        """Classifier accuracy on the digit asked for; mean CLIP score (cosine similarity)."""
        with torch.no_grad():
            pred = evaluator.classifier(samples.to(dev)).argmax(1).cpu()
            score = (clip.encode_image(samples.to(dev)) * c).sum(1).mean()
        return float((pred == digits_asked).float().mean()), float(score)

    by_scale, grid = [], {}
    for scale in ctx.progress(p.guidance, desc="guidance scales"):
        rows = []
        for s in range(p.sample_seeds):
            samples = draw(scale, cond, ctx.generator(100 + s))
            acc, clip_score = adherence(samples, digit_prompts, cond)
            rows.append({"accuracy": acc, "clip_score": clip_score, **evaluator(samples)})
            if s == 0:
                grid[scale] = samples.view(10, p.n_per_prompt, 1, 8, 8)[:, :8].cpu()
        by_scale.append({"guidance": scale,
                         **{k: over_seeds(r[k] for r in rows)
                            for k in ("accuracy", "clip_score", "fid", "precision", "recall")}})

    # attribute prompts a label cannot express, at the chosen scale
    attributes, attribute_grid = {}, {}
    n = p.n_per_attribute
    asked = torch.arange(10).repeat_interleave(n)  # (10 n,)
    for name, st, sl in ATTRIBUTE_PROMPTS:
        c = table[cap.caption_index(asked, torch.full_like(asked, st),
                                    torch.full_like(asked, sl)).to(dev)]
        samples = draw(p.chosen_guidance, c, ctx.generator(200 + len(attributes))).cpu()
        acc, _ = adherence(samples, asked, c)
        got_stroke, got_lean = attrs.of(samples, asked)
        attributes[name] = {
            "ink": float(cap.ink(samples).mean()),
            "slant": float(cap.slant(samples).mean()),
            "ink_by_digit": cap.ink(samples).view(10, n).mean(1).tolist(),
            "slant_by_digit": cap.slant(samples).view(10, n).mean(1).tolist(),
            # share of samples in the asked tercile of the real training digits
            "in_asked_tercile": float(((got_stroke == st) if st else (got_lean == sl))
                                      .float().mean()),
            "accuracy": acc,
        }
        attribute_grid[name] = samples.view(10, n, 1, 8, 8)[:, :4]
    real = {"thick": stroke == 1, "thin": stroke == 2, "left": lean == 1, "right": lean == 2}
    real_stats = {k: {"ink": float(cap.ink(d.x_train[m]).mean()),
                      "slant": float(cap.slant(d.x_train[m]).mean())} for k, m in real.items()}

    chosen = next(r for r in by_scale if r["guidance"] == p.chosen_guidance)
    unguided = next(r for r in by_scale if r["guidance"] == 1.0)
    uncond = next(r for r in by_scale if r["guidance"] == 0.0)
    thick, thin = attributes["thick"], attributes["thin"]
    left, right = attributes["left"], attributes["right"]
    out = {
        "by_scale": by_scale,
        "chosen_guidance": p.chosen_guidance,
        "chosen": chosen,
        "unguided": unguided,
        "unconditional": uncond,
        "attributes": {k: {kk: vv for kk, vv in v.items() if not kk.endswith("_by_digit")}
                       for k, v in attributes.items()},
        "real_attributes": real_stats,
        "thick_above_thin_digits": sum(a > b for a, b in zip(thick["ink_by_digit"],
                                                             thin["ink_by_digit"], strict=True)),
        "right_above_left_digits": sum(a > b for a, b in zip(right["slant_by_digit"],
                                                             left["slant_by_digit"],
                                                             strict=True)),
        "chance_accuracy": 0.1,
        "fid_floor": fid_floor,
        "steps": p.steps,
        "ddim_steps": p.ddim_steps,
        "samples_per_scale": 10 * p.n_per_prompt,
        "sample_seeds": p.sample_seeds,
        "train_time_s": hist.wall_time_s,
        "first_loss": hist.train_loss[0],
        "last_loss": sum(hist.train_loss[-10:]) / len(hist.train_loss[-10:]),
    }
    torch.save({"guidance": {str(k): v for k, v in grid.items()},
                "attributes": attribute_grid}, ctx.output("samples.pt"))
    write_json(ctx, "eval.json", {**out, "attributes_by_digit": {
        k: {"ink": v["ink_by_digit"], "slant": v["slant_by_digit"]}
        for k, v in attributes.items()}})
    return out
