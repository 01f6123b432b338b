"""Fit the plane combiner with scikit-learn and store it as JSON (see submission/mrnet/combiner.py).

Nine features on a tuning part of about a hundred exams overfit easily (a plane that learned
nothing still gets weight), so each task's regularisation strength is chosen by 5-fold
cross-validated ROC AUC on the same tuning part, then the model is refit there with it.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from mrnet.combiner import FEATURES, features
from mrnet.contract import TASKS

C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 11))


def choose_c(x, y, seed=0):
    folds = min(5, int(min(np.bincount(y))))
    if folds < 2:
        return 1.0, None
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = [cross_val_score(LogisticRegression(C=c, max_iter=1000), x, y, cv=cv, scoring="roc_auc").mean()
              for c in C_GRID]
    best = int(np.argmax(scores))
    return C_GRID[best], float(scores[best])


def fit_combiner(plane_logits, labels, fit_on, seed=0):
    x, labels = features(plane_logits), np.asarray(labels)
    tasks = {}
    for t, task in enumerate(TASKS):
        y = labels[:, t].astype(int)
        if len(np.unique(y)) < 2:  # a task with one class: fall back to the mean of its plane logits
            coef = [1 / 3 if f.endswith(":" + task) else 0.0 for f in FEATURES]
            tasks[task] = {"coef": coef, "intercept": 0.0, "note": "single-class labels; plane average"}
            continue
        c, cv_auc = choose_c(x, y, seed)
        lr = LogisticRegression(C=c, max_iter=1000).fit(x, y)
        tasks[task] = {"coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0]), "C": c,
                       "cv_auc": cv_auc}
    return {"kind": "logistic regression per task over plane logits, C by 5-fold CV AUC", "features": FEATURES,
            "fit_on": fit_on, "n_exams": int(len(labels)), "C_grid": list(C_GRID), "tasks": tasks}
