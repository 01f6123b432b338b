"""Score a predictions file with the competition metric, with its uncertainty and two figures.

    python train/evaluate.py INPUT_CSV PREDICTIONS_CSV --labels-dir path/to/MRNet-v1.0

Reads exactly the files the contract defines (any team's predictions file works): INPUT_CSV groups
its .npy paths into exams (file stem, first appearance), PREDICTIONS_CSV holds one line per exam
(abnormal, ACL, meniscus), and the labels come from `<split>-<task>.csv` in --labels-dir, the split
being the folder above each plane folder (MRNet-v1.0/valid/axial/1130.npy -> valid).

Prints per-task ROC AUC and their mean (the leaderboard metric) with bootstrap 95% intervals, and
sensitivity/specificity at 0.5 and at the Youden point (chosen on these labels, so optimistic).
Writes metrics.json, roc.png and calibration.png to --out.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import _paths  # noqa: F401


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input_csv", type=Path)
    ap.add_argument("predictions_csv", type=Path)
    ap.add_argument("--labels-dir", type=Path, required=True, help="folder with <split>-<task>.csv label files")
    ap.add_argument("--split", help="label split to use for every exam (default: from each path)")
    ap.add_argument("--out", type=Path, help="folder for metrics.json and figures (default: beside PREDICTIONS_CSV)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="resamples for the intervals (%(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def read_predictions(path, n_exams):
    """(n, 3) probabilities; any malformed line stops with file:line and what is wrong."""
    import numpy as np

    rows = []
    lines = Path(path).read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, 1):
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            values = []
        if len(values) != 3 or not all(np.isfinite(values)):
            raise SystemExit(f"evaluate: {path}:{number}: {line!r} is not three numbers (abnormal,acl,meniscus)")
        rows.append(values)
    if len(rows) != n_exams:
        raise SystemExit(f"evaluate: {path}: {len(rows)} prediction lines for {n_exams} exams in the input list")
    return np.array(rows)


def exam_labels(exams, labels_dir, split_override):
    """Labels in exam order; every exam must be in the label files."""
    import numpy as np

    from mrnet.contract import TASKS
    from mrnet.layout import case_id, read_labels
    from mrnet.problems import InputError

    tables, rows = {}, []
    for exam in exams:
        first = next(iter(exam.series.values()))[0]
        split = split_override or Path(first).parent.parent.name
        if split not in tables:
            try:
                tables[split] = read_labels(labels_dir, (split,)).loc[split]
            except InputError as e:
                raise SystemExit(f"evaluate: {e}\n(pass --labels-dir, or --split when the paths do not name it)")
        table, case = tables[split], case_id(exam.key)
        if case not in table.index:
            raise SystemExit(f"evaluate: exam {exam.key} (input line {exam.line}) is not in the {split} labels "
                             f"in {labels_dir}")
        rows.append(table.loc[case, list(TASKS)].to_numpy(int))
    return np.array(rows)


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


def print_report(metrics, tasks):
    def fmt(v):
        return "undefined" if v is None else f"{v:.3f}"

    print(f"{metrics['n_exams']} exams; 95% intervals from {metrics['bootstrap']['resamples']} bootstrap resamples")
    print(f"{'task':10s}{'AUC':>10s}{'95% CI':>18s}{'sens@0.5':>10s}{'spec@0.5':>10s}"
          f"{'Youden t':>10s}{'sens':>7s}{'spec':>7s}")
    for task in tasks:
        m = metrics["tasks"][task]
        ci = "" if m["auc_ci95"] is None else f"[{m['auc_ci95'][0]:.3f}, {m['auc_ci95'][1]:.3f}]"
        y = m.get("at_youden") or {"threshold": None, "sensitivity": None, "specificity": None}
        print(f"{task:10s}{fmt(m['auc']):>10s}{ci:>18s}{fmt(m['at_0.5']['sensitivity']):>10s}"
              f"{fmt(m['at_0.5']['specificity']):>10s}{fmt(y['threshold']):>10s}{fmt(y['sensitivity']):>7s}"
              f"{fmt(y['specificity']):>7s}")
    ci = metrics["mean_auc_ci95"]
    print(f"{'mean':10s}{fmt(metrics['mean_auc']):>10s}" + (f"{'':>1s}[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))


def main(argv=None):
    args = parse_args(argv)
    from mrnet.contract import TASKS
    from mrnet.inputs import read_input
    from mrnet.problems import InputError
    from scoring import evaluate

    try:
        exams = read_input(args.input_csv, check_files=False)
    except InputError as e:
        sys.exit(f"evaluate: {e}")
    scores = read_predictions(args.predictions_csv, len(exams))
    y = exam_labels(exams, args.labels_dir, args.split)
    metrics = evaluate(y, scores, TASKS, args.bootstrap, args.seed)
    metrics["inputs"] = {"input_csv": str(args.input_csv), "predictions_csv": str(args.predictions_csv),
                         "labels_dir": str(args.labels_dir)}
    out = args.out or args.predictions_csv.parent / f"{args.predictions_csv.stem}-evaluation"
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=1))
    os.replace(tmp, out / "metrics.json")
    plot_roc(y, scores, metrics, TASKS, out / "roc.png")
    plot_calibration(y, scores, TASKS, out / "calibration.png")
    print_report(metrics, TASKS)
    print(f"wrote {out / 'metrics.json'}, {out / 'roc.png'}, {out / 'calibration.png'}")
    return metrics


if __name__ == "__main__":
    main()
