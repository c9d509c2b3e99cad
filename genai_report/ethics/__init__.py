"""Measurable faces of the ethics chapter: text watermarking and verbatim memorization."""
