"""Data sets that ship with the project or its dependencies; nothing is downloaded."""
