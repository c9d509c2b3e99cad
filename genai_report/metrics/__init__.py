"""Metrics: likelihoods, sample-quality distances, text scores."""
