"""The evaluation figures: ROC curves with their bootstrap intervals, and calibration."""

import os


def save_figure(fig, path):
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def plot_roc(y, scores, metrics, tasks, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    for t, task in enumerate(tasks):
        m = metrics["tasks"][task]
        if m["auc"] is None:
            ax.plot([], [], label=f"{task}: undefined (one class)")
            continue
        fpr, tpr, _ = roc_curve(y[:, t], scores[:, t])
        lo, hi = m["auc_ci95"]
        ax.plot(fpr, tpr, label=f"{task}: AUC {m['auc']:.3f} [{lo:.3f}, {hi:.3f}]")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    mean = metrics["mean_auc"]
    ax.set(xlabel="1 - specificity", ylabel="sensitivity",
           title=f"ROC, mean AUC {mean:.3f}" if mean is not None else "ROC, mean AUC undefined")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_calibration(y, scores, tasks, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 5))
    bins = np.linspace(0, 1, 11)
    for t, task in enumerate(tasks):
        which = np.clip(np.digitize(scores[:, t], bins) - 1, 0, 9)
        xs, ys, ns = [], [], []
        for b in range(10):
            sel = which == b
            if sel.any():
                xs.append(scores[sel, t].mean())
                ys.append(y[sel, t].mean())
                ns.append(sel.sum())
        ax.plot(xs, ys, "o-", label=task)
        for x, yy, n in zip(xs, ys, ns):
            ax.annotate(str(n), (x, yy), fontsize=6, alpha=0.6, xytext=(2, 2), textcoords="offset points")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    ax.set(xlabel="predicted probability (10 bins; exams per bin annotated)", ylabel="observed frequency",
           title="calibration", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
