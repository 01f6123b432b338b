"""The competition metric and what a reader needs to trust it: per-task ROC AUC and their mean,
bootstrap confidence intervals, and sensitivity/specificity at two operating points.

A task whose labels hold one class has no ROC AUC: it is reported as None (undefined), and so is
the competition mean, rather than a crash, a silent 0.5 or a NaN. Where some tasks are defined,
the mean over those is shown too, always with the tasks it was taken over (`mean_text`): fit.py's
table and evaluate.py's report say it the same way.
"""

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def auc_or_none(y, score):
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else None


def mean_or_none(values):
    return None if any(v is None for v in values) else float(np.mean(values))


UNDEFINED = "undefined (one class)"


def auc_text(value):
    return UNDEFINED if value is None else f"{value:.3f}"


def mean_text(aucs):
    """How the mean of {task: AUC or None} reads: '0.812' over every task; otherwise 'undefined',
    followed by the mean over the defined tasks, named ('undefined; 0.700 over abnormal, meniscus')."""
    defined = {t: v for t, v in aucs.items() if v is not None}
    if len(defined) == len(aucs):
        return f"{np.mean(list(aucs.values())):.3f}"
    if not defined:
        return "undefined"
    return f"undefined; {np.mean(list(defined.values())):.3f} over {', '.join(defined)}"


def bootstrap(y, scores, n=2000, seed=0, level=0.95):
    """Percentile intervals for each task's AUC and for their mean, resampling exams.

    Resamples in which a task has one class are skipped for that task (and for the mean).
    """
    rng = np.random.default_rng(seed)
    tasks = y.shape[1]
    draws = np.full((n, tasks), np.nan)
    for b in range(n):
        idx = rng.integers(0, len(y), len(y))
        for t in range(tasks):
            yt = y[idx, t]
            if 0 < yt.sum() < len(yt):
                draws[b, t] = roc_auc_score(yt, scores[idx, t])
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100

    def interval(column):
        column = column[~np.isnan(column)]
        return [float(np.percentile(column, lo)), float(np.percentile(column, hi))] if len(column) else None

    means = draws.mean(axis=1)  # NaN where any task was undefined in that resample
    return [interval(draws[:, t]) for t in range(tasks)], interval(means)


def operating_point(y, score, threshold):
    pred = score >= threshold
    pos, neg = y == 1, y == 0
    return {"threshold": float(threshold),
            "sensitivity": float(pred[pos].mean()) if pos.any() else None,
            "specificity": float((~pred[neg]).mean()) if neg.any() else None}


def youden_threshold(y, score):
    """The threshold that maximises sensitivity + specificity - 1 on these labels (optimistic here)."""
    fpr, tpr, thresholds = roc_curve(y, score)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def evaluate(y, scores, tasks, n_boot=2000, seed=0):
    """Everything evaluate.py prints and writes, as one JSON-ready dict."""
    y, scores = np.asarray(y, int), np.asarray(scores, float)
    per_task_ci, mean_ci = bootstrap(y, scores, n_boot, seed)
    out = {"n_exams": int(len(y)), "bootstrap": {"resamples": n_boot, "seed": seed, "level": 0.95}, "tasks": {}}
    for t, task in enumerate(tasks):
        auc = auc_or_none(y[:, t], scores[:, t])
        entry = {"auc": auc, "auc_ci95": per_task_ci[t] if auc is not None else None,
                 "positives": int(y[:, t].sum()), "negatives": int((1 - y[:, t]).sum()),
                 "at_0.5": operating_point(y[:, t], scores[:, t], 0.5)}
        if auc is None:
            entry["note"] = "undefined: the labels hold a single class"
        else:
            entry["at_youden"] = operating_point(y[:, t], scores[:, t], youden_threshold(y[:, t], scores[:, t]))
        out["tasks"][task] = entry
    aucs = [out["tasks"][t]["auc"] for t in tasks]
    out["mean_auc"] = mean_or_none(aucs)
    out["mean_auc_ci95"] = mean_ci if out["mean_auc"] is not None else None
    out["mean_text"] = mean_text({t: out["tasks"][t]["auc"] for t in tasks})
    return out
