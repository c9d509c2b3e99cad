"""Generating sound: spectrograms of real and generated clips, their scores, and the WAVs.

The figure reads ``audio-wavenet``'s clips and record; it copies the WAV files so the page
can embed them as audio players (``[[audio:types-audio]]``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from genai_report.artifacts.audio import WAVS
from genai_report.pipeline.registry import figure


@dataclass(frozen=True)
class AudioFigure:
    """Nothing to set: the figure draws what the artifact measured."""


ROWS = (("real", "real (held out)"), ("wavenet", "WaveNet"), ("baseline", "4-sample baseline"))
"""Spectrogram rows: key in the artifact's clips, label."""


@figure(
    "types-audio",
    deps=("audio-wavenet",),
    params={"smoke": AudioFigure(), "quick": AudioFigure(), "full": AudioFigure()},
    outputs=("audio.svg", *WAVS),
    title="A WaveNet generates sounds of the class asked for",
    caption="Top: log-power spectrograms (0 to 2 kHz, 256 ms) of one held-out real clip per "
            "class and of the first sample per class (not chosen) of the WaveNet and of the "
            "same network with a receptive field of 4 samples, trained the same way. "
            "Bottom left: per class, the distance (dB) between the mean log-spectrogram of a "
            "set of clips and that of the held-out clips, with as many real training clips "
            "as the floor; mean and spread over sampling seeds. Bottom right: how often a "
            "classifier trained on real clips recognises the class asked for (dotted: the "
            "70% goal).",
    alt="A grid of spectrograms, six classes across and three rows (real, WaveNet, baseline); "
        "below, grouped bars of spectral distance per class for real clips, the WaveNet and "
        "the baseline, and bars of how often each is recognised as its class.",
)
def types_audio(ctx, p: AudioFigure):
    """Spectrogram grid of real and generated clips, and the classifier and spectral scores."""
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from genai_report.data.audio import CLASSES
    from genai_report.models.audio_classifier import log_spectrogram
    from genai_report.plotting import save_figure

    rec = ctx.input_metrics("audio-wavenet")
    clips = torch.load(ctx.input("audio-wavenet", "clips.pt"), map_location="cpu")
    for name in WAVS:
        shutil.copyfile(ctx.input("audio-wavenet", name), ctx.output(name))
    sr = clips["sample_rate"]
    C = len(CLASSES)
    specs = {key: log_spectrogram(clips[key].float()).numpy()
             for key, _ in ROWS}  # (C, F, frames) each
    lo = np.percentile(specs["real"], 5)
    hi = max(s.max() for s in specs.values())

    fig = plt.figure(figsize=(7.2, 5.8))
    outer = fig.add_gridspec(2, 1, height_ratios=[3, 1.5], hspace=0.32, left=0.09,
                             right=0.99, top=0.95, bottom=0.08)
    top = outer[0].subgridspec(len(ROWS), C, hspace=0.12, wspace=0.12)
    extent = (0, 1000 * clips["real"].shape[-1] / sr, 0, sr / 2000)  # ms, kHz
    for r, (key, label) in enumerate(ROWS):
        for c in range(C):
            ax = fig.add_subplot(top[r, c])
            ax.imshow(specs[key][c], origin="lower", aspect="auto", extent=extent,
                      cmap="magma", vmin=lo, vmax=hi, interpolation="none")
            ax.tick_params(labelsize=8, length=2)
            if r == 0:
                ax.set_title(CLASSES[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{label}\nkHz", fontsize=8)
            else:
                ax.set_yticklabels([])
            if r == len(ROWS) - 1:
                ax.set_xlabel("ms", fontsize=8, labelpad=1)
            else:
                ax.set_xticklabels([])

    scores = rec["scores"]
    keys = ("real", "wavenet", "baseline")
    names = {"real": "real (floor)", "wavenet": "WaveNet", "baseline": "4-sample baseline"}
    colors = {"real": "0.45", "wavenet": "C0", "baseline": "C1"}
    bottom = outer[1].subgridspec(1, 2, width_ratios=[3, 1], wspace=0.3)
    ax = fig.add_subplot(bottom[0])
    width = 0.27
    for k, key in enumerate(keys):
        per = scores[key]["spectral_per_class"]
        ax.bar(np.arange(C) + (k - 1) * width, [s["mean"] for s in per], width,
               yerr=[s["sd"] for s in per], color=colors[key], label=names[key], capsize=2,
               error_kw={"lw": 0.8})
    ax.set_xticks(range(C), [c.replace(" ", "\n") for c in CLASSES], fontsize=8)
    top_db = max(s["mean"] + s["sd"] for k in keys for s in scores[k]["spectral_per_class"])
    ax.set_ylim(0, 1.3 * top_db)
    ax.set_ylabel("spectral distance\nto held out (dB)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, ncol=3, loc="upper left", frameon=False)

    ax2 = fig.add_subplot(bottom[1])
    ax2.bar(range(3), [scores[k]["accuracy"]["mean"] for k in keys],
            yerr=[scores[k]["accuracy"]["sd"] for k in keys],
            color=[colors[k] for k in keys], capsize=3)
    ax2.axhline(0.7, color="0.2", ls=":", lw=1)
    ax2.set_xticks(range(3), ["real", "Wave-\nNet", "base-\nline"], fontsize=8)
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("recognised as\nits class", fontsize=8)
    ax2.tick_params(labelsize=8)
    save_figure(fig, ctx.output("audio.svg"))

    acc = {k: scores[k]["accuracy"] for k in keys}
    spec = {k: scores[k]["spectral_db"] for k in keys}
    bits = rec["bits_per_sample"]

    def apart(a, b):  # a below b by more than their spreads together
        return bool(a["mean"] + a["sd"] < b["mean"] - b["sd"])

    return {
        **rec,
        "wavenet_accuracy_goal": bool(acc["wavenet"]["mean"] >= 0.7),
        "wavenet_beats_baseline_accuracy": apart(acc["baseline"], acc["wavenet"]),
        "wavenet_closer_than_baseline": apart(spec["wavenet"], spec["baseline"]),
        "floor_below_wavenet": apart(spec["real"], spec["wavenet"]),
        "bits_saved": bits["baseline"] - bits["wavenet"],
        "accuracy_gap": acc["wavenet"]["mean"] - acc["baseline"]["mean"],
        "closer_in_classes": sum(
            w["mean"] < b["mean"] for w, b in zip(scores["wavenet"]["spectral_per_class"],
                                                  scores["baseline"]["spectral_per_class"],
                                                  strict=True)),
        "spectral_gap_to_floor": spec["wavenet"]["mean"] - spec["real"]["mean"],
        "hardest_class": {k: CLASSES[int(np.argmax([s["mean"] for s in
                                                    scores[k]["spectral_per_class"]]))]
                          for k in ("wavenet", "baseline")},
        # the level most of a spectrogram sits at: its noise floor, in the clips shown
        "median_db": {k: float(np.median(specs[k])) for k, _ in ROWS},
        "wav_bytes": sum(ctx.output(n).stat().st_size for n in WAVS),
    }
