"""Shared artifacts: trained models and prepared data sets that figures depend on.

Each is a pipeline node (:func:`genai_report.pipeline.artifact`) trained once per profile and
cached. They live apart from the figures so that restyling a plot never retrains a model.
Modules here must not import torch at module level (import it inside the node function).
"""
