"""Does the training recipe learn from exam labels on data it was not tuned on? The ladder, side by side.

    python benchmarks/learnability.py                        # every recipe on v3 (3 seeds), faint, geometric
    python benchmarks/learnability.py --quick                # 96 + 48 exams, 4 epochs, one seed: minutes
    python benchmarks/learnability.py --datasets v3 --recipes crops-truth --placement-errors 0 2 4 8
    python benchmarks/learnability.py --datasets v3 --recipes crops --seeds 0 --train-exams 240 600 1130

Datasets: the default phantom (rung v3, anatomical style), the faintest rung (v2-like tears), and
the second rendering style (phantom/anatomy.py, render.py); `--datasets` picks. Recipes, each a
real `python train/fit.py` run (its own process, its own bundle):
  whole-slice  the whole-slice recipe (fit.py --no-crops): the 64 px CNN over every slice
  crops        fit.py --crops: windows around the ACL and menisci, placed by a localiser trained on
               a corpus of the OTHER style only (leave one style out), never on evaluated exams
  crops-truth  fit.py --crops --localiser truth: windows at the phantom's true anatomy, the ceiling;
               the gap to `crops` is the cost of the localiser's error
  reference    a peer-style batch-of-one whole-slice recipe (one exam per batch, max over slices,
               average pooling over space), as public MRNet submissions train
Inits (`--inits`): `auto` (the default) as fit.py's default, `synthetic` for a crop recipe and
`none` for a whole-slice one; `none` from random weights; `synthetic` from pretrain.py's weights (the crop CNN on
window labels with --crops, the whole model on slice labels without), pretrained on a corpus of the
other style only; `synthetic-frozen` also holds the pretrained network still for 4 epochs.
`--placement-errors` adds rows that move every exam's windows by a random offset of that sd (px at
256, held per exam): the robustness curve. `--train-exams` is the data-size axis.

Each row: combined valid AUC per task and mean (held-out exams), fit.py's wall time, the top-1
decisive-slice hit rate of the sagittal model for ACL and meniscal tears, and for crop models the
decisive window's hit rate (phantom truth; chance in brackets), the exams that fell back to the
whole slice, and the valid mean with test-time flips per plane (the combiner as trained). Every
localiser's precision on the evaluated dataset (a style it never saw) is printed when it is made.
Rows print as they finish; --out keeps them as JSON.
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
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow

DATASETS = {"v3": {}, "subtle": {"rung": "subtle"}, "faint": {"rung": "faint"}, "geometric": {"style": "geometric"},
            "faint-geometric": {"rung": "faint", "style": "geometric"}}
RECIPES = {"whole-slice": ["--no-crops"], "crops": ["--crops"], "crops-truth": ["--crops", "--localiser", "truth"],
           "reference": ["--no-crops", "--batch-slices", "1", "--pooling", "max", "--space-pool", "avg"]}
INITS = {"auto": [], "none": [], "synthetic": [], "synthetic-frozen": ["--freeze-epochs", "4"]}
OTHER = {"anatomical": "geometric", "geometric": "anatomical"}
# test-time flips: which plane's slices are mirrored (columns reversed) or turned upside down (rows)
FLIPS = {"none": {}, "coronal lr": {"coronal": "lr"}, "axial lr": {"axial": "lr"},
         "coronal+axial lr": {"coronal": "lr", "axial": "lr"}, "sagittal lr (impossible knee)": {"sagittal": "lr"},
         "all ud (impossible knee)": {"sagittal": "ud", "coronal": "ud", "axial": "ud"}}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="96 + 48 exams, 4 epochs, seed 0 only")
    ap.add_argument("--datasets", nargs="+", default=["v3", "faint", "geometric"], choices=list(DATASETS))
    ap.add_argument("--recipes", nargs="+", default=["whole-slice", "crops", "crops-truth"], choices=list(RECIPES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="every seed on the default phantom with --inits' first init; the first elsewhere")
    ap.add_argument("--inits", nargs="+", default=["auto"], choices=list(INITS),
                    help="fit.py --init per row; synthetic pretrains on the other style only; auto: as fit.py's "
                         "default (synthetic for a crop recipe, none for a whole-slice one) (%(default)s)")
    ap.add_argument("--placement-errors", type=float, nargs="*", default=[],
                    help="extra rows of every crop recipe on the first dataset, seed 0, with this much error (px)")
    ap.add_argument("--train-exams", type=int, nargs="+",
                    help="the data-size axis: phantoms with N training exams each and 120 validation exams "
                         "(the real split sizes: 1130 + 120); default: the default phantom's 240 + 80")
    ap.add_argument("--fit-flags", nargs=argparse.REMAINDER, default=[],
                    help="anything else for every fit.py run (last on the line), e.g. --epochs 12")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "learnability.json",
                    help="rows as JSON; the trade-off figure (mean AUC against fit time) goes beside it as .png")
    ap.add_argument("--replot", action="store_true", help="only redraw the figure from an existing --out")
    return ap.parse_args(argv)


def plot(rows, out):
    """Mean valid AUC against fit.py's wall time: one marker per run, a colour per dataset."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"whole-slice": "o", "reference": "s", "crops": "^", "crops-truth": "*"}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    names = list(dict.fromkeys((r["dataset"], r["train_exams"]) for r in rows))
    for i, (name, exams) in enumerate(names):
        for recipe, marker in markers.items():
            for init in INITS:
                mine = [r for r in rows if (r["dataset"], r["train_exams"]) == (name, exams) and r["recipe"] == recipe
                        and r["init"] == init and r["mean"] is not None and not r["placement_error"]]
                if mine:
                    ax.scatter([r["seconds"] / 60 for r in mine], [r["mean"] for r in mine], marker=marker,
                               color=f"C{i}", alpha=1.0 if init == "none" else 0.5,
                               label=f"{name} ({exams}), {recipe}" + (f", {init}" if init != "none" else ""))
    ax.axhline(0.93, ls=":", color="grey")
    ax.text(ax.get_xlim()[0], 0.932, " target 0.93 (default phantom, mean of 3 seeds)", fontsize=7, color="grey")
    ax.set(xlabel="fit.py wall time (minutes, 2 CPU cores)", ylabel="combined valid mean AUC", ylim=(0.4, 1.0),
           title="learnability: recipes on the ladder and the second style")
    ax.legend(fontsize=6, loc="lower right")
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


def artefact(command, style, quick, extra=(), cache={}):
    """localise.py's or pretrain.py's folder trained on a corpus of `style` only, made once (reused
    from an earlier run when its manifest records exactly the recipe this run asks for, corpus
    included: learning/artefacts.recipe_of): (folder, seconds it took)."""
    from learning.artefacts import matches, recipe_of
    from learning.recipe import LocaliseConfig, PretrainConfig, parse

    key = (command, style, tuple(extra))
    if key in cache:
        return cache[key]
    name = command.removesuffix(".py") + "-" + "-".join(a.strip("-") for a in extra) + f"-{style}-only"
    out = ROOT / "runs" / (name.replace("--", "-") + ("-quick" if quick else ""))
    # one style's corpus of about the default corpus's size over both styles (learning/artefacts.py)
    size = ["--corpus-exams", "60", "--epochs", "2"] if quick else ["--corpus-exams", "200"]
    flags = ["--out", str(out), "--corpus-styles", style, "--quiet", *extra, *size]
    config = parse(LocaliseConfig if command == "localise.py" else PretrainConfig, None, flags)
    if matches(out, recipe_of(config)):
        cache[key] = (out, 0.0)
        print(f"{command} on the {style} style only: reusing {out}", flush=True)
        return cache[key]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "train" / command), *flags], capture_output=True, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:
        raise SystemExit(f"learnability: {command} failed ({style}):\n{result.stderr[-3000:]}")
    cache[key] = (out, time.perf_counter() - start)
    print(f"{command} on the {style} style only: {out} in {cache[key][1]:.0f} s", flush=True)
    return cache[key]


def localiser_precision(folder, data_dir):
    """{plane: precision on the dataset's valid split} of a localiser folder (learning/localiser.py)."""
    from mrnet.runtime import import_tensorflow

    import_tensorflow()
    from learning.localiser import load_anatomy_slices, load_localiser, locate, precision

    out = {}
    for plane in ("sagittal", "coronal", "axial"):
        slices, targets, exams = load_anatomy_slices([data_dir], plane, "valid")
        out[plane] = precision(*locate(load_localiser(folder, plane), slices), targets, exams)
    return out


def precision_text(measured):
    from learning.localiser import precision_text as text

    return "; ".join(f"{plane}: {text(places)}" for plane, places in measured.items())


def run_fit(data_dir, recipe, seed, quick, work, flags):
    """One fit.py run in its own process: (its report.json, seconds)."""
    quick_flags = ["--epochs", "4", "--patience", "4"] if quick else []
    cmd = [sys.executable, str(ROOT / "train" / "fit.py"), "--data-dir", str(data_dir), "--seed", str(seed),
           "--run-dir", str(work / "run"), "--bundle", str(work / "bundle"), "--quiet", *RECIPES[recipe],
           *quick_flags, *flags]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"learnability: fit.py failed ({recipe}, seed {seed}):\n{result.stderr[-3000:]}")
    return json.loads((work / "run" / "report.json").read_text()), seconds


def hit_rate(models, data_dir, task, finding):
    from scoring.explanations import hit_rates

    rates, n = hit_rates(models, data_dir, ks=(1,), task=task, finding=finding)
    out = {"hit": rates[1][0], "chance": rates[1][1], "exams": n}
    if "window" in rates:
        out["window"] = {"hit": rates["window"][0], "chance": rates["window"][1], "exams": rates["window"][2]}
    return out


def flipped_means(bundle, models, data_dir):
    """{flip: combined valid mean AUC} with each of FLIPS applied at test time (the bundle's combiner)."""
    import numpy as np
    import tensorflow as tf

    from mrnet.combiner import apply
    from mrnet.contract import PLANES, TASKS
    from mrnet.layout import read_labels, series_path
    from scoring.metrics import auc_or_none, mean_or_none

    combiner = json.loads((bundle / "combiner.json").read_text())
    valid = read_labels(data_dir).loc["valid"]
    y = valid[list(TASKS)].values
    series = {p: [np.load(series_path(data_dir, "valid", p, c), allow_pickle=False) for c in valid.index] for p in PLANES}

    def logits(plane, how=None):
        out = []
        for s in series[plane]:
            s = s[:, :, ::-1] if how == "lr" else s[:, ::-1, :] if how == "ud" else s
            out.append(models[plane].serve(slices=tf.constant(np.ascontiguousarray(s)),
                                           counts=tf.constant([len(s)], tf.int32))["logits"].numpy()[0])
        return np.array(out)

    plain = {p: logits(p) for p in PLANES}
    result = {}
    for name, flips in FLIPS.items():
        per_plane = {p: (plain[p] + logits(p, flips[p])) / 2 if p in flips else plain[p] for p in PLANES}
        scores = apply(combiner, per_plane)
        result[name] = mean_or_none([auc_or_none(y[:, t], scores[:, t]) for t in range(len(TASKS))])
    return result


def row_text(r):
    auc = r["valid_auc"]
    cells = " ".join(f"{auc[t]:.3f}" if auc[t] is not None else "  -  " for t in ("abnormal", "acl", "meniscus"))
    hits = " ".join(f"{h['hit']:.2f} ({h['chance']:.2f})" for h in (r["hit_acl"], r["hit_meniscus"]) if h) or "-"
    windows = " ".join(f"{h['window']['hit']:.2f} ({h['window']['chance']:.2f})"
                       for h in (r["hit_acl"], r["hit_meniscus"]) if h and "window" in h) or "-"
    error = f"+{r['placement_error']:g}px" if r["placement_error"] else ""
    return (f"{r['dataset']:10s}{r['train_exams']:>6d}  {r['recipe'] + error:18s}{r['init']:17s}{r['seed']:>4d}  "
            f"{cells}  {r['mean_text']:>7s}{r['seconds']:>7.0f}  {hits:24s}  {windows:24s}  {r['fell_back']}")


def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    if args.replot:
        plot(json.loads(args.out.read_text())["rows"], args.out.with_suffix(".png"))
        return
    seeds = args.seeds[:1] if args.quick else args.seeds
    print(f"learnability: {'quick' if args.quick else 'full'}; {os.cpu_count()} CPU cores; datasets "
          f"{', '.join(args.datasets)}; recipes {', '.join(args.recipes)}; inits {', '.join(args.inits)}", flush=True)
    print(f"{'dataset':10s}{'exams':>6s}  {'recipe':18s}{'init':17s}{'seed':>4s}  abn.  ACL   men.      mean  fit (s)  "
          f"{'slice hit@1 ACL, men.':24s}  {'window hit@1 ACL, men.':24s}  fell back (valid exams)", flush=True)
    rows = []
    runs = [(n, e, r, i, err) for n in args.datasets for e in (args.train_exams or [None]) for r in args.recipes
            for i in args.inits if r != "reference" or i in ("none", "auto") for err in [0.0]]
    runs += [(args.datasets[0], None, r, args.inits[0], err) for r in args.recipes if r.startswith("crops")
             for err in args.placement_errors if err]
    for name, exams, recipe, init, error in runs:
        data_dir = dataset(name, args.quick, exams)
        style = DATASETS[name].get("style", "anatomical")
        flags = list(args.fit_flags)
        if recipe == "crops":
            folder, _ = artefact("localise.py", OTHER[style], args.quick)
            flags += ["--localiser", str(folder)]
            if not any(r["dataset"] == name and r["recipe"] == "crops" for r in rows):
                print(f"  localiser trained on {OTHER[style]} only, on {name}: "
                      f"{precision_text(localiser_precision(folder, data_dir))}", flush=True)
        used = init if init != "auto" else "synthetic" if recipe.startswith("crops") else "none"
        if used == "none":
            flags += ["--init", "none"]
        else:
            extra = ["--crops"] if recipe.startswith("crops") else []
            folder, _ = artefact("pretrain.py", OTHER[style], args.quick, extra)
            flags += ["--init", str(folder), *INITS[used][:1], *(["1"] if args.quick and INITS[used] else INITS[used][1:])]
        if error:
            flags += ["--placement-error", str(error)]
        spread = name == "v3" and init == args.inits[0] and exams is None and not error and recipe != "reference"
        for seed in (seeds if spread else seeds[:1]):
            with tempfile.TemporaryDirectory(prefix="mrnet-learnability-") as work:
                report, seconds = run_fit(data_dir, recipe, seed, args.quick, Path(work), flags)
                combined = report["auc"]["valid"]["combined"]
                bundle = Path(work) / "bundle"
                models = None
                if (bundle / "manifest.json").is_file():
                    from mrnet.infer import load_bundle

                    models = load_bundle(bundle)[2]
                n_train = len(np.loadtxt(data_dir / "train-abnormal.csv", delimiter=",", ndmin=2))
                row = {"dataset": name, "train_exams": n_train, "size_axis": exams is not None, "recipe": recipe,
                       "init": used, "asked": init, "seed": seed, "placement_error": error, "seconds": seconds,
                       "valid_auc": {t: combined[t] for t in ("abnormal", "acl", "meniscus")},
                       "mean": combined["mean"], "mean_text": combined["mean_text"],
                       "planes": {p: report["auc"]["valid"][p]["mean"] for p in ("sagittal", "coronal", "axial")},
                       "fell_back": {p: s["valid"]["fell_back"] for p, s in (report["localised"] or {}).items()},
                       "hit_acl": models and hit_rate(models, data_dir, "acl", "ACL tear"),
                       "hit_meniscus": models and hit_rate(models, data_dir, "meniscus", "meniscal tear"),
                       "tta": models and flipped_means(bundle, models, data_dir)}
            rows.append(row)
            print(row_text(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"quick": args.quick, "rows": rows}, indent=1))
    plot(rows, args.out.with_suffix(".png"))
    for recipe in args.recipes:
        spread = [r["mean"] for r in rows if r["dataset"] == "v3" and r["recipe"] == recipe and r["mean"] is not None
                  and r.get("asked", r["init"]) == args.inits[0] and not r["size_axis"] and not r["placement_error"]]
        if len(spread) > 1:
            print(f"\n{recipe} on the default phantom over {len(spread)} seeds: mean AUC {np.mean(spread):.3f} "
                  f"+/- {np.std(spread, ddof=1):.3f} (min {min(spread):.3f}, max {max(spread):.3f})")
    tta = [r["tta"] for r in rows if r["tta"]]
    if tta:
        print("\ntest-time flips, combined valid mean AUC minus none's, mean over the runs with a bundle:")
        for flip in FLIPS:
            print(f"  {flip:32s} {np.mean([t[flip] - t['none'] for t in tta if t[flip] is not None]):+.4f}")


if __name__ == "__main__":
    main()
