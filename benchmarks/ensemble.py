"""An ensemble of N models per plane against one model: valid ROC AUC per plane and combined, and time.

    python benchmarks/ensemble.py --seeds 1 2 --ensemble 3      # fit.py --ensemble 3 --seed S, one run per seed
    python benchmarks/ensemble.py runs/ensemble3-seed1 ... [--single runs/latest]   # runs made already

`fit.py --ensemble N --seed S` trains members S .. S+N-1 on the run's split and the bundle averages
their logits. Member 0 is trained as a plain `fit.py --seed S` trains its model (same seed, split
and data), so one ensemble run holds both sides: member 0's logits are one model's, the members'
mean is the ensemble's. Each side gets its own combiner (learning/combine.py) fit on the tuning
exams and is scored on valid with scoring/metrics.py. Time: each ensemble run's wall time, beside a
plain run's (`--single RUN`: its report.json's seconds; phantom and artefacts already cached in
both). About 25 min per seed at N = 3 on 2 cores (the default phantom, 240 + 80 exams).

Measured (2 cores, phantom v6, shipped localiser and crop CNN): see docs/experiments.md.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "train"), str(ROOT / "submission")]

from combiner import folder_run  # noqa: E402  (benchmarks/combiner.py: a run folder's logits and labels)
from fit import members  # noqa: E402
from learning.combine import choices, fit_combiner  # noqa: E402
from mrnet import combiner as comb  # noqa: E402
from mrnet.contract import PLANES, TASKS  # noqa: E402
from scoring.metrics import auc_or_none  # noqa: E402


def run_fit(seed, ensemble, run_dir):
    """fit.py --ensemble N --seed S into run_dir (its bundle into a temporary folder): wall seconds."""
    with tempfile.TemporaryDirectory() as bundle:
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "train" / "fit.py"), "--quiet", "--seed", str(seed),
                        "--ensemble", str(ensemble), "--run-dir", str(run_dir), "--bundle", str(Path(bundle) / "b")],
                       check=True)
        return time.perf_counter() - start


def scores(tune_x, tune_y, valid_x, valid_y, seed):
    """{task: {plane: AUC, 'combined': AUC, 'choice': text}} on valid."""
    combiner = fit_combiner(tune_x, tune_y, fit_on="tune", seed=seed)
    combined = comb.apply(combiner, valid_x)
    text = choices(combiner)
    return {task: {**{p: auc_or_none(valid_y[:, t], valid_x[p][:, t]) for p in PLANES},
                   "combined": auc_or_none(valid_y[:, t], combined[:, t]), "choice": text[task]}
            for t, task in enumerate(TASKS)}


def compare(folder, seconds=None):
    """(one model's scores, the ensemble's, N, the run's seconds) of one fit.py --ensemble N folder."""
    folder = Path(folder)
    report = json.loads((folder / "report.json").read_text())
    n = sum((folder / unit / "logits.npz").is_file() for unit in members("sagittal", 64))
    if n < 2:
        sys.exit(f"ensemble: {folder} holds one model per plane; give a run of fit.py --ensemble N (N >= 2)")
    args = argparse.Namespace(data_dir=None, seed=None, tune_fraction=None)
    _, seed, tune_one, tune_y, valid_one, valid_y = folder_run(folder, args)
    _, _, tune_all, _, valid_all, _ = folder_run(folder, args, ensemble=n)
    return (scores(tune_one, tune_y, valid_one, valid_y, seed), scores(tune_all, tune_y, valid_all, valid_y, seed),
            n, seconds if seconds is not None else report.get("seconds"))


def fmt(v):
    return "  -  " if v is None else f"{v:.3f}"


def print_run(name, one, ens, n, seconds, single_seconds):
    took = f"{seconds:.0f} s" if seconds else "?"
    if single_seconds:
        took += f" (one model's run: {single_seconds:.0f} s, x{seconds / single_seconds:.1f})" if seconds else ""
    print(f"\n{name}: one model (member 0) against the mean of {n}; {took}")
    print(f"{'':10s}" + "".join(f"{p:>17s}" for p in (*PLANES, "combined")) + "   combiner (one / ensemble)")
    for task in TASKS:
        cells = "".join(f"   {fmt(one[task][p])} / {fmt(ens[task][p])}" for p in (*PLANES, "combined"))
        print(f"{task:10s}{cells}   {one[task]['choice']} / {ens[task]['choice']}")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path, help="run folders of fit.py --ensemble N")
    ap.add_argument("--seeds", nargs="+", type=int, help="run fit.py --ensemble N once per seed first")
    ap.add_argument("--ensemble", type=int, default=3, help="with --seeds: members per plane (%(default)s)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs", help="with --seeds: run folders go here (%(default)s)")
    ap.add_argument("--single", type=Path, help="a plain fit.py run folder whose time is the one-model time")
    args = ap.parse_args(argv)
    if not args.runs and not args.seeds:
        ap.error("give run folders or --seeds")
    if args.ensemble < 2:
        ap.error("--ensemble must be 2 or more")
    return args


def main(argv=None):
    args = parse_args(argv)
    timed = [(f, None) for f in args.runs]
    for seed in args.seeds or ():
        folder = args.out / f"ensemble{args.ensemble}-seed{seed}"
        timed.append((folder, run_fit(seed, args.ensemble, folder)))
    single_seconds = json.loads((args.single / "report.json").read_text())["seconds"] if args.single else None
    gains = {task: [] for task in TASKS}
    for folder, seconds in timed:
        one, ens, n, took = compare(folder, seconds)
        print_run(folder, one, ens, n, took, single_seconds)
        for task in TASKS:
            if one[task]["combined"] is not None and ens[task]["combined"] is not None:
                gains[task].append(ens[task]["combined"] - one[task]["combined"])
    print("\nensemble minus one model, combined valid AUC, mean over the runs:")
    for task in TASKS:
        print(f"  {task:10s} {np.mean(gains[task]):+.3f}  ({len(gains[task])} runs)" if gains[task] else
              f"  {task:10s} undefined")
    mean_gain = [np.mean([gains[t][i] for t in TASKS]) for i in range(len(timed)) if all(len(gains[t]) > i for t in TASKS)]
    if mean_gain:
        print(f"  mean AUC   {np.mean(mean_gain):+.3f}  (per run: {', '.join(f'{g:+.3f}' for g in mean_gain)})")


if __name__ == "__main__":
    main()
