"""The encoder-decoder, its number-spelling task, and the GRU baseline."""

from __future__ import annotations

import pytest
import torch

from genai_report.data import transduction as td
from genai_report.models.encdec import EncDecConfig, EncoderDecoder, sinusoidal_positions
from genai_report.models.rnn import CharGRU
from genai_report.training.loop import TrainConfig, train


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (15, "fifteen"), (40, "forty"), (101, "one hundred one"),
    (4021, "four thousand twenty one"), (100000, "one hundred thousand"),
    (999999, "nine hundred ninety nine thousand nine hundred ninety nine"),
])
def test_spell(n, words):
    assert " ".join(td.spell(n)) == words
    src, tgt = td.encode_pair(n)
    assert len(src) <= td.MAX_SRC_LEN and len(tgt) <= td.MAX_TGT_LEN
    assert td.decode_words(tgt) == words.split()


def test_spell_rejects_out_of_range():
    with pytest.raises(ValueError):
        td.spell(10**6)


def test_dataset_splits_are_disjoint_and_balanced():
    s, t, n = td.make_dataset(300, "train", torch.Generator().manual_seed(0))
    _, _, nv = td.make_dataset(100, "val", torch.Generator().manual_seed(1))
    assert s.shape == (300, td.MAX_SRC_LEN) and t.shape == (300, td.MAX_TGT_LEN)
    assert not set(n) & set(nv)
    assert all(td.is_validation(x) for x in nv)
    assert {len(str(x)) for x in n} == set(range(1, 7))
    s2, _, n2 = td.make_dataset(300, "train", torch.Generator().manual_seed(0))
    assert n == n2 and torch.equal(s, s2)


def test_every_word_is_in_training_and_held_out_numbers_have_two_digits_or_more():
    assert not any(td.is_validation(n) for n in range(10))  # "zero" is spelled by 0 alone
    _, _, nv = td.make_dataset(200, "val", torch.Generator().manual_seed(1))
    assert min(len(str(x)) for x in nv) == 2
    train_words = {w for n in range(10**4) if not td.is_validation(n) for w in td.spell(n)}
    assert train_words == set(td.TGT_VOCAB[3:])
    share = sum(td.is_validation(n) for n in range(10, 10**5)) / (10**5 - 10)
    assert 0.08 < share < 0.12


@pytest.mark.parametrize("digits", [2, 3, 6])
def test_held_out_numbers_are_distinct_and_of_the_asked_length(digits):
    nums = td.held_out_numbers(digits, 50, torch.Generator().manual_seed(0))
    assert len(nums) == len(set(nums)) and all(td.is_validation(n) for n in nums)
    assert {len(str(n)) for n in nums} == {digits}
    if digits == 2:  # fewer than asked exist: all of them
        assert sorted(nums) == [n for n in range(10, 100) if td.is_validation(n)]
    else:
        assert len(nums) == 50
    src = td.encode_numbers(nums[:3])
    assert src.shape == (3, td.MAX_SRC_LEN)
    assert [td.encode_pair(n)[0] for n in nums[:3]] == [
        [int(i) for i in row if i] for row in src.tolist()]
    with pytest.raises(ValueError, match="one-digit"):
        td.held_out_numbers(1, 5, torch.Generator())


def _model():
    torch.manual_seed(0)
    return EncoderDecoder(EncDecConfig(len(td.SRC_VOCAB), len(td.TGT_VOCAB), max_len=12,
                                       n_enc_layer=1, n_dec_layer=2, n_head=2,
                                       n_embd=32)).eval()


def test_fused_and_explicit_paths_agree_and_rows_sum_to_one():
    m = _model()
    s, t, _ = td.make_dataset(8, "train", torch.Generator().manual_seed(0))
    with torch.no_grad():
        fused, _ = m(s, t[:, :-1])
        explicit, maps = m.attention_maps(s, t[:, :-1])
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    for name, w in maps.items():
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]), msg=name)
    pad = (s == td.PAD)[None, :, None, None, :]  # (1, B, 1, 1, S)
    assert maps["cross"].masked_select(pad).abs().max() == 0  # padding gets no attention
    assert maps["decoder"].triu(1).abs().max() == 0


def test_decoder_is_causal_and_padding_is_invisible():
    m = _model()
    s, t, _ = td.make_dataset(4, "train", torch.Generator().manual_seed(2))
    t2 = t.clone()
    t2[:, 5:] = 3
    with torch.no_grad():
        a, b = m(s, t[:, :-1])[0], m(s, t2[:, :-1])[0]
        wider = m(torch.cat([s, torch.zeros(4, 3, dtype=torch.long)], 1), t[:, :-1])[0]
    torch.testing.assert_close(a[:, :5], b[:, :5])
    torch.testing.assert_close(a, wider, rtol=1e-5, atol=1e-5)


def test_learns_a_tiny_batch_and_decodes_it():
    m = _model().train()
    s, t, n = td.make_dataset(6, "train", torch.Generator().manual_seed(3))
    train(m, lambda mod, step: mod(s, t[:, :-1], t[:, 1:])[1], TrainConfig(steps=120, lr=3e-3))
    out = m.greedy_decode(s, td.MAX_TGT_LEN, td.BOS, td.EOS)
    assert [td.decode_words(o) for o in out] == [td.spell(x) for x in n]


def test_sinusoidal_positions():
    pe = sinusoidal_positions(10, 8)
    assert pe.shape == (10, 8) and pe.dtype == torch.float32
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4))
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))


def test_config_validation():
    with pytest.raises(ValueError, match="multiple"):
        EncDecConfig(10, 10, n_head=3, n_embd=16)


def test_gru_stepwise_equals_fused():
    torch.manual_seed(0)
    r = CharGRU(30, n_embd=16, hidden=24, n_layer=2).eval()
    x = torch.randint(30, (3, 9))
    with torch.no_grad():
        torch.testing.assert_close(r(x)[0], r.forward_stepwise(x), rtol=1e-5, atol=1e-5)
    assert r(x, x)[1].ndim == 0
