"""The multimodal models: generated captions, the tiny CLIP and text-conditioned diffusion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genai_report.artifacts.multimodal import ClipFit, TextToImageFit, retrieval
from genai_report.data import captions as cap
from genai_report.models.clip import Clip, ClipConfig, TextEncoder, clip_loss
from genai_report.models.diffusion import DiffusionConfig
from genai_report.models.text_to_image import TextDiffusion


def _line(lean_right: bool) -> torch.Tensor:
    """An 8x8 diagonal stroke in [-1, 1], ``(1, 1, 8, 8)``."""
    x = -torch.ones(1, 1, 8, 8)
    for r in range(8):
        c = 7 - r if lean_right else r  # row 0 is the top
        x[0, 0, r, c] = 1.0
    return x


def test_slant_is_positive_when_the_top_leans_right():
    assert cap.slant(_line(True)).item() == pytest.approx(1.0)
    assert cap.slant(_line(False)).item() == pytest.approx(-1.0)


def test_ink_counts_the_share_of_the_image_covered():
    x = -torch.ones(2, 1, 8, 8)
    x[1, 0, :4] = 1.0
    assert cap.ink(x).tolist() == pytest.approx([0.0, 0.5])


def test_attribute_thresholds_split_every_class_into_thirds():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(600, 1, 8, 8, generator=gen) * 2 - 1
    y = torch.arange(600) % 10
    attrs = cap.Attributes.fit(x, y)
    stroke, lean = attrs.of(x, y)
    for values in (stroke, lean):
        for c in range(10):
            counts = torch.bincount(values[y == c], minlength=3).float() / 60
            assert counts.tolist() == pytest.approx([1 / 3] * 3, abs=0.04)


def test_captions_say_each_attribute_only_when_asked():
    assert cap.caption(7) == "a seven"
    assert cap.caption(7, 1, 1) == "a thick seven leaning left"
    texts = cap.all_captions()
    assert len(texts) == len(set(texts)) == 10 * 3 * 3
    d, s, t = torch.tensor([7]), torch.tensor([1]), torch.tensor([2])
    assert texts[cap.caption_index(d, s, t).item()] == "a thick seven leaning right"
    gen = torch.Generator().manual_seed(0)
    never = cap.sample_captions(d.repeat(50), s.repeat(50), t.repeat(50), gen, p_say=0.0)
    always = cap.sample_captions(d.repeat(50), s.repeat(50), t.repeat(50), gen, p_say=1.0)
    assert {texts[i] for i in never.tolist()} == {"a seven"}
    assert {texts[i] for i in always.tolist()} == {"a thick seven leaning right"}


def test_tokenizer_rejects_unknown_words_and_ends_with_eos():
    ids = cap.encode_batch(["a seven", "a thin two leaning left"])
    assert ids.shape == (2, cap.MAX_LEN)
    assert ids[0, 2].item() == cap.EOS and ids[0, 3:].eq(cap.PAD).all()
    with pytest.raises(ValueError, match="unknown word 'photo'"):
        cap.tokenize("a photo of a seven")


def test_text_encoder_reads_the_end_token_and_ignores_what_follows():
    torch.manual_seed(0)
    enc = TextEncoder(width=16, layers=1, heads=2).eval()
    ids = cap.encode_batch(["a thick seven"])
    other = ids.clone()
    other[0, 4:] = cap.VOCAB.index("nine")  # tokens after <eos> (causal: never read)
    changed = ids.clone()
    changed[0, 2] = cap.VOCAB.index("nine")  # a word before <eos>
    with torch.no_grad():
        base = enc(ids)
        assert torch.allclose(base, enc(other))
        assert not torch.allclose(base, enc(changed))


def test_clip_loss_is_the_symmetric_cross_entropy_when_captions_are_unique():
    gen = torch.Generator().manual_seed(0)
    u = F.normalize(torch.randn(6, 4, generator=gen), dim=-1)
    v = F.normalize(torch.randn(6, 4, generator=gen), dim=-1)
    scale = torch.tensor(5.0)
    logits = scale * u @ v.T
    target = torch.arange(6)
    plain = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    assert clip_loss(u, v, scale, torch.arange(6)).item() == pytest.approx(plain.item(), rel=1e-5)


def test_clip_loss_does_not_punish_matching_a_repeated_caption():
    # pairs 0 and 1 carry the same caption: swapping their captions changes nothing
    gen = torch.Generator().manual_seed(1)
    u = F.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    v = F.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    ids = torch.tensor([3, 3, 5, 7])
    swapped = v[[1, 0, 2, 3]]
    scale = torch.tensor(10.0)
    assert clip_loss(u, v, scale, ids).item() == pytest.approx(
        clip_loss(u, swapped, scale, ids).item(), rel=1e-5)
    # and aligned embeddings score lower than misaligned ones
    assert clip_loss(u, u, scale, torch.arange(4)) < clip_loss(u, v, scale, torch.arange(4))


def test_clip_embeddings_are_unit_vectors():
    model = Clip(ClipConfig(embed_dim=8, image_channels=4, image_features=8, text_width=16,
                            text_layers=1, text_heads=2))
    img = model.encode_image(torch.zeros(3, 1, 8, 8))
    txt = model.encode_text(cap.encode_batch(["a one", "a two"]))
    assert img.shape == (3, 8) and txt.shape == (2, 8)
    assert torch.allclose(img.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(txt.norm(dim=-1), torch.ones(2), atol=1e-5)
    with pytest.raises(ValueError, match="multiple of text_heads"):
        ClipConfig(text_width=30, text_heads=4)


def test_retrieval_recall_and_its_chance_level():
    sim = torch.eye(5)  # every query's correct candidate scores highest
    truth = torch.eye(5, dtype=torch.bool)
    perfect = retrieval(sim, truth, ks=(1, 2))
    assert perfect["recall_at_1"] == 1.0
    assert perfect["chance_at_1"] == pytest.approx(1 / 5)
    assert perfect["chance_at_2"] == pytest.approx(2 / 5)
    worst = retrieval(-sim, truth, ks=(1,))
    assert worst["recall_at_1"] == 0.0


def _text_diffusion() -> TextDiffusion:
    cfg = DiffusionConfig(data_shape=(1, 8, 8), timesteps=20, denoiser="unet", channels=(4, 8),
                          attention=False)
    return TextDiffusion(cfg, cond_dim=6)


def test_text_diffusion_guidance_zero_ignores_the_caption_and_one_follows_it():
    torch.manual_seed(0)
    model = _text_diffusion().eval()
    with torch.no_grad():
        for p in model.denoiser.parameters():  # untrained: leave no zero-initialised layer
            p.normal_(0, 0.3)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 5])
    a, b = F.normalize(torch.randn(2, 6), dim=-1), F.normalize(torch.randn(2, 6), dim=-1)
    with torch.no_grad():
        assert torch.allclose(model.predict_noise(x, t, a, 0.0), model.predict_noise(x, t, b, 0.0))
        assert torch.allclose(model.predict_noise(x, t, a, 1.0), model.denoiser(x, t, a))
        assert not torch.allclose(model.predict_noise(x, t, a, 1.0),
                                  model.predict_noise(x, t, b, 1.0))
        s = 3.0
        guided = model.predict_noise(x, t, a, s)
        null = model.denoiser(x, t, torch.zeros(2, 6))
        assert torch.allclose(guided, null + s * (model.denoiser(x, t, a) - null), atol=1e-5)


def test_text_diffusion_trains_its_condition_projection_and_round_trips():
    torch.manual_seed(0)
    model = _text_diffusion()
    gen = torch.Generator().manual_seed(0)
    loss = model.loss(torch.zeros(4, 1, 8, 8), F.normalize(torch.randn(4, 6), dim=-1),
                      generator=gen, p_uncond=0.0)
    loss.backward()
    assert model.denoiser.label.net[0].weight.grad is not None
    again = TextDiffusion.load(model.checkpoint())
    assert again.cond_dim == 6
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])


def test_configs_reject_bad_values_with_clear_errors():
    with pytest.raises(ValueError, match="n_classes=0"):
        TextDiffusion(DiffusionConfig(data_shape=(1, 8, 8), denoiser="unet", n_classes=10), 4)
    with pytest.raises(ValueError, match="chosen_guidance"):
        TextToImageFit(guidance=(0.0, 1.0), chosen_guidance=3.0)
    with pytest.raises(ValueError, match="p_say"):
        ClipFit(p_say=1.5)


def test_clip_seeds_trained_together_end_where_each_alone_ends():
    """digits-clip trains every seed's CLIP as one ensemble, and every supervised twin as
    another. Each member must follow the run it replaced: its own initial weights,
    batches, captions and shifts, its own loss, clipped gradient and AdamW update."""
    from types import SimpleNamespace

    from genai_report.artifacts.multimodal import _shifted, _train_clip_seeds
    from genai_report.data import digits
    from genai_report.metrics.fid import DigitsClassifier
    from genai_report.models.clip import image_config
    from genai_report.training.loop import TrainConfig, train

    p = ClipFit(steps=8, batch=16, warmup_steps=2, seeds=2, embed_dim=8, text_width=16)
    ctx = SimpleNamespace(seed=160, progress=None)
    d = digits.load()
    x_tr, y_tr = d.x_train[:200], d.y_train[:200]
    attrs = cap.Attributes.fit(x_tr, y_tr)
    stroke, lean = attrs.of(x_tr, y_tr)
    ids = cap.encode_batch(cap.all_captions())  # (90, MAX_LEN)
    cfg = ClipConfig(embed_dim=p.embed_dim, text_width=p.text_width, text_layers=p.text_layers)
    train_cfg = TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                            min_lr_ratio=0.1, weight_decay=p.weight_decay, grad_clip=1.0)
    clips, sups, clip_hist, _ = _train_clip_seeds(ctx, p, cfg, train_cfg, x_tr, y_tr, ids,
                                                  stroke, lean, y_tr)
    assert len(clip_hist.member_loss[0]) == p.seeds
    for seed in range(p.seeds):
        gen = torch.Generator().manual_seed(ctx.seed * 100 + seed)
        torch.manual_seed(ctx.seed * 100 + seed)
        alone = Clip(cfg)

        def clip_step(m, step, gen=gen):
            idx = torch.randint(0, len(x_tr), (p.batch,), generator=gen)
            said = cap.sample_captions(y_tr[idx], stroke[idx], lean[idx], gen, p.p_say)
            img = m.encode_image(_shifted(x_tr[idx], gen, p.shift))
            return clip_loss(img, m.encode_text(ids)[said], m.scale(), said)

        train(alone, clip_step, train_cfg)
        sup_gen = torch.Generator().manual_seed(ctx.seed * 100 + seed)
        torch.manual_seed(ctx.seed * 100 + seed)
        sup = DigitsClassifier(image_config(cfg))

        def sup_step(m, step, gen=sup_gen):
            idx = torch.randint(0, len(x_tr), (p.batch,), generator=gen)
            cap.sample_captions(y_tr[idx], stroke[idx], lean[idx], gen, p.p_say)
            return F.cross_entropy(m(_shifted(x_tr[idx], gen, p.shift)), y_tr[idx])

        train(sup, sup_step, train_cfg)
        for together, ref in ((clips[seed], alone), (sups[seed], sup)):
            assert not together.training
            for a, b in zip(together.state_dict().values(), ref.state_dict().values(),
                            strict=True):
                torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
