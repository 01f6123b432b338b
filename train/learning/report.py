"""The end-of-training report: validation AUCs per plane and task, and the training curves."""

import csv

import numpy as np
from sklearn.metrics import roc_auc_score

from mrnet.contract import TASKS


def auc(y, score):
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")


def auc_table(plane_logits, combined, labels):
    """{split: {row: {task: auc, 'mean': ...}}} with one row per plane and one for the combination."""
    table = {}
    for split, y in labels.items():
        rows = {plane: out for plane, out in plane_logits[split].items()}
        rows["combined"] = combined[split]
        table[split] = {}
        for row, scores in rows.items():
            aucs = {task: auc(y[:, t], scores[:, t]) for t, task in enumerate(TASKS)}
            aucs["mean"] = float(np.nanmean(list(aucs.values())))
            table[split][row] = aucs
    return table


def print_table(table):
    notes = {"fit": "seen in training", "tune": "seen by model selection and the combiner",
             "valid": "held out: nothing was fit or selected on it"}
    for split in ("valid", "tune"):
        print(f"\nROC AUC on {split} ({notes[split]})")
        print(f"{'':10s}" + "".join(f"{t:>10s}" for t in (*TASKS, "mean")))
        for row, aucs in table[split].items():
            print(f"{row:10s}" + "".join(f"{aucs[t]:10.3f}" for t in (*TASKS, "mean")))


def plot_curves(run_dir, planes, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for plane in planes:
        path = run_dir / plane / "history.csv"
        if not path.is_file():
            continue
        rows = list(csv.DictReader(path.open()))
        epochs = np.arange(1, len(rows) + 1)
        for ax, key in zip(axes, ("loss", "auc")):
            ax.plot(epochs, [float(r[key]) for r in rows], label=f"{plane} fit")
            ax.plot(epochs, [float(r["val_" + key]) for r in rows], "--", label=f"{plane} tune")
    axes[0].set(title="weighted BCE loss", xlabel="epoch")
    axes[1].set(title="mean ROC AUC (3 tasks)", xlabel="epoch", ylim=(0.4, 1.0))
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
