"""The diffusion models of the "families of generative models" chapter, on 8x8 digits: a
class-conditional DDPM on pixels (with a U-Net denoiser), the same DDPM trained without
labels, and a latent diffusion model in the VAE's latent space (the hybrid).

Scored like every digits model (see :mod:`genai_report.artifacts._digits_common`).
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts._digits_common import DIGITS, save_eval, setup
from genai_report.pipeline import artifact


# --------------------------------------------------------------------------- diffusion
@dataclass(frozen=True)
class DiffusionFit:
    """Parameters of the class-conditional pixel diffusion model.

    The denoiser is a small U-Net (``channels`` per resolution: 8x8, then 4x4). With the
    residual MLP that the 2-D and latent models use, the same training time left the digits
    FID several times the real-data floor; convolutions, which share weights across
    positions, bring it close to the floor.

    The model is scored ``evals`` times during training (the ``curve``, sampled with
    ``curve_ddim_steps`` DDIM steps to keep the checkpoints cheap) and once at the end with
    ``eval_ddim_steps``.
    """

    steps: int = 3000
    batch: int = 128
    lr: float = 2e-3
    channels: tuple[int, ...] = (16, 32)
    attention: bool = True
    timesteps: int = 1000
    schedule: str = "cosine"
    ema: float = 0.999
    p_uncond: float = 0.1
    evals: int = 10
    curve_ddim_steps: int = 20
    eval_ddim_steps: int = 50
    n_eval: int = 1347


DIFFUSION_PARAMS = {
    "smoke": DiffusionFit(steps=20, batch=32, channels=(8, 16), timesteps=50, evals=2,
                          curve_ddim_steps=5, eval_ddim_steps=5, n_eval=200),
    "quick": DiffusionFit(),
    "full": DiffusionFit(steps=30000, channels=(64, 128), ema=0.9995),
}


@artifact(
    "digits-diffusion",
    deps=("digits-classifier",),
    params=DIFFUSION_PARAMS,
    outputs=("diffusion.pt", "samples.pt", "eval.json"),
    dry_run={"n_eval": 200},
    seed=12,
    data=DIGITS,
)
def digits_diffusion(ctx, p: DiffusionFit):
    """Train a class-conditional DDPM (with label dropout for guidance); score it over time.

    Samples are scored with labels cycling through the ten classes (the uniform class prior,
    guidance scale 1), from an exponential moving average of the weights; the unconditional
    model (the null label) is scored too, as ``fid_unconditional``.
    """
    return _train_pixel_diffusion(ctx, p, conditional=True)


@artifact(
    "digits-diffusion-uncond",
    deps=("digits-classifier",),
    params=DIFFUSION_PARAMS,
    outputs=("diffusion.pt", "samples.pt", "eval.json"),
    dry_run={"n_eval": 200},
    seed=18,
    data=DIGITS,
)
def digits_diffusion_uncond(ctx, p: DiffusionFit):
    """Train the same DDPM without labels: the unconditional model, trained for itself.

    The conditional model's null label is an unconditional model learned on only
    ``p_uncond`` of its examples; this one sees every example without a label, the like of
    the unconditional GAN.
    """
    return _train_pixel_diffusion(ctx, p, conditional=False)


def _train_pixel_diffusion(ctx, p: DiffusionFit, conditional: bool):
    import time

    import torch

    from genai_report.data.digits import balanced_labels
    from genai_report.models.diffusion import EMA, Diffusion, DiffusionConfig
    from genai_report.training.loop import TrainConfig, train

    d, evaluator, batch = setup(ctx)
    model = Diffusion(DiffusionConfig(data_shape=(1, 8, 8), timesteps=p.timesteps, denoiser="unet",
                                      channels=p.channels, attention=p.attention,
                                      n_classes=10 if conditional else 0,
                                      clip=1.0, schedule=p.schedule)).to(ctx.device)
    ema = EMA(model, p.ema)
    gen, eval_gen = ctx.generator(), ctx.generator(1)
    clock = {"t0": time.perf_counter(), "eval": 0.0}
    curve = []
    labels = balanced_labels(p.n_eval, ctx.device) if conditional else None

    def loss_fn(m, step):
        if step:
            ema.update(m)  # the weights after the previous optimiser step
        x, y = batch(p.batch, gen)
        return m.loss(x, y if conditional else None, generator=gen, p_uncond=p.p_uncond)

    def eval_fn(m):
        e0 = time.perf_counter()
        trained_s = e0 - clock["t0"] - clock["eval"]  # training time so far, evals excluded
        ema.update(m)
        s = ema.shadow.sample(p.n_eval, generator=eval_gen, y=labels, method="ddim",
                              steps=p.curve_ddim_steps)
        r = evaluator(s)
        clock["eval"] += time.perf_counter() - e0
        curve.append({"time_s": trained_s,
                      **{k: r[k] for k in ("fid", "precision", "recall", "classes_covered")}})
        return {"fid": r["fid"]}

    cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20,
                      eval_every=max(1, p.steps // p.evals))
    hist = train(model, loss_fn, cfg, eval_fn=eval_fn, progress=ctx.progress, record_every=10)
    for (step, _), row in zip(hist.evals, curve, strict=True):
        row["step"] = step
    model = ema.shadow
    samples = model.sample(p.n_eval, generator=ctx.generator(2), y=labels, method="ddim",
                           steps=p.eval_ddim_steps)
    metrics = evaluator(samples)
    if conditional:
        uncond = evaluator(model.sample(p.n_eval, generator=ctx.generator(3), method="ddim",
                                        steps=p.eval_ddim_steps))
        metrics["fid_unconditional"] = uncond["fid"]
        metrics["classes_covered_unconditional"] = uncond["classes_covered"]
    torch.save(model.checkpoint(), ctx.output("diffusion.pt"))
    metrics = {
        **metrics,
        "sampler": f"DDIM {p.eval_ddim_steps} steps, "
                   + ("labels 0-9 in turn, guidance 1, " if conditional else "no label, ")
                   + "EMA weights",
        "curve_sampler": f"DDIM {p.curve_ddim_steps} steps",
        "train_time_s": hist.wall_time_s - clock["eval"],
        "steps": p.steps,
        "curve": curve,
        "first_loss": hist.train_loss[0],
        "last_loss": sum(hist.train_loss[-10:]) / len(hist.train_loss[-10:]),
        "loss_curve": {"step": hist.steps, "loss": hist.train_loss},
    }
    save_eval(ctx, samples, metrics)
    return metrics


# --------------------------------------------------------------------------- latent diffusion
@dataclass(frozen=True)
class LatentDiffusionFit:
    """Parameters of the latent diffusion model trained in ``digits-vae``'s latent space."""

    steps: int = 2000
    batch: int = 256
    lr: float = 1e-3
    hidden: int = 256
    depth: int = 3
    timesteps: int = 1000
    ddim_steps: int = 50
    n_eval: int = 1347


@artifact(
    "digits-latent-diffusion",
    deps=("digits-classifier", "digits-vae"),
    params={"smoke": LatentDiffusionFit(steps=20, hidden=32, depth=1, timesteps=50, ddim_steps=5,
                                        n_eval=200),
            "quick": LatentDiffusionFit(),
            "full": LatentDiffusionFit(steps=20000, hidden=512)},
    outputs=("latent_diffusion.pt", "samples.pt", "eval.json"),
    seed=16,
    data=DIGITS,
)
def digits_latent_diffusion(ctx, p: LatentDiffusionFit):
    """Train a class-conditional diffusion model on the VAE's latents (Stable Diffusion's shape).

    Scored like ``digits-diffusion``: labels 0-9 in turn, guidance scale 1, DDIM. Sampling
    clamps each predicted clean code to the range of the training codes, as pixel diffusion
    clamps to [-1, 1]: at the noisiest steps ``sqrt(alpha_bar)`` is nearly zero, and without
    the clamp dividing by it blows the predicted codes up by orders of magnitude. Also
    scored: the decoder's ceiling (decoding the codes of real training digits) and how often
    the classifier reads a sample as the label it was asked for.
    """
    import torch

    from genai_report.data.digits import balanced_labels
    from genai_report.models.diffusion import Diffusion, DiffusionConfig
    from genai_report.models.latent_diffusion import LatentDiffusion
    from genai_report.models.vae import VAE
    from genai_report.training.loop import TrainConfig, train

    d, evaluator, _ = setup(ctx)
    vae = VAE.load(torch.load(ctx.input("digits-vae", "vae.pt"), weights_only=True), ctx.device)
    with torch.no_grad():
        mu = vae.encode(d.x_train.to(ctx.device))[0]  # (N, latent)
    scale = float(mu.std())
    z, y = mu / scale, d.y_train.to(ctx.device)
    clip = float(z.abs().max())  # the range of the training codes
    diff = Diffusion(DiffusionConfig(data_shape=(vae.config.latent_dim,), timesteps=p.timesteps,
                                     hidden=p.hidden, depth=p.depth, n_classes=10,
                                     schedule="cosine", clip=clip)).to(ctx.device)
    gen = ctx.generator()

    def loss_fn(m, step):
        idx = torch.randint(0, len(z), (p.batch,), generator=gen).to(ctx.device)
        return m.loss(z[idx], y[idx], generator=gen)

    hist = train(diff, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20),
                 progress=ctx.progress, record_every=10)
    ldm = LatentDiffusion(vae, diff, scale)
    labels = balanced_labels(p.n_eval, ctx.device)
    samples = ldm.sample(p.n_eval, generator=ctx.generator(1), steps=p.ddim_steps, y=labels)
    metrics = evaluator(samples)
    # the ceiling any code generator reaches through this decoder: real digits' codes
    idx = torch.randint(0, len(mu), (p.n_eval,), generator=ctx.generator(2)).to(ctx.device)
    with torch.no_grad():
        decoded = evaluator(vae.decode(mu[idx]))
        agree = evaluator.classifier.predict(samples.clamp(-1, 1)) == labels
    # the same model sampled without the clamp, to show why it is there
    blob = diff.checkpoint()
    blob["config"] = {**blob["config"], "clip": 0.0}
    z_loose = Diffusion.load(blob, ctx.device).sample(
        p.n_eval, generator=ctx.generator(1), y=labels, method="ddim", steps=p.ddim_steps)
    with torch.no_grad():
        loose = vae.decode(z_loose * scale)
    metrics.update({
        "unclamped": {"fid": evaluator(loose)["fid"], "code_abs_max": float(z_loose.abs().max())},
        "decoded_real_codes": {k: decoded[k] for k in ("fid", "precision", "recall")},
        "label_agreement": float(agree.float().mean()),
        # "active units" (Burda et al. 2016): latent dimensions whose code varies across the
        # data with variance above 0.01; the others collapsed onto the prior
        "active_latent_dims": int((mu.var(0) > 0.01).sum()),
        "latent_dims": int(mu.shape[1]),
        "code_clip": clip,
        "latent_scale": scale,
        "first_loss": hist.train_loss[0],
        "last_loss": sum(hist.train_loss[-10:]) / len(hist.train_loss[-10:]),
        "train_time_s": hist.wall_time_s,
    })
    torch.save({"diffusion": diff.checkpoint(), "scale": scale}, ctx.output("latent_diffusion.pt"))
    save_eval(ctx, samples, metrics)
    return metrics
