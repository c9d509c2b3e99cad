"""Every digits model scored the same way, over several sampling seeds.

The training nodes score their model once, with one sampling seed, to follow it during
training. The numbers the report compares come from here instead: each trained model
draws ``n_eval`` samples ``seeds`` times with fresh sampling noise, and
:func:`genai_report.metrics.fid.score_over_seeds` summarises each metric as
``mean ± sd``. A conditional model is asked for the labels 0-9 in turn (the uniform class
prior); where one network can also sample without a label (classifier-free guidance's null
label), that is scored as its own row.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts._digits_common import DIGITS
from genai_report.artifacts._outputs import write_json
from genai_report.pipeline import artifact

SCORED = ("digits-gan", "digits-gan-cond", "digits-vae", "digits-pixelcnn", "digits-diffusion",
          "digits-diffusion-uncond", "digits-latent-diffusion")
"""The trained models this node scores (its dependencies besides the classifier)."""


@dataclass(frozen=True)
class SeedScores:
    """Parameters of the seeded scoring: seeds, samples per seed, diffusion's sampler."""

    seeds: int = 5
    n_eval: int = 1347
    ddim_steps: int = 50

    def __post_init__(self) -> None:
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 to measure a spread, got {self.seeds}.")


@artifact(
    "digits-scores",
    deps=("digits-classifier", *SCORED),
    params={"smoke": SeedScores(seeds=2, n_eval=200, ddim_steps=5), "quick": SeedScores(),
            "full": SeedScores(seeds=10)},
    dry_run={"seeds": 2, "n_eval": 200},
    outputs=("eval.json",),
    seed=19,
    data=DIGITS,
)
def digits_scores(ctx, p: SeedScores):
    """Score every digits model over ``seeds`` sampling seeds with one shared function."""
    from genai_report.artifacts._digits_common import setup
    from genai_report.metrics.fid import score_over_seeds

    _, evaluator, _ = setup(ctx)
    floor = float(ctx.input_metrics("digits-classifier")["fid_floor"])
    out = {"seeds": p.seeds, "n_eval": p.n_eval, "fid_floor": floor, "models": {}}
    samplers = _samplers(ctx, p)
    for i, (name, (sampler, how)) in enumerate(ctx.progress(list(samplers.items()),
                                                              len(samplers), "score")):
        gens = [ctx.generator(100 * (i + 1) + k) for k in range(p.seeds)]
        row = score_over_seeds(evaluator, sampler, gens)
        fid = row["fid"]
        row["fid_over_floor"] = {**fid, "mean": fid["mean"] / floor, "sd": fid["sd"] / floor,
                                 "values": [v / floor for v in fid["values"]]}
        row["sampler"] = how
        out["models"][name] = row
    write_json(ctx, "eval.json", out)
    return out


def _samplers(ctx, p: SeedScores) -> dict:
    """``name -> (sample(generator), description)`` for every scored model."""
    import torch

    from genai_report.data.digits import balanced_labels
    from genai_report.models.diffusion import Diffusion
    from genai_report.models.gan import GAN
    from genai_report.models.latent_diffusion import LatentDiffusion
    from genai_report.models.pixelcnn import PixelCNN
    from genai_report.models.vae import VAE

    def load(node, file):
        return torch.load(ctx.input(node, file), weights_only=True)

    labels = balanced_labels(p.n_eval, ctx.device)
    n, k = p.n_eval, p.ddim_steps
    gan = GAN.load(load("digits-gan", "gan.pt"), ctx.device)
    gan_c = GAN.load(load("digits-gan-cond", "gan.pt"), ctx.device)
    vae = VAE.load(load("digits-vae", "vae.pt"), ctx.device)
    pixelcnn = PixelCNN.load(load("digits-pixelcnn", "pixelcnn.pt"), ctx.device)
    diff = Diffusion.load(load("digits-diffusion", "diffusion.pt"), ctx.device)
    diff_u = Diffusion.load(load("digits-diffusion-uncond", "diffusion.pt"), ctx.device)
    blob = load("digits-latent-diffusion", "latent_diffusion.pt")
    ldm = LatentDiffusion(vae, Diffusion.load(blob["diffusion"], ctx.device), blob["scale"])
    ddim = f"DDIM {k} steps, EMA weights"
    return {
        "gan": (lambda g: gan.sample(n, g), "EMA generator"),
        "gan-cond": (lambda g: gan_c.sample(n, g, labels), "labels 0-9 in turn, EMA generator"),
        "vae": (lambda g: vae.sample(n, g), "decoder mean of z from the prior"),
        "pixelcnn": (lambda g: pixelcnn.sample(n, g), "ancestral, pixel by pixel"),
        "diffusion": (lambda g: diff.sample(n, generator=g, y=labels, method="ddim", steps=k),
                      f"labels 0-9 in turn, guidance 1, {ddim}"),
        "diffusion-null-label": (lambda g: diff.sample(n, generator=g, method="ddim", steps=k),
                                 f"the conditional network's null label, {ddim}"),
        "diffusion-uncond": (lambda g: diff_u.sample(n, generator=g, method="ddim", steps=k),
                             f"trained without labels, {ddim}"),
        "latent-diffusion": (lambda g: ldm.sample(n, generator=g, y=labels, steps=k),
                             f"labels 0-9 in turn, DDIM {k} steps"),
        "latent-diffusion-null-label": (lambda g: ldm.sample(n, generator=g, steps=k),
                                        f"the null label, DDIM {k} steps"),
    }
