"""Tutorial notebooks, executed by the pipeline so the site shows their outputs.

Each notebook in ``tutorials/`` is a node whose output is the executed ``.ipynb``; the
MkDocs plugin serves it at ``tutorials/<name>.ipynb`` and mkdocs-jupyter renders it. The
notebook's bytes are in the key (``data=``); the library modules a notebook uses are
imported in the node function so that editing them re-runs the notebook too.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_report.pipeline import artifact


@dataclass(frozen=True)
class Notebook:
    """Execution settings.

    Attributes:
        cell_timeout: seconds allowed per cell.
        max_steps: above 0, the notebook's optimisation loops are cut to this many steps
            and a few more (:func:`~genai_report.notebooks.cap_steps`); a dry run sets it.
            The dry run's meter meters the notebook's kernel too.
    """

    cell_timeout: int = 900
    max_steps: int = 0


_PARAMS = {"smoke": Notebook(120), "quick": Notebook(), "full": Notebook(3600)}
_DRY_RUN = {"max_steps": 6}


@artifact(
    "tutorial-diffusion",
    params=_PARAMS,
    dry_run=_DRY_RUN,
    outputs=("diffusion-from-scratch.ipynb",),
    data=("tutorials/diffusion-from-scratch.ipynb",),
)
def diffusion_tutorial(ctx, p: Notebook):
    """Execute the "diffusion from scratch" tutorial."""
    import genai_report.data.toy2d  # noqa: F401  (used by the notebook; part of the key)
    from genai_report.notebooks import execute_notebook

    name = "diffusion-from-scratch.ipynb"
    cells = execute_notebook(ctx.root / "tutorials" / name, ctx.output(name),
                             profile=ctx.profile, device=ctx.device_kind,
                             timeout=p.cell_timeout, max_steps=p.max_steps)
    return {"code_cells": cells}


@artifact(
    "tutorial-tiny-gpt",
    params=_PARAMS,
    dry_run=_DRY_RUN,
    outputs=("tiny-gpt.ipynb",),
    data=("tutorials/tiny-gpt.ipynb", "genai_report/corpora/english.txt"),
)
def tiny_gpt_tutorial(ctx, p: Notebook):
    """Execute the "train a tiny GPT" tutorial."""
    import genai_report.data.text  # noqa: F401  (used by the notebook; part of the key)
    import genai_report.models.gpt  # noqa: F401
    import genai_report.training.loop  # noqa: F401
    from genai_report.notebooks import execute_notebook

    name = "tiny-gpt.ipynb"
    cells = execute_notebook(ctx.root / "tutorials" / name, ctx.output(name),
                             profile=ctx.profile, device=ctx.device_kind,
                             timeout=p.cell_timeout, max_steps=p.max_steps)
    return {"code_cells": cells}


@artifact(
    "tutorial-assistant",
    deps=("gpt-char",),
    params=_PARAMS,
    dry_run=_DRY_RUN,
    outputs=("assistant.ipynb",),
    data=("tutorials/assistant.ipynb",),
)
def assistant_tutorial(ctx, p: Notebook):
    """Execute the "from a pre-trained GPT to an assistant" tutorial on ``gpt-char``."""
    import genai_report.data.instructions  # noqa: F401  (used by the notebook; part of the key)
    import genai_report.training.finetune  # noqa: F401
    import genai_report.training.loop  # noqa: F401
    import genai_report.training.preference  # noqa: F401
    from genai_report.notebooks import _environ, execute_notebook

    name = "assistant.ipynb"
    with _environ(GENAI_REPORT_BASE_MODEL=str(ctx.input("gpt-char", "model.pt"))):
        cells = execute_notebook(ctx.root / "tutorials" / name, ctx.output(name),
                                 profile=ctx.profile, device=ctx.device_kind,
                                 timeout=p.cell_timeout, max_steps=p.max_steps)
    return {"code_cells": cells}
