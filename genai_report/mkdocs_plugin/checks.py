"""Claims as code: ``[[check: EXPR]]`` evaluated against the records of the build.

A check sits right after the sentence it verifies::

    The copy's loss falls below half the first's.
    [[check: transformers-induction.second_copy_loss < 0.5 * transformers-induction.first_copy_loss]]

``EXPR`` is in the small language of :mod:`.expr` (numbers, ``+ - * /``, chained
comparisons, ``and``/``or``/``not``, ``abs``/``min``/``max``/``len``, references
``NODE.key.sub`` and ``NODE.key[0]``; binary minus with spaces around it). A metric
measured over seeds (:func:`genai_report.metrics.seeds.over_seeds`) is a dict: compare
``NODE.key.mean`` and ``NODE.key.sd``. ``[[check: EXPR | profiles=quick,full]]`` evaluates
the claim only in those profiles (for an effect that needs scale).

Public API: :func:`parse_check` (a form's body to a :class:`Claim`),
:meth:`Claim.evaluate` (to an :class:`Outcome`) and :func:`render_mark` (the mark beside
the sentence).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from genai_report.metrics.seeds import is_over_seeds
from genai_report.mkdocs_plugin.expr import (
    BinOp,
    BoolOp,
    Call,
    CheckError,
    CheckEvalError,
    CheckReferenceError,
    CheckSyntaxError,
    Compare,
    Not,
    Num,
    Ref,
    Str,
    Unary,
    parse_expression,
)
from genai_report.mkdocs_plugin.markup import attr_escape
from genai_report.pipeline.profiles import PROFILES
from genai_report.utils import did_you_mean

# -- evaluation -----------------------------------------------------------------------------
#: ``node -> metrics`` for the profile being built; raises ``LookupError`` if unknown.
Lookup = Callable[[str], Mapping[str, Any]]


def _describe(value: Any) -> str:
    """A value as shown in messages and tooltips."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        if is_over_seeds(value):
            return (f"{_describe(value['mean'])} ± {_describe(value['sd'])} "
                    f"({value['n']} seeds)")
        return "{" + ", ".join(sorted(map(str, value)))[:60] + "}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    if value is None:
        return "null"
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        if is_over_seeds(value):
            return "a metric over seeds (use .mean or .sd)"
        return "a dict (add .KEY)"
    if isinstance(value, list):
        return "a list (add [INDEX])"
    return "null (not measured)" if value is None else type(value).__name__


def _step(value: Any, step: Any, where: str, ref: Ref) -> Any:
    """One step into a record: a dict key or a list index."""
    if isinstance(value, Mapping):
        key = str(step) if isinstance(step, int) and not isinstance(step, bool) else step
        if isinstance(key, str) and key in value:
            return value[key]
        keys = [str(k) for k in value]
        hint = did_you_mean(str(key), keys)
        if isinstance(key, str) and "-" in key:
            hint += " (binary minus needs spaces around it: `a - b`)"
        avail = ", ".join(sorted(keys)) or "none"
        if len(avail) > 300:
            avail = avail[:300] + ", ..."
        raise CheckReferenceError(f"Key {key!r} not found in '{where}' (in `{ref.text}`).{hint}"
                                  f" Available: {avail}.")
    if isinstance(value, list):
        index = step
        if isinstance(step, str) and re.fullmatch(r"-?\d+", step):
            index = int(step)
        if isinstance(index, int) and not isinstance(index, bool) and -len(value) <= index < len(value):
            return value[index]
        raise CheckReferenceError(f"Index {step!r} out of range for '{where}' (in `{ref.text}`):"
                                  f" it has indices 0..{len(value) - 1}.")
    raise CheckReferenceError(f"'{where}' is {_describe(value)}, not a dict or list; it has no "
                              f"{step!r} (in `{ref.text}`).")


@dataclass
class _Trace:
    """What an evaluation looked at, for tooltips and error messages."""

    refs: dict[str, Any] = field(default_factory=dict)
    comparisons: list[str] = field(default_factory=list)


class _Evaluator:
    def __init__(self, lookup: Lookup, expr: str):
        self.lookup = lookup
        self.expr = expr
        self.trace = _Trace()

    def resolve(self, ref: Ref, evaluate_indexes: bool = True) -> Any:
        try:
            value: Any = self.lookup(ref.node)
        except LookupError as exc:
            raise CheckReferenceError(f"{exc.args[0] if exc.args else exc} (in `{ref.text}`)") from None
        where = ref.node
        for step in ref.steps:
            if not isinstance(step, str):
                if not evaluate_indexes and not isinstance(step, (Num, Str)):
                    return None  # a computed index: checked when evaluated
                step = self.eval(step)
                if isinstance(step, float) and step.is_integer():
                    step = int(step)
            value = _step(value, step, where, ref)
            where = f"{where}[{step!r}]" if not isinstance(step, str) else f"{where}.{step}"
        return value

    def eval(self, node: Any) -> Any:
        method = getattr(self, f"_eval_{type(node).__name__}", None)
        if method is None:  # pragma: no cover - the parser builds only the types below
            raise CheckEvalError(f"Cannot evaluate {node!r}.")
        return method(node)

    def _eval_Num(self, node: Num) -> Any:
        return node.value

    def _eval_Str(self, node: Str) -> Any:
        return node.value

    def _eval_Ref(self, node: Ref) -> Any:
        value = self.resolve(node)
        self.trace.refs[node.text] = value
        return value

    def _number(self, value: Any, context: str) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckEvalError(f"{context} needs numbers, got {_describe(value)} "
                                 f"({_kind(value)}).")
        return value

    def _eval_Unary(self, node: Unary) -> Any:
        value = self._number(self.eval(node.operand), f"Unary '{node.op}'")
        return -value if node.op == "-" else value

    def _eval_BinOp(self, node: BinOp) -> Any:
        left = self._number(self.eval(node.left), f"'{node.op}'")
        right = self._number(self.eval(node.right), f"'{node.op}'")
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if right == 0:
            raise CheckEvalError(f"Division by zero: {_describe(left)} / {_describe(right)}.")
        return left / right

    def _compare_pair(self, left: Any, op: str, right: Any) -> bool:
        if op in ("==", "!="):
            equal = left == right
            if isinstance(left, float) or isinstance(right, float):
                equal = isinstance(left, (int, float)) and isinstance(right, (int, float)) \
                    and math.isclose(left, right, rel_tol=1e-12, abs_tol=0.0)
            return equal if op == "==" else not equal
        both_numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in (left, right))
        both_strings = isinstance(left, str) and isinstance(right, str)
        if not (both_numbers or both_strings):
            raise CheckEvalError(f"Cannot compare {_describe(left)} ({_kind(left)}) {op} "
                                 f"{_describe(right)} ({_kind(right)}).")
        return {"<": left < right, "<=": left <= right, ">": left > right,
                ">=": left >= right}[op]

    def _eval_Compare(self, node: Compare) -> bool:
        values = [self.eval(node.operands[0])]
        result = True
        for op, operand in zip(node.ops, node.operands[1:], strict=True):
            right = self.eval(operand)
            values.append(right)
            if not self._compare_pair(values[-2], op, right):
                result = False
                break
        shown = [_describe(values[0])]
        for op, value in zip(node.ops, values[1:], strict=False):
            shown += [op, _describe(value)]
        self.trace.comparisons.append(" ".join(shown) + ("" if result else " (false)"))
        return result

    def _truth(self, value: Any, op: str) -> bool:
        if not isinstance(value, bool):
            raise CheckEvalError(f"'{op}' works on true/false (comparisons), got "
                                 f"{_describe(value)} ({_kind(value)}).")
        return value

    def _eval_BoolOp(self, node: BoolOp) -> bool:
        for value in node.values:
            truth = self._truth(self.eval(value), node.op)
            if node.op == "and" and not truth:
                return False
            if node.op == "or" and truth:
                return True
        return node.op == "and"

    def _eval_Not(self, node: Not) -> bool:
        return not self._truth(self.eval(node.operand), "not")

    def _eval_Call(self, node: Call) -> Any:
        args = [self.eval(a) for a in node.args]
        return FUNCTIONS[node.func](*args)


def _numbers(args: tuple[Any, ...], name: str) -> list[float | int]:
    items = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not items:
        raise CheckEvalError(f"{name}() needs at least one number.")
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CheckEvalError(f"{name}() needs numbers, got {_describe(v)} ({_kind(v)}).")
    return items


def _abs(*args: Any) -> Any:
    if len(args) != 1:
        raise CheckEvalError(f"abs() takes one number, got {len(args)} arguments.")
    return abs(_numbers(args, "abs")[0])


def _min(*args: Any) -> Any:
    return min(_numbers(args, "min"))


def _max(*args: Any) -> Any:
    return max(_numbers(args, "max"))


def _len(*args: Any) -> int:
    if len(args) != 1 or not isinstance(args[0], (list, Mapping, str)):
        raise CheckEvalError("len() takes one list, dict or string.")
    return len(args[0])


FUNCTIONS: dict[str, Callable[..., Any]] = dict({"abs": _abs, "len": _len, "max": _max, "min": _min})


def references(tree: Any) -> Iterator[Ref]:
    """Every reference in ``tree``, in reading order (indexes included)."""
    if isinstance(tree, Ref):
        yield tree
        for step in tree.steps:
            if not isinstance(step, str):
                yield from references(step)
    elif isinstance(tree, (Unary, Not)):
        yield from references(tree.operand)
    elif isinstance(tree, BinOp):
        yield from references(tree.left)
        yield from references(tree.right)
    elif isinstance(tree, Compare):
        for operand in tree.operands:
            yield from references(operand)
    elif isinstance(tree, (BoolOp, Call)):
        for value in (tree.values if isinstance(tree, BoolOp) else tree.args):
            yield from references(value)


# -- claims ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """The result of evaluating a claim.

    Attributes:
        holds: whether the claim is true on these records.
        values: each reference as written -> its value.
        comparisons: each comparison with the values it compared, e.g. ``"0.21 < 1.15"``.
    """

    holds: bool
    values: dict[str, Any]
    comparisons: tuple[str, ...]

    def explain(self) -> str:
        """The compared values and the referenced values, on one line."""
        parts = list(self.comparisons)
        refs = "; ".join(f"{k} = {_describe(v)}" for k, v in self.values.items())
        if refs:
            parts.append(f"where {refs}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Claim:
    """A parsed ``[[check: EXPR | profiles=...]]``.

    Attributes:
        expr: the expression as written.
        tree: its parsed form.
        profiles: the profiles in which it is evaluated (all by default).
    """

    expr: str
    tree: Any
    profiles: tuple[str, ...] = PROFILES

    def nodes(self) -> list[str]:
        """The node names the claim refers to, in order, without repeats."""
        return list(dict.fromkeys(ref.node for ref in references(self.tree)))

    def applies_to(self, profile: str) -> bool:
        """Whether the claim is evaluated in ``profile``."""
        return profile in self.profiles

    def validate(self, lookup: Lookup) -> None:
        """Resolve every reference whose path is fixed, without evaluating anything.

        Raises:
            CheckReferenceError: an unknown node or key, named with a did-you-mean.
        """
        evaluator = _Evaluator(lookup, self.expr)
        for ref in references(self.tree):
            evaluator.resolve(ref, evaluate_indexes=False)

    def evaluate(self, lookup: Lookup) -> Outcome:
        """Evaluate the claim against the records ``lookup`` gives.

        Args:
            lookup: node name -> its record's metrics; raises ``LookupError`` (with a
                did-you-mean message) for an unknown node.

        Returns:
            The :class:`Outcome`: whether it holds and the values it compared.

        Raises:
            CheckReferenceError: an unknown node or key.
            CheckEvalError: the values do not fit the expression (a string in arithmetic,
                a metric over seeds used without ``.mean``, division by zero), or the result
                is not true/false.
        """
        self.validate(lookup)
        evaluator = _Evaluator(lookup, self.expr)
        result = evaluator.eval(self.tree)
        if not isinstance(result, bool):
            raise CheckEvalError(f"A check must be true or false (a comparison), but "
                                 f"`{self.expr}` is {_describe(result)} ({_kind(result)}).")
        return Outcome(result, dict(evaluator.trace.refs), tuple(evaluator.trace.comparisons))


_OPTIONS_RE = re.compile(r"^(?P<expr>[^|]*)\|(?P<options>[^|]*)$")


def parse_check(body: str) -> Claim:
    """Parse the body of a ``[[check: ...]]`` form.

    Args:
        body: ``EXPR`` or ``EXPR | profiles=quick,full``.

    Returns:
        The :class:`Claim`.

    Raises:
        CheckSyntaxError: a malformed expression, an unknown option or profile.
    """
    expr, profiles = body.strip(), PROFILES
    m = _OPTIONS_RE.match(expr)
    if m:
        expr = m.group("expr").strip()
        profiles = _parse_options(m.group("options"))
    elif "|" in expr:
        raise CheckSyntaxError("A check has at most one '|', before its options: "
                               "`EXPR | profiles=quick,full`.")
    return Claim(expr, parse_expression(expr), profiles)


def _parse_options(text: str) -> tuple[str, ...]:
    name, eq, value = text.partition("=")
    name = name.strip()
    if name != "profiles" or not eq:
        raise CheckSyntaxError(f"Unknown check option {text.strip()!r}.{did_you_mean(name, ['profiles'])}"
                               " The only option is `profiles=P1,P2` (e.g. `| profiles=full`).")
    chosen = [p.strip() for p in value.split(",") if p.strip()]
    if not chosen:
        raise CheckSyntaxError(f"`profiles=` names no profile; valid: {', '.join(PROFILES)}.")
    for p in chosen:
        if p not in PROFILES:
            raise CheckSyntaxError(f"Unknown profile '{p}' in `profiles=`.{did_you_mean(p, PROFILES)}"
                                   f" Valid profiles: {', '.join(PROFILES)}.")
    return tuple(p for p in PROFILES if p in chosen)


# -- rendering ------------------------------------------------------------------------------
#: status -> (glyph, CSS class, first line of the tooltip).
MARKS = {
    "verified": ("✓", "claim-verified", "Verified by this build ({profile} profile)"),
    "unverified": ("?", "claim-unverified",
                   "Not verified in this build: false with the {profile} profile's tiny settings"),
    "elsewhere": ("○", "claim-elsewhere", "Checked in the {where} profile; not evaluated in this "
                  "{profile} build"),
    "failed": ("✗", "claim-failed", "False in this build ({profile} profile)"),
}
def render_mark(claim: Claim, status: str, profile: str, outcome: Outcome | None = None) -> str:
    """The small mark beside a checked sentence, as inline HTML.

    Args:
        claim: the claim.
        status: ``verified``, ``unverified`` (false under ``smoke``), ``elsewhere`` (its
            ``profiles=`` excludes this build) or ``failed``.
        profile: the profile being built.
        outcome: the evaluation, whose compared values go into the tooltip.

    Returns:
        ``<span class="claim-check ...">`` with the glyph, a ``title`` tooltip (the
        expression and the values compared) and the same text as ``aria-label``.
    """
    glyph, css, first = MARKS[status]
    lines = [first.format(profile=profile, where=" and ".join(claim.profiles)), claim.expr]
    if outcome is not None:
        lines.extend(outcome.comparisons)
        lines.extend(f"{k} = {_describe(v)}" for k, v in outcome.values.items())
    title = "\n".join(lines)
    label = "; ".join(lines)
    return (f'<span class="claim-check {css}" role="img" aria-label="{attr_escape(label)}" '
            f'title="{attr_escape(title)}">{glyph}</span>')


__all__ = [
    "CheckError",
    "CheckEvalError",
    "CheckReferenceError",
    "CheckSyntaxError",
    "Claim",
    "Outcome",
    "parse_check",
    "references",
    "render_mark",
]
