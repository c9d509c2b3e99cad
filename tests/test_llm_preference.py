"""The rater, losses, samplers and estimators behind the preference-tuning page
(genai_report/training/preference.py, genai_report/artifacts/llm_preference.py)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from genai_report.artifacts.llm_preference import PreferenceRuns, openings
from genai_report.models.gpt import GPT, GPTConfig
from genai_report.training import preference as pt

LEX = frozenset({"the", "value", "is", "of"})


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _tiny_gpt(vocab=5, block=8, seed=0):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=1, n_head=2, n_embd=16))
    for q in model.parameters():
        q.requires_grad_(False)
    return model.eval()


# -- the rater ------------------------------------------------------------------------------
def test_rater_counts_distinct_lexicon_words_repeats_and_symbols():
    r = pt.Rater(LEX)
    assert r.parts("the value is ") == {"words": 3, "lexicon": 3, "repeats": 0, "symbols": 0}
    assert r("the value is ") == 3
    # repeated words earn once and cost once per repeat, whatever their case
    assert r.parts("the The the of ") == {"words": 4, "lexicon": 2, "repeats": 2, "symbols": 0}
    assert r("the The the of ") == 0
    # symbols: anything but letters, spaces, full stops and commas; a line break counts
    assert r.parts("of, the.\n(x)")["symbols"] == 3
    # a final run of letters may be cut off, so it is not a word
    assert r.parts("the val")["words"] == 1 and r("the val") == 1
    assert r("") == 0


def test_rater_weights_and_validation():
    r = pt.Rater(LEX, word_reward=2.0, repeat_penalty=0.5, symbol_penalty=0.25)
    assert r("the the # ") == pytest.approx(2 - 0.5 - 0.25)
    with pytest.raises(ValueError, match="lexicon"):
        pt.Rater(frozenset())
    with pytest.raises(ValueError, match="repeat_penalty"):
        pt.Rater(LEX, repeat_penalty=-1)


def test_lexicon_keeps_the_most_frequent_words_of_min_length():
    text = "the cat and the dog. The cat, a cat! I x"
    assert pt.lexicon_from_text(text, 2) == {"the", "cat"}
    assert "a" not in pt.lexicon_from_text(text, 10) and "i" not in pt.lexicon_from_text(text, 10)
    with pytest.raises(ValueError):
        pt.lexicon_from_text(text, 0)


def test_bradley_terry_labels_follow_the_logistic_probability():
    n = 20000
    g = _gen(3)
    ties = pt.bradley_terry_labels(torch.zeros(n), torch.zeros(n), g)
    one = pt.bradley_terry_labels(torch.ones(n), torch.zeros(n), g)
    sharp = pt.bradley_terry_labels(torch.ones(n), torch.zeros(n), g, scale=50.0)
    assert abs(ties.float().mean() - 0.5) < 0.02
    assert abs(one.float().mean() - torch.sigmoid(torch.tensor(1.0))) < 0.02
    assert sharp.all()


# -- losses ---------------------------------------------------------------------------------
def test_bradley_terry_loss_is_the_logistic_likelihood():
    ra, rb = torch.tensor([2.0, -1.0, 0.0]), torch.tensor([0.5, 1.0, 0.0])
    pref = torch.tensor([True, False, True])
    expected = -torch.stack([F.logsigmoid(ra[0] - rb[0]), F.logsigmoid(rb[1] - ra[1]),
                             F.logsigmoid(ra[2] - rb[2])]).mean()
    assert torch.allclose(pt.bradley_terry_loss(ra, rb, pref), expected)


def test_dpo_loss_is_bradley_terry_on_the_implicit_reward():
    lw, ll = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0])
    rw, rl = torch.tensor([-3.5, -4.0]), torch.tensor([-3.0, -3.0])
    beta = 0.5
    loss, margin = pt.dpo_loss(lw, ll, rw, rl, beta)
    imp_w, imp_l = beta * (lw - rw), beta * (ll - rl)
    assert torch.allclose(margin, imp_w - imp_l)
    assert torch.allclose(loss, pt.bradley_terry_loss(imp_w, imp_l, torch.ones(2, dtype=torch.bool)))
    # at the reference (policy == ref) the loss is log 2 whatever beta
    assert pt.dpo_loss(rw, rl, rw, rl, 3.0)[0].item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="beta"):
        pt.dpo_loss(lw, ll, rw, rl, 0.0)


def test_reinforce_loss_pushes_up_the_better_samples_of_each_prompt():
    logp = torch.zeros(6, requires_grad=True)  # 3 samples of 2 prompts: prompt i at i % 2
    reward = torch.tensor([1.0, 5.0, 2.0, 5.0, 3.0, 5.0])
    pt.reinforce_loss(logp, reward, groups=3).backward()
    # prompt 0 (rows 0, 2, 4): the best sample's logp goes up, the worst's down
    assert logp.grad[4] < 0 < logp.grad[0]
    # prompt 1: every reward equal, so no advantage and no gradient
    assert torch.allclose(logp.grad[[1, 3, 5]], torch.zeros(3))
    with pytest.raises(ValueError):
        pt.reinforce_loss(logp, reward, groups=4)


# -- best-of-n ------------------------------------------------------------------------------
def test_best_of_n_kl_closed_form():
    assert pt.best_of_n_kl(1) == 0
    assert pt.best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)
    ks = [pt.best_of_n_kl(n) for n in (1, 2, 4, 8, 64)]
    assert ks == sorted(ks)
    # against the exact KL of best-of-n over many equally likely distinct samples:
    # the best of n has CDF F^n, so rank i of m has probability (i/m)^n - ((i-1)/m)^n
    m, n = 100_000, 16
    i = torch.arange(1, m + 1, dtype=torch.float64)
    q = (i / m) ** n - ((i - 1) / m) ** n
    kl = float((q * torch.log(q * m)).sum())
    assert kl == pytest.approx(pt.best_of_n_kl(n), abs=1e-3)
    with pytest.raises(ValueError):
        pt.best_of_n_kl(0)


def test_best_of_n_expected_matches_enumerating_every_draw():
    g = _gen(5)
    scores, values = torch.randn(7, generator=g), torch.randn(7, generator=g)
    for n in range(1, 8):
        draws = list(itertools.combinations(range(7), n))
        brute = sum(float(values[max(d, key=lambda j: scores[j])]) for d in draws) / len(draws)
        assert pt.best_of_n_expected(scores, values, n) == pytest.approx(brute, abs=1e-9)
    assert pt.best_of_n_expected(scores, values, 1) == pytest.approx(float(values.mean()))
    with pytest.raises(ValueError):
        pt.best_of_n_expected(scores, values, 8)


# -- samplers and heads on a frozen GPT -----------------------------------------------------
def test_rollout_agrees_with_teacher_forcing_and_an_untrained_head_is_the_reference():
    model = _tiny_gpt()
    prompts = torch.tensor([[0, 1], [2, 3], [4, 0]])  # (B, P)
    head = pt.PolicyHead(16, 5, hidden=8)
    cont = pt.rollout(model, prompts, 5, _gen(1), head)
    assert cont.tokens.shape == (3, 5) and cont.states.shape == (3, 6, 16)
    assert cont.ref_logits.shape == (3, 5, 5)
    assert torch.allclose(cont.kl, torch.zeros(3), atol=1e-6)  # zero-initialised head
    tf = pt.teacher_force(model, prompts, cont.tokens, batch=2)
    assert torch.allclose(tf.states, cont.states, atol=1e-5)
    assert torch.allclose(tf.ref_logits, cont.ref_logits, atol=1e-5)
    ref = pt.sequence_logprobs(cont)
    assert torch.allclose(ref, cont.ref_token_logprobs.sum(1))
    assert torch.allclose(pt.sequence_logprobs(cont, head), ref, atol=1e-6)
    with torch.no_grad():  # the same logits as the GPT's own forward pass
        logits, _ = model(torch.cat([prompts, cont.tokens], 1))
    assert torch.allclose(logits[:, 1:-1], cont.ref_logits, atol=1e-5)
    with pytest.raises(ValueError, match="block_size"):
        pt.rollout(model, prompts, 7, _gen(1))


def test_rollout_kl_is_an_unbiased_estimate_of_the_sequence_kl():
    model = _tiny_gpt(vocab=4, seed=2)
    torch.manual_seed(0)
    head = pt.PolicyHead(16, 4, hidden=8)
    torch.nn.init.normal_(head.out.weight, std=1.0)
    prompt = torch.tensor([[1]])
    # exact KL(pi || ref) over all 4 x 4 continuations of length 2
    seqs = torch.tensor(list(itertools.product(range(4), repeat=2)))  # (16, 2)
    with torch.no_grad():
        tf = pt.teacher_force(model, prompt.repeat(16, 1), seqs)
        lp, lr = pt.sequence_logprobs(tf, head), pt.sequence_logprobs(tf)
    assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-5)
    exact = float((lp.exp() * (lp - lr)).sum())
    cont = pt.rollout(model, prompt.repeat(4000, 1), 2, _gen(7), head)
    assert float(cont.kl.mean()) == pytest.approx(exact, rel=0.05)
    with torch.no_grad():
        mc = pt.sequence_logprobs(cont, head) - pt.sequence_logprobs(cont)
    assert float(mc.mean()) == pytest.approx(exact, rel=0.15)


def test_reward_model_and_dpo_learn_a_preference_for_one_token():
    """Smoke-sized end to end: prefer continuations with more of token 3."""
    model = _tiny_gpt(vocab=5, block=8, seed=1)
    prompts = torch.tensor([[0, 1]]).repeat(400, 1)
    cont = pt.rollout(model, prompts, 6, _gen(2))
    count = (cont.tokens == 3).sum(1).float()  # the gold reward
    a, b = torch.arange(200), torch.arange(200, 400)
    labels = pt.bradley_terry_labels(count[a], count[b], _gen(3), scale=2.0)
    feats = pt.reward_features(cont)
    torch.manual_seed(0)
    rm = pt.RewardHead(16, hidden=16)
    opt = torch.optim.Adam(rm.parameters(), lr=1e-2)
    for _ in range(150):
        loss = pt.bradley_terry_loss(rm(feats[a[:150]]), rm(feats[b[:150]]), labels[:150])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        d = rm(feats[a[150:]]) - rm(feats[b[150:]])
    gd = count[a[150:]] - count[b[150:]]
    assert ((d > 0) == (gd > 0))[gd != 0].float().mean() > 0.8

    win, lose = torch.where(labels, a, b), torch.where(labels, b, a)
    ref_lp = pt.sequence_logprobs(cont)
    head = pt.PolicyHead(16, 5, hidden=16)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(60):
        loss, _ = pt.dpo_loss(pt.sequence_logprobs(cont.select(win), head),
                              pt.sequence_logprobs(cont.select(lose), head),
                              ref_lp[win], ref_lp[lose], beta=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = pt.rollout(model, prompts[:200], 6, _gen(4), head)
    before = pt.rollout(model, prompts[:200], 6, _gen(4))
    assert (after.tokens == 3).float().mean() > (before.tokens == 3).float().mean() + 0.05
    assert float(after.kl.mean()) > 0


# -- the node's parameters ------------------------------------------------------------------
def test_params_validate_and_list_powers_of_two():
    assert PreferenceRuns().ns == [1, 2, 4, 8, 16, 32, 64]
    assert PreferenceRuns(max_n=48).ns == [1, 2, 4, 8, 16, 32]
    with pytest.raises(ValueError, match="pool"):
        PreferenceRuns(test_pairs=16, pool_extra=0)
    with pytest.raises(ValueError, match="betas"):
        PreferenceRuns(betas=(0.1, 0.0))
    with pytest.raises(ValueError, match="rl_per_prompt"):
        PreferenceRuns(rl_per_prompt=1)


def test_openings_are_sentence_starts_of_the_asked_length():
    text = "Intro. The value is here. It is. The value is there. A b."
    assert openings(text, 1, 10) == ["The value "]
    with pytest.raises(ValueError, match="openings"):
        openings(text, 3, 10)
