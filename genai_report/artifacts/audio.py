"""Sound you can hear: a WaveNet trained on synthesized clips, and the judge that scores it.

``audio-classifier`` trains a small classifier on log-spectrograms of *real* training clips
(:mod:`genai_report.data.audio`); its accuracy on held-out real clips is the ceiling a
generator can reach under this judge.

``audio-wavenet`` trains a class- and position-conditioned WaveNet
(:mod:`genai_report.models.wavenet`) on the same training clips, and, with the same data,
steps and batches, the same network with a receptive field of a few samples (two layers
of dilation 1 and 2): the baseline that isolates what the dilated stack's long view buys.
Both are scored the same way, over several sampling seeds:

* the classifier's accuracy on their samples (does it sound like the class asked for?);
* a spectral distance: the mean absolute difference (dB) between the class-mean
  log-spectrogram of a set of clips and that of the held-out clips, averaged over classes.
  Its floor is the same distance for as many *real* training clips; every set has the same
  size, so the sampling noise of the mean is the same for all;
* the held-out negative log-likelihood in bits per sample.

It writes a handful of clips as 16-bit WAV files (the first real held-out clip and the first
sample of each class, not chosen by hand).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genai_report.artifacts.scaling import torch_threads
from genai_report.pipeline.registry import artifact

DATA_SEED = 140
"""Seed of the synthesized training and held-out clips (both nodes draw the same)."""


def wav_name(kind: str, label: int) -> str:
    """File name of a written clip: ``kind`` is ``real`` or ``wavenet``."""
    from genai_report.data.audio import CLASSES

    return f"{kind}-{re.sub(r'[^a-z]+', '-', CLASSES[label])}.wav"


N_CLASSES = 6
WAVS = tuple(wav_name(k, c) for c in range(N_CLASSES) for k in ("real", "wavenet"))
"""The WAV outputs of ``audio-wavenet``: a real and a generated clip per class."""


@dataclass(frozen=True)
class Classifier:
    """The judge.

    Attributes:
        n_train, n_test: clips per class for training and held out (shared with the
            generator, which reads them from this node's record).
        width: channels of the classifier's first block.
        steps, batch_size, lr: training (AdamW, cosine decay).
        augment_noise: each training clip gets white noise of a standard deviation drawn
            in ``[0, augment_noise]``, so that a noise floor alone does not decide the
            class (generated clips are noisier than the data).
        threads: torch threads (0: leave torch's setting).
    """

    n_train: int = 64
    n_test: int = 24
    width: int = 8
    steps: int = 150
    batch_size: int = 64
    lr: float = 3e-3
    augment_noise: float = 0.1
    threads: int = 1

    def __post_init__(self) -> None:
        if self.augment_noise < 0:
            raise ValueError(f"augment_noise must be >= 0, got {self.augment_noise}.")
        if self.n_train < 1 or self.n_test < 1:
            raise ValueError(f"n_train and n_test must be >= 1, got {self.n_train}, "
                             f"{self.n_test}.")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1.")


@artifact(
    "audio-classifier",
    params={"smoke": Classifier(n_train=8, n_test=4, steps=5, batch_size=16),
            "quick": Classifier(),
            "full": Classifier(n_train=256, n_test=64, width=16, steps=600)},
    outputs=("classifier.pt",),
    seed=140,
)
def audio_classifier(ctx, p: Classifier):
    """Train a log-spectrogram classifier on real clips; its held-out accuracy is the ceiling."""
    with torch_threads(p.threads):
        return _classifier(ctx, p)


def _classifier(ctx, p: Classifier):
    import torch
    import torch.nn.functional as F

    from genai_report.data.audio import CLASSES, train_test
    from genai_report.models.audio_classifier import SpectrogramClassifier
    from genai_report.training.loop import TrainConfig, train

    data = train_test(p.n_train, p.n_test, DATA_SEED)
    model = SpectrogramClassifier(len(CLASSES), p.width)
    gen = ctx.generator(1)

    def loss_fn(m, step):
        idx = torch.randint(len(data["train_x"]), (p.batch_size,), generator=gen)
        x = data["train_x"][idx]  # (B, T)
        sd = p.augment_noise * torch.rand(p.batch_size, 1, generator=gen)  # (B, 1)
        x = x + sd * torch.randn(x.shape, generator=gen)
        return F.cross_entropy(m(x), data["train_y"][idx])

    hist = train(model, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 10),
                 progress=ctx.progress)
    model.eval()
    with torch.no_grad():
        pred = model(data["test_x"]).argmax(1)
    torch.save({"state": model.state_dict(), "width": p.width}, ctx.output("classifier.pt"))
    return {"n_train": p.n_train, "n_test": p.n_test, "classes": list(CLASSES),
            "held_out_accuracy": float((pred == data["test_y"]).float().mean()),
            "train_s": hist.wall_time_s}


def load_classifier(path):
    """The trained :class:`~genai_report.models.audio_classifier.SpectrogramClassifier`."""
    import torch

    from genai_report.data.audio import CLASSES
    from genai_report.models.audio_classifier import SpectrogramClassifier

    saved = torch.load(path, map_location="cpu")
    model = SpectrogramClassifier(len(CLASSES), saved["width"])
    model.load_state_dict(saved["state"])
    return model.eval().requires_grad_(False)


@dataclass(frozen=True)
class WaveNetRun:
    """The generator and its baseline.

    Attributes:
        residual, skip: channels (both models).
        dilations: the WaveNet's layers; ``baseline_dilations`` the baseline's.
        steps, batch_size, targets, lr: training, identical for both models: each step
            takes ``batch_size`` windows of ``receptive field + targets`` samples and
            scores the last ``targets``.
        per_class: samples per class and sampling seed (and the size of every compared set).
        sample_seeds: sampling seeds.
        temperature: softmax temperature of sampling (1: the model's distribution).
        speed_samples: samples per clip of the timing of the queued sampler against naive
            recomputation (the same batch of clips, the same random draws).
        threads: torch threads (0: leave torch's setting).
    """

    residual: int = 32
    skip: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    baseline_dilations: tuple[int, ...] = (1, 2)
    steps: int = 600
    batch_size: int = 16
    targets: int = 256
    lr: float = 3e-3
    per_class: int = 8
    sample_seeds: int = 3
    temperature: float = 1.0
    speed_samples: int = 64
    threads: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.targets < 1:
            raise ValueError("steps, batch_size and targets must be >= 1.")
        if self.per_class < 1 or self.sample_seeds < 1:
            raise ValueError("per_class and sample_seeds must be >= 1.")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")


MODELS = ("wavenet", "baseline")
"""The two generators, in the records."""


@artifact(
    "audio-wavenet",
    params={"smoke": WaveNetRun(residual=8, skip=8, dilations=(1, 2, 4), steps=3,
                                batch_size=2, targets=16, per_class=1, sample_seeds=2,
                                speed_samples=8),
            "quick": WaveNetRun(),
            "full": WaveNetRun(residual=64, skip=128, dilations=(1, 2, 4, 8, 16, 32, 64, 128,
                                                                 256),
                               steps=4000, batch_size=32, per_class=32, sample_seeds=5)},
    outputs=("clips.pt", *WAVS),
    deps=("audio-classifier",),
    seed=141,
    dry_run={"per_class": 1, "sample_seeds": 2, "speed_samples": 16},
)
def audio_wavenet(ctx, p: WaveNetRun):
    """Train the WaveNet and its short-sighted baseline; sample, score and write WAVs."""
    with torch_threads(p.threads):
        return _wavenet(ctx, p)


def _wavenet(ctx, p: WaveNetRun):
    import time

    import torch
    import torch.nn.functional as F

    from genai_report.data.audio import (
        AudioConfig,
        mu_law_decode,
        mu_law_encode,
        train_test,
        write_wav,
    )
    from genai_report.metrics.seeds import over_seeds
    from genai_report.models.audio_classifier import log_spectrogram
    from genai_report.models.wavenet import SILENCE, WaveNet, WaveNetConfig
    from genai_report.training.loop import TrainConfig, train

    judge_rec = ctx.input_metrics("audio-classifier")
    judge = load_classifier(ctx.input("audio-classifier", "classifier.pt"))
    audio = AudioConfig()
    data = train_test(judge_rec["n_train"], judge_rec["n_test"], DATA_SEED, audio)
    L, C = audio.length, N_CLASSES
    codes = mu_law_encode(data["train_x"])  # (N, L)
    test_codes = mu_law_encode(data["test_x"])

    def fit(dilations, offset):
        cfg = WaveNetConfig(n_classes=C, residual=p.residual, skip=p.skip,
                            dilations=tuple(dilations), clip_length=L)
        torch.manual_seed(ctx.seed * 10 + offset)
        model = WaveNet(cfg)
        rf = cfg.receptive_field
        padded = F.pad(codes, (rf, 0), value=SILENCE)  # (N, rf + L): silence before clips
        gen = ctx.generator(10)  # the same batches for both models
        W = rf + p.targets

        def loss_fn(m, step):
            idx = torch.randint(len(codes), (p.batch_size,), generator=gen)  # (B,)
            off = torch.randint(L - p.targets + 1, (p.batch_size,), generator=gen)  # (B,)
            cols = off[:, None] + torch.arange(W)  # (B, W) window into the padded clip
            x = padded[idx[:, None], cols]  # (B, W); clip position of column j: off + j - rf
            return m.nll(x, data["train_y"][idx], start=off - rf, from_t=rf)

        cfg_t = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.steps // 20,
                            min_lr_ratio=0.05, grad_clip=1.0)
        hist = train(model, loss_fn, cfg_t, progress=ctx.progress)
        return model.eval(), hist.wall_time_s

    def bits(model):  # held-out negative log-likelihood, bits per sample
        rf = model.config.receptive_field
        x = F.pad(test_codes, (rf, 0), value=SILENCE)
        with torch.no_grad():
            nats = model.nll(x, data["test_y"], start=-rf, from_t=rf)
        return float(nats) / float(torch.log(torch.tensor(2.0)))

    def mean_spec(w, y):  # (N, L), (N,) -> (C, F, frames) class-mean log-spectrograms
        s = log_spectrogram(w)
        return torch.stack([s[y == c].mean(0) for c in range(C)])

    real_spec = mean_spec(data["test_x"], data["test_y"])

    def score(w, y):
        with torch.no_grad():
            pred = judge(w).argmax(1)
        per_class = [float((pred[y == c] == c).float().mean()) for c in range(C)]
        dist = (mean_spec(w, y) - real_spec).abs().mean((1, 2))  # (C,) dB
        return {"accuracy": float((pred == y).float().mean()), "per_class": per_class,
                "spectral_db": float(dist.mean()), "spectral_per_class": dist.tolist()}

    models, train_s = {}, {}
    for k, (name, dil) in enumerate((("wavenet", p.dilations),
                                     ("baseline", p.baseline_dilations))):
        models[name], train_s[name] = fit(dil, k)
    labels = torch.arange(C).repeat_interleave(p.per_class)  # (C * per_class,)
    scores = {name: [] for name in (*MODELS, "real")}
    samples, sample_s = {}, {}
    for s in range(p.sample_seeds):
        for name, model in models.items():
            t0 = time.perf_counter()
            q = model.generate(labels, L, ctx.generator(100 + s), p.temperature)  # (N, L)
            sample_s[name] = sample_s.get(name, 0.0) + time.perf_counter() - t0
            w = mu_law_decode(q)
            scores[name].append(score(w, labels))
            if s == 0:
                samples[name] = w
        # the floor: as many real training clips, a different subset per seed
        pick = torch.cat([torch.nonzero(data["train_y"] == c)[:, 0].roll(-s * p.per_class)
                          [:p.per_class] for c in range(C)])
        scores["real"].append(score(data["train_x"][pick], labels))

    def summary(runs):
        return {"accuracy": over_seeds([r["accuracy"] for r in runs]),
                "per_class": [over_seeds([r["per_class"][c] for r in runs]) for c in range(C)],
                "spectral_db": over_seeds([r["spectral_db"] for r in runs]),
                "spectral_per_class": [over_seeds([r["spectral_per_class"][c] for r in runs])
                                       for c in range(C)]}

    # the queued sampler against recomputing the history at every step, same draws
    wn, n_speed = models["wavenet"], min(p.speed_samples, L)
    t0 = time.perf_counter()
    fast = wn.generate(labels, n_speed, ctx.generator(200), p.temperature)
    t1 = time.perf_counter()
    slow = wn.generate_naive(labels, n_speed, ctx.generator(200), p.temperature)
    t2 = time.perf_counter()
    speed = {"clips": len(labels), "samples": n_speed, "cached_s": t1 - t0,
             "naive_s": t2 - t1, "speedup": (t2 - t1) / max(t1 - t0, 1e-9),
             "identical": bool(torch.equal(fast, slow))}

    first = [int(torch.nonzero(data["test_y"] == c)[0, 0]) for c in range(C)]
    for c in range(C):
        write_wav(ctx.output(wav_name("real", c)), data["test_x"][first[c]], audio.sample_rate)
        write_wav(ctx.output(wav_name("wavenet", c)), samples["wavenet"][c * p.per_class],
                  audio.sample_rate)
    # one clip per class (half precision is plenty for a spectrogram), not views of the batch
    torch.save({"real": data["test_x"][first].half(), "classes": C,
                "sample_rate": audio.sample_rate,
                **{name: samples[name][::p.per_class].clone().half() for name in MODELS}},
               ctx.output("clips.pt"))
    with torch.no_grad():
        judge_acc = float((judge(data["test_x"]).argmax(1) == data["test_y"]).float().mean())
    return {
        "sample_rate": audio.sample_rate, "clip_samples": L,
        "clip_ms": 1000 * L / audio.sample_rate,
        "receptive_field": {name: m.config.receptive_field for name, m in models.items()},
        "receptive_field_ms": {name: 1000 * m.config.receptive_field / audio.sample_rate
                               for name, m in models.items()},
        "layers": {name: len(m.config.dilations) for name, m in models.items()},
        "params": {name: sum(q.numel() for q in m.parameters()) for name, m in models.items()},
        "bits_per_sample": {name: bits(m) for name, m in models.items()},
        "ceiling_accuracy": judge_acc,
        "scores": {name: summary(runs) for name, runs in scores.items()},
        "per_class": p.per_class, "sample_seeds": p.sample_seeds, "sampling_speed": speed,
        "train_s": train_s, "sample_s": {k: v / p.sample_seeds for k, v in sample_s.items()},
    }
