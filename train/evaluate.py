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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow


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


def print_report(metrics, tasks):
    """One row per task; an undefined AUC reads 'undefined (one class)' and its other cells '-'."""
    from scoring.metrics import auc_text

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    print(f"{metrics['n_exams']} exams; 95% intervals from {metrics['bootstrap']['resamples']} bootstrap resamples")
    print(f"{'task':10s}{'AUC':>22s}{'95% CI':>18s}{'sens@0.5':>10s}{'spec@0.5':>10s}"
          f"{'Youden t':>10s}{'sens':>7s}{'spec':>7s}")
    for task in tasks:
        m = metrics["tasks"][task]
        ci = "" if m["auc_ci95"] is None else ci_text(m["auc_ci95"])
        y = m.get("at_youden") or {"threshold": None, "sensitivity": None, "specificity": None}
        print(f"{task:10s}{auc_text(m['auc']):>22s}{ci:>18s}{fmt(m['at_0.5']['sensitivity']):>10s}"
              f"{fmt(m['at_0.5']['specificity']):>10s}{fmt(y['threshold']):>10s}{fmt(y['sensitivity']):>7s}"
              f"{fmt(y['specificity']):>7s}")
    ci = metrics["mean_auc_ci95"]
    print(f"{'mean':10s}{metrics['mean_text']:>22s}" + (f"{ci_text(ci):>18s}" if ci else ""))


def ci_text(ci):
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def main(argv=None):
    args = parse_args(argv)
    from mrnet.contract import TASKS
    from mrnet.inputs import read_input
    from mrnet.problems import InputError
    from scoring.figures import plot_calibration, plot_roc
    from scoring.files import exam_labels, read_predictions
    from scoring.metrics import evaluate

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
