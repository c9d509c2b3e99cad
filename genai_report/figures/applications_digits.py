"""Applications, measured (digits): train-on-synthetic-test-on-real classifiers, one per
model family; diffusion inpainting; VAE anomaly detection; property-guided "design".
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.data.digits import data_file
from genai_report.figures._applications_common import show_digit
from genai_report.figures._families_common import classifier, diffusion
from genai_report.pipeline import figure


# --------------------------------------------------------------------------- TSTR
@dataclass(frozen=True)
class TSTR:
    """Parameters of train-on-synthetic-test-on-real.

    Attributes:
        n_train: synthetic images per model (and real ones for the reference bar).
        ddim_steps: sampler steps for the conditional diffusion models.
    """

    n_train: int = 1340
    ddim_steps: int = 50


FAMILY_NODES = ("digits-gan", "digits-vae", "digits-pixelcnn", "digits-diffusion",
                "digits-latent-diffusion")


@figure(
    "applications-tstr",
    deps=("digits-classifier", *FAMILY_NODES),
    params={"smoke": TSTR(n_train=200, ddim_steps=5), "quick": TSTR(),
            "full": TSTR(ddim_steps=100)},
    outputs=("tstr.svg",),
    seed=72,
    data=(data_file,),
    title="Train on synthetic, test on real: a classifier trained only on generated digits.",
    caption="Test accuracy on the real held-out digits of the same small classifier trained on "
    "real training digits or on as many samples of each model. Class-conditional diffusion "
    "models are asked for each digit; samples of the unconditional models are labelled by "
    "the report's real-data digits classifier (so they borrow its knowledge of the labels). "
    "The downstream classifier is a logistic regression on the 64 pixels.",
    alt="Bar chart of test accuracy of a digits classifier trained on real data and on samples "
    "of a GAN, a VAE, a PixelCNN, a diffusion model and a latent diffusion model.",
)
def tstr(ctx, p: TSTR):
    """Train a classifier on each model's samples and test it on the real test digits."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.applications.synthetic import accuracy, train_classifier
    from genai_report.data import digits
    from genai_report.models.diffusion import Diffusion
    from genai_report.models.latent_diffusion import LatentDiffusion
    from genai_report.models.vae import VAE
    from genai_report.plotting import save_figure

    d = digits.load()
    clf = classifier(ctx)
    gen = ctx.generator(1)
    labels = torch.arange(p.n_train) % 10
    sources = {"real data": (d.x_train[: p.n_train], d.y_train[: p.n_train], "real")}
    for name, node in (("GAN", "digits-gan"), ("VAE", "digits-vae"), ("PixelCNN", "digits-pixelcnn")):
        x = torch.load(ctx.input(node, "samples.pt"), weights_only=True)[: p.n_train].clamp(-1, 1)
        with torch.no_grad():
            y = clf(x.to(ctx.device)).argmax(-1).cpu()
        sources[name] = (x, y, "pseudo-labelled")
    diff = diffusion(ctx)
    x = diff.sample(p.n_train, generator=gen, y=labels, method="ddim", steps=p.ddim_steps).cpu()
    sources["diffusion"] = (x, labels, "conditional")
    vae = VAE.load(torch.load(ctx.input("digits-vae", "vae.pt"), weights_only=True), ctx.device)
    lblob = torch.load(ctx.input("digits-latent-diffusion", "latent_diffusion.pt"),
                       weights_only=True)
    ldm = LatentDiffusion(vae, Diffusion.load(lblob["diffusion"], ctx.device), lblob["scale"])
    x = ldm.sample(p.n_train, generator=gen, y=labels, steps=p.ddim_steps).cpu()
    sources["latent diffusion"] = (x, labels, "conditional")

    results = {}
    for name, (x, y, how) in ctx.progress(list(sources.items()), desc="classifiers"):
        acc = accuracy(train_classifier(x.float(), y), d.x_test, d.y_test)
        with torch.no_grad():
            agree = float((clf(x.clamp(-1, 1).to(ctx.device)).argmax(-1).cpu() == y)
                          .double().mean())
        results[name] = {"accuracy": acc, "labels": how, "label_agreement": agree}
    names = list(results)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    means = [results[n]["accuracy"] for n in names]
    colors = ["0.45"] + [f"C{i}" for i in range(len(names) - 1)]
    ax.bar(names, means, color=colors)
    for i, m in enumerate(means):
        ax.text(i, m + 0.02, f"{m:.2f}", ha="center", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy on real test digits")
    ax.tick_params(axis="x", labelsize=8)
    save_figure(fig, ctx.output("tstr.svg"))
    key = {n: n.replace(" ", "_").lower() for n in names}
    return {"accuracy": {key[n]: results[n]["accuracy"] for n in names},
            "details": {key[n]: results[n] for n in names},
            "gap_best_synthetic": results["real data"]["accuracy"]
            - max(results[n]["accuracy"] for n in names[1:]),
            "n_train": p.n_train}


# --------------------------------------------------------------------------- inpainting
@dataclass(frozen=True)
class Inpainting:
    """Held-out digits inpainted (``n``), reverse steps (``steps``, 0: all) and RePaint
    resampling passes (``resample``)."""

    n: int = 300
    steps: int = 25
    resample: int = 10


@figure(
    "applications-inpainting",
    deps=("digits-diffusion", "digits-classifier"),
    params={"smoke": Inpainting(n=16, steps=5, resample=2), "quick": Inpainting(),
            "full": Inpainting(n=450, steps=250, resample=10)},
    outputs=("inpainting.png",),
    seed=73,
    data=(data_file,),
    title="Inpainting: the diffusion model fills a hidden region of held-out digits.",
    caption="Rows: the true digit, the input with its hidden pixels in red, the diffusion "
    "model's completion (the known pixels are copied exactly), and the nearest training digit "
    "on the known pixels as a baseline. Left: a 4x4 hole in the centre; right: the bottom half.",
    alt="Two grids of small greyscale digits: truth, masked input, diffusion inpainting and "
    "nearest-neighbour fill, for a centre hole and for a missing bottom half.",
)
def inpainting(ctx, p: Inpainting):
    """Inpaint held-out digits with the diffusion model; error in the hole vs baselines."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.applications.inpainting import center_mask, half_mask, inpaint
    from genai_report.data import digits
    from genai_report.plotting import save_figure

    d = digits.load()
    model, clf = diffusion(ctx), classifier(ctx)
    x, y = d.x_test[: p.n], d.y_test[: p.n]
    mean_img = d.x_train.mean(0, keepdim=True)
    out, shown = {}, {}
    for name, known in (("center", center_mask()), ("bottom_half", half_mask())):
        filled = inpaint(model, x, known, generator=ctx.generator(1), steps=p.steps or None,
                         resample=p.resample).cpu()
        plain = inpaint(model, x, known, generator=ctx.generator(2), steps=p.steps or None,
                        resample=1).cpu()  # ablation: replacement without resampling
        hole = ~known.expand_as(x)
        kn = known.flatten()
        # nearest training digit on the known pixels
        dist = torch.cdist(x.flatten(1)[:, kn], d.x_train.flatten(1)[:, kn])  # (n, N)
        nn_fill = torch.where(known, x, d.x_train[dist.argmin(1)])
        mean_fill = torch.where(known, x, mean_img.expand_as(x))

        def mse(z, hole=hole):
            return float((z - x)[hole].square().mean())

        with torch.no_grad():
            acc = {k: float((clf(v.to(ctx.device)).argmax(-1).cpu() == y).double().mean())
                   for k, v in (("diffusion", filled), ("nearest", nn_fill), ("mean", mean_fill),
                                ("diffusion_no_resampling", plain))}
        out[name] = {"hole_mse": {"diffusion": mse(filled), "nearest_neighbour": mse(nn_fill),
                                  "mean_image": mse(mean_fill),
                                  "diffusion_no_resampling": mse(plain)},
                     "classifier_accuracy": acc,
                     "known_max_abs_error": float((filled - x)[~hole].abs().max()),
                     "hole_pixels": int((~known).sum())}
        shown[name] = (known, filled, nn_fill)
    k = 8
    fig, axes = plt.subplots(4, 2 * k + 1, figsize=(12, 3.4))
    for c, (known, filled, nn_fill) in enumerate(shown.values()):
        for j in range(k):
            col = c * (k + 1) + j
            masked = x[j].repeat(3, 1, 1)
            masked = (masked + 1) / 2
            masked = 1 - masked  # gray_r look
            masked[0][~known[0]], masked[1][~known[0]], masked[2][~known[0]] = 1.0, 0.3, 0.3
            show_digit(axes[0, col], x[j])
            show_digit(axes[1, col], x[j])
            axes[1, col].imshow(masked.permute(1, 2, 0).numpy())
            show_digit(axes[2, col], filled[j])
            show_digit(axes[3, col], nn_fill[j])
    for r in range(4):
        axes[r, k].axis("off")
    for r, lab in enumerate(["truth", "input", "diffusion", "nearest"]):
        axes[r, 0].set_ylabel(lab, fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    save_figure(fig, ctx.output("inpainting.png"), dpi=80)
    return {**out, "n": p.n, "steps": p.steps or model.config.timesteps,
            "resample": p.resample}


# --------------------------------------------------------------------------- anomaly detection
@dataclass(frozen=True)
class Anomaly:
    """ELBO draws per image (``elbo_samples``) in the anomaly demo."""

    elbo_samples: int = 8


@figure(
    "applications-anomaly",
    deps=("digits-vae",),
    params={"smoke": Anomaly(elbo_samples=2), "quick": Anomaly(), "full": Anomaly(elbo_samples=32)},
    outputs=("anomaly_roc.svg",),
    seed=74,
    data=(data_file,),
    title="A VAE's negative ELBO flags corrupted and out-of-distribution digits.",
    caption="ROC curves of the negative ELBO as an anomaly score: normal = real held-out digits, "
    "anomalous = the same digits corrupted (salt-and-pepper, Gaussian noise), turned upside "
    "down, inverted, or pure-noise images. The legend gives each area under the curve (AUC).",
    alt="ROC curves, true-positive rate against false-positive rate, one per kind of anomaly, "
    "mostly hugging the top-left corner, with AUC values in the legend.",
)
def anomaly(ctx, p: Anomaly):
    """Score real and corrupted test digits with the VAE's negative ELBO; ROC and AUC."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.applications.anomaly import (
        CORRUPTIONS,
        corrupt,
        negative_elbo,
        reconstruction_error,
    )
    from genai_report.data import digits
    from genai_report.metrics.roc import auc, roc_curve
    from genai_report.models.vae import VAE
    from genai_report.plotting import save_figure

    d = digits.load()
    vae = VAE.load(torch.load(ctx.input("digits-vae", "vae.pt"), weights_only=True), ctx.device)
    normal = negative_elbo(vae, d.x_test, ctx.generator(1), p.elbo_samples)
    normal_rec = reconstruction_error(vae, d.x_test)
    fig, ax = plt.subplots(figsize=(5, 4.2))
    out = {}
    for k, kind in enumerate(CORRUPTIONS):
        bad = corrupt(d.x_test, kind, ctx.generator(10 + k))
        s = negative_elbo(vae, bad, ctx.generator(20 + k), p.elbo_samples)
        fpr, tpr = roc_curve(normal, s)
        a = auc(fpr, tpr)
        fr, tr = roc_curve(normal_rec, reconstruction_error(vae, bad))
        out[kind.replace("-", "_")] = {"auc_elbo": a, "auc_recon": auc(fr, tr),
                                       "mean_score": float(s.mean())}
        ax.plot(fpr, tpr, label=f"{kind}: AUC {a:.3f}")
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, ctx.output("anomaly_roc.svg"))
    return {"auc": {k: v["auc_elbo"] for k, v in out.items()},
            "auc_reconstruction": {k: v["auc_recon"] for k, v in out.items()},
            "normal_mean_score": float(normal.mean()), "details": out, "n": len(normal)}


# --------------------------------------------------------------------------- design
@dataclass(frozen=True)
class Design:
    """Parameters of property-guided sampling.

    Attributes:
        weights: strengths of the property gradient.
        per_class: samples per digit class and weight.
        steps: DDIM steps.
        guidance_scale: classifier-free guidance scale for the class.
    """

    weights: tuple[float, ...] = (0.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
    per_class: int = 20
    steps: int = 50
    guidance_scale: float = 2.0


@figure(
    "applications-design",
    deps=("digits-diffusion", "digits-classifier"),
    params={"smoke": Design(per_class=2, steps=5),
            "quick": Design(), "full": Design(per_class=200, steps=100)},
    outputs=("design.png",),
    seed=75,
    title="Design under a constraint: asking for a digit with as little ink as possible.",
    caption="The class-conditional diffusion model samples each digit while the gradient of the "
    "ink (mean brightness) of its predicted clean image pushes samples to use less ink. Left: "
    "each guidance weight reaches a lower ink level at the cost of fewer samples that the "
    "classifier still reads as the requested digit. Right: a 3, 5 and 8 at each weight.",
    alt="Left: a curve of mean ink against class accuracy, one point per guidance weight, "
    "ink falling as accuracy falls. Right: rows of generated digits that get thinner from "
    "left to right.",
)
def design(ctx, p: Design):
    """Sample each class under increasing ink-reduction guidance; ink vs class validity."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.applications.design import ink, property_guided_sample
    from genai_report.plotting import save_figure

    model, clf = diffusion(ctx), classifier(ctx)
    y = torch.arange(10).repeat_interleave(p.per_class)
    rows, grids = [], []
    for w in ctx.progress(p.weights, desc="weights"):
        x = property_guided_sample(model, y, ink, w, generator=ctx.generator(1), steps=p.steps,
                                   guidance_scale=p.guidance_scale).cpu().clamp(-1, 1)
        with torch.no_grad():
            hit = float((clf(x.to(ctx.device)).argmax(-1).cpu() == y).double().mean())
        rows.append({"weight": w, "mean_ink": float(ink(x).mean()), "class_accuracy": hit})
        grids.append(x[[3 * p.per_class, 5 * p.per_class, 8 * p.per_class]])
    fig = plt.figure(figsize=(10, 3.6))
    ax = fig.add_axes([0.07, 0.15, 0.36, 0.78])
    ax.plot([r["mean_ink"] for r in rows], [r["class_accuracy"] for r in rows], marker="o")
    for r in rows:
        ax.annotate(f"w={r['weight']:g}", (r["mean_ink"], r["class_accuracy"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("mean ink (fraction of full brightness)")
    ax.set_ylabel("classified as the requested digit")
    ax.set_ylim(0, 1.05)
    for i, g in enumerate(grids):
        for j in range(3):
            a = fig.add_axes([0.5 + i * 0.08, 0.68 - j * 0.27, 0.075, 0.24])
            show_digit(a, g[j])
            if j == 0:
                a.set_title(f"w={p.weights[i]:g}", fontsize=7)
    save_figure(fig, ctx.output("design.png"), dpi=90)
    base = rows[0]
    return {"curve": rows, "base_ink": base["mean_ink"], "base_accuracy": base["class_accuracy"],
            "strongest": rows[-1], "per_class": p.per_class}
