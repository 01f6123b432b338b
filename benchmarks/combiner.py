"""The plane combiner against each plane alone and against the old combiner, on held-out exams.

    python benchmarks/combiner.py runs/latest runs/seed1 ...     # run folders of train/fit.py
    python benchmarks/combiner.py runs/x --data-dir D --seed 1 --tune-fraction 0.2   # no split in report.json
    python benchmarks/combiner.py --synthetic                    # no fit needed: drawn logits, 8 seeds
    python benchmarks/combiner.py --synthetic --seeds 0 1 2 --tune 226 --valid 120

A run folder holds `<plane>/logits.npz` ('fit', 'tune', 'valid' logits, each in its split's exam
order) and `report.json`, where fit.py records the data folder, --seed and --tune-fraction; the
labels come from that data folder split as fit.py split it (learning/pipeline.split). Flags fill
in (and override) what report.json does not say.

--synthetic draws logits like the default phantom's case on which the old combiner loses the
abnormal task, one draw per --seeds: 49 tuning and 80 validation exams (fit.py's default split of the
phantom); labels with MRNet's joint frequencies (81 % abnormal, tears only in abnormal exams, so
the ACL logits correlate with abnormal); the ACL logits have 20 times the abnormal ones' spread and
separate their task almost perfectly; the abnormal logits separate moderately (sagittal best,
axial weakest) and already rank the exams with a tear high. When the old combiner's CV picks a
small C, the L2 penalty on raw logits leaves the largest-variance features in charge and its
abnormal score becomes an ACL detector (ADVERSARIAL and draw_logits below; tests/test_combine.py
uses them too).

For each run and task it prints the valid ROC AUC of each plane alone, of the old combiner (a
logistic regression over the nine raw logits, C by 5-fold CV AUC: the baseline learning/combine.py
is measured against) and of the new one (learning/combine.py) with its choice,
then per task each combiner's AUC minus the best single plane's (best on valid: a bar no
combiner could know), and the mean of those over the runs. Runs made before fit.py recorded its
split in report.json need --data-dir, --seed and --tune-fraction.

Measured, `--synthetic` (8 seeds, 49 + 80 exams; 6 s), combined minus best plane on valid, old /
new: abnormal -0.075 / +0.015 (the old one 0.03-0.22 below the best plane in 6 of 8 draws, the
new one at most 0.005 below: the mean of 3 planes in 5 draws, sagittal alone in 3), ACL +0.001 /
+0.000, meniscus +0.029 / +0.003 (the new one at most 0.012 below). With 226 tuning exams
(`--tune 226 --valid 120`): abnormal +0.015 / +0.016, ACL +0.001 / +0.001, meniscus +0.022 / +0.014.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]

from learning.combine import fit_combiner  # noqa: E402
from mrnet import combiner as comb  # noqa: E402
from mrnet.contract import PLANES, TASKS  # noqa: E402

OLD_C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 11))


def old_combiner(plane_logits, labels, seed=0):
    """The baseline combiner: per task, LR over the nine raw logits, C by 5-fold CV AUC (the
    C with the best mean fold AUC, the smallest on a tie), refit on all exams with it. The same
    folds and objective as its scikit-learn code (StratifiedKFold, LogisticRegression), solved by
    learning.combine.logistic (tests/test_combine.py checks it against scikit-learn's), 20 times
    faster."""
    from sklearn.model_selection import StratifiedKFold

    from learning.combine import auc, logistic

    x, labels = comb.features(plane_logits), np.asarray(labels)
    tasks = {}
    for t, task in enumerate(TASKS):
        y = labels[:, t].astype(int)
        if len(np.unique(y)) < 2:
            tasks[task] = {"coef": [1 / 3 if f.endswith(":" + task) else 0.0 for f in comb.FEATURES], "intercept": 0.0}
            continue
        folds = min(5, int(min(np.bincount(y))))
        c = 1.0
        if folds >= 2:
            splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
            scores = []
            for c in OLD_C_GRID:
                fits = [logistic(x[train], y[train], c) for train, _ in splits]
                scores.append(np.mean([auc(y[test], x[test] @ w + b) for (_, test), (w, b) in zip(splits, fits)]))
            c = OLD_C_GRID[int(np.argmax(scores))]
        w, b = logistic(x, y, c)
        tasks[task] = {"coef": [float(v) for v in w], "intercept": b, "C": c}
    return {"features": comb.FEATURES, "tasks": tasks}


# MRNet's training split (phantom/findings.py, CONTRACT.md): exams per (abnormal, acl, meniscus)
JOINT = {(1, 1, 1): 125, (1, 1, 0): 83, (1, 0, 1): 272, (1, 0, 0): 433, (0, 0, 0): 217}


def draw_labels(rng, n):
    """(n, 3) labels with MRNet's joint frequencies: tears only in abnormal exams, half of which have none."""
    combos = np.array(list(JOINT))
    p = np.array(list(JOINT.values()), float)
    return combos[rng.choice(len(combos), size=n, p=p / p.sum())]


# per plane and task: (separation, in sd of the noise, of the task's positives; the logit's spread),
# and for abnormal a third number: the extra separation of the abnormal exams with a tear (a
# network sees a tear as abnormal: its abnormal logit already carries what the tear logits add).
# The ACL logits have 20 times the abnormal ones' spread, and correlate with abnormal.
ADVERSARIAL = {"sagittal": {"abnormal": (1.2, 0.5, 2.0), "acl": (4.0, 10.0), "meniscus": (2.5, 1.5)},
               "coronal": {"abnormal": (0.8, 0.5, 1.5), "acl": (3.5, 10.0), "meniscus": (1.5, 1.5)},
               "axial": {"abnormal": (0.5, 0.5, 1.0), "acl": (3.5, 10.0), "meniscus": (1.0, 1.5)}}


def draw_logits(rng, labels, design=ADVERSARIAL):
    """{plane: (n, 3) logits}: each task's logit is spread * (separation * label [+ extra * tear] + noise)."""
    tear = labels[:, 1] | labels[:, 2]
    out = {}
    for plane in PLANES:
        columns = []
        for t, task in enumerate(TASKS):
            sep, spread, *extra = design[plane][task]
            signal = sep * labels[:, t] + (extra[0] * tear if extra else 0.0)
            columns.append(spread * (signal + rng.normal(size=len(labels))))
        out[plane] = np.stack(columns, axis=1)
    return out


def synthetic_runs(seeds, n_tune, n_valid):
    for seed in seeds:
        rng = np.random.default_rng(seed)
        y_tune, y_valid = draw_labels(rng, n_tune), draw_labels(rng, n_valid)
        yield (f"synthetic seed {seed}", seed, draw_logits(rng, y_tune), y_tune, draw_logits(rng, y_valid), y_valid)


def recorded_split(folder, args):
    """(data folder, seed, tune fraction, {split: label frame}) of a fit.py run folder, as report.json
    records them (flags in `args` fill in and override), split as fit.py split it."""
    from learning.pipeline import split
    from mrnet.layout import read_labels

    folder = Path(folder)
    report = folder / "report.json"
    recorded = json.loads(report.read_text()).get("split", {}) if report.is_file() else {}
    data_dir = args.data_dir or recorded.get("data_dir")
    seed = args.seed if args.seed is not None else recorded.get("seed")
    fraction = args.tune_fraction if args.tune_fraction is not None else recorded.get("tune_fraction")
    if data_dir is None or seed is None or fraction is None:
        sys.exit(f"combiner: {folder}: report.json does not say the data folder, seed and tune fraction; "
                 "give --data-dir, --seed and --tune-fraction")
    splits, _ = split(read_labels(Path(data_dir)), fraction, seed)
    return Path(data_dir), seed, fraction, splits


def folder_run(folder, args, ensemble=1):
    """(name, seed, tune logits, tune labels, valid logits, valid labels) of one fit.py run folder;
    with ensemble N, each plane's logits are the mean of its first N members' (as the bundle's)."""
    from fit import members

    folder = Path(folder)
    data_dir, seed, fraction, splits = recorded_split(folder, args)
    saved = {plane: [np.load(folder / unit / "logits.npz", allow_pickle=False) for unit in members(plane, ensemble)]
             for plane in PLANES}
    out = []
    for name in ("tune", "valid"):
        logits = {plane: np.mean([s[name] for s in saved[plane]], axis=0) for plane in PLANES}
        y = splits[name][list(TASKS)].values
        if any(len(v) != len(y) for v in logits.values()):
            sys.exit(f"combiner: {folder}: {name} logits do not match the split of {data_dir} "
                     f"(seed {seed}, tune fraction {fraction}); check the flags")
        out += [logits, y]
    return (str(folder), seed, *out)


def auc(y, score):
    from scoring.metrics import auc_or_none

    return auc_or_none(y, score)


def evaluate(name, seed, tune_x, tune_y, valid_x, valid_y):
    """{task: {plane: AUC, 'old', 'new', 'choice', 'best plane'}} on valid, printed."""
    old = comb.apply(old_combiner(tune_x, tune_y, seed), valid_x)
    new_combiner = fit_combiner(tune_x, tune_y, fit_on="tune", seed=seed)
    new = comb.apply(new_combiner, valid_x)
    print(f"\n{name}: {len(tune_y)} tuning, {len(valid_y)} validation exams; valid ROC AUC")
    print(f"{'':10s}" + "".join(f"{p:>9s}" for p in PLANES) + f"{'old':>8s}{'new':>8s}  new's choice; "
          "combined minus best plane: old, new")
    out = {}
    for t, task in enumerate(TASKS):
        row = {p: auc(valid_y[:, t], valid_x[p][:, t]) for p in PLANES}
        row.update(old=auc(valid_y[:, t], old[:, t]), new=auc(valid_y[:, t], new[:, t]),
                   choice=new_combiner["tasks"][task]["choice_text"])
        if any(row[p] is None for p in PLANES):
            print(f"{task:10s} undefined (one class in valid)")
            continue
        row["best plane"] = max(row[p] for p in PLANES)
        out[task] = row
        print(f"{task:10s}" + "".join(f"{row[p]:9.3f}" for p in PLANES) + f"{row['old']:8.3f}{row['new']:8.3f}  "
              f"{row['choice']}; {row['old'] - row['best plane']:+.3f}, {row['new'] - row['best plane']:+.3f}")
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path, help="run folders of train/fit.py")
    ap.add_argument("--synthetic", action="store_true", help="drawn logits (see above) instead of run folders")
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(8)), help="--synthetic: (%(default)s)")
    ap.add_argument("--tune", type=int, default=49, help="--synthetic: tuning exams (%(default)s)")
    ap.add_argument("--valid", type=int, default=80, help="--synthetic: validation exams (%(default)s)")
    ap.add_argument("--data-dir", help="run folders: the data folder fit.py read (default: report.json's)")
    ap.add_argument("--seed", type=int, help="run folders: fit.py's --seed (default: report.json's)")
    ap.add_argument("--tune-fraction", type=float,
                    help="run folders: fit.py's --tune-fraction (default: report.json's)")
    args = ap.parse_args(argv)
    if bool(args.runs) == args.synthetic:
        ap.error("give run folders or --synthetic")
    return args


def main(argv=None):
    args = parse_args(argv)
    runs = synthetic_runs(args.seeds, args.tune, args.valid) if args.synthetic else (
        folder_run(f, args) for f in args.runs)
    results = [evaluate(*run) for run in runs]
    print("\ncombined minus best single plane on valid, mean over the runs (runs where the task is defined):")
    for task in TASKS:
        rows = [r[task] for r in results if task in r]
        if rows:
            old = np.mean([r["old"] - r["best plane"] for r in rows])
            new = np.mean([r["new"] - r["best plane"] for r in rows])
            print(f"  {task:10s} old {old:+.3f}  new {new:+.3f}  ({len(rows)} runs)")
    return results


if __name__ == "__main__":
    main()
