"""Generate the embedded text corpora from text that ships with CPython (PSF licence).

Run once with the project's Python (3.11) and commit the result::

    python scripts/make_corpora.py

* ``english.txt``: English prose, the documentation topics bundled with CPython for
  ``help()`` (``pydoc_data.topics``) followed by the docstrings of a fixed list of standard
  library modules, read with :mod:`ast` from their source (nothing is imported or executed).
* ``python_code.txt``: the source of a fixed list of pure-Python standard library modules.

Both are normalised to printable ASCII plus newlines (curly quotes and dashes become their
ASCII forms, other characters are dropped) so the character vocabulary is small. The output
depends only on the CPython version's files, which are pinned by the sha256 in
:mod:`genai_report.data.text`; the committed files are what counts.
"""

from __future__ import annotations

import ast
import hashlib
import re
import sysconfig
import unicodedata
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "genai_report" / "corpora"
STDLIB = Path(sysconfig.get_paths()["stdlib"])

DOC_MODULES = (
    "argparse", "asyncio/tasks", "asyncio/events", "bisect", "calendar", "collections/__init__",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "doctest",
    "email/message", "enum", "fractions", "functools", "gettext", "glob", "gzip", "heapq",
    "http/client", "http/server", "inspect", "ipaddress", "json/__init__", "logging/__init__",
    "mailbox", "os", "pathlib", "pickle", "pprint", "pydoc", "queue", "random", "shlex",
    "shutil", "smtplib", "socket", "ssl", "statistics", "string", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "typing", "unittest/case", "urllib/parse",
    "urllib/request", "uuid", "warnings", "weakref", "zipfile",
)
CODE_MODULES = (
    "bisect", "heapq", "textwrap", "shlex", "fractions", "string", "functools", "queue",
    "csv", "json/decoder", "json/encoder", "json/scanner", "graphlib", "colorsys", "sched",
    "fnmatch", "glob", "base64", "cmd", "contextlib", "copy", "pprint", "reprlib", "abc",
    "numbers", "operator", "keyword", "linecache", "random",
)
_ASCII = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
          "\u2014": "--", "\u2026": "...", "\u00a0": " ", "\u00b0": " degrees"}


def to_ascii(text: str) -> str:
    """Map typographic characters to ASCII, drop the rest, and normalise line endings."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\t", "    "))
    text = "".join(_ASCII.get(c, c) for c in text)
    text = "".join(c for c in text if c == "\n" or 32 <= ord(c) < 127)
    text = re.sub(r"[ ]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text)


def docstrings(path: Path) -> list[str]:
    """Docstrings of the module, its classes and functions, in source order."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc and len(doc) >= 80:
                out.append(doc.strip())
    return out


def english() -> str:
    """The English corpus: pydoc topics, then stdlib docstrings."""
    from pydoc_data.topics import topics

    parts = [topics[k].strip() for k in sorted(topics)]
    for mod in DOC_MODULES:
        parts.extend(docstrings(STDLIB / f"{mod}.py"))
    return to_ascii("\n\n".join(parts)) + "\n"


def python_code() -> str:
    """The code corpus: whole stdlib modules, each headed by a comment naming it."""
    parts = [f"# ---- Lib/{m}.py ----\n" + (STDLIB / f"{m}.py").read_text(encoding="utf-8")
             for m in CODE_MODULES]
    return to_ascii("\n\n".join(parts))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in (("english.txt", english()), ("python_code.txt", python_code())):
        data = text.encode("ascii")
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
