"""The small, safe expression language of ``[[check: EXPR]]`` (see :mod:`.checks`).

The language is on purpose much smaller than Python, and nothing is ever passed to
``eval``: a tokenizer and a recursive-descent parser build a tree of the node types
below, and the evaluator in :mod:`.checks` knows only those.

* numbers (``2``, ``0.5``, ``1e-3``), strings (``"a"``), ``+ - * /``, unary minus and
  parentheses;
* comparisons ``< <= > >= == !=``, chained as in Python (``a < b < c``);
* ``and``, ``or``, ``not`` (on true/false values only);
* the functions ``abs``, ``min``, ``max`` and ``len``, and no others;
* references ``NODE.key.sub`` into a node's record metrics, with indexing
  ``NODE.key[0]`` / ``NODE.key["a"]`` (and ``.key`` after an index). A dotted step that
  is a number indexes a list (``NODE.curve.0.fid``) or names a dict key
  (``NODE.by_scale.3``).

Node names and keys may contain dashes (``transformers-induction``), so **binary minus is
written with spaces around it**: ``a.x - b.y``; ``a.x-b.y`` reads as one key ``x-b``.

Precedence, loosest first: ``or``, ``and``, ``not``, comparisons, ``+ -``, ``* /``, unary
``- +``, then references, calls and parentheses (Python's order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from genai_report.utils import did_you_mean

FUNCTION_NAMES = ("abs", "len", "max", "min")
KEYWORDS = ("and", "or", "not")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")

#: A record key step: letters, digits, ``_``; dashes inside (``latent-diffusion``).
_KEY = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
#: A node name has at least one letter (so ``10.5`` stays a number).
_NODE = r"(?=[a-z0-9-]*[a-z])[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_TOKEN_RE = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<ref>{_NODE}(?:\.{_KEY})+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<attr>\.{_KEY})
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>"[^"\\\n]*"|'[^'\\\n]*')
  | (?P<op><=|>=|==|!=|[-+*/<>()\[\],])
    """,
    re.VERBOSE,
)


# -- errors ---------------------------------------------------------------------------------
class CheckError(Exception):
    """Base class of the errors of a check; the message names the problem and the fix."""


class CheckSyntaxError(CheckError, ValueError):
    """The expression is not in the language (with the column and a caret)."""


class CheckReferenceError(CheckError, LookupError):
    """A reference names an unknown node or a key its record does not have."""


class CheckEvalError(CheckError, ValueError):
    """The expression is well formed but cannot be computed (types, division by zero)."""


# -- the tree -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    value: float | int


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Ref:
    """``node.k1.k2[expr].k3``: steps are strings (dotted keys) or expressions (indexes)."""

    node: str
    steps: tuple[Any, ...]
    text: str


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Any


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Compare:
    operands: tuple[Any, ...]
    ops: tuple[str, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    operand: Any


# -- tokenizer and parser -------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    kind: str  # ref, num, attr, name, str, op, end
    text: str
    pos: int


def _caret(expr: str, pos: int) -> str:
    return f"\n    {expr}\n    {' ' * pos}^"


def tokenize(expr: str) -> list[_Token]:
    """Split ``expr`` into tokens.

    Raises:
        CheckSyntaxError: a character that starts no token (with its column).
    """
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if m is None:
            raise CheckSyntaxError(f"Unexpected character {expr[pos]!r} at column {pos + 1}."
                                   f"{_caret(expr, pos)}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, m.group(0), pos))
        pos = m.end()
    tokens.append(_Token("end", "", len(expr)))
    return tokens


class _Parser:
    """Recursive descent over the grammar (loosest binding first)::

        expr    := and ('or' and)*
        and     := not ('and' not)*
        not     := 'not' not | compare
        compare := sum (CMP sum)*
        sum     := term (('+' | '-') term)*
        term    := unary (('*' | '/') unary)*
        unary   := ('-' | '+') unary | primary
        primary := NUM | STR | REF ('[' expr ']' | '.' KEY)* | FUNC '(' args ')' | '(' expr ')'
    """

    def __init__(self, expr: str):
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _is(self, kind: str, *texts: str) -> bool:
        return self.tok.kind == kind and (not texts or self.tok.text in texts)

    def _fail(self, what: str, tok: _Token | None = None) -> CheckSyntaxError:
        tok = tok or self.tok
        found = "the end of the expression" if tok.kind == "end" else repr(tok.text)
        return CheckSyntaxError(f"{what}, found {found} at column {tok.pos + 1}."
                                f"{_caret(self.expr, tok.pos)}")

    def _expect(self, text: str) -> None:
        if not self._is("op", text):
            raise self._fail(f"Expected '{text}'")
        self._next()

    def parse(self) -> Any:
        if self.tok.kind == "end":
            raise CheckSyntaxError("Empty check: write an expression such as "
                                   "`node-name.key < 0.5`.")
        tree = self._or()
        if self.tok.kind == "attr":
            raise self._fail("Attribute access is not part of the language (a reference is "
                             "NODE.KEY, e.g. `digits-gan.fid`)")
        if self.tok.kind == "name" and self.tok.text not in (*KEYWORDS, *FUNCTION_NAMES):
            self._call()  # raises: an unknown name
        if self._is("op", "("):
            raise self._fail(f"Only the functions {', '.join(FUNCTION_NAMES)} can be called")
        if self.tok.kind != "end":
            hint = ""
            if self.tok.kind in ("ref", "num", "name"):
                hint = " (a missing operator? binary minus needs spaces: `a - b`)"
            raise self._fail(f"Expected the end of the check{hint}")
        return tree

    def _or(self) -> Any:
        values = [self._and()]
        while self._is("name", "or"):
            self._next()
            values.append(self._and())
        return values[0] if len(values) == 1 else BoolOp("or", tuple(values))

    def _and(self) -> Any:
        values = [self._not()]
        while self._is("name", "and"):
            self._next()
            values.append(self._not())
        return values[0] if len(values) == 1 else BoolOp("and", tuple(values))

    def _not(self) -> Any:
        if self._is("name", "not"):
            self._next()
            return Not(self._not())
        return self._compare()

    def _compare(self) -> Any:
        operands = [self._sum()]
        ops: list[str] = []
        while self._is("op", *COMPARISONS):
            ops.append(self._next().text)
            operands.append(self._sum())
        return operands[0] if not ops else Compare(tuple(operands), tuple(ops))

    def _sum(self) -> Any:
        left = self._term()
        while self._is("op", "+", "-"):
            op = self._next().text
            left = BinOp(op, left, self._term())
        return left

    def _term(self) -> Any:
        left = self._unary()
        while self._is("op", "*", "/"):
            op = self._next().text
            left = BinOp(op, left, self._unary())
        return left

    def _unary(self) -> Any:
        if self._is("op", "-", "+"):
            op = self._next().text
            return Unary(op, self._unary())
        return self._primary()

    def _primary(self) -> Any:
        tok = self.tok
        if tok.kind == "num":
            self._next()
            return Num(int(tok.text) if tok.text.isdigit() else float(tok.text))
        if tok.kind == "str":
            self._next()
            return Str(tok.text[1:-1])
        if tok.kind == "ref":
            return self._ref()
        if tok.kind == "name":
            return self._call()
        if self._is("op", "("):
            self._next()
            inner = self._or()
            self._expect(")")
            return inner
        if tok.kind == "attr":
            raise self._fail("Attribute access is not part of the language (a reference is "
                             "NODE.KEY, e.g. `digits-gan.fid`)")
        raise self._fail("Expected a number, a string, a reference NODE.KEY, a function "
                         "call or '('")

    def _ref(self) -> Ref:
        tok = self._next()
        node, *keys = tok.text.split(".")
        steps: list[Any] = list(keys)
        end = tok.pos + len(tok.text)
        while True:
            if self._is("op", "[") and self.tok.pos == end:
                self._next()
                steps.append(self._or())
                if not self._is("op", "]"):
                    raise self._fail("Expected ']' to close the index")
                end = self._next().pos + 1
            elif self.tok.kind == "attr" and self.tok.pos == end:
                attr = self._next()
                steps.append(attr.text[1:])
                end = attr.pos + len(attr.text)
            else:
                break
        return Ref(node, tuple(steps), self.expr[tok.pos:end])

    def _call(self) -> Call:
        tok = self._next()
        name = tok.text
        if name in KEYWORDS:
            raise self._fail(f"'{name}' needs a value before it", tok)
        if name not in FUNCTION_NAMES:
            hint = did_you_mean(name, [*FUNCTION_NAMES, *KEYWORDS])
            raise CheckSyntaxError(
                f"Unknown name '{name}' at column {tok.pos + 1}.{hint} The only functions are "
                f"{', '.join(FUNCTION_NAMES)}; a reference is NODE.KEY "
                f"(e.g. `digits-gan.fid`).{_caret(self.expr, tok.pos)}")
        if not self._is("op", "("):
            raise self._fail(f"Expected '(' after the function '{name}'")
        self._next()
        args: list[Any] = []
        if not self._is("op", ")"):
            args.append(self._or())
            while self._is("op", ","):
                self._next()
                args.append(self._or())
        self._expect(")")
        return Call(name, tuple(args))


def parse_expression(expr: str) -> Any:
    """Parse an expression of the check language into its tree.

    Args:
        expr: the expression, e.g. ``"digits-gan.fid > 2 * digits-diffusion.fid"``.

    Returns:
        The root of the tree (:class:`Compare`, :class:`BoolOp`, ...).

    Raises:
        CheckSyntaxError: the expression is not in the language; the message points at
            the column.
    """
    return _Parser(expr.strip()).parse()


__all__ = [
    "BinOp",
    "BoolOp",
    "Call",
    "CheckError",
    "CheckEvalError",
    "CheckReferenceError",
    "CheckSyntaxError",
    "Compare",
    "Not",
    "Num",
    "Ref",
    "Str",
    "Unary",
    "parse_expression",
    "tokenize",
]
