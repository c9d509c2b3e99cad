"""The text corpora that ship with the project, found and checked without importing torch.

The embedded corpora (``english``, ``python``) live in :mod:`genai_report.corpora` with their
sha256 pinned here; any UTF-8 text file can be used instead (pass its path, or set
``$GENAI_REPORT_TEXT_CORPUS``). Pipeline nodes declare :func:`default_corpus_path` in their
``data=``, so reading this module must stay cheap: it is imported on every build.
"""

from __future__ import annotations

import hashlib
import os
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


class CorpusError(ValueError):
    """A corpus file is missing, empty, not UTF-8, too short, or not the pinned bytes."""


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


def sha256_of(name: str | Path) -> str:
    """sha256 hex digest of a corpus file's bytes (recorded in provenance)."""
    return hashlib.sha256(corpus_path(str(name)).read_bytes()).hexdigest()
