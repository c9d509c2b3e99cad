"""genai-report: the code behind every figure, sample and number of the report.

The package is a small library (``data``, ``models``, ``training``, ``metrics``,
``plotting``) and its consumers: the figure definitions in ``figures``, the pipeline
that runs them (``pipeline``), the command line (``cli``) and the MkDocs adapter
(``mkdocs_plugin``).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
