"""Fit the plane combiner with scikit-learn and store it as JSON (see submission/mrnet/combiner.py)."""

import numpy as np
from sklearn.linear_model import LogisticRegression

import _paths  # noqa: F401
from mrnet.combiner import FEATURES, features
from mrnet.contract import TASKS


def fit_combiner(plane_logits, labels, fit_on, C=1.0):
    x, labels = features(plane_logits), np.asarray(labels)
    tasks = {}
    for t, task in enumerate(TASKS):
        y = labels[:, t]
        if len(np.unique(y)) < 2:  # a task with one class: fall back to the mean of its plane logits
            coef = [1 / 3 if f.endswith(":" + task) else 0.0 for f in FEATURES]
            tasks[task] = {"coef": coef, "intercept": 0.0, "note": "single-class labels; plane average"}
            continue
        lr = LogisticRegression(C=C, max_iter=1000).fit(x, y)
        tasks[task] = {"coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0])}
    return {"kind": "logistic regression per task over plane logits", "features": FEATURES, "fit_on": fit_on,
            "n_exams": int(len(labels)), "C": C, "tasks": tasks}
