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
    """Parameters of the inpainting demo.

    Attributes:
        n: held-out digits per test.
        k: completions drawn per digit (best-of-k, and as many nearest neighbours).
        steps: reverse steps (0: all).
        resample: RePaint resampling passes per step.
    """

    n: int = 100
    k: int = 4
    steps: int = 20
    resample: int = 5


@figure(
    "applications-inpainting",
    deps=("digits-diffusion", "digits-classifier"),
    params={"smoke": Inpainting(n=8, k=2, steps=4, resample=2), "quick": Inpainting(),
            "full": Inpainting(n=450, k=8, steps=250, resample=10)},
    outputs=("inpainting.svg",),
    seed=73,
    data=(data_file,),
    title="Inpainting: the diffusion model fills hidden pixels, including in digits no "
    "training example resembles.",
    caption="Columns: four tests on held-out digits (a 4x4 hole in the centre; the bottom "
    "half; the centre of digits moved one pixel right; a band across the seam of a digit "
    "whose top and bottom halves come from two different digits). Rows: the truth, the "
    "input (hidden pixels in red), two of the diffusion model's completions (known pixels "
    "copied exactly) and the nearest training digit on the known pixels.",
    alt="Four grids of small greyscale digits: truth, masked input, two diffusion "
    "completions and a nearest-neighbour fill, for a centre hole, a missing bottom half, "
    "shifted digits and two-digit chimeras.",
)
def inpainting(ctx, p: Inpainting):
    """Inpaint held-out digits with the diffusion model (k draws each): error in the hole,
    best of k, classifier agreement, against copying the nearest training digits."""
    import matplotlib.pyplot as plt
    import torch

    from genai_report.applications.inpainting import (
        band_mask,
        center_mask,
        chimera,
        half_mask,
        inpaint,
        nearest_fill,
        shift_right,
    )
    from genai_report.data import digits
    from genai_report.plotting import save_figure

    d = digits.load()
    model, clf = diffusion(ctx), classifier(ctx)
    x, y = d.x_test[: p.n], d.y_test[: p.n]
    mean_img = d.x_train.mean(0, keepdim=True)
    tests = {"center": (x, center_mask(), y), "bottom_half": (x, half_mask(), y),
             "shifted": (shift_right(x), center_mask(), None),
             "chimera": (chimera(x, ctx.generator(5)), band_mask(), None)}
    out, shown = {}, {}
    for t, (name, (xt, known, labels)) in enumerate(tests.items()):
        filled = inpaint(model, xt.repeat_interleave(p.k, 0), known,
                         generator=ctx.generator(1 + t), steps=p.steps or None,
                         resample=p.resample).cpu().view(p.n, p.k, *xt.shape[1:])
        nn_fill = nearest_fill(xt, known, d.x_train, p.k)  # (n, k, ...)
        hole = ~known.expand_as(xt[0])

        def err(z, xt=xt, hole=hole):  # (n, k, ...) -> (n, k) mean squared error in the hole
            return (z - xt[:, None]).square()[..., hole].mean(-1)

        e_diff, e_nn = err(filled), err(nn_fill)
        e_mean = err(torch.where(known, xt, mean_img)[:, None])[:, 0]
        res = {"hole_mse": {"diffusion": float(e_diff.mean()),
                            "diffusion_best_of_k": float(e_diff.min(1).values.mean()),
                            "nearest_neighbour": float(e_nn[:, 0].mean()),
                            "nearest_best_of_k": float(e_nn.min(1).values.mean()),
                            "mean_image": float(e_mean.mean())},
               "diffusion_beats_nearest": float((e_diff.mean(1) < e_nn[:, 0]).double().mean()),
               # paired differences per digit (diffusion - nearest): mean and standard error
               "gap": _paired(e_diff.mean(1) - e_nn[:, 0]),
               "gap_best_of_k": _paired(e_diff.min(1).values - e_nn.min(1).values),
               "known_max_abs_error": float((filled - xt[:, None])[..., ~hole].abs().max()),
               "hole_pixels": int(hole.sum())}
        if labels is not None:
            with torch.no_grad():
                def agree(z, labels=labels):
                    pred = clf(z.flatten(0, 1).to(ctx.device)).argmax(-1).cpu()
                    return (pred.view(len(z), -1) == labels[:, None]).double()

                a_diff, a_nn = agree(filled), agree(nn_fill)
            res["classifier_agreement"] = {
                "diffusion": float(a_diff.mean()), "nearest_neighbour": float(a_nn[:, 0].mean()),
                "diffusion_any_of_k": float(a_diff.max(1).values.mean()),
                "nearest_any_of_k": float(a_nn.max(1).values.mean())}
        out[name] = res
        shown[name] = (xt, known, filled, nn_fill[:, 0])
    if "center" in tests:  # RePaint's resampling, ablated (one draw per digit)
        plain = inpaint(model, x, center_mask(), generator=ctx.generator(9),
                        steps=p.steps or None, resample=1).cpu()
        out["center"]["hole_mse"]["diffusion_no_resampling"] = float(
            (plain - x)[..., ~center_mask().expand_as(x[0])].square().mean())

    cols = 4
    fig, axes = plt.subplots(5, len(tests) * (cols + 1) - 1, figsize=(7.2, 2.6))
    for c, (name, (xt, known, filled, nn1)) in enumerate(shown.items()):
        for j in range(cols):
            col = c * (cols + 1) + j
            masked = (1 - (xt[j] + 1) / 2).repeat(3, 1, 1)  # gray_r look
            masked[0][~known[0]], masked[1][~known[0]], masked[2][~known[0]] = 1.0, 0.3, 0.3
            show_digit(axes[0, col], xt[j])
            show_digit(axes[1, col], xt[j])
            axes[1, col].imshow(masked.permute(1, 2, 0).numpy())
            show_digit(axes[2, col], filled[j, 0])
            show_digit(axes[3, col], filled[j, min(1, p.k - 1)])
            show_digit(axes[4, col], nn1[j])
        axes[0, c * (cols + 1)].set_title(name.replace("_", " "), fontsize=8, loc="left")
        if c + 1 < len(tests):
            for r in range(5):
                axes[r, c * (cols + 1) + cols].axis("off")
    for r, lab in enumerate(["truth", "input", "diff. 1", "diff. 2", "nearest"]):
        axes[r, 0].set_ylabel(lab, fontsize=8, rotation=0, ha="right", va="center")
    fig.subplots_adjust(wspace=0.06, hspace=0.06)
    save_figure(fig, ctx.output("inpainting.svg"), dpi=110)
    return {**out, "n": p.n, "k": p.k, "steps": p.steps or model.config.timesteps,
            "resample": p.resample}


def _paired(diff):
    """Mean and standard error of per-item differences ``(n,)``."""
    n = len(diff)
    sd = float(diff.double().std()) if n > 1 else 0.0
    return {"mean": float(diff.double().mean()), "se": sd / n**0.5}


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
    outputs=("design.svg",),
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
    fig = plt.figure(figsize=(7.2, 2.9))
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
    save_figure(fig, ctx.output("design.svg"), dpi=90)
    base = rows[0]
    return {"curve": rows, "base_ink": base["mean_ink"], "base_accuracy": base["class_accuracy"],
            "strongest": rows[-1], "per_class": p.per_class}
