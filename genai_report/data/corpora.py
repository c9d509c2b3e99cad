"""The text corpora that ship with the project, found and checked without importing torch.

The embedded corpora (``english``, ``python``) live in :mod:`genai_report.corpora` with their
sha256 pinned here; any UTF-8 text file can be used instead (pass its path, or set
``$GENAI_REPORT_TEXT_CORPUS``). Pipeline nodes declare :func:`default_corpus_path` in their
``data=``, so reading this module must stay cheap: it is imported on every build.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from genai_report.utils import did_you_mean

CORPORA_DIR = Path(__file__).resolve().parent.parent / "corpora"
EMBEDDED: dict[str, tuple[str, str]] = {
    "english": ("english.txt", "5f796d6439a25d8382f0bab5810c6b04bf0eb7d47210ccf9c6b727ee51304a59"),
    "python": ("python_code.txt",
               "6922f19cb18c9664c5451fcda667c7b8188e66dc8d8269d34136b3ef8fb1bc2b"),
}
CORPUS_ENV = "GENAI_REPORT_TEXT_CORPUS"
MIN_CHARS = 1000
MAX_BYTES = 20_000_000
"""The largest corpus accepted (20 MB): the text models hold the whole corpus in memory as
token ids (8 bytes a character), so a 200 MB file would need several GB."""
MAX_CONTROL_FRACTION = 0.01
"""More control characters than this (NUL and the like, not tabs or newlines): not text."""

_VISIBLE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


class CorpusError(ValueError):
    """A corpus file is missing, empty, too large, not UTF-8 text, too short, or not the
    pinned bytes."""


def corpus_path(name: str) -> Path:
    """Path of an embedded corpus name (``english``, ``python``) or of a user file.

    Args:
        name: an embedded corpus name, or a path to a UTF-8 text file.

    Returns:
        The path (not yet checked; :func:`load_corpus` checks it).
    """
    if name in EMBEDDED:
        return CORPORA_DIR / EMBEDDED[name][0]
    path = Path(name).expanduser()
    if path.suffix == "" and not path.exists():
        raise CorpusError(
            f"Unknown corpus '{name}'.{did_you_mean(name, EMBEDDED)} Use one of "
            f"{', '.join(EMBEDDED)} or the path of a UTF-8 text file."
        )
    return path


def default_corpus_path() -> Path:
    """The English corpus, or the file named by ``$GENAI_REPORT_TEXT_CORPUS`` if it is set.

    Pipeline nodes declare this callable in ``data=`` so the corpus bytes are in their key.
    """
    return corpus_path(os.environ.get(CORPUS_ENV) or "english")


def load_corpus(name: str | Path, *, min_chars: int = MIN_CHARS) -> str:
    """Read a corpus and check it.

    Args:
        name: an embedded corpus name or a path to a UTF-8 text file.
        min_chars: the least number of characters accepted.

    Returns:
        The text.

    Raises:
        CorpusError: with the file and what is wrong with it.
    """
    path = corpus_path(str(name))
    if not path.is_file():
        raise CorpusError(f"Corpus file '{path}' does not exist (or is not a file). "
                          "Check the path, or use an embedded corpus: "
                          f"{', '.join(EMBEDDED)}.")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise CorpusError(f"Corpus file '{path}' is {size / 1e6:,.1f} MB; the limit is "
                          f"{MAX_BYTES / 1e6:.0f} MB (the text models hold the whole corpus "
                          "in memory). Train on a part of it, e.g. `head -n 100000 "
                          f"{path} > part.txt`.")
    data = path.read_bytes()
    if not data:
        raise CorpusError(f"Corpus file '{path}' is empty. Give a text file with at least "
                          f"{min_chars} characters.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"Corpus file '{path}' is not UTF-8 text: byte {exc.start} "
                          f"({data[exc.start:exc.start + 1]!r}) cannot be decoded. Convert "
                          "it to UTF-8 (e.g. `iconv -t UTF-8`).") from None
    _check_is_text(path, text, min_chars)
    if len(text) < min_chars:
        raise CorpusError(f"Corpus file '{path}' is too short: {len(text)} characters, at "
                          f"least {min_chars} are needed to train and validate.")
    for key, (fname, digest) in EMBEDDED.items():
        if path.resolve() == (CORPORA_DIR / fname).resolve():
            found = hashlib.sha256(data).hexdigest()
            if found != digest:
                raise CorpusError(f"Embedded corpus '{key}' ({path}) has sha256 {found}, "
                                  f"expected {digest}. Restore the committed file "
                                  "(`git checkout -- genai_report/corpora`).")
    return text


def _check_is_text(path: Path, text: str, min_chars: int) -> None:
    """Reject a file with no visible characters, or one that is mostly control bytes."""
    if _VISIBLE.search(text) is None:
        raise CorpusError(f"Corpus file '{path}' has no text: its {len(text):,} character(s) "
                          "are all whitespace or control characters (such as NUL). Give a "
                          f"text file with at least {min_chars} characters.")
    control = _CONTROL.findall(text)
    if len(control) > MAX_CONTROL_FRACTION * len(text):
        first = _CONTROL.search(text)
        raise CorpusError(f"Corpus file '{path}' does not look like text: {len(control):,} of "
                          f"its {len(text):,} characters are control characters (the first, "
                          f"{control[0]!r}, at character {first.start():,}). Give a plain "
                          "UTF-8 text file.")


def custom_corpus(name: str | Path | None = None) -> Path | None:
    """The user's corpus, checked: ``name``, else ``$GENAI_REPORT_TEXT_CORPUS``.

    Args:
        name: an embedded corpus name or a path; ``None`` reads the environment variable.

    Returns:
        Its resolved path, or ``None`` when no corpus is named or it is the embedded English
        corpus (the default, whose outputs are the committed ones).

    Raises:
        CorpusError: the file is missing, empty, has no text, is too large or not UTF-8.
    """
    name = name if name is not None else (os.environ.get(CORPUS_ENV) or None)
    if name is None:
        return None
    path = corpus_path(str(name)).resolve()
    load_corpus(path)
    if path == (CORPORA_DIR / EMBEDDED["english"][0]).resolve():
        return None
    return path


CORPUS_CACHE = Path(".cache") / "genai-report"
"""Where a custom corpus's outputs go by default, under the project root (git ignores
``.cache/``)."""


def corpus_cache_dir(root: Path, corpus: Path) -> Path:
    """The cache of a custom corpus: ``<root>/.cache/genai-report/corpus-<sha12>``, named by
    the first 12 hex digits of the file's sha256, so that it never mixes with the committed
    outputs nor with another corpus's."""
    return Path(root) / CORPUS_CACHE / f"corpus-{sha256_of(corpus)[:12]}"


def sha256_of(name: str | Path) -> str:
    """sha256 hex digest of a corpus file's bytes (recorded in provenance)."""
    return hashlib.sha256(corpus_path(str(name)).read_bytes()).hexdigest()
