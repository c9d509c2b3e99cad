"""Helpers shared by the transformer figures: loading the trained models, picking text."""

from __future__ import annotations

SHOW_CHARS = {" ": "\u00b7", "\n": "\u21b5"}


def corpus_file():
    from genai_report.data.corpora import default_corpus_path

    return default_corpus_path()


def load_gpt(path):
    import torch

    from genai_report.data.text import CharTokenizer
    from genai_report.models.gpt import GPT, GPTConfig

    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    return model.eval(), CharTokenizer(blob["chars"]), blob["val_text"]


def load_encdec(path):
    import torch

    from genai_report.models.encdec import EncDecConfig, EncoderDecoder

    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = EncoderDecoder(EncDecConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    return model.eval()


def first_sentence(text: str, n: int) -> str:
    """The first ``n``-character window of ``text`` that starts a sentence (else the start)."""
    import re

    for m in re.finditer(r"[.!?]\s+([A-Z])", text):
        cand = text[m.start(1): m.start(1) + n]
        if len(cand) == n and "\n" not in cand:
            return cand
    return text[:n]
