"""Shared MRNet code: everything both training and `predict.py` need, so `submission/` is self-contained."""
