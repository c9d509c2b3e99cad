"""Figure definitions: consumers of the library, one module per report chapter or topic.

Every module here is imported by :func:`genai_report.pipeline.load_registry`. Modules must
not import torch or matplotlib at module level (import them inside node functions), so that
`genai-report list` and a no-op build stay fast.
"""
