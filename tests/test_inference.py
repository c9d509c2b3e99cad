"""The inference tools of "What a token costs": KV cache, FLOP count, quantizer, speculative
sampling and BERT-style masking."""

from __future__ import annotations

import math

import pytest
import torch

from genai_report.data.words import ALPHABET, Lexicon, letter_blanks
from genai_report.metrics.inference import decode_flops, forward_flops
from genai_report.models.gpt import GPT, GPTConfig
from genai_report.models.masked import bidirectional, mask_tokens
from genai_report.models.quantize import (
    QuantSpec,
    calibration_hessians,
    quantize_gpt,
    quantize_gptq,
    quantize_rtn,
    storage_bytes,
)
from genai_report.models.speculative import (
    accept_or_resample,
    extend,
    speculative_generate,
)


def _gpt(seed: int, vocab: int = 11, block: int = 32, layers: int = 2, width: int = 16,
         sharp: float = 0.0, mix: float = 0.0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=layers, n_head=2,
                          n_embd=width)).eval()
    if sharp:  # larger embeddings: peaked next-token distributions, unlike at init
        with torch.no_grad():
            model.wte.weight.normal_(0.0, sharp)
    if mix:  # larger block weights: the blocks, not the input token, decide the output
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.startswith("blocks.") and p.dim() == 2:
                    p.normal_(0.0, mix)
    return model


# -- KV cache ---------------------------------------------------------------------------------
def test_cached_step_gives_the_logits_of_full_recomputation():
    model = _gpt(0)
    x = torch.randint(11, (3, 20), generator=torch.Generator().manual_seed(1))
    full, _ = extend(model, x)  # (3, 20, V)
    _, cache = extend(model, x[:, :12])
    for t in range(12, 20):  # one position at a time, as generation does
        step, cache = extend(model, x[:, : t + 1], cache)
        torch.testing.assert_close(step[:, -1], full[:, t], atol=1e-5, rtol=1e-5)
    _, cache = extend(model, x[:, :12])
    several, _ = extend(model, x, cache)  # eight new positions at once (verification)
    torch.testing.assert_close(several, full[:, 12:], atol=1e-5, rtol=1e-5)


def test_generation_with_and_without_the_cache_samples_the_same_tokens():
    model = _gpt(2, sharp=1.0)
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    a = model.generate(prompt, 25, generator=torch.Generator().manual_seed(3), use_cache=True)
    b = model.generate(prompt, 25, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert torch.equal(a, b)


def test_flop_count_matches_torchs_matmul_count_plus_attention():
    from torch.utils.flop_counter import FlopCounterMode

    model = _gpt(0)
    x = torch.randint(11, (3, 20), generator=torch.Generator().manual_seed(1))
    _, cache = extend(model, x[:, :-1])
    for cached in (False, True):
        with FlopCounterMode(display=False) as counter:
            extend(model, x, cache if cached else None)
        new = 1 if cached else 20
        attention = 2 * 4 * 16 * new * 20  # scores and weighted sum: torch counts no SDPA
        ours = 3 * decode_flops(2, 16, 11, 20, cached=cached)
        assert ours - 3 * attention == counter.get_total_flops()
    assert forward_flops(2, 16, 11, 20, 20) / forward_flops(2, 16, 11, 1, 20) > 19


# -- quantization -----------------------------------------------------------------------------
@pytest.mark.parametrize("bits,group", [(8, None), (4, None), (4, 16), (3, 8)])
def test_round_to_nearest_errors_are_at_most_half_a_step(bits, group):
    w = torch.randn(12, 64, generator=torch.Generator().manual_seed(0))
    spec = QuantSpec(bits, group)
    q = quantize_rtn(w, spec)
    assert q.codes.abs().max() <= spec.qmax
    step = q.scales.repeat_interleave(group or 64, dim=1)  # (12, 64)
    assert ((q.dequantize() - w).abs() <= step / 2 + 1e-6).all()
    # the largest weight of each row (or group) is represented to float16 precision
    assert torch.allclose(q.dequantize().abs().amax(1), w.abs().amax(1), rtol=2e-3)


def test_byte_counts_of_codes_scales_and_float_tensors():
    w = torch.randn(8, 64)
    assert quantize_rtn(w, QuantSpec(4)).nbytes() == 8 * 64 * 4 // 8 + 8 * 2
    assert quantize_rtn(w, QuantSpec(8, 16)).nbytes() == 8 * 64 + 8 * 4 * 2
    assert QuantSpec(4, 32).bits_per_weight(64) == 4.5
    model = _gpt(0)
    n = sum(p.numel() for p in model.parameters())
    assert storage_bytes(model) == 4 * n
    qmodel, weights = quantize_gpt(model, QuantSpec(8))
    n_q = sum(w.codes.numel() for w in weights.values())
    n_scales = sum(w.scales.numel() for w in weights.values())
    assert storage_bytes(qmodel, weights) == 4 * (n - n_q) + n_q + 2 * n_scales


def test_int8_model_is_close_and_leaves_the_original_untouched():
    model = _gpt(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    qmodel, _ = quantize_gpt(model, QuantSpec(8))
    x = torch.randint(11, (2, 16))
    torch.testing.assert_close(qmodel(x)[0], model(x)[0], atol=2e-3, rtol=0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_gptq_with_uncorrelated_inputs_is_round_to_nearest():
    w = torch.randn(6, 32, generator=torch.Generator().manual_seed(0))
    for group in (None, 8):  # H = I: no error to push onto other columns
        rtn = quantize_rtn(w, QuantSpec(4, group))
        gptq = quantize_gptq(w, torch.eye(32), QuantSpec(4, group, "gptq", damp=0.0))
        assert torch.equal(rtn.codes, gptq.codes)


def test_gptq_reconstructs_a_layers_outputs_better_than_rounding():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(32, 32, generator=g)
    x = torch.randn(512, 32, generator=g) @ mix  # correlated inputs, as activations are
    w = torch.randn(16, 32, generator=g)
    for bits in (3, 4):
        spec = QuantSpec(bits, method="gptq")
        err_rtn = (x @ (quantize_rtn(w, spec).dequantize() - w).T).norm()
        err_gptq = (x @ (quantize_gptq(w, x.T @ x, spec).dequantize() - w).T).norm()
        assert err_gptq < 0.8 * err_rtn


def test_gptq_on_a_model_uses_calibration_hessians():
    model = _gpt(0)
    calib = [torch.randint(11, (4, 16))]
    hess = calibration_hessians(model, calib)
    assert set(hess) == {n for n, _ in model.named_modules() if n.startswith("blocks.")
                         and isinstance(_, torch.nn.Linear)}
    with pytest.raises(ValueError, match="calibration"):
        quantize_gpt(model, QuantSpec(4, method="gptq"))
    qmodel, _ = quantize_gpt(model, QuantSpec(4, method="gptq"), hess)
    assert torch.isfinite(qmodel(calib[0])[0]).all()


def test_quant_spec_rejects_bad_settings():
    with pytest.raises(ValueError, match="bits"):
        QuantSpec(1)
    with pytest.raises(ValueError, match="method"):
        QuantSpec(4, method="awq")


# -- speculative sampling ---------------------------------------------------------------------
def _chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# chi-square critical values at p = 0.001 (df = 4 and df = 26)
CHI2_001 = {4: 18.47, 26: 54.05}


def test_the_acceptance_rule_emits_the_target_distribution():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05], dtype=torch.float64)
    q = torch.tensor([0.1, 0.1, 0.3, 0.3, 0.2], dtype=torch.float64)  # a bad draft
    counts = torch.zeros(5, dtype=torch.float64)
    n = 8000
    for _ in range(n):
        d = torch.multinomial(q, 1, generator=g)
        kept, token = accept_or_resample(torch.stack([p, p]), q[None], d, g)
        counts[int(d) if kept else token] += 1
    assert _chi_square(counts, p) < CHI2_001[4]
    assert 0.5 * float((counts / n - p).abs().sum()) < 0.02
    assert _chi_square(counts, q) > 1000  # the test would see the draft's distribution


def _sequence_probs(model: GPT, prompt: torch.Tensor, new: int, vocab: int) -> torch.Tensor:
    """Exact probability of every continuation of ``new`` tokens, in lexicographic order."""
    seqs = torch.cartesian_prod(*[torch.arange(vocab)] * new).view(-1, new)  # (V^new, new)
    x = torch.cat([prompt.repeat(len(seqs), 1), seqs], dim=1)
    with torch.no_grad():
        logp = model(x[:, :-1])[0].double().log_softmax(-1)  # (N, T-1, V)
    P = prompt.size(1)
    steps = logp[:, P - 1:].gather(-1, x[:, P:, None])[..., 0]  # (N, new)
    return steps.sum(-1).exp()


def test_speculative_samples_follow_the_target_exactly():
    vocab, new = 3, 3
    target = _gpt(1, vocab=vocab, block=8, width=8, sharp=0.3, mix=0.3)
    draft = _gpt(2, vocab=vocab, block=8, width=8, layers=1, sharp=0.3, mix=0.3)
    prompt = torch.tensor([[0]])
    exact = _sequence_probs(target, prompt, new, vocab)  # (27,)
    assert abs(float(exact.sum()) - 1) < 1e-9
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(vocab ** new, dtype=torch.float64)
    n, accepted, proposed = 1500, 0, 0
    for i in range(n):
        out, stats = speculative_generate(target, draft, prompt, new, k=2 + i % 2, generator=g)
        code = sum(int(t) * vocab ** (new - 1 - j) for j, t in enumerate(out[0, 1:]))
        counts[code] += 1
        accepted, proposed = accepted + stats.accepted, proposed + stats.proposed
    assert _chi_square(counts, exact) < CHI2_001[26]
    assert 0.5 * float((counts / n - exact).abs().sum()) < 0.06
    assert 0 < accepted < proposed  # the draft really was wrong sometimes
    draft_probs = _sequence_probs(draft, prompt, new, vocab)
    assert _chi_square(counts, draft_probs) > 3 * CHI2_001[26]  # and differs from the target


def test_a_perfect_draft_is_always_accepted():
    model = _gpt(3, sharp=1.0)
    out, stats = speculative_generate(model, model, torch.tensor([[1, 2]]), 20, k=4,
                                      generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 22)
    assert stats.acceptance_rate == 1.0
    assert stats.emitted == 20
    assert stats.tokens_per_round == pytest.approx(20 / stats.rounds)


def test_speculative_generate_checks_its_arguments():
    model = _gpt(0, block=8)
    with pytest.raises(ValueError, match="block_size"):
        speculative_generate(model, model, torch.tensor([[1]]), 8, k=2)
    with pytest.raises(ValueError, match="k must"):
        speculative_generate(model, model, torch.tensor([[1]]), 2, k=0)
    with pytest.raises(ValueError, match="vocabulary"):
        speculative_generate(model, _gpt(0, vocab=5, block=8), torch.tensor([[1]]), 2, k=2)


# -- masked language modelling ----------------------------------------------------------------
def test_bert_masking_proportions_and_targets():
    ids = torch.randint(50, (200, 500), generator=torch.Generator().manual_seed(0))
    inputs, targets = mask_tokens(ids, 50, 50, torch.Generator().manual_seed(1))
    chosen = targets >= 0
    assert math.isclose(float(chosen.float().mean()), 0.15, abs_tol=0.005)
    assert torch.equal(targets[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])  # only chosen positions change
    masked = (inputs == 50)[chosen].float().mean()
    unchanged = (inputs == ids)[chosen].float().mean()  # 10% kept + random hits (1 in 50)
    assert math.isclose(float(masked), 0.8, abs_tol=0.01)
    assert math.isclose(float(unchanged), 0.1 + 0.1 / 50, abs_tol=0.01)
    assert int(inputs.max()) <= 50


def test_the_bidirectional_twin_sees_the_future_and_shares_the_weights():
    causal = _gpt(4, layers=1)  # one layer: the last position sees the same inputs in both
    twin = bidirectional(_gpt(4, layers=1))
    assert sum(p.numel() for p in twin.parameters()) == sum(p.numel() for p in causal.parameters())
    x = torch.randint(11, (2, 12), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % 11  # change the last token only
    with torch.no_grad():
        # the last position attends to everything either way: same logits there
        torch.testing.assert_close(twin(x)[0][:, -1], causal(x)[0][:, -1], atol=1e-5, rtol=0)
        assert torch.equal(causal(x)[0][:, :-1], causal(y)[0][:, :-1])
        assert not torch.allclose(twin(x)[0][:, :-1], twin(y)[0][:, :-1])


# -- the masked demonstration's language of independent words -------------------------------
def test_masked_demo_lexicon_keeps_the_commonest_words_with_their_frequencies():
    lex = Lexicon.from_text("The cat saw the dog; the DOG saw a cat. A cat! x-ray", 3)
    assert lex.words == ("cat", "the", "a")  # 3, 3, 2 (ties alphabetically; dog/saw lose)
    assert lex.probs == pytest.approx((3 / 8, 3 / 8, 2 / 8))
    with pytest.raises(ValueError, match="distinct words"):
        Lexicon.from_text("one two", 3)
    with pytest.raises(ValueError, match="lowercase"):
        Lexicon(("Cat",), (1.0,))
    with pytest.raises(ValueError, match="sum to 1"):
        Lexicon(("a", "b"), (0.5, 0.6))


def test_masked_demo_text_is_words_of_the_list_and_reproducible():
    lex = Lexicon(("the", "a", "cat"), (0.5, 0.3, 0.2))
    text = lex.sample(5000, torch.Generator().manual_seed(0))
    assert len(text) == 5000 and set(text) <= set(ALPHABET)
    words = text.split(" ")
    assert all(w in lex.words for w in words[:-1])  # the last one may be cut off
    share = words.count("the") / (len(words) - 1)
    assert share == pytest.approx(0.5, abs=0.03)
    assert text == lex.sample(5000, torch.Generator().manual_seed(0))


def test_masked_demo_entropy_rate_in_closed_form():
    # one word: the text is certain; two equally likely words of k letters: 1 bit per k + 1
    assert Lexicon(("ab",), (1.0,)).entropy_bits_per_char() == 0
    assert Lexicon(("abc", "xyz"), (0.5, 0.5)).entropy_bits_per_char() == pytest.approx(0.25)


def test_masked_demo_best_guesses_from_the_left_and_from_both_ends():
    lex = Lexicon(("cat", "cot", "cog"), (0.45, 0.2, 0.35))
    assert lex.best_from_left("c") == "o"  # cot + cog outweigh cat
    assert lex.best_from_both("c", "t") == "a"  # the end rules out cog
    assert lex.best_from_both("c", "g") == "o"
    assert lex.best_from_left("") == "c" and lex.best_from_left("co") == "g"
    assert lex.best_from_left("x") == "" and lex.best_from_both("c", "tt") == ""


def test_masked_demo_blanks_have_their_whole_word_in_the_window():
    lex = Lexicon(("the", "a", "cat", "house"), (0.4, 0.3, 0.2, 0.1))
    text = lex.sample(4000, torch.Generator().manual_seed(1))
    picks = letter_blanks(text, 16, 200, torch.Generator().manual_seed(2))
    assert len(picks) == 200
    for w, p, prefix, suffix in picks:
        window = text[w * 16: (w + 1) * 16]
        assert 1 <= p <= 14 and window[p] != " "
        start, end = p - len(prefix), p + 1 + len(suffix)
        assert window[start - 1] == " " and window[end] == " "
        assert window[start:end] in lex.words
        assert window[start:p] == prefix and window[p + 1:end] == suffix
    with pytest.raises(ValueError, match="whole word|fits"):
        letter_blanks("abcdefghijklmnop" * 4, 16, 5, torch.Generator().manual_seed(0))



@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_language_models_trained_together_end_where_each_alone_ends(kind):
    """inference-masked and inference-tokenization train each kind's seeds as one ensemble
    (_train_together); each member must end where the model trained alone from its seed,
    windows and masks ends."""
    from types import SimpleNamespace

    from genai_report.figures.inference_models import SmallLM, _train_together
    from genai_report.training.loop import TrainConfig, train

    p = SmallLM(n_layer=1, n_embd=16, block_size=8, batch_size=4, steps=6, warmup_steps=2)
    ctx = SimpleNamespace(progress=lambda it, total, desc: it)
    config = GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_embd=16)
    ids = torch.randint(11, (400,), generator=torch.Generator().manual_seed(0))

    def make(seed):
        torch.manual_seed(seed)
        model = GPT(config)
        return bidirectional(model) if kind == "masked" else model

    def batch(gen, mask_gen):
        x = ids[torch.randint(len(ids) - 9, (4,), generator=gen)[:, None] + torch.arange(9)]
        x, y = x[:, :-1].contiguous(), x[:, 1:].contiguous()  # (B, T) each
        if kind == "masked":
            inp, y = mask_tokens(x, 11, 11, mask_gen, 0.3)
            return inp, y
        return x, y

    models = [make(seed) for seed in (0, 1)]
    gens = [(torch.Generator().manual_seed(10 + s), torch.Generator().manual_seed(20 + s))
            for s in (0, 1)]

    def together(ens, step):
        xs, ys = zip(*(batch(*g) for g in gens), strict=True)
        return ens(torch.stack(xs), torch.stack(ys))[1]  # (K,)

    _train_together(ctx, models, together, p, p.steps, "together")
    for seed, model in zip((0, 1), models, strict=True):
        alone = make(seed)
        streams = (torch.Generator().manual_seed(10 + seed),
                   torch.Generator().manual_seed(20 + seed))

        def loss_fn(m, step, streams=streams):
            return m(*batch(*streams))[1]

        train(alone, loss_fn, TrainConfig(steps=p.steps, lr=p.lr, warmup_steps=p.warmup_steps,
                                          weight_decay=0.1))
        assert not model.training
        for a, b in zip(model.state_dict().values(), alone.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
