"""The MkDocs plugin: a thin adapter that runs the figure pipeline before each build and
renders the report's Markdown forms (figures, metrics, citations, maths)."""
