"""A vision transformer against a convolutional classifier of the same size, on digits.

Dosovitskiy et al. (2021) found that a ViT trained on ImageNet alone loses to a ResNet of
comparable size, and wins only after pre-training on 14M-300M images: a convolution builds
in locality and translation equivariance, which a transformer has to learn from data.
:func:`compare` measures that trade on the report's 8x8 digits, at three training-set
sizes, for the same number of steps and batch, each model with its own learning rate from
a small grid (picked on a validation set held out from the training split, never on the
test digits). It also records the ViT's attention over patches and, as a probe of the
convolution's built-in translation equivariance, the test accuracy of both models on test
digits shifted by one pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts._outputs import write_json
from genai_report.artifacts.scaling import torch_threads
from genai_report.data.digits import data_file
from genai_report.pipeline import artifact

MODELS = ("cnn", "vit")
"""The two classifiers compared."""

SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0))
"""One-pixel shifts ``(rows, columns)`` of the translation probe."""


@dataclass(frozen=True)
class VitStudy:
    """The ViT-versus-CNN study.

    Attributes:
        fractions: training-set sizes, as fractions of the training pool.
        val_fraction: share of the training split held out to pick learning rates.
        n_embd, n_layer, n_head, patch_size: the ViT.
        channels, features: the CNN (:class:`~genai_report.metrics.fid.DigitsClassifier`).
        steps, batch_size: the same optimiser budget for both models and every size.
        lrs_cnn, lrs_vit: learning-rate grids, placed so that each model's best rate lies
            inside its own grid (the record flags one at an edge); each model keeps its
            best (validation accuracy, first seed, largest size) for every size.
        weight_decay: AdamW decay on matrices, both models.
        seeds: seeds per model and size (the subset, the initial weights and the batches).
        n_attention: test digits whose ``[CLS]`` attention is saved for the figure.
        threads: torch threads (0: leave torch's setting).
    """

    fractions: tuple[float, ...] = (0.1, 0.3, 1.0)
    val_fraction: float = 0.2
    n_embd: int = 32
    n_layer: int = 2
    n_head: int = 4
    patch_size: int = 2
    channels: int = 24
    features: int = 64
    steps: int = 400
    batch_size: int = 64
    lrs_cnn: tuple[float, ...] = (1e-2, 3e-2, 1e-1)
    lrs_vit: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    weight_decay: float = 0.05
    seeds: int = 3
    n_attention: int = 6
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must be in (0, 1], got {self.fractions}.")
        if list(self.fractions) != sorted(self.fractions):
            raise ValueError(f"fractions must be increasing, got {self.fractions}.")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}.")
        for lrs in (self.lrs_cnn, self.lrs_vit):
            if not lrs or min(lrs) <= 0:
                raise ValueError(f"learning-rate grids must be non-empty and positive, "
                                 f"got {lrs}.")
        if self.seeds < 1 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("seeds, steps and batch_size must be >= 1.")


def stratified_order(y, generator):
    """Indices of ``y`` such that every prefix is (nearly) class-balanced, shuffled per class.

    A prefix of length ``k`` holds about ``k / n_classes`` of each class, so training sets of
    growing size are nested.
    """
    import torch

    per_class = [torch.nonzero(y == c).flatten() for c in torch.unique(y)]
    per_class = [ix[torch.randperm(len(ix), generator=generator)] for ix in per_class]
    rank = torch.empty(len(y))
    for ix in per_class:  # the j-th item of a class gets rank j / n_c
        rank[ix] = (torch.arange(len(ix)) + 0.5) / len(ix)
    return torch.argsort(rank, stable=True)


def shift(x, dy: int, dx: int, fill: float = -1.0):
    """Images ``(B, 1, H, W)`` moved by ``(dy, dx)`` pixels, the vacated border set to ``fill``."""
    import torch

    out = torch.full_like(x, fill)
    H, W = x.shape[-2:]
    ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
    xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def _make(p: VitStudy, name: str):
    from genai_report.metrics.fid import ClassifierConfig, DigitsClassifier
    from genai_report.models.vit import ViT, ViTConfig

    if name == "vit":
        return ViT(ViTConfig(patch_size=p.patch_size, n_layer=p.n_layer, n_head=p.n_head,
                             n_embd=p.n_embd))
    return DigitsClassifier(ClassifierConfig(channels=p.channels, features=p.features))


def _fit(ctx, p: VitStudy, name: str, lr: float, seed: int, x, y):
    import torch
    import torch.nn.functional as F

    from genai_report.training.loop import TrainConfig, train

    torch.manual_seed(ctx.seed * 1000 + seed)  # initial weights
    model = _make(p, name)
    gen = torch.Generator().manual_seed(ctx.seed * 1000 + seed)  # batches
    b = min(p.batch_size, len(y))

    def loss_fn(m, step):
        ix = torch.randint(len(y), (b,), generator=gen)  # (b,)
        return F.cross_entropy(m(x[ix]), y[ix])

    cfg = TrainConfig(steps=p.steps, lr=lr, weight_decay=p.weight_decay,
                      warmup_steps=max(1, p.steps // 20), min_lr_ratio=0.1, grad_clip=1.0)
    hist = train(model, loss_fn, cfg, progress=ctx.progress, record_every=p.steps)
    return model.eval(), hist.wall_time_s


def _fit_together(ctx, p: VitStudy, name: str, lr: float, subsets: list[tuple[int, object, object]]):
    """:func:`_fit` for every ``(seed, x, y)`` in ``subsets`` at rate ``lr``, as one
    :class:`~genai_report.training.ensemble.Ensemble`.

    Member ``k`` starts from the weights and draws the batches its seed gives :func:`_fit`,
    from its own training set; a set smaller than the batch is drawn whole-size, as
    :func:`_fit` draws it, and padded to the largest member's batch, the padding masked out
    of its loss. So each member's loss, clipped gradient and AdamW update are its own.

    Returns:
        ``(models, seconds)``: the trained models (in ``eval()`` mode), in the order of
        ``subsets``, and the training's wall time.
    """
    import torch
    import torch.nn.functional as F

    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    models, gens = [], []
    for seed, _, _ in subsets:
        torch.manual_seed(ctx.seed * 1000 + seed)  # initial weights
        models.append(_make(p, name))
        gens.append(torch.Generator().manual_seed(ctx.seed * 1000 + seed))  # batches
    ensemble = Ensemble(models)
    sizes = [min(p.batch_size, len(y)) for _, _, y in subsets]
    b = max(sizes)
    mask = torch.stack([(torch.arange(b) < n).float() for n in sizes])  # (K, b)

    def loss_fn(ens, step):
        xs, ys = [], []
        for (_, x, y), n, gen in zip(subsets, sizes, gens, strict=True):
            ix = F.pad(torch.randint(len(y), (n,), generator=gen), (0, b - n))  # (b,)
            xs.append(x[ix])
            ys.append(y[ix])
        logits = ens(torch.stack(xs))  # (K, b, classes)
        ce = F.cross_entropy(logits.flatten(0, 1), torch.stack(ys).flatten(),
                             reduction="none").view(len(models), b)  # (K, b)
        return (ce * mask).sum(1) / mask.sum(1)  # (K,): each member's own mean

    cfg = TrainConfig(steps=p.steps, lr=lr, weight_decay=p.weight_decay,
                      warmup_steps=max(1, p.steps // 20), min_lr_ratio=0.1, grad_clip=1.0)
    hist = train_ensemble(ensemble, loss_fn, cfg, progress=ctx.progress, record_every=p.steps)
    ensemble.unstack_into(models)
    return [m.eval() for m in models], hist.wall_time_s


def _accuracy(model, x, y) -> float:
    import torch

    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def compare(ctx, p: VitStudy):
    """Train both models at every size and seed; record accuracies, shifts and attention."""
    with torch_threads(p.threads):
        return _compare(ctx, p)


def _compare(ctx, p: VitStudy):
    import torch

    from genai_report.data import digits
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.vit import attention_distance

    d = digits.load()
    split = stratified_order(d.y_train, torch.Generator().manual_seed(ctx.seed))
    n_val = round(p.val_fraction * len(split))
    val_ix, pool_ix = split[:n_val], split[n_val:]
    x_val, y_val = d.x_train[val_ix], d.y_train[val_ix]
    x_pool, y_pool = d.x_train[pool_ix], d.y_train[pool_ix]
    sizes = [max(10, round(f * len(pool_ix))) for f in p.fractions]
    orders = [stratified_order(y_pool, torch.Generator().manual_seed(ctx.seed * 100 + s))
              for s in range(p.seeds)]  # each seed its own nested subsets
    train_s = 0.0
    # learning rate: best validation accuracy of the first seed on the largest set
    tuning, chosen = {}, {}
    for name in MODELS:
        ix = orders[0][:sizes[-1]]
        fits, lrs = {}, p.lrs_vit if name == "vit" else p.lrs_cnn
        for lr in lrs:
            model, secs = _fit(ctx, p, name, lr, 0, x_pool[ix], y_pool[ix])
            train_s += secs
            fits[lr] = (_accuracy(model, x_val, y_val), model)
        chosen[name] = max(lrs, key=lambda lr: fits[lr][0])
        tuning[name] = {"val_by_lr": [{"lr": lr, "val_acc": fits[lr][0]} for lr in lrs],
                        "lr": chosen[name], "model": fits[chosen[name]][1],
                        "lr_at_grid_edge": len(lrs) > 1
                        and chosen[name] in (min(lrs), max(lrs))}
    runs: dict[str, list[list[dict]]] = {name: [] for name in MODELS}
    kept = {}
    for name in MODELS:
        # every size and seed at the chosen rate, as one ensemble (bar the tuning run)
        last = len(sizes) - 1
        wanted = [(i, seed) for i in range(len(sizes)) for seed in range(p.seeds)
                  if (i, seed) != (last, 0)]
        fitted = {(last, 0): tuning[name]["model"]}
        if wanted:
            models, secs = _fit_together(ctx, p, name, chosen[name], [
                (seed, x_pool[orders[seed][:sizes[i]]], y_pool[orders[seed][:sizes[i]]])
                for i, seed in wanted])
            train_s += secs
            fitted.update(zip(wanted, models, strict=True))
        kept[name] = fitted[last, 0]
        for i in range(len(sizes)):
            per_seed = []
            for seed in range(p.seeds):
                model = fitted[i, seed]
                shifted = [_accuracy(model, shift(d.x_test, dy, dx), d.y_test)
                           for dy, dx in SHIFTS]
                per_seed.append({"seed": seed, "test_acc": _accuracy(model, d.x_test, d.y_test),
                                 "shifted_acc": sum(shifted) / len(shifted)})
            runs[name].append(per_seed)
    summary = {}
    for name in MODELS:
        summary[name] = {
            "lr": chosen[name], "lr_at_grid_edge": tuning[name]["lr_at_grid_edge"],
            "val_by_lr": tuning[name]["val_by_lr"],
            "params": sum(q.numel() for q in _make(p, name).parameters()),
            "by_size": [{"n": n, "test_acc": over_seeds([r["test_acc"] for r in rs]),
                         "shifted_acc": over_seeds([r["shifted_acc"] for r in rs]),
                         "shift_drop": over_seeds([r["test_acc"] - r["shifted_acc"]
                                                   for r in rs])}
                        for n, rs in zip(sizes, runs[name], strict=True)],
        }
    gap = [over_seeds([c["test_acc"] - v["test_acc"] for c, v in zip(cr, vr, strict=True)])
           for cr, vr in zip(runs["cnn"], runs["vit"], strict=True)]  # CNN minus ViT
    # the ViT's attention: [CLS] over patches for a few test digits, distances per head
    vit = kept["vit"]
    with torch.no_grad():
        _, maps = vit.attention_maps(d.x_test)  # (L, B, H, T, T)
    cfg = vit.config
    dist = attention_distance(maps, cfg.grid, cfg.patch_size).mean(1)  # (L, H)
    first = [int(torch.nonzero(d.y_test == c)[0]) for c in range(p.n_attention)]
    cls_maps = maps[:, first, :, 0, 1:].mean(2)  # (L, n, N): heads averaged
    torch.save({"images": d.x_test[first], "labels": d.y_test[first], "cls": cls_maps,
                "grid": cfg.grid, "patch_size": cfg.patch_size},
               ctx.output("attention.pt"))
    write_json(ctx, "vit.json", {"runs": runs, "summary": summary}, indent=None)
    return {
        "sizes": sizes, "fractions": list(p.fractions), "val_size": int(n_val),
        "pool_size": int(len(pool_ix)), "test_size": int(len(d.y_test)),
        "steps": p.steps, "batch_size": p.batch_size, "seeds": p.seeds,
        "models": summary, "gap_cnn_minus_vit": gap,
        "attention_distance": dist.tolist(),
        "attention_distance_by_layer": dist.mean(1).tolist(),
        # the same average under uniform attention: every patch attends to all 16 equally
        "attention_distance_uniform": float(attention_distance(
            torch.ones(cfg.n_patches + 1, cfg.n_patches + 1), cfg.grid, cfg.patch_size)),
        "attention_distance_spread": [float(dist[i].max() - dist[i].min())
                                      for i in range(len(dist))],
        "vit_config": {"n_embd": p.n_embd, "n_layer": p.n_layer, "n_head": p.n_head,
                       "patch_size": p.patch_size, "tokens": cfg.n_patches + 1},
        "train_s": train_s,
    }


artifact(
    "vit-digits",
    params={
        "smoke": VitStudy(n_embd=16, channels=8, features=16, steps=5,
                          batch_size=16, lrs_cnn=(1e-2,), lrs_vit=(3e-3,), seeds=2,
                          n_attention=3),
        "quick": VitStudy(),
        "full": VitStudy(n_embd=64, n_layer=4, channels=48, steps=3000, batch_size=128,
                         lrs_cnn=(3e-3, 1e-2, 3e-2, 1e-1), lrs_vit=(3e-4, 1e-3, 3e-3, 1e-2),
                         seeds=5),
    },
    outputs=("vit.json", "attention.pt"),
    seed=155,
    data=(data_file,),
)(compare)
