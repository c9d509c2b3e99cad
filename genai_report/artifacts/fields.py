"""A 2-D neural field fitted to a photograph, with and without Fourier features.

Tancik et al. (2020) fit a coordinate MLP to the pixels of a regular half-resolution grid
of an image and test it on the pixels in between: a network that fits only low frequencies
gives a blurry image (low PSNR on both sets), one that fits frequencies above what the
training grid can pin down fits the training pixels and fails between them (train PSNR up,
test PSNR down). :func:`fit_fields` repeats that on a 64x64 crop of scikit-learn's bundled
``china.jpg``, for raw coordinates, Gaussian Fourier features of several bandwidths
``sigma`` and NeRF's positional encoding, all with the same MLP, full-batch Adam and steps.

The held-out pixels are split in two: those at (odd row, odd column) *validate* (they pick
each encoding's learning rate from a small grid, by the mean over seeds, so that a rate that
sometimes diverges is not chosen), the others *test*. So
every encoding, raw coordinates included, gets its own best rate without seeing the test
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genai_report.artifacts._outputs import write_json
from genai_report.artifacts.scaling import _eval_steps, torch_threads
from genai_report.pipeline import artifact


def image_file() -> Path:
    """Path of ``china.jpg`` inside scikit-learn (part of the node's cache key)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locate without importing scikit-learn
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-learn is not installed; its sample image is needed.")
    return Path(spec.origin).parent / "datasets" / "images" / "china.jpg"


def load_image(size: int = 64, crop: tuple[int, int, int] = (0, 140, 128)):
    """A square crop of ``china.jpg``, resized with anti-aliasing, RGB in [0, 1].

    Args:
        size: side of the returned image in pixels.
        crop: ``(top, left, side)`` of the crop in the original 427x640 photograph (the
            default is the top of the pagoda against the sky).

    Returns:
        A float32 tensor ``(size, size, 3)``.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_sample_image

    top, left, side = crop
    photo = np.array(load_sample_image("china.jpg"), dtype=np.float32) / 255  # (427, 640, 3)
    if top < 0 or left < 0 or top + side > photo.shape[0] or left + side > photo.shape[1]:
        raise ValueError(f"crop {crop} does not fit in the {photo.shape[:2]} photograph.")
    x = torch.from_numpy(photo[top:top + side, left:left + side]).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                      align_corners=False)  # (1, 3, size, size)
    return x[0].permute(1, 2, 0).clamp(0, 1).contiguous()  # (size, size, 3)


def split_pixels(size: int):
    """Masks ``(size, size)`` of the train, validation and test pixels.

    Train: even row and even column (the half-resolution grid). Validation: odd row and odd
    column. Test: the remaining half of the pixels, between two training pixels.
    """
    import torch

    r = torch.arange(size)[:, None] % 2  # (size, 1)
    c = torch.arange(size)[None, :] % 2  # (1, size)
    train = (r == 0) & (c == 0)
    val = (r == 1) & (c == 1)
    return train, val, ~(train | val)


@dataclass(frozen=True)
class Fields:
    """The neural-field study.

    Attributes:
        size: side of the image (the training grid is ``size / 2``).
        crop: ``(top, left, side)`` of the photograph's crop (see :func:`load_image`).
        sigmas: bandwidths of the Fourier features, in cycles per image width.
        n_freqs: octaves ``L`` of the positional encoding (highest ``2^(L-1)`` cycles).
        width, depth: the MLP (the same for every encoding).
        n_features: Fourier frequencies (``2 n_features`` input channels).
        steps: full-batch Adam steps (cosine decay to a tenth of the rate).
        lrs: learning-rate grid; each encoding keeps the rate with the best mean
            validation PSNR over seeds.
        seeds: seeds per encoding and rate (frequencies, initial weights).
        evals: evaluations along training (log-spaced steps).
        threads: torch threads (0: leave torch's setting).
    """

    size: int = 64
    crop: tuple[int, int, int] = (0, 140, 128)
    sigmas: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)
    n_freqs: int = 5
    width: int = 64
    depth: int = 3
    n_features: int = 64
    steps: int = 300
    lrs: tuple[float, ...] = (3e-3, 1e-2, 3e-2, 1e-1)
    seeds: int = 3
    evals: int = 10
    threads: int = 1

    def __post_init__(self) -> None:
        if self.size < 4 or self.size % 2:
            raise ValueError(f"size must be even and >= 4, got {self.size}.")
        if not self.sigmas or min(self.sigmas) <= 0:
            raise ValueError(f"sigmas must be a non-empty tuple of positives, got {self.sigmas}.")
        if not self.lrs or min(self.lrs) <= 0:
            raise ValueError(f"lrs must be a non-empty tuple of positives, got {self.lrs}.")
        if self.seeds < 1 or self.steps < 1 or self.evals < 2:
            raise ValueError("seeds and steps must be >= 1 and evals >= 2.")


def encodings(p: Fields) -> list[dict]:
    """The encodings compared: ``{"name", "encoding", "sigma"}`` each."""
    out = [{"name": "none", "encoding": "none", "sigma": 0.0}]
    # no dots in names: they are record keys, and checks read ``fourier-0p3`` as one key
    out += [{"name": "fourier-" + f"{s:g}".replace(".", "p"), "encoding": "fourier",
             "sigma": s} for s in p.sigmas]
    out.append({"name": "positional", "encoding": "positional", "sigma": 0.0})
    return out


def fit_fields(ctx, p: Fields):
    """Fit every encoding (rate tuned on validation pixels), record PSNR curves and renders."""
    with torch_threads(p.threads):
        return _fit_fields(ctx, p)


def _fit_group(ctx, p: Fields, encs: list[dict], lr: float, data: dict):
    """Fit every seed of every encoding in ``encs`` at rate ``lr``, as one
    :class:`~genai_report.training.ensemble.Ensemble`.

    The encodings must share one architecture (Fourier features of several bandwidths
    differ only in their frequencies, a buffer). Member ``(encoding, seed)`` draws its
    frequencies and initial weights from ``ctx.seed * 1000 + seed``, as it would alone, and
    its loss is its own mean squared error on every training pixel; Adam then updates it
    as it would update that model alone (a test checks it against a fit of its own).

    Returns:
        ``(fits, seconds)``: per encoding name, ``{"curves": [...], "model0": ...}``, each
        seed's PSNR curve (train, validation and test pixels at log-spaced steps) and the
        seed-0 model; and the training's wall time.
    """
    import torch

    from genai_report.models.fields import CoordinateMLP, FieldConfig, psnr
    from genai_report.training.ensemble import Ensemble, train_ensemble
    from genai_report.training.loop import TrainConfig

    members, keys = [], []
    for enc in encs:
        cfg = FieldConfig(encoding=enc["encoding"], sigma=enc["sigma"] or 1.0,
                          n_features=p.n_features, n_freqs=p.n_freqs, width=p.width,
                          depth=p.depth)
        for seed in range(p.seeds):
            members.append(CoordinateMLP(cfg, torch.Generator().manual_seed(
                ctx.seed * 1000 + seed)))
            keys.append((enc["name"], seed))
    ensemble = Ensemble(members)
    k = ensemble.size
    eval_at = set(_eval_steps(p.steps, p.evals))
    curves: list[list[dict]] = [[] for _ in members]

    def predict(ens, split: str):
        x, y = data[split]  # (N, 2), (N, 3)
        return ens(x.expand(k, *x.shape)), y  # (K, N, 3), (N, 3)

    @torch.no_grad()
    def record(ens, step: int) -> None:
        preds = {split: predict(ens, split) for split in ("train", "val", "test")}
        for i, curve in enumerate(curves):
            curve.append({"step": step, **{split: psnr(pred[i], y)
                                           for split, (pred, y) in preds.items()}})

    def loss_fn(ens, step):
        if step in eval_at:  # the models after `step` updates
            record(ens, step)
        pred, y = predict(ens, "train")  # every training pixel, every step
        return ((pred - y) ** 2).flatten(1).mean(1)  # (K,): each member's own loss

    hist = train_ensemble(ensemble, loss_fn, TrainConfig(steps=p.steps, lr=lr, min_lr_ratio=0.1,
                                                         grad_clip=0.0),
                          progress=ctx.progress, record_every=p.steps)
    record(ensemble, p.steps)
    ensemble.unstack_into(members)
    fits: dict[str, dict] = {}
    for (name, seed), model, curve in zip(keys, members, curves, strict=True):
        fit = fits.setdefault(name, {"curves": [], "model0": None})
        fit["curves"].append(curve)
        if seed == 0:
            fit["model0"] = model
    return fits, hist.wall_time_s


def _fit_fields(ctx, p: Fields):
    import torch

    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.fields import grid, psnr

    img = load_image(p.size, p.crop)  # (S, S, 3)
    coords = grid(p.size, p.size)  # (S, S, 2)
    masks = dict(zip(("train", "val", "test"), split_pixels(p.size), strict=True))
    data = {k: (coords[m], img[m]) for k, m in masks.items()}  # (N, 2), (N, 3)
    # the simplest interpolation of the training grid, for scale: copy the nearest pixel
    near = img[::2, ::2].repeat_interleave(2, 0).repeat_interleave(2, 1)  # (S, S, 3)
    results, renders, train_s = {}, {}, 0.0
    # Every rate on every seed: one ensemble per rate and architecture (the Fourier
    # bandwidths share one), so a step updates all those models at once.
    groups: dict[str, list[dict]] = {}
    for enc in encodings(p):
        groups.setdefault(enc["encoding"], []).append(enc)
    fitted: dict[str, dict[float, dict]] = {enc["name"]: {} for enc in encodings(p)}
    for encs in groups.values():
        for lr in p.lrs:
            fits, secs = _fit_group(ctx, p, encs, lr, data)
            train_s += secs
            for name, fit in fits.items():
                fitted[name][lr] = fit
    for enc in encodings(p):
        tuning = {}  # the best mean validation PSNR over seeds wins
        for lr, fit in fitted[enc["name"]].items():
            curves = fit["curves"]
            tuning[lr] = (sum(c[-1]["val"] for c in curves) / p.seeds, fit["model0"], curves)
        best_lr = max(p.lrs, key=lambda lr: tuning[lr][0])
        _, model, curves = tuning[best_lr]
        with torch.no_grad():
            renders[enc["name"]] = model(coords).clamp(0, 1)  # (S, S, 3), seed 0
        results[enc["name"]] = {
            **enc, "lr": best_lr,
            "lr_at_grid_edge": len(p.lrs) > 1 and best_lr in (min(p.lrs), max(p.lrs)),
            "val_by_lr": [{"lr": lr, "val": tuning[lr][0]} for lr in p.lrs],
            "train": over_seeds([c[-1]["train"] for c in curves]),
            "test": over_seeds([c[-1]["test"] for c in curves]),
            "gap": over_seeds([c[-1]["train"] - c[-1]["test"] for c in curves]),
            "curves": curves,
        }
    fourier = [e["name"] for e in encodings(p) if e["encoding"] == "fourier"]
    best = max(fourier, key=lambda n: results[n]["test"]["mean"])
    highest = fourier[-1]
    none = results["none"]
    gain = {split: over_seeds([f[-1][split] - n[-1][split] for f, n in
                               zip(results[best]["curves"], none["curves"], strict=True)])
            for split in ("train", "test")}
    torch.save({"target": img, "nearest": near, "renders": renders,
                "masks": {k: m for k, m in masks.items()}}, ctx.output("renders.pt"))
    write_json(ctx, "fields.json", results, indent=None)
    summary = {k: {kk: v[kk] for kk in ("sigma", "lr", "lr_at_grid_edge", "train", "test",
                                         "gap")} for k, v in results.items()}
    return {
        "size": p.size, "train_pixels": int(masks["train"].sum()),
        "test_pixels": int(masks["test"].sum()), "steps": p.steps, "width": p.width,
        "depth": p.depth, "n_features": p.n_features, "n_freqs": p.n_freqs,
        "lrs": list(p.lrs), "sigmas": list(p.sigmas), "seeds": p.seeds,
        "encodings": summary, "best_sigma": results[best]["sigma"], "best": best,
        "highest": highest, "gain_best_over_none": gain,
        "nearest_test_psnr": psnr(near[masks["test"]], img[masks["test"]]),
        "train_s": train_s,
    }


artifact(
    "fields-fit",
    params={
        "smoke": Fields(size=16, width=16, n_features=8, steps=6,
                        lrs=(1e-2,), seeds=2, evals=3, n_freqs=3),
        "quick": Fields(),
        "full": Fields(size=128, crop=(0, 76, 256), sigmas=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), width=256,
                       depth=4, n_features=256, n_freqs=6, steps=2000,
                       lrs=(1e-3, 3e-3, 1e-2, 3e-2), seeds=5, evals=16),
    },
    outputs=("fields.json", "renders.pt"),
    seed=150,
    data=(image_file,),
)(fit_fields)
