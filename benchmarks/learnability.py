"""Does the training recipe learn from exam labels on data it was not tuned on? The ladder, side by side.

    python benchmarks/learnability.py            # full: 240 + 80 exams per dataset, about an hour on 2 cores
    python benchmarks/learnability.py --quick    # 96 + 48 exams, 4 epochs, one seed: minutes, for iterating

Datasets: the default phantom (rung v3, anatomical style), the faintest rung (v2-like tears), and
the second rendering style (phantom/anatomy.py, render.py); `--datasets` picks. Recipes, each a
real `python train/fit.py` run (its own process, its own bundle):
  default    fit.py's defaults
  reference  a peer-style batch-of-one recipe: one exam per batch (--batch-slices 1), max over
             slices, average pooling over space; one model per plane and the same logistic
             regression over planes, as every public MRNet submission does it
Inits (`--inits`): `none` trains from random weights; `synthetic` starts from train/pretrain.py's
weights, pretrained on a randomised corpus of the *other* drawing of the knee only (leave one style
out: the anatomical datasets get a geometric-only corpus and the reverse), never on the evaluated
exams (the corpus has its own seed). Pretraining runs once per left-out style; its time is printed.
The default recipe runs with every seed of --seeds on the default phantom (its spread), the rest
with the first seed. Each row: combined valid AUC per task and mean (80 held-out exams), wall time
of fit.py, and the top-1 decisive-slice hit rate of the sagittal model for ACL and meniscal tears
(phantom truth; chance in brackets). Rows print as they finish; --out keeps them as JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]

DATASETS = {"v3": {}, "subtle": {"rung": "subtle"}, "faint": {"rung": "faint"}, "geometric": {"style": "geometric"},
            "faint-geometric": {"rung": "faint", "style": "geometric"}}
INITS = {"none": [], "synthetic": [], "synthetic-frozen": ["--freeze-epochs", "4"]}
RECIPES = {"default": [], "reference": ["--batch-slices", "1", "--pooling", "max", "--space-pool", "avg"]}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="96 + 48 exams, 4 epochs, seed 0 only")
    ap.add_argument("--datasets", nargs="+", default=["v3", "faint", "geometric"], choices=list(DATASETS))
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--inits", nargs="+", default=["none", "synthetic"], choices=list(INITS),
                    help="fit.py --init per row; synthetic pretrains on the other style only; synthetic-frozen "
                         "also holds the pretrained backbone still for the first 4 epochs (%(default)s)")
    ap.add_argument("--train-exams", type=int, nargs="+",
                    help="the data-size axis: phantoms with N training exams each and 120 validation exams "
                         "(the real split sizes: 1130 + 120); default: the default phantom's 240 + 80")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "learnability.json",
                    help="rows as JSON; the trade-off figure (mean AUC against fit time) goes beside it as .png")
    ap.add_argument("--replot", action="store_true", help="only redraw the figure from an existing --out")
    return ap.parse_args(argv)


def plot(rows, out):
    """Mean valid AUC against fit.py's wall time: one marker per run, a colour per dataset."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(dict.fromkeys((r["dataset"], r.get("train_exams", 240)) for r in rows))
    for i, (name, exams) in enumerate(names):
        for recipe, init, marker in (("default", "none", "o"), ("reference", "none", "s"), ("default", "synthetic", "^"),
                                     ("default", "synthetic-frozen", "v")):
            mine = [r for r in rows if (r["dataset"], r.get("train_exams", 240)) == (name, exams)
                    and r["recipe"] == recipe and r.get("init", "none") == init and r["mean"] is not None]
            if mine:
                ax.scatter([r["seconds"] / 60 for r in mine], [r["mean"] for r in mine], marker=marker, color=f"C{i}",
                           label=f"{name} ({exams} exams), {recipe}" + (f", {init} init" if init != "none" else ""))
    ax.axhline(0.95, ls=":", color="grey")
    ax.text(ax.get_xlim()[0], 0.952, " target 0.95 (default phantom)", fontsize=7, color="grey")
    ax.set(xlabel="fit.py wall time (minutes, 2 CPU cores)", ylabel="combined valid mean AUC", ylim=(0.4, 1.0),
           title="learnability: recipes on the ladder and the second style")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def dataset(name, quick, train_exams=None):
    from phantom.findings import RUNGS
    from phantom.writer import default_phantom

    spec = DATASETS[name]
    scale, contrast = RUNGS[spec.get("rung", "v3")]
    size = dict(n_train=96, n_valid=48) if quick else dict(n_train=train_exams, n_valid=120) if train_exams else {}
    return default_phantom(progress=False, lesion_scale=scale, lesion_contrast=contrast,
                           style=spec.get("style", "anatomical"), **size)


def pretrained_without(style, quick, cache={}):
    """pretrain.py's folder for a corpus of the other style only: (folder, seconds it took)."""
    other = {"anatomical": "geometric", "geometric": "anatomical"}[style]
    out = ROOT / "runs" / f"pretrained-{other}-only{'-quick' if quick else ''}"
    if other not in cache and (out / "manifest.json").is_file():
        # an earlier run's corpus of exactly that style: reused (fit.py checks its model shape and sha256)
        if json.loads((out / "manifest.json").read_text())["corpus"]["styles"] == [other]:
            cache[other] = (out, 0.0)
            print(f"pretrained on the {other} style only: reusing {out}", flush=True)
    if other not in cache:
        cmd = [sys.executable, str(ROOT / "train" / "pretrain.py"), "--out", str(out), "--corpus-styles", other,
               "--quiet"] + (["--corpus-exams", "60", "--epochs", "2"] if quick else [])
        start = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if result.returncode != 0:
            raise SystemExit(f"learnability: pretrain.py failed ({other}):\n{result.stderr[-3000:]}")
        cache[other] = (out, time.perf_counter() - start)
        print(f"pretrained on the {other} style only: {out} in {cache[other][1]:.0f} s; held-out slice AUC "
              f"{json.loads((out / 'manifest.json').read_text())['held_out_slice_auc']}", flush=True)
    return cache[other]


def run_fit(data_dir, recipe, seed, quick, work, init="none", folder="none"):
    """One fit.py run in its own process: (its manifest, seconds)."""
    flags = RECIPES[recipe] + (["--epochs", "4", "--patience", "4"] if quick else []) + ["--init", str(folder)]
    freeze = INITS[init]
    flags += freeze[:1] + ["1"] if quick and freeze else freeze
    cmd = [sys.executable, str(ROOT / "train" / "fit.py"), "--data-dir", str(data_dir), "--seed", str(seed),
           "--run-dir", str(work / "run"), "--bundle", str(work / "bundle"), "--quiet", *flags]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"learnability: fit.py failed ({recipe}, seed {seed}):\n{result.stderr[-3000:]}")
    return json.loads((work / "bundle" / "manifest.json").read_text()), seconds


def hit_rate(bundle, data_dir, task, finding):
    from mrnet.infer import load_bundle
    from scoring.explanations import hit_rates

    rates, n = hit_rates(load_bundle(bundle)[2], data_dir, ks=(1,), task=task, finding=finding)
    return {"hit": rates[1][0], "chance": rates[1][1], "exams": n}


def row_text(r):
    auc = r["valid_auc"]
    cells = " ".join(f"{auc[t]:.3f}" if auc[t] is not None else "  -  " for t in ("abnormal", "acl", "meniscus"))
    hits = " ".join(f"{h['hit']:.2f} ({h['chance']:.2f})" for h in (r["hit_acl"], r["hit_meniscus"]))
    return (f"{r['dataset']:16s}{r.get('train_exams', 240):>6d}  {r['recipe']:10s}{r.get('init', 'none'):17s}"
            f"{r['seed']:>4d}  {cells}  {r['mean_text']:>7s}"
            f"{r['seconds']:>8.0f}  {hits}")


def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    if args.replot:
        plot(json.loads(args.out.read_text())["rows"], args.out.with_suffix(".png"))
        return
    seeds = args.seeds[:1] if args.quick else args.seeds
    print(f"learnability: {'quick' if args.quick else 'full'}; {os.cpu_count()} CPU cores; datasets "
          f"{', '.join(args.datasets)}; recipes {', '.join(args.recipes)}", flush=True)
    print(f"{'dataset':16s}{'exams':>6s}  {'recipe':10s}{'init':17s}{'seed':>4s}  abn.  ACL   men.      mean  fit (s)  "
          f"hit@1 ACL, meniscus (chance)", flush=True)
    rows = []
    for name, exams in [(n, e) for n in args.datasets for e in (args.train_exams or [None])]:
        data_dir = dataset(name, args.quick, exams)
        n_train = len(np.loadtxt(data_dir / "train-abnormal.csv", delimiter=",", ndmin=2))
        for recipe, init in [(r, i) for r in args.recipes for i in args.inits if r == "default" or i == "none"]:
            folder = "none"
            if init != "none":
                folder, _ = pretrained_without(DATASETS[name].get("style", "anatomical"), args.quick)
            spread = name == "v3" and recipe == "default" and init == "none" and exams is None
            for seed in (seeds if spread else seeds[:1]):
                with tempfile.TemporaryDirectory(prefix="mrnet-learnability-") as work:
                    manifest, seconds = run_fit(data_dir, recipe, seed, args.quick, Path(work), init, folder)
                    combined = manifest["metrics"]["valid_auc"]["combined"]
                    row = {"dataset": name, "train_exams": n_train, "size_axis": exams is not None, "recipe": recipe, "init": init, "seed": seed, "seconds": seconds,
                           "valid_auc": {t: combined[t] for t in ("abnormal", "acl", "meniscus")},
                           "mean": combined["mean"], "mean_text": combined["mean_text"],
                           "hit_acl": hit_rate(Path(work) / "bundle", data_dir, "acl", "ACL tear"),
                           "hit_meniscus": hit_rate(Path(work) / "bundle", data_dir, "meniscus", "meniscal tear")}
                rows.append(row)
                print(row_text(row), flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"quick": args.quick, "rows": rows}, indent=1))
    plot(rows, args.out.with_suffix(".png"))
    spread = [r["mean"] for r in rows if r["dataset"] == "v3" and r["recipe"] == "default" and r["mean"] is not None
              and r.get("init", "none") == "none" and not r.get("size_axis")]
    if len(spread) > 1:
        print(f"\ndefault recipe on the default phantom over {len(spread)} seeds: mean AUC "
              f"{np.mean(spread):.3f} +/- {np.std(spread, ddof=1):.3f} (min {min(spread):.3f}, max {max(spread):.3f})")


if __name__ == "__main__":
    main()
