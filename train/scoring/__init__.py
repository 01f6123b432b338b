"""Scoring: the competition metric with its uncertainty, its figures, reading predictions and labels back, and whether explanations hit the lesion."""
