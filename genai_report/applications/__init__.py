"""Helpers of the "Applications, measured" demonstrations, built on the models' public APIs."""
