"""Synthetic knee MRI in the exact MRNet-v1.0 layout: the project's embedded default dataset."""
