"""Trained models of the "families of generative models" chapter that learn 8x8 digits: the
feature classifier behind the digits FID, the DCGAN, the VAEs and the PixelCNN.

The diffusion models (pixel and latent) are in :mod:`genai_report.artifacts.digits_diffusion`;
what the nodes share is in :mod:`genai_report.artifacts._digits_common`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from genai_report.artifacts._digits_common import DIGITS, save_eval, setup
from genai_report.artifacts._outputs import write_json
from genai_report.pipeline import artifact


# --------------------------------------------------------------------------- classifier
@dataclass(frozen=True)
class ClassifierFit:
    """Parameters of the feature classifier: steps, batch, learning rate, feature width."""

    steps: int = 800
    batch: int = 128
    lr: float = 3e-3
    features: int = 64


@artifact(
    "digits-classifier",
    params={"smoke": ClassifierFit(steps=30), "quick": ClassifierFit(),
            "full": ClassifierFit(steps=4000)},
    outputs=("classifier.pt", "eval.json"),
    seed=10,
    data=DIGITS,
)
def digits_classifier(ctx, p: ClassifierFit):
    """Train the CNN whose features define the digits FID; measure the real-data floor."""
    import torch

    from genai_report.data import digits
    from genai_report.metrics.fid import (
        ClassifierConfig,
        DigitsClassifier,
        classifier_loss,
        features,
        frechet_distance,
        precision_recall,
    )
    from genai_report.training.loop import TrainConfig, train

    d = digits.load()
    gen = ctx.generator()
    x, y = d.x_train.to(ctx.device), d.y_train.to(ctx.device)
    cfg = ClassifierConfig(features=p.features)
    model = DigitsClassifier(cfg).to(ctx.device)

    def loss_fn(m, step):
        idx = torch.randint(0, len(x), (p.batch,), generator=gen).to(ctx.device)
        return classifier_loss(m, x[idx], y[idx], gen)

    hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20,
                                             weight_decay=1e-4), progress=ctx.progress)
    model.eval()
    with torch.no_grad():
        acc = float((model(d.x_test.to(ctx.device)).argmax(-1).cpu() == d.y_test).float().mean())
    torch.save({"config": {"channels": cfg.channels, "features": cfg.features,
                           "n_classes": cfg.n_classes}, "state": model.state_dict()},
               ctx.output("classifier.pt"))
    f_train, f_test = features(model, d.x_train), features(model, d.x_test)
    out = {
        "test_accuracy": acc,
        "fid_floor": frechet_distance(f_train, f_test),
        "floor_precision_recall": precision_recall(f_test, f_train),
        "n_train": len(d.y_train),
        "n_test": len(d.y_test),
        "first_loss": hist.train_loss[0],
        "last_loss": hist.train_loss[-1],
        "train_time_s": hist.wall_time_s,
    }
    write_json(ctx, "eval.json", out)
    return out


# --------------------------------------------------------------------------- GAN
@dataclass(frozen=True)
class DCGANFit:
    """Parameters of the DCGAN: generator steps, batch, width, learning rates, loss, evals.

    The discriminator learns faster than the generator (two time-scale learning rates) and
    sees a minibatch-standard-deviation feature; without both, this small DCGAN collapses to
    a single blurry mean digit on the 1,347 training images. Samples come from an
    exponential moving average of the generator's weights (``ema``), as the diffusion
    model's do. ``steps`` gives the GAN about the diffusion model's training time on a CPU,
    so the two are compared at a matched budget. ``n_classes = 10`` makes it
    class-conditional (a projection discriminator), to compare with conditional diffusion.
    """

    steps: int = 5000
    batch: int = 128
    width: int = 32
    latent_dim: int = 32
    lr_g: float = 5e-4
    lr_d: float = 2e-3
    loss: str = "hinge"
    minibatch_std: bool = True
    ema: float = 0.999
    n_classes: int = 0
    evals: int = 10
    n_eval: int = 1347


GAN_PARAMS = {"smoke": DCGANFit(steps=20, batch=32, width=8, evals=2, n_eval=200),
              "quick": DCGANFit(), "full": DCGANFit(steps=20000, width=64, evals=10)}


def _train_digits_gan(ctx, p: DCGANFit):
    import torch

    from genai_report.data.digits import balanced_labels
    from genai_report.models.gan import GAN, GANConfig, GANTrainConfig, train_gan

    d, evaluator, batch = setup(ctx)
    gan = GAN(GANConfig(kind="dcgan", latent_dim=p.latent_dim, width=p.width, loss=p.loss,
                        minibatch_std=p.minibatch_std, n_classes=p.n_classes)).to(ctx.device)
    labels = balanced_labels(p.n_eval, ctx.device) if p.n_classes else None
    eval_gen = ctx.generator(1)

    def eval_fn(g):
        m = evaluator(g.sample(p.n_eval, eval_gen, labels))
        return {k: m[k] for k in ("fid", "precision", "recall", "classes_covered")}

    def data(n, g):
        x, y = batch(n, g)
        return (x, y) if p.n_classes else x

    hist = train_gan(gan, data,
                     GANTrainConfig(steps=p.steps, batch=p.batch, lr_g=p.lr_g, lr_d=p.lr_d,
                                    eval_every=max(1, p.steps // p.evals), ema=p.ema),
                     ctx.generator(), eval_fn=eval_fn, progress=ctx.progress)
    samples = gan.sample(p.n_eval, ctx.generator(2), labels)
    metrics = evaluator(samples)
    torch.save(gan.checkpoint(), ctx.output("gan.pt"))
    metrics = {
        **metrics,
        "sampler": ("labels 0-9 in turn, " if p.n_classes else "") + "EMA generator",
        "train_time_s": hist["wall_time_s"],
        "steps": p.steps,
        "curve": [{"step": s, "time_s": t, **m} for s, t, m in hist["evals"]],
        "d_loss_first": sum(hist["d_loss"][:20]) / min(20, len(hist["d_loss"])),
        "d_loss_last": sum(hist["d_loss"][-20:]) / min(20, len(hist["d_loss"])),
    }
    save_eval(ctx, samples, metrics)
    return metrics


@artifact(
    "digits-gan",
    deps=("digits-classifier",),
    params=GAN_PARAMS,
    outputs=("gan.pt", "samples.pt", "eval.json"),
    seed=11,
    data=DIGITS,
)
def digits_gan(ctx, p: DCGANFit):
    """Train an unconditional DCGAN on the digits; score it (FID etc.) during training."""
    return _train_digits_gan(ctx, p)


@artifact(
    "digits-gan-cond",
    deps=("digits-classifier",),
    params={k: replace(v, n_classes=10) for k, v in GAN_PARAMS.items()},
    outputs=("gan.pt", "samples.pt", "eval.json"),
    seed=17,
    data=DIGITS,
)
def digits_gan_cond(ctx, p: DCGANFit):
    """Train a class-conditional DCGAN (projection discriminator) with the same recipe.

    Scored like the conditional diffusion model: labels 0-9 in turn.
    """
    return _train_digits_gan(ctx, p)


# --------------------------------------------------------------------------- VAE
@dataclass(frozen=True)
class VAEFit:
    """Parameters of a VAE fit: latent size, beta, steps, batch, learning rate, decay.

    On 1,347 images the categorical decoder overfits quickly (with width 256 and 3,000 steps
    the test bound was worse than a uniform model's 4.09 bits/dim); a narrow network, weight
    decay and a short run keep the held-out bound near its minimum.
    """

    latent_dim: int = 8
    betas: tuple[float, ...] = (1.0,)
    steps: int = 1000
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.1
    hidden: int = 128
    n_eval: int = 1347


def _fit_vae(ctx, p: VAEFit, beta: float, offset: int):
    import torch

    from genai_report.models.vae import VAE, VAEConfig
    from genai_report.training.loop import TrainConfig, train

    d, evaluator, batch = setup(ctx)
    gen = ctx.generator(offset)
    model = VAE(VAEConfig(latent_dim=p.latent_dim, hidden=p.hidden, beta=beta)).to(ctx.device)
    hist = train(model, lambda m, s: m.loss(batch(p.batch, gen)[0], gen),
                 TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20,
                             weight_decay=p.weight_decay),
                 progress=ctx.progress, record_every=10)
    x_test = d.x_test.to(ctx.device)
    with torch.no_grad():
        t = model.terms(x_test, ctx.generator(offset + 1))
        samples = model.sample(p.n_eval, ctx.generator(offset + 2))
    metrics = evaluator(samples)
    metrics.update({
        "beta": beta,
        "latent_dim": p.latent_dim,
        "test_nelbo_bpd": model.nelbo_bits_per_dim(x_test, ctx.generator(offset + 3)),
        "test_recon_nats": float(t["recon"].mean()),
        "test_kl_nats": float(t["kl"].mean()),
        "first_loss": hist.train_loss[0],
        "last_loss": sum(hist.train_loss[-10:]) / len(hist.train_loss[-10:]),
        "train_time_s": hist.wall_time_s,
    })
    return model, samples, metrics


VAE_PARAMS = {"smoke": VAEFit(steps=20, hidden=32, n_eval=200), "quick": VAEFit(),
              "full": VAEFit(steps=3000, hidden=256)}


@artifact("digits-vae", deps=("digits-classifier",), params=VAE_PARAMS,
          outputs=("vae.pt", "samples.pt", "eval.json"), seed=13, data=DIGITS)
def digits_vae(ctx, p: VAEFit):
    """Train the VAE with an 8-D latent (ELBO, beta = 1): samples, bound in bits/dim."""
    import torch

    model, samples, metrics = _fit_vae(ctx, p, p.betas[0], 0)
    torch.save(model.checkpoint(), ctx.output("vae.pt"))
    save_eval(ctx, samples, metrics)
    return metrics


@artifact(
    "digits-vae-2d",
    deps=("digits-classifier",),
    params={k: VAEFit(latent_dim=2, betas=(1.0, 4.0), steps=v.steps, hidden=v.hidden,
                      n_eval=v.n_eval) for k, v in VAE_PARAMS.items()},
    outputs=("vaes.pt", "eval.json"),
    seed=14,
    data=DIGITS,
)
def digits_vae_2d(ctx, p: VAEFit):
    """Train VAEs with a 2-D latent for each beta (beta = 1 and a beta-VAE) to draw."""
    import torch

    blobs, out = {}, {}
    for i, beta in enumerate(p.betas):
        model, _, metrics = _fit_vae(ctx, p, beta, 10 * i)
        blobs[str(beta)] = model.checkpoint()
        out[f"beta_{beta:g}"] = metrics
    torch.save(blobs, ctx.output("vaes.pt"))
    write_json(ctx, "eval.json", out)
    return out


# --------------------------------------------------------------------------- PixelCNN
@dataclass(frozen=True)
class PixelCNNFit:
    """Parameters of the PixelCNN fit."""

    steps: int = 1500
    batch: int = 64
    lr: float = 2e-3
    channels: int = 32
    layers: int = 4
    n_eval: int = 1347


@artifact(
    "digits-pixelcnn",
    deps=("digits-classifier",),
    params={"smoke": PixelCNNFit(steps=20, channels=8, layers=1, n_eval=200),
            "quick": PixelCNNFit(), "full": PixelCNNFit(steps=20000, channels=128, layers=8)},
    dry_run={"n_eval": 200},
    outputs=("pixelcnn.pt", "samples.pt", "eval.json"),
    seed=15,
    data=DIGITS,
)
def digits_pixelcnn(ctx, p: PixelCNNFit):
    """Train a PixelCNN; exact test NLL in bits/dim; sample pixel by pixel and score."""
    import time

    import torch

    from genai_report.models.pixelcnn import PixelCNN, PixelCNNConfig
    from genai_report.training.loop import TrainConfig, train

    d, evaluator, batch = setup(ctx)
    gen = ctx.generator()
    model = PixelCNN(PixelCNNConfig(channels=p.channels, layers=p.layers)).to(ctx.device)
    hist = train(model, lambda m, s: m.loss(batch(p.batch, gen)[0]),
                 TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20),
                 progress=ctx.progress, record_every=10)
    t0 = time.perf_counter()
    samples = model.sample(p.n_eval, ctx.generator(1))
    sample_time = time.perf_counter() - t0
    metrics = evaluator(samples)
    metrics.update({
        "test_bpd": model.bits_per_dim(d.x_test.to(ctx.device)),
        "train_bpd": model.bits_per_dim(d.x_train.to(ctx.device)),
        "sample_time_s": sample_time,
        "n_eval": p.n_eval,
        "first_loss": hist.train_loss[0],
        "last_loss": sum(hist.train_loss[-10:]) / len(hist.train_loss[-10:]),
        "train_time_s": hist.wall_time_s,
    })
    torch.save(model.checkpoint(), ctx.output("pixelcnn.pt"))
    save_eval(ctx, samples, metrics)
    return metrics
