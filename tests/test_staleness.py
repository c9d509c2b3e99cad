"""Staleness follows meaning: what a node's key contains, and what an edit makes stale.

The goals (issue "Precise staleness"): a comment or docstring edit makes 0 nodes stale;
adding a node to a module makes only the new node stale; an edit inside one class makes
stale only the nodes whose code reaches it; an artifact forced to re-run that writes the
same bytes re-runs none of its dependents.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from genai_report.pipeline import Pipeline, RunOptions, closure, keys, load_registry

ROOT = Path(__file__).resolve().parents[1]

LIB = '''
"""A library with two classes that different nodes use."""

SCALE = 2


class Doubler:
    """Doubles."""

    def apply(self, x):
        return x * SCALE


class Tripler:
    def apply(self, x):
        return x * 3
'''

NODES = '''
"""Three nodes: base -> plot, and other."""
import json
from dataclasses import dataclass

from genai_report.pipeline.registry import Node
from {pkg}.lib import Doubler


@dataclass(frozen=True)
class P:
    n: int = 1


def base(ctx, p):
    ctx.output("data.json").write_text(json.dumps({{"v": Doubler().apply(p.n)}}))


def plot(ctx, p):
    v = json.loads(ctx.input("base", "data.json").read_text())["v"]
    ctx.output("plot.svg").write_text(f"<svg>{{v}}</svg>")


def other(ctx, p):
    from {pkg} import lib

    ctx.output("other.svg").write_text(f"<svg>{{lib.Tripler().apply(p.n)}}</svg>")
{extra_def}

def make_nodes():
    params = {{"smoke": P(1), "quick": P(2), "full": P(3)}}
    return [
        Node("base", base, "artifact", params, ("data.json",)),
        Node("plot", plot, "figure", params, ("plot.svg",), deps=("base",), alt="a plot"),
        Node("other", other, "figure", params, ("other.svg",), alt="another plot"),
        {extra_node}
    ]
'''


@pytest.fixture
def project(fake_project):
    fake_project.write("lib.py", LIB)
    write_nodes(fake_project)
    return fake_project


def write_nodes(fake, extra_def: str = "", extra_node: str = "") -> None:
    fake.write("nodes.py", NODES.format(pkg=fake.name, extra_def=extra_def, extra_node=extra_node))


def build(fake, tmp_path, **options) -> tuple[Pipeline, list[str]]:
    """A fresh pipeline over the project as it is on disk, run once; returns what ran."""
    pipe = Pipeline(fake.registry(), cache_dir=tmp_path / "cache", root=tmp_path)
    options = {"profile": "smoke", "device": "cpu", "show_progress": False, **options}
    return pipe, sorted(pipe.run(RunOptions(**options)).ran)


def stale(fake, tmp_path) -> dict[str, str]:
    pipe = Pipeline(fake.registry(), cache_dir=tmp_path / "cache", root=tmp_path)
    return {s.node.name: s.reason for s in pipe.status("smoke") if not s.fresh}


def test_comment_docstring_and_formatting_edits_make_nothing_stale(project, tmp_path):
    build(project, tmp_path)
    project.write("lib.py", '''
        # A comment at the top.
        """The library's docstring, rewritten."""

        SCALE = 2  # how much to scale
        """An attribute docstring that mkdocstrings shows."""


        class Doubler:
            """Doubles its input; a longer docstring now."""

            def apply(self, x):
                # multiply
                return (x *
                        SCALE)


        class Tripler:
            """Newly documented."""
            def apply(self, x): return x * 3
        ''')
    assert stale(project, tmp_path) == {}
    assert build(project, tmp_path)[1] == []


def test_an_edit_inside_one_class_makes_only_the_nodes_reaching_it_stale(project, tmp_path):
    build(project, tmp_path)
    project.write("lib.py", LIB.replace("return x * 3", "return x * 3 + 1"))
    reasons = stale(project, tmp_path)
    assert set(reasons) == {"other"}
    # The reason names the class that changed, not only its module.
    assert reasons["other"] == f"code changed: {project.name}.lib:Tripler"
    assert build(project, tmp_path)[1] == ["other"]


def test_a_rerun_that_writes_the_same_bytes_leaves_dependents_fresh(project, tmp_path):
    build(project, tmp_path)
    # A different expression with the same value: base re-runs, writes the same bytes,
    # and plot (which reads them) does not re-run: early cut-off.
    project.write("lib.py", LIB.replace("return x * SCALE", "return SCALE * x"))
    assert set(stale(project, tmp_path)) == {"base", "plot"}  # plot waits on base
    assert build(project, tmp_path)[1] == ["base"]
    assert stale(project, tmp_path) == {}


def test_forcing_an_artifact_with_identical_outputs_reruns_no_dependent(project, tmp_path):
    pipe, _ = build(project, tmp_path)
    assert pipe.store.read_record("smoke", "base").reproducible is None  # not yet observed
    _, ran = build(project, tmp_path, only=("base",), force=True)
    assert ran == ["base"]
    assert pipe.store.read_record("smoke", "base").reproducible is True
    assert build(project, tmp_path)[1] == []


def test_adding_a_node_to_an_existing_module_makes_only_the_new_node_stale(project, tmp_path):
    build(project, tmp_path)
    write_nodes(
        project,
        extra_def='\n\ndef extra(ctx, p):\n    ctx.output("extra.svg").write_text("<svg/>")\n',
        extra_node='Node("extra", extra, "figure", params, ("extra.svg",), alt="new"),',
    )
    assert stale(project, tmp_path) == {"extra": "never built"}
    assert build(project, tmp_path)[1] == ["extra"]


def test_a_new_name_a_node_reaches_is_named_in_the_reason(project, tmp_path):
    build(project, tmp_path)
    project.write("lib.py", LIB + "\n\ndef offset():\n    return 0\n")
    assert stale(project, tmp_path) == {}  # defined but reached by no node
    project.write("lib.py", LIB.replace("return x * 3", "return x * 3 + offset()")
                  + "\n\ndef offset():\n    return 0\n")
    reasons = stale(project, tmp_path)
    assert reasons == {"other": f"code changed: {project.name}.lib:Tripler; "
                                f"now runs: {project.name}.lib:offset"}


# -- the real report ------------------------------------------------------------------------
def _modules() -> list[tuple[str, Path]]:
    package = ROOT / "genai_report"
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out.append((name, path))
    return out


class _EditDocstrings(ast.NodeTransformer):
    """Rewrite every docstring and bare string statement (what a docs edit does)."""

    def generic_visit(self, node):
        super().generic_visit(node)
        for stmt in getattr(node, "body", []) if isinstance(getattr(node, "body", None), list) else []:
            if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)):
                stmt.value.value += "\n\nEdited by a contributor."
        return node


@pytest.mark.parametrize("name,path", _modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_docstring_comment_or_layout_edit_changes_any_symbol_hash(name, path):
    source = path.read_text()
    tree = _EditDocstrings().visit(ast.parse(source))
    # ast.unparse drops every comment and re-lays out every line; docstrings are edited.
    edited = "# A new comment.\n" + ast.unparse(tree)
    assert edited != source
    is_package = path.name == "__init__.py"
    before = closure.symbol_hashes(closure.parse_module(name, source, is_package=is_package))
    after = closure.symbol_hashes(closure.parse_module(name, edited, is_package=is_package))
    assert before == after


def test_every_node_keys_on_its_context_and_seeding_but_not_the_scheduler():
    for node in load_registry():
        code = dict(keys.code_closure(node))
        assert "genai_report.pipeline.context:seed_everything" in code, node.name
        assert "genai_report.pipeline.context:NodeContext" in code, node.name
        assert not any(
            entry.startswith(("genai_report.pipeline.runner", "genai_report.pipeline.store",
                              "genai_report.pipeline.keys", "genai_report.mkdocs_plugin",
                              "genai_report.cli"))
            for entry in code), node.name


def test_nodes_that_share_a_module_do_not_share_code_they_do_not_run():
    reg = load_registry()
    classifier = {e.split(":")[1] for e, _ in keys.code_closure(reg.get("digits-classifier"))
                  if e.startswith("genai_report.artifacts.digits_models:")}
    assert "digits_classifier" in classifier
    assert not classifier & {"digits_gan", "digits_vae", "digits_pixelcnn"}
    vae = {e.split(":")[0] for e, _ in keys.code_closure(reg.get("digits-classifier"))}
    assert "genai_report.models.vae" not in vae
