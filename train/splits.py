"""The fit / tune / valid split, one definition for fit.py and sweep.py.

`train` is divided at random (seeded) into a fitting part and a tuning part: early stopping, model
selection and the combiner see only the tuning part, so `valid` stays untouched.
"""

import numpy as np


def split(labels, tune_fraction, seed):
    """{name: label frame} and {name: the MRNet split its files are in}."""
    train, valid = labels.loc["train"], labels.loc["valid"]
    tune_mask = np.random.default_rng(seed).random(len(train)) < tune_fraction
    splits = {"fit": train[~tune_mask], "tune": train[tune_mask], "valid": valid}
    return splits, {"fit": "train", "tune": "train", "valid": "valid"}
