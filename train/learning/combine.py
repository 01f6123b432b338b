"""Fit the plane combiner and store it as JSON (applied by submission/mrnet/combiner.py, numpy only).

The tuning part is small (about 50 exams on the phantom, about 226 on the real data), so a learnt
combination of nine logits can be noise. Per task, four candidates, the one that can fall least
below the best plane first:

  single  the task's own logit of one plane: the plane with the best AUC on all the tuning exams
  mean    the mean of the task's own three plane logits, each standardised
  lr3     logistic regression over the task's own three standardised plane logits
  lr9     logistic regression over all nine standardised plane logits

`single` comes first: by construction it is a plane, so choosing it can cost no more than picking
the wrong plane, where the mean of a good plane and two weak ones falls below the good one (the
v6 phantom's coronal meniscus logit is at chance). Inside the CV its plane is chosen again on each
fold's training exams, so its CV AUC includes the choice; the final plane is chosen on all tuning
exams.

A logistic regression is a candidate only with at least EVENTS_PER_COEFFICIENT exams of the
minority class per coefficient (30 for lr3, 90 for lr9; the events-per-variable rule of clinical
prediction models, Peduzzi 1996). On the v6 phantom's 49 tuning exams (8 normal ones) the CV put
LR over nine first for abnormal (0.90) and meniscus (0.91); on valid they scored 0.65 and 0.74,
below sagittal alone (0.70 and 0.81). The real data's 226 tuning exams allow lr3 for every task
and lr9 for none.

Inputs are standardised with each feature's mean and sd on the tuning exams (without it the
largest-variance logits, the ACL ones, won every task at strong regularisation). LR uses a fixed
L2 strength, C = LR_C on standardised features (no inner search: cheap, and the penalty's weight
against the data's shrinks as the tuning set grows), fit by Newton's method to scikit-learn's
objective (lbfgs and its checks made the CV 50 times slower). Candidates are scored by repeated
stratified K-fold CV (K = 5, fewer when the minority class has fewer exams; REPEATS shuffles,
seeded): in every fold each candidate is fit on the training folds alone (standardisation
included) and scored by ROC AUC on the held-out fold; the first candidate in the order above whose
mean CV AUC is within one standard error of the best's is kept (SE: the sd of the fold AUCs over
sqrt(K), the SE of one K-fold estimate, which repeating does not shrink: the repeats re-use the
same exams). It is refit on all tuning exams, then passed through a one-dimensional logistic fit
(slope kept positive) so that its output is a probability with the chosen score's ranking and
AUC. Every candidate is linear, so the result is stored as 9 coefficients and an intercept on the
raw logits, which is all `mrnet.combiner.apply` reads; the JSON also records each candidate's CV
AUC (or why it was not a candidate), the choice and why, the standardisation and the CV design.

A task whose tuning labels hold one class, or whose minority class has fewer than 2 exams (no
2-fold CV), falls back to the plain mean of its three raw plane logits, with a note.
"""

import numpy as np
from scipy.special import expit
from scipy.stats import rankdata
from sklearn.model_selection import RepeatedStratifiedKFold

from mrnet.combiner import FEATURES, features
from mrnet.contract import PLANES, TASKS

CANDIDATES = ("single", "mean", "lr3", "lr9")  # the order of preference
COEFFICIENTS = {"lr3": 3, "lr9": 9}
EVENTS_PER_COEFFICIENT = 10  # minority-class exams per LR coefficient
FOLDS, REPEATS = 5, 10
LR_C = 1.0  # L2, on standardised features
CALIBRATION_C = 1.0  # the 1-D logistic fit, on the standardised score
MIN_SLOPE = 1e-3  # the calibration's slope where the fit gives none positive: ranking kept, output ~ the base rate
SD_FLOOR = 1e-12  # a constant logit (a plane that output one value) is centred, not divided by ~0


def auc(y, score):
    """ROC AUC (ties count half), as scikit-learn's roc_auc_score, without its per-call checks: the
    CV scores about 600 folds and candidates per task."""
    ranks = rankdata(score)
    positives = y == 1
    n1 = int(positives.sum())
    n0 = len(y) - n1
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def logistic(x, y, c):
    """(weights, intercept) of scikit-learn's LogisticRegression(C=c) (L2 on the weights, the
    intercept unpenalised) by Newton's method: a few 10 x 10 solves where lbfgs with its checks
    took 10 ms a fit. Both classes must be present."""
    x1 = np.column_stack([np.ones(len(x)), x])
    penalty = np.r_[0.0, np.full(x.shape[1], 1.0 / c)]
    theta = np.zeros(x1.shape[1])

    def objective(t):
        z = x1 @ t
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * t * t))

    current = objective(theta)
    for _ in range(100):
        p = expit(x1 @ theta)
        gradient = x1.T @ (p - y) + penalty * theta
        hessian = (x1 * (p * (1 - p))[:, None]).T @ x1 + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-12 * np.eye(len(theta)), gradient)
        size, trial = 1.0, objective(theta - step)
        while trial > current and size > 1e-8:  # backtracking: a full step can overshoot near separation
            size /= 2
            trial = objective(theta - size * step)
        if trial > current:
            break  # at the minimum to rounding
        theta, current = theta - size * step, trial
        if np.max(np.abs(size * step)) < 1e-10:
            break
    return theta[1:], float(theta[0])


def own_columns(task):
    """Indices in FEATURES of the task's own logit in each plane, in PLANES order."""
    return [FEATURES.index(f"{plane}:{task}") for plane in PLANES]


def describe(choice, task):
    """How a choice reads in fit.py's table and the manifest."""
    if choice == "mean":
        return "mean of 3 planes"
    if choice.startswith("single:"):
        return f"{choice.split(':', 1)[1]} plane"
    return {"lr3": "LR over 3 planes", "lr9": "LR over 9", "fallback": "mean of 3 planes (fallback)"}[choice]


def standardisation(x):
    mean, sd = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(sd > SD_FLOOR, sd, 1.0)


def fit_candidate(name, z, y, task):
    """(weights on the nine standardised features, intercept, the name with the plane for `single`)."""
    own = own_columns(task)
    w = np.zeros(len(FEATURES))
    if name == "mean":
        w[own] = 1 / 3
        return w, 0.0, name
    if name == "single":
        best = int(np.argmax([auc(y, z[:, j]) for j in own]))  # ties: the first plane in PLANES order
        w[own[best]] = 1.0
        return w, 0.0, f"single:{PLANES[best]}"
    columns = own if name == "lr3" else list(range(len(FEATURES)))
    w[columns], b = logistic(z[:, columns], y, LR_C)
    return w, b, name


def too_few(name, minority):
    """Why an LR candidate is left out for this many minority-class exams, or None."""
    need = EVENTS_PER_COEFFICIENT * COEFFICIENTS.get(name, 0)
    if minority < need:
        return (f"{minority} exams in the minority class, under {need} ({EVENTS_PER_COEFFICIENT} per "
                f"coefficient)")
    return None


def cross_validate(x, y, task, folds, seed):
    """{candidate: {'auc': mean, 'se': SE, 'folds': scored} or {'skipped': why}} by repeated
    stratified K-fold; for `single`, how often each plane was chosen."""
    minority = int(min(np.bincount(y, minlength=2)))
    skipped = {name: too_few(name, minority) for name in CANDIDATES}
    scores = {name: [] for name in CANDIDATES if not skipped[name]}
    picked = {plane: 0 for plane in PLANES}
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=REPEATS, random_state=seed)
    for train, test in cv.split(x, y):
        if len(np.unique(y[test])) < 2 or len(np.unique(y[train])) < 2:
            continue  # a held-out fold with one class has no AUC
        mean, sd = standardisation(x[train])
        z_train, z_test = (x[train] - mean) / sd, (x[test] - mean) / sd
        for name in scores:
            w, b, label = fit_candidate(name, z_train, y[train], task)
            scores[name].append(auc(y[test], z_test @ w + b))
            if name == "single":
                picked[label.split(":", 1)[1]] += 1
    out = {}
    for name in CANDIDATES:
        if skipped[name]:
            out[name] = {"skipped": skipped[name]}
            continue
        s = np.asarray(scores[name])
        out[name] = {"auc": float(s.mean()), "se": float(s.std(ddof=1) / np.sqrt(folds)) if len(s) > 1 else 0.0,
                     "folds": int(len(s))}
    out["single"]["planes_picked"] = picked
    return out


def choose(cv):
    """(candidate, why): the first candidate, in CANDIDATES order, within one SE of the best CV AUC."""
    scored = [n for n in CANDIDATES if "auc" in cv[n]]
    best = max(scored, key=lambda n: cv[n]["auc"])  # ties: the earlier
    bar = cv[best]["auc"] - cv[best]["se"]
    choice = next(n for n in scored if cv[n]["auc"] >= bar)
    best_text = f"{best} {cv[best]['auc']:.3f} +/- {cv[best]['se']:.3f}"
    if choice == best == CANDIDATES[0]:
        why = f"the first and the best, {best_text}"
    elif choice == best:
        why = f"the best, {best_text}; no earlier candidate within 1 SE (>= {bar:.3f})"
    else:
        why = f"first within 1 SE of the best, {best_text}; {choice} {cv[choice]['auc']:.3f}"
    left_out = [n for n in CANDIDATES if n not in scored]
    if left_out:
        why += f"; {', '.join(left_out)} left out: {cv[left_out[0]]['skipped']}"
    return choice, why


def calibrate(score, y):
    """(slope, intercept) of a 1-D logistic fit of the labels on the score, slope > 0, and a note or None."""
    centre, scale = float(score.mean()), float(score.std())
    scale = scale if scale > SD_FLOOR else 1.0
    (a,), c = logistic(((score - centre) / scale)[:, None], y, CALIBRATION_C)
    a = float(a)
    note = None
    if a < MIN_SLOPE:
        a, c = MIN_SLOPE, float(np.log(y.mean() / (1 - y.mean())))
        note = "the calibration found no positive slope; a tiny one keeps the score's ranking"
    return a / scale, c - a * centre / scale, note


def fallback(task, note):
    coef = [1 / 3 if f.endswith(":" + task) else 0.0 for f in FEATURES]
    return {"coef": coef, "intercept": 0.0, "choice": "fallback", "choice_text": describe("fallback", task),
            "note": note}


def fit_task(x, y, task, mean, sd, seed):
    minority = int(min(np.bincount(y, minlength=2)))
    if minority == 0:
        return fallback(task, "single-class labels; plane average")
    folds = min(FOLDS, minority)
    if folds < 2:
        return fallback(task, f"{minority} exam in the minority class, too few for 2-fold CV; plane average")
    cv = cross_validate(x, y, task, folds, seed)
    name, why = choose(cv)
    z = (x - mean) / sd
    w, b, choice = fit_candidate(name, z, y, task)
    slope, offset, note = calibrate(z @ w + b, y)
    # fold standardisation and calibration into coefficients on the raw logits
    coef = slope * w / sd
    intercept = slope * (b - float(np.sum(w * mean / sd))) + offset
    entry = {"coef": [float(v) for v in coef], "intercept": float(intercept), "choice": choice,
             "choice_text": describe(choice, task), "why": why, "cv": {"folds": folds, "repeats": REPEATS},
             "candidates": cv, "score": {"coef": [float(v) for v in w], "intercept": float(b),
                                         "on": "standardised features"},
             "calibration": {"slope": float(slope), "intercept": float(offset), "on": "score"}}
    if note:
        entry["note"] = note
    return entry


def fit_combiner(plane_logits, labels, fit_on, seed=0):
    """The combiner JSON (a plain dict) from {plane: (B, 3) tuning logits} and (B, 3) labels."""
    x, labels = features(plane_logits), np.asarray(labels)
    mean, sd = standardisation(x)
    tasks = {task: fit_task(x, labels[:, t].astype(int), task, mean, sd, seed) for t, task in enumerate(TASKS)}
    return {"kind": "per task, the first of single plane / mean / LR over 3 / LR over 9 (standardised plane "
                    "logits; LR with enough minority-class exams) within 1 SE of the best repeated-CV AUC, through "
                    "a 1-D logistic calibration; stored as coefficients on the raw logits",
            "features": FEATURES, "fit_on": fit_on, "n_exams": int(len(labels)),
            "standardisation": {"mean": [float(v) for v in mean], "sd": [float(v) for v in sd]},
            "cv": {"design": "repeated stratified K-fold", "folds": FOLDS, "repeats": REPEATS, "seed": int(seed),
                   "folds_rule": f"K = min({FOLDS}, minority-class exams); under 2: the plain mean",
                   "score": "ROC AUC on the held-out fold (a fold with one class is skipped)",
                   "se": "sd of the fold AUCs / sqrt(K)", "rule": "first in candidates' order within 1 SE of the best",
                   "candidates": list(CANDIDATES),
                   "lr_needs": f"{EVENTS_PER_COEFFICIENT} minority-class exams per coefficient",
                   "single": "the plane with the best AUC on the exams it is fit on (chosen again in every fold)",
                   "lr": {"penalty": "l2", "C": LR_C, "on": "standardised features",
                          "objective": "scikit-learn's LogisticRegression"},
                   "calibration": {"kind": "1-D logistic, slope > 0", "C": CALIBRATION_C}},
            "tasks": tasks}


def choices(combiner):
    """{task: how its choice reads}, for fit.py's table and the manifest."""
    return {task: combiner["tasks"][task].get("choice_text", "LR over 9") for task in TASKS}
