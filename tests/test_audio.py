"""Synthesized audio, μ-law coding, WAV files, the WaveNet and the ``[[audio:...]]`` form."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from genai_report.data.audio import (
    CLASSES,
    AudioConfig,
    mu_law_decode,
    mu_law_encode,
    read_wav,
    synthesize,
    train_test,
    write_wav,
)
from genai_report.mkdocs_plugin.markup import Resolvers, audio_table, scan, transform
from genai_report.models.audio_classifier import log_spectrogram
from genai_report.models.wavenet import SILENCE, WaveNet, WaveNetConfig

SHORT = AudioConfig(length=512)


def test_the_written_wavs_cover_every_class():
    from genai_report.artifacts.audio import N_CLASSES, WAVS

    assert N_CLASSES == len(CLASSES) and len(WAVS) == 2 * len(CLASSES)


def test_clips_are_deterministic_varied_and_in_range():
    a = synthesize(2, 4, torch.Generator().manual_seed(0), SHORT)
    b = synthesize(2, 4, torch.Generator().manual_seed(0), SHORT)
    assert a.shape == (4, 512) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert a.abs().max() <= 1
    assert (a[0] - a[1]).abs().mean() > 0.05  # every clip draws its own pitch and phase
    with pytest.raises(ValueError, match="label must be in 0..5"):
        synthesize(len(CLASSES), 1, torch.Generator())


def test_classes_differ_where_they_should_on_the_spectrum():
    """The high tone's energy sits above the low tone's; the sweep's centroid rises."""
    data = train_test(2, 1, seed=3)
    spec = log_spectrogram(data["train_x"])  # (N, F, frames)
    power = 10 ** (spec / 10)
    freqs = torch.arange(spec.shape[1], dtype=torch.float32)[:, None]
    centroid = (power * freqs).sum(1) / power.sum(1)  # (N, frames) in bins
    low, high = CLASSES.index("low tone"), CLASSES.index("high tone")
    sweep = CLASSES.index("rising sweep")
    y = data["train_y"]
    assert centroid[y == high].mean() > 2 * centroid[y == low].mean()
    c = centroid[y == sweep][:, 2:-2]  # away from the clip's edges
    assert c[:, -3:].mean() > 1.8 * c[:, :3].mean()
    assert set(data["test_y"].tolist()) == set(range(len(CLASSES)))


def test_mu_law_round_trip_is_fine_near_silence_and_coarse_when_loud():
    x = torch.linspace(-1, 1, 20001)
    q = mu_law_encode(x)
    assert q.min() == 0 and q.max() == 255 and mu_law_encode(torch.zeros(1)).item() == SILENCE
    err = (mu_law_decode(q) - x).abs()
    quiet, loud = x.abs() < 0.01, x.abs() > 0.9
    assert err[quiet].max() < 5e-4 and 10 * err[quiet].max() < err[loud].max() < 0.03
    assert torch.equal(mu_law_encode(mu_law_decode(torch.arange(256))), torch.arange(256))


def test_wav_files_round_trip(tmp_path):
    x = torch.sin(torch.linspace(0, 60, 800)) * 0.5
    write_wav(tmp_path / "a.wav", x, 8000)
    y, sr = read_wav(tmp_path / "a.wav")
    assert sr == 8000 and y.shape == x.shape
    assert (y - x).abs().max() < 1 / 32767 + 1e-6
    assert (tmp_path / "a.wav").stat().st_size == 44 + 2 * 800  # 16-bit mono PCM
    with pytest.raises(ValueError, match="one mono clip"):
        write_wav(tmp_path / "b.wav", x[None].repeat(2, 1), 8000)


def _small_wavenet(seed: int = 0) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(WaveNetConfig(n_classes=3, residual=8, skip=8, dilations=(1, 2, 4, 8),
                                 clip_length=64)).eval()


def test_receptive_field_and_causality():
    """Output t depends on inputs before t, and on none further back than the field."""
    model = _small_wavenet()
    rf = model.config.receptive_field
    assert rf == 16
    x = torch.randint(0, 256, (2, 48))
    labels = torch.tensor([0, 2])
    t = 30
    y = x.clone()
    y[:, t:] = torch.randint(0, 256, (2, 48 - t))  # change the present and the future
    with torch.no_grad():
        a, b = model(x, labels), model(y, labels)
    assert torch.equal(a[:, :, : t + 1], b[:, :, : t + 1])  # column t sees x[:t] only
    assert (a[:, :, t + 1] - b[:, :, t + 1]).abs().max() > 0  # x_t feeds the next column
    z = x.clone()
    z[:, : t - rf] = torch.randint(0, 256, (2, t - rf))  # beyond the receptive field of t
    with torch.no_grad():
        c = model(z, labels)
    assert torch.allclose(a[:, :, t], c[:, :, t], atol=1e-5)


def test_cached_sampling_equals_naive_recomputation():
    model = _small_wavenet(1)
    labels = torch.tensor([0, 1, 2, 1])
    fast = model.generate(labels, 40, torch.Generator().manual_seed(7))
    slow = model.generate_naive(labels, 40, torch.Generator().manual_seed(7))
    assert torch.equal(fast, slow)
    assert fast.shape == (4, 40) and fast.unique().numel() > 10
    other = model.generate(labels, 40, torch.Generator().manual_seed(8))
    assert not torch.equal(fast, other)


def test_wavenet_learns_to_predict_a_tone_better_than_chance():
    """A property that can fail: a few steps on one tone drop the loss well below 8 bits."""
    model = _small_wavenet(2).train()
    x = mu_law_encode(synthesize(1, 4, torch.Generator().manual_seed(0), SHORT))[:, :128]
    labels = torch.zeros(4, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(60):
        loss = model.nll(x, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() / float(torch.log(torch.tensor(2.0))) < 5.0


# -- the [[audio:...]] form --------------------------------------------------------------
def _resolvers(calls):
    def audio(name, file):
        calls.append((name, file))
        if name != "sounds":
            raise LookupError(f"Unknown figure '{name}'.")
        return audio_table([("real-low-tone.wav", "figures/sounds/real-low-tone.wav"),
                            ("model-low-tone.wav", "figures/sounds/model-low-tone.wav")])

    return Resolvers(figure=lambda *a: "", metric=lambda *a: "", param=lambda *a: "",
                     cite=lambda keys: "", block=lambda what: "", audio=audio)


def test_audio_form_renders_players_and_reports_unknown_nodes():
    calls: list = []
    md = "# Page\n\n[[audio:sounds]]\n\n[[audio:sounds:real-low-tone.wav]]\n\n[[audio:nope]]\n"
    result = transform(md, "docs/a.md", _resolvers(calls))
    assert calls == [("sounds", None), ("sounds", "real-low-tone.wav"), ("nope", None)]
    assert result.markdown.count('<audio controls preload="none" src="figures/sounds/') == 4
    assert "<th>real</th><th>model</th>" in result.markdown and "<th>low tone</th>" in result.markdown
    assert [(e.line, e.message) for e in result.errors] == [(7, "Unknown figure 'nope'.")]
    inline = transform("Hear [[audio:sounds]] here.\n", "docs/a.md", _resolvers([]))
    assert "goes on a line of its own" in inline.errors[0].message
    assert [f.kind for f in scan(md)] == ["audio"] * 3
    no_resolver = transform(md, "docs/a.md", Resolvers(*([lambda *a: ""] * 5)))
    assert "no audio resolver" in no_resolver.errors[0].message


def test_audio_table_without_kinds_lists_one_row_per_file():
    out = audio_table([("hum.wav", "x/hum.wav")])
    assert out.count("<tr>") == 1 and "<th>hum.wav</th>" in out and 'src="x/hum.wav"' in out


NODES = '''
from dataclasses import dataclass

from genai_report.pipeline import figure


@dataclass(frozen=True)
class P:
    n: int = 1


@figure("sounds", params={"smoke": P(), "quick": P(), "full": P()},
        outputs=("sounds.svg", "real-hum.wav", "model-hum.wav"), alt="a test image")
def sounds(ctx, p):
    import torch
    from genai_report.data.audio import write_wav
    ctx.output("sounds.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
    for name in ("real-hum.wav", "model-hum.wav"):
        write_wav(ctx.output(name), torch.zeros(80), 8000)
    return {}
'''

CONFIG = """
site_name: audio test
plugins:
  - genai-report:
      profile: smoke
      device: cpu
      cache_dir: cache
      bibliography: refs.bib
      node_packages: [sitepkg.nodes]
"""


def test_site_serves_a_figures_wavs_and_places_players(tmp_path):
    (tmp_path / "sitepkg" / "nodes").mkdir(parents=True)
    (tmp_path / "sitepkg" / "__init__.py").write_text("")
    (tmp_path / "sitepkg" / "nodes" / "__init__.py").write_text("")
    (tmp_path / "sitepkg" / "nodes" / "figs.py").write_text(NODES)
    (tmp_path / "mkdocs.yml").write_text(CONFIG)
    (tmp_path / "refs.bib").write_text("")
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "index.md").write_text("# Home\n")
    (tmp_path / "docs" / "sub" / "page.md").write_text(
        "# Sounds\n\n[[figure:sounds]]\n\n[[audio:sounds]]\n")
    env = {"PYTHONPATH": str(tmp_path), "NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    site = tmp_path / "site"
    for name in ("real-hum.wav", "model-hum.wav"):
        assert (site / "figures" / "sounds" / name).stat().st_size == 44 + 160
    html = (site / "sub" / "page" / "index.html").read_text()
    assert 'src="../../figures/sounds/real-hum.wav"' in html
    assert html.count('<audio controls preload="none"') == 2
    (tmp_path / "docs" / "sub" / "page.md").write_text("# Sounds\n\n[[audio:sounds:hmm.wav]]\n")
    bad = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode != 0
    assert "docs/sub/page.md:3: Figure 'sounds' has no sound 'hmm.wav'" in bad.stderr
