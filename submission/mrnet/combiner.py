"""The plane combiner as plain JSON: per task, a linear score of the nine plane logits through a sigmoid.

Whatever train/learning/combine.py chose for a task (the mean of its planes, one plane, a logistic
regression over three or nine logits; standardisation and calibration folded in), it is stored as
nine coefficients and an intercept on the raw logits: all that `apply` reads and `validate`
checks. The rest of the JSON (candidates' CV AUCs, the choice and why) is the record. Prediction
applies it with numpy alone; fitting (scikit-learn) lives in train/. No pickle.
"""

import numpy as np

from mrnet.contract import PLANES, TASKS

FEATURES = [f"{plane}:{task}" for plane in PLANES for task in TASKS]


def features(plane_logits):
    """{plane: (B, 3) logits} -> (B, 9) in FEATURES order."""
    return np.concatenate([np.asarray(plane_logits[p], np.float64) for p in PLANES], axis=1)


def apply(combiner, plane_logits):
    """(B, 3) probabilities, tasks in TASKS order."""
    x = features(plane_logits)
    out = []
    for task in TASKS:
        coef = np.asarray(combiner["tasks"][task]["coef"], np.float64)
        z = x @ coef + float(combiner["tasks"][task]["intercept"])
        out.append(1.0 / (1.0 + np.exp(-z)))
    return np.stack(out, axis=1)


def validate(combiner):
    """Reason the JSON is not a usable combiner, or None."""
    try:
        if combiner["features"] != FEATURES:
            return f"combiner features {combiner['features']} are not {FEATURES}"
        for task in TASKS:
            coef = np.asarray(combiner["tasks"][task]["coef"], np.float64)
            if coef.shape != (len(FEATURES),) or not np.all(np.isfinite(coef)):
                return f"combiner coefficients for {task} are malformed"
            if not np.isfinite(float(combiner["tasks"][task]["intercept"])):
                return f"combiner intercept for {task} is not finite"
    except (KeyError, TypeError, ValueError) as e:
        return f"combiner malformed ({e})"
    return None
