"""Training loops shared by the models."""
