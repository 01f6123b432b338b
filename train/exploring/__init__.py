"""Exploring a dataset: per-series statistics and suspicious-stack flags, the overview figure, the case viewer."""
