"""Preference tuning of the pre-trained character GPT against a rater we can compute.

``llms-preference-runs`` keeps ``gpt-char`` frozen as the reference model and trains small
heads on its hidden states (:mod:`genai_report.training.preference`):

1. continuations of short prompts are sampled from ``gpt-char`` in pairs and labelled by a
   programmatic rater (distinct common words up, repeated words and symbols down) with
   Bradley-Terry noise: the "human" comparisons;
2. a reward model is fitted to the training comparisons and scored on held-out ones;
3. best-of-``n`` against the reward model is measured on a pool of held-out reference
   samples, beside best-of-``n`` against the gold reward itself (the best any selection can
   do at that KL);
4. DPO is trained on the same comparisons at several ``beta``;
5. REINFORCE with a small KL penalty optimises the reward model directly, and its proxy and
   gold rewards are logged at every step.

Steps 2-5 are repeated over seeds (fresh label noise, initialisation and sampling); the
sampled text is shared. Everything the figures need goes to ``results.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.artifacts.scaling import torch_threads
from genai_report.pipeline import artifact


def _corpus():
    from genai_report.data.corpora import default_corpus_path

    return default_corpus_path()


@dataclass(frozen=True)
class PreferenceRuns:
    """The task, the reward model, and the three ways of optimising against the preference.

    Attributes:
        n_prompts: sentence openings from the corpus that every continuation follows.
        prompt_chars: characters per prompt (each ends with a space).
        new_chars: characters per continuation.
        lexicon_size: the rater's lexicon, the most frequent words of the corpus.
        label_scale: the rater prefers ``a`` with probability ``sigmoid(scale * (g_a - g_b))``.
        train_pairs, test_pairs: comparisons to fit the reward model on and to score it on.
        pool_extra: reference samples per prompt added to the held-out pairs' samples to
            make the best-of-``n`` pool.
        max_n: largest ``n`` of best-of-``n`` (powers of two up to it).
        rm_hidden, rm_steps, rm_lr, rm_val_fraction, rm_patience: the reward model's MLP
            and its full-batch AdamW fit, which keeps the state with the lowest loss on a
            share of the training pairs and stops ``rm_patience`` steps after it.
        policy_hidden: width of the policy head.
        betas: DPO's ``beta`` values.
        dpo_epochs, dpo_lr, dpo_batch: DPO's passes over the training pairs, Adam's step
            size and pairs per step.
        eval_per_prompt: policy samples per prompt to measure rewards and KL.
        rl_steps, rl_lr, rl_kl_coef, rl_per_prompt: REINFORCE against the reward model.
        seeds: repetitions of everything after sampling the comparisons.
        threads: torch threads (``0``: leave the pipeline's setting).
    """

    n_prompts: int = 8
    prompt_chars: int = 12
    new_chars: int = 32
    lexicon_size: int = 2000
    label_scale: float = 1.0
    train_pairs: int = 500
    test_pairs: int = 300
    pool_extra: int = 64
    max_n: int = 64
    rm_hidden: int = 32
    rm_steps: int = 100
    rm_lr: float = 1e-2
    rm_val_fraction: float = 0.2
    rm_patience: int = 20
    policy_hidden: int = 64
    betas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    dpo_epochs: int = 3
    dpo_lr: float = 1e-3
    dpo_batch: int = 32
    eval_per_prompt: int = 32
    rl_steps: int = 40
    rl_lr: float = 2e-3
    rl_kl_coef: float = 0.02
    rl_per_prompt: int = 8
    seeds: int = 2
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("n_prompts", "prompt_chars", "new_chars", "lexicon_size", "train_pairs",
                     "test_pairs", "max_n", "rm_steps", "rm_patience", "dpo_epochs",
                     "dpo_batch",
                     "eval_per_prompt", "rl_steps", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.rl_per_prompt < 2:
            raise ValueError(f"rl_per_prompt must be >= 2 (leave-one-out baseline), got "
                             f"{self.rl_per_prompt}.")
        if not self.betas or min(self.betas) <= 0:
            raise ValueError(f"betas must be a non-empty tuple of positive numbers, got "
                             f"{self.betas}.")
        if not 0 < self.rm_val_fraction < 1:
            raise ValueError(f"rm_val_fraction must be in (0, 1), got {self.rm_val_fraction}.")
        pool = 2 * (self.test_pairs // self.n_prompts) + self.pool_extra
        if pool < self.max_n:
            raise ValueError(f"The best-of-n pool has {pool} samples per prompt, fewer than "
                             f"max_n={self.max_n}; raise test_pairs or pool_extra.")

    @property
    def ns(self) -> list[int]:
        """The ``n`` of best-of-``n``: powers of two up to ``max_n``."""
        return [2 ** i for i in range(self.max_n.bit_length()) if 2 ** i <= self.max_n]


def openings(text: str, n: int, chars: int) -> list[str]:
    """The first ``n`` distinct sentence openings of ``text`` that are ``chars`` long and end
    with a space after a letter (no line breaks)."""
    import re

    found: list[str] = []
    for m in re.finditer(r"(?<=[.!?]\s)[A-Z]", text):
        c = text[m.start(): m.start() + chars]
        if len(c) == chars and c[-1] == " " and c[-2].isalpha() and "\n" not in c \
                and c not in found:
            found.append(c)
            if len(found) == n:
                return found
    raise ValueError(f"Found only {len(found)} sentence openings of {chars} characters; "
                     "use fewer prompts or another length.")


def _fit_reward_model(p: PreferenceRuns, fa, fb, labels, n_embd: int):
    """Full-batch AdamW on the Bradley-Terry loss, keeping the best validation state.

    ``fa``, ``fb``: reward features ``(P, T, C + 1)`` of the two members of each pair.
    """
    import copy

    import torch

    from genai_report.training.preference import RewardHead, bradley_terry_loss

    rm = RewardHead(n_embd, p.rm_hidden)
    opt = torch.optim.AdamW(rm.parameters(), lr=p.rm_lr, weight_decay=1e-2)
    n_val = max(1, int(len(fa) * p.rm_val_fraction))
    tr, va = slice(n_val, None), slice(0, n_val)
    best = (float("inf"), copy.deepcopy(rm.state_dict()), 0)
    for step in range(p.rm_steps):
        loss = bradley_terry_loss(rm(fa[tr]), rm(fb[tr]), labels[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            v = float(bradley_terry_loss(rm(fa[va]), rm(fb[va]), labels[va]))
        if v < best[0]:
            best = (v, copy.deepcopy(rm.state_dict()), step + 1)
        elif step + 1 - best[2] >= p.rm_patience:
            break
    rm.load_state_dict(best[1])
    return rm.eval(), best[2]


def _score_samples(model, tok, prompts, rater, rm, offset, shown: dict) -> dict:
    """Each shown continuation (one per prompt and method) with its gold and proxy reward."""
    import torch

    from genai_report.training.preference import reward_features, teacher_force

    K = len(prompts)
    out: dict = {"rows": []}
    for k in range(K):
        row = {"prompt": tok.decode(prompts[k])}
        for name, texts in shown.items():
            ids = tok.encode(texts[k])[None]  # (1, T)
            with torch.no_grad():
                cont = teacher_force(model, prompts[k: k + 1], ids)
                proxy = float(rm(reward_features(cont))) + offset
            row[name] = {"text": texts[k].replace("\n", "\u21b5"), "gold": rater(texts[k]),
                         "proxy": proxy}
        out["rows"].append(row)
    return out


@artifact(
    "llms-preference-runs",
    deps=("gpt-char",),
    params={
        "smoke": PreferenceRuns(n_prompts=2, prompt_chars=8, new_chars=16, lexicon_size=200,
                                train_pairs=16, test_pairs=8, pool_extra=4, max_n=4,
                                rm_steps=5, betas=(0.1, 0.3, 1.0, 3.0), dpo_epochs=1, dpo_batch=8,
                                eval_per_prompt=4, rl_steps=3, rl_per_prompt=2),
        "quick": PreferenceRuns(),
        "full": PreferenceRuns(n_prompts=16, train_pairs=1000, test_pairs=600,
                               pool_extra=200, max_n=128,
                               eval_per_prompt=64, rl_steps=80, rl_lr=1e-3, seeds=4,
                               threads=0),
    },
    outputs=("results.json",),
    seed=130,
    dry_run={"train_pairs": 64, "test_pairs": 32, "pool_extra": 8, "max_n": 8,
             "eval_per_prompt": 4},
    data=(_corpus,),
)
def preference_runs(ctx, p: PreferenceRuns):
    """Sample comparisons, fit the reward model, run best-of-n, DPO and RL over seeds."""
    with torch_threads(p.threads):
        return _preference_runs(ctx, p)


def _train_dpo(p: PreferenceRuns, beta: float, both, win, lose, ref_lp, n_embd: int,
               vocab: int, gen):
    """DPO on the training comparisons: ``dpo_epochs`` shuffled passes of Adam."""
    import torch

    from genai_report.training import preference as pt

    head = pt.PolicyHead(n_embd, vocab, p.policy_hidden)
    opt = torch.optim.Adam(head.parameters(), lr=p.dpo_lr)
    for _ in range(p.dpo_epochs):
        order = torch.randperm(len(win), generator=gen)
        for i in range(0, len(win), p.dpo_batch):
            w, l_ = win[order[i: i + p.dpo_batch]], lose[order[i: i + p.dpo_batch]]
            loss, _ = pt.dpo_loss(pt.sequence_logprobs(both.select(w), head),
                                  pt.sequence_logprobs(both.select(l_), head),
                                  ref_lp[w], ref_lp[l_], beta)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.eval(), loss.item()


def _reinforce(p: PreferenceRuns, sample, measure, n_embd: int, vocab: int, gen) -> dict:
    """REINFORCE against the reward model with a KL penalty, measuring every step's batch.

    ``sample(n_per_prompt, gen, head)`` draws continuations; ``measure(cont)`` returns their
    gold and proxy rewards ``(B,)``, mean repeated words and one text per prompt.
    """
    import torch

    from genai_report.training import preference as pt

    head = pt.PolicyHead(n_embd, vocab, p.policy_hidden)
    opt = torch.optim.Adam(head.parameters(), lr=p.rl_lr)
    trace, texts = [], []
    for step in range(p.rl_steps + 1):
        cont = sample(p.rl_per_prompt, gen, head)
        gold, proxy, repeats, shown = measure(cont)
        trace.append({"step": step, "gold": float(gold.mean()), "proxy": float(proxy.mean()),
                      "kl": float(cont.kl.mean()), "repeats": repeats})
        texts.append(shown)
        if step == p.rl_steps:
            break  # the last batch is only measured
        logp = pt.sequence_logprobs(cont, head)  # (B,), with gradient
        # r - kl_coef * (log pi - log ref), per sequence
        penalised = proxy - p.rl_kl_coef * (logp.detach() - pt.sequence_logprobs(cont))
        loss = pt.reinforce_loss(logp, penalised, p.rl_per_prompt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    peak = max(range(len(trace)), key=lambda i: trace[i]["gold"])
    return {"trace": trace, "peak_step": peak, "peak_texts": texts[peak],
            "final_texts": texts[-1]}


def _preference_runs(ctx, p: PreferenceRuns):
    """The body of ``llms-preference-runs`` (run under its thread setting)."""
    import time

    import torch

    from genai_report.artifacts._outputs import write_json
    from genai_report.artifacts.applications import load_gpt
    from genai_report.data.text import load_corpus
    from genai_report.metrics.seeds import over_seeds
    from genai_report.training import preference as pt

    t_start = time.perf_counter()
    model, tok, _ = load_gpt(ctx.input("gpt-char", "model.pt"), ctx.device)
    for q in model.parameters():
        q.requires_grad_(False)
    if p.prompt_chars + p.new_chars > model.config.block_size:
        raise ValueError(f"prompt_chars + new_chars = {p.prompt_chars + p.new_chars} exceeds "
                         f"gpt-char's block_size={model.config.block_size}.")
    text = load_corpus(_corpus())
    rater = pt.Rater(pt.lexicon_from_text(text, p.lexicon_size))
    prompt_text = openings(text, p.n_prompts, p.prompt_chars)
    prompts = torch.stack([tok.encode(s) for s in prompt_text])  # (K, P)
    K, n_embd, vocab = p.n_prompts, model.config.n_embd, model.config.vocab_size
    fields = ("tokens", "states", "ref_logits", "kl")

    def sample(n_per_prompt: int, gen, head=None, chunk: int = 512):
        """``n_per_prompt`` continuations of every prompt; row ``i`` follows prompt ``i % K``."""
        rows = prompts.repeat(n_per_prompt, 1)  # (K * n, P)
        parts = [pt.rollout(model, rows[i: i + chunk], p.new_chars, gen, head)
                 for i in range(0, len(rows), chunk)]
        return pt.Continuations(*(torch.cat([getattr(c, f) for c in parts]) for f in fields))

    def golds(cont) -> torch.Tensor:
        return torch.tensor([rater(tok.decode(t)) for t in cont.tokens])

    def mean_repeats(cont) -> float:
        return sum(rater.parts(tok.decode(t))["repeats"] for t in cont.tokens) / len(cont.tokens)

    # 1. comparisons: pair j follows prompt j % K; its members are rows j and j + n_per * K
    n_pairs = p.train_pairs + p.test_pairs
    n_per = -(-n_pairs // K)  # pairs per prompt, rounded up
    t0 = time.perf_counter()
    both = sample(2 * n_per, ctx.generator(1))
    a_idx, b_idx = torch.arange(n_pairs), torch.arange(n_pairs) + n_per * K
    g_all = golds(both)
    extra = sample(p.pool_extra, ctx.generator(2)) if p.pool_extra else None
    sample_s = time.perf_counter() - t0
    train, test = slice(0, p.train_pairs), slice(p.train_pairs, n_pairs)
    # best-of-n pool: the held-out pairs' samples plus the extra ones, grouped by prompt
    pool_rows = torch.cat([a_idx[test], b_idx[test]])
    pool, pool_prompt = both.select(pool_rows), pool_rows % K
    if extra is not None:
        pool = pt.Continuations(*(torch.cat([getattr(pool, f), getattr(extra, f)])
                                  for f in fields))
        pool_prompt = torch.cat([pool_prompt, torch.arange(len(extra.tokens)) % K])
    g_pool = golds(pool)
    f_both, f_pool = pt.reward_features(both), pt.reward_features(pool)  # (rows, T, C + 1)
    groups = [torch.nonzero(pool_prompt == k)[:, 0] for k in range(K)]
    ref_gold = float(g_pool.mean())

    def bon(scores, values, n):
        return sum(pt.best_of_n_expected(scores[g], values[g], n) for g in groups) / K

    oracle = {n: bon(g_pool, g_pool, n) for n in p.ns}
    ga, gb = g_all[a_idx], g_all[b_idx]
    diff = ga[test] - gb[test]
    untied = diff != 0
    ref_lp = pt.sequence_logprobs(both)  # (rows,)

    runs, timing = [], {"rm_s": 0.0, "bon_s": 0.0, "dpo_s": 0.0, "rl_s": 0.0}
    for seed in range(p.seeds):
        run: dict = {"seed": seed}
        # 2. the reward model
        t0 = time.perf_counter()
        labels = pt.bradley_terry_labels(ga, gb, ctx.generator(100 + seed), p.label_scale)
        torch.manual_seed(ctx.seed + 1000 * seed + 1)
        rm, best_step = _fit_reward_model(p, f_both[a_idx[train]], f_both[b_idx[train]],
                                          labels[train], n_embd)
        with torch.no_grad():
            r_test = rm(f_both[a_idx[test]]) - rm(f_both[b_idx[test]])
            r_pool = rm(f_pool)
        offset = ref_gold - float(r_pool.mean())  # proxy in gold units, equal on the pool
        r_pool = r_pool + offset

        def measure(cont, rm=rm, offset=offset):
            with torch.no_grad():
                proxy = rm(pt.reward_features(cont)) + offset
            return (golds(cont), proxy, mean_repeats(cont),
                    [tok.decode(t) for t in cont.tokens[:K]])

        run["rm"] = {
            "accuracy_gold": float(((r_test > 0) == (diff > 0))[untied].float().mean()),
            "accuracy_labels": float(((r_test > 0) == labels[test])[untied].float().mean()),
            "gold_accuracy_labels": float(((diff > 0) == labels[test])[untied].float().mean()),
            "best_step": best_step,
            "pool_correlation": float(torch.corrcoef(torch.stack([r_pool, g_pool]))[0, 1]),
        }
        timing["rm_s"] += time.perf_counter() - t0
        # 3. best-of-n against the reward model
        t0 = time.perf_counter()
        run["bon"] = [{"n": n, "kl": pt.best_of_n_kl(n), "gold": bon(r_pool, g_pool, n),
                       "proxy": bon(r_pool, r_pool, n)} for n in p.ns]
        timing["bon_s"] += time.perf_counter() - t0
        # 4. DPO on the same training comparisons
        t0 = time.perf_counter()
        win = torch.where(labels[train], a_idx[train], b_idx[train])
        lose = torch.where(labels[train], b_idx[train], a_idx[train])
        run["dpo"] = []
        for bi, beta in enumerate(p.betas):
            torch.manual_seed(ctx.seed + 1000 * seed + 10 + bi)
            head, final_loss = _train_dpo(p, beta, both, win, lose, ref_lp, n_embd, vocab,
                                          ctx.generator(200 + 10 * seed + bi))
            with torch.no_grad():  # the implicit reward on held-out pairs
                ia, ib = a_idx[test], b_idx[test]
                imp = ((pt.sequence_logprobs(both.select(ia), head) - ref_lp[ia])
                       - (pt.sequence_logprobs(both.select(ib), head) - ref_lp[ib]))
            cont = sample(p.eval_per_prompt, ctx.generator(300 + 10 * seed + bi), head)
            gold, proxy, repeats, shown = measure(cont)
            with torch.no_grad():
                mc = pt.sequence_logprobs(cont, head) - pt.sequence_logprobs(cont)  # (B,)
            run["dpo"].append({
                "beta": beta, "gold": float(gold.mean()), "proxy": float(proxy.mean()),
                "kl": float(cont.kl.mean()), "kl_mc": float(mc.mean()), "repeats": repeats,
                "texts": shown, "final_loss": final_loss,
                "implicit_accuracy_gold": float(((imp > 0) == (diff > 0))[untied]
                                                .float().mean())})
        timing["dpo_s"] += time.perf_counter() - t0
        # 5. REINFORCE against the reward model, KL-penalised
        t0 = time.perf_counter()
        torch.manual_seed(ctx.seed + 1000 * seed + 50)
        run["rl"] = _reinforce(p, sample, measure, n_embd, vocab, ctx.generator(400 + seed))
        timing["rl_s"] += time.perf_counter() - t0
        if seed == 0:  # what the samples table shows: one best-of-max_n draw per prompt
            first = [g[: p.max_n] for g in groups]
            best = max(run["dpo"], key=lambda e: e["gold"])
            shown = {"reference": [tok.decode(pool.tokens[g[0]]) for g in groups],
                     "best_of_n": [tok.decode(pool.tokens[f[int(r_pool[f].argmax())]])
                                   for f in first],
                     "dpo": best["texts"], "rl_peak": run["rl"]["peak_texts"],
                     "rl_final": run["rl"]["final_texts"]}
            samples = _score_samples(model, tok, prompts, rater, rm, offset, shown)
            samples.update(dpo_beta=best["beta"], n=p.max_n)
        runs.append(run)

    ref_parts = {k: sum(rater.parts(tok.decode(t))[k] for t in pool.tokens) / len(pool.tokens)
                 for k in ("words", "lexicon", "repeats", "symbols")}
    results = {
        "prompts": prompt_text, "lexicon_size": len(rater.lexicon),
        "pool_per_prompt": [len(g) for g in groups], "ref_gold": ref_gold,
        "ref_repeats": ref_parts["repeats"], "ref_parts": ref_parts,
        "oracle": [{"n": n, "kl": pt.best_of_n_kl(n), "gold": oracle[n]} for n in p.ns],
        "label_tie_fraction": float((diff == 0).float().mean()),
        "runs": runs, "betas": list(p.betas), "ns": p.ns, "seeds": p.seeds,
        "rl_kl_coef": p.rl_kl_coef, "rl_steps": p.rl_steps, "samples": samples,
    }
    write_json(ctx, "results.json", results)
    rm_keys = ("accuracy_gold", "accuracy_labels", "gold_accuracy_labels", "pool_correlation",
               "best_step")
    return {"time_s": {"total": time.perf_counter() - t_start, "sample": sample_s, **timing},
            "seeds": p.seeds, "n_pairs": n_pairs, "samples": samples,
            "rm": {k: over_seeds([r["rm"][k] for r in runs]) for k in rm_keys},
            "ref_gold": ref_gold, "ref_parts": ref_parts,
            "label_tie_fraction": results["label_tie_fraction"],
            "prompts": prompt_text, "lexicon_size": len(rater.lexicon),
            "pool_per_prompt": min(results["pool_per_prompt"])}
