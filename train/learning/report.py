"""The end-of-training report: validation AUCs per plane and task, and the training curves."""

import csv

import numpy as np

from mrnet.contract import TASKS


def auc_table(plane_logits, combined, labels):
    """{split: {row: {task: AUC or None, 'mean': competition mean or None, 'mean_text': str}}}, one row
    per plane and one for the combination. A task whose labels hold one class in a split is None
    there (scoring.metrics: undefined), and so is the mean; mean_text names what it was taken over."""
    from scoring.metrics import auc_or_none, mean_or_none, mean_text

    table = {}
    for split, y in labels.items():
        rows = {plane: out for plane, out in plane_logits[split].items()}
        rows["combined"] = combined[split]
        table[split] = {}
        for row, scores in rows.items():
            aucs = {task: auc_or_none(y[:, t], scores[:, t]) for t, task in enumerate(TASKS)}
            table[split][row] = {**aucs, "mean": mean_or_none(list(aucs.values())), "mean_text": mean_text(aucs)}
    return table


def combiner_line(combiner):
    """'combined: abnormal mean of 3 planes, acl sagittal plane, meniscus LR over 9': what each task got."""
    from learning.combine import choices

    return "combined: " + ", ".join(f"{task} {text}" for task, text in choices(combiner).items())


def print_table(table, combiner=None):
    """Cells read as evaluate.py reads them: 'undefined (one class)', and a mean that names its tasks;
    with the combiner, a line under the valid table saying which combination each task got."""
    from scoring.metrics import auc_text

    notes = {"fit": "seen in training", "tune": "seen by model selection and the combiner",
             "valid": "held out: nothing was fit or selected on it"}
    for split in ("valid", "tune"):
        rows = table[split]
        width = max(10, *(len(auc_text(r[t])) + 2 for r in rows.values() for t in TASKS))
        print(f"\nROC AUC on {split} ({notes[split]})")
        print(f"{'':10s}" + "".join(f"{t:>{width}s}" for t in TASKS) + "  mean")
        for row, aucs in rows.items():
            print(f"{row:10s}" + "".join(f"{auc_text(aucs[t]):>{width}s}" for t in TASKS) + f"  {aucs['mean_text']}")
        if split == "valid" and combiner is not None:
            print(combiner_line(combiner))


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
