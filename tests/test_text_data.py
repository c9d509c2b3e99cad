"""Corpus loading and its errors, the character tokenizer, batches, BPE, the corpus script."""

from __future__ import annotations

import hashlib
import importlib.util
import platform
from pathlib import Path

import pytest
import torch

from genai_report.data import corpora as corpora_mod
from genai_report.data.bpe import BPETokenizer, pretokenize
from genai_report.data.text import (
    CharTokenizer,
    CorpusError,
    corpus_path,
    default_corpus_path,
    get_batch,
    load_corpus,
    split,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["english", "python"])
def test_embedded_corpora_match_their_pinned_hash(name):
    text = load_corpus(name)
    digest = hashlib.sha256(corpus_path(name).read_bytes()).hexdigest()
    assert digest == corpora_mod.EMBEDDED[name][1]
    assert text.isascii()
    assert len(text) > (500_000 if name == "english" else 100_000)


def test_corpora_have_a_licence_note():
    readme = (corpora_mod.CORPORA_DIR / "README.md").read_text()
    assert "PSF" in readme
    assert (corpora_mod.CORPORA_DIR / "LICENSE-PSF.txt").is_file()
    for _, digest in corpora_mod.EMBEDDED.values():
        assert digest in readme


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError, match=r"nope\.txt.*does not exist"):
        load_corpus(tmp_path / "nope.txt")


def test_empty_file(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_bytes(b"")
    with pytest.raises(CorpusError, match=r"empty\.txt.*is empty"):
        load_corpus(f)


def test_non_utf8_file(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("caf\u00e9 ".encode("latin-1") * 500)
    with pytest.raises(CorpusError, match=r"latin1\.txt.*not UTF-8.*byte 3"):
        load_corpus(f)


def test_too_short_file(tmp_path):
    f = tmp_path / "short.txt"
    f.write_text("hello", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"short\.txt.*too short: 5 characters"):
        load_corpus(f)


def test_user_file_is_accepted(tmp_path, monkeypatch):
    f = tmp_path / "mine.txt"
    f.write_text("\u00e9t\u00e9 " * 400, encoding="utf-8")
    assert load_corpus(f).startswith("\u00e9t\u00e9")
    monkeypatch.setenv(corpora_mod.CORPUS_ENV, str(f))
    assert default_corpus_path() == f
    monkeypatch.delenv(corpora_mod.CORPUS_ENV)
    assert default_corpus_path().name == "english.txt"


def test_unknown_corpus_name_suggests():
    with pytest.raises(CorpusError, match="Did you mean .english."):
        load_corpus("englsh")


def test_tampered_embedded_corpus_is_detected(tmp_path, monkeypatch):
    (tmp_path / "english.txt").write_text("x" * 5000)
    monkeypatch.setattr(corpora_mod, "CORPORA_DIR", tmp_path)  # where corpus paths resolve
    with pytest.raises(CorpusError, match="sha256"):
        load_corpus("english")


def test_char_tokenizer_round_trip():
    tok = CharTokenizer.from_text("hello world")
    assert tok.vocab_size == 8
    ids = tok.encode("low hold")
    assert ids.dtype == torch.long
    assert tok.decode(ids) == "low hold"
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("zebra")


def test_split_and_batches():
    ids = torch.arange(1000)
    train, val = split(ids, 0.1)
    assert len(train) == 900 and len(val) == 100 and val[0] == 900
    x, y = get_batch(train, 4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    assert (y < 900).all()
    x2, _ = get_batch(train, 4, 16, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    with pytest.raises(ValueError):
        split(ids, 1.5)
    with pytest.raises(ValueError, match="block_size"):
        get_batch(ids[:8], 2, 8, torch.Generator())


def test_bpe_learns_frequent_pairs_and_round_trips():
    text = "the cat sat on the mat. the hat is that. " * 20
    bpe = BPETokenizer.train(text, 15)
    assert bpe.vocab_size == len(bpe.alphabet) + len(bpe.merges)
    assert ("t", "h") in bpe.merges[:5] or (" ", "t") in bpe.merges[:5]
    assert bpe.decode(bpe.encode(text)) == text
    lengths = [len(bpe.tokenize(text, k)) for k in range(0, 16, 5)]
    assert lengths[0] == len(text)
    assert lengths == sorted(lengths, reverse=True) and lengths[-1] < len(text) / 2
    assert BPETokenizer.train(text, 15) == bpe  # deterministic
    assert "".join(pretokenize(text)) == text


def test_bpe_rejects_unknown_symbols():
    bpe = BPETokenizer.train("abab abab", 2)
    with pytest.raises(ValueError):
        bpe.encode("xyz")


@pytest.mark.skipif(platform.python_version() != "3.11.7",
                    reason="the committed corpora were generated with CPython 3.11.7")
def test_make_corpora_regenerates_the_committed_bytes():
    spec = importlib.util.spec_from_file_location("make_corpora",
                                                  ROOT / "scripts" / "make_corpora.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, text in (("english", mod.english()), ("python", mod.python_code())):
        assert hashlib.sha256(text.encode("ascii")).hexdigest() == corpora_mod.EMBEDDED[name][1]


def test_chunked_split_takes_every_kth_chunk():
    ids = torch.arange(1000)
    train, val = split(ids, 0.1, chunk=10)
    assert len(train) == 900 and len(val) == 100
    assert torch.equal(val[:10], torch.arange(90, 100)) and val[10] == 190
    assert not set(train.tolist()) & set(val.tolist())
    short_train, short_val = split(ids[:50], 0.1, chunk=10)  # too short: the tail
    assert torch.equal(short_val, torch.arange(45, 50))
