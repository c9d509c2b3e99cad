"""Small but real generative models, one family per module."""
