"""Compare training recipes for one plane on any Keras backend: how fast does tune AUC rise?

    KERAS_BACKEND=jax python train/sweep.py --plane sagittal --epochs 12 --grid lr=1e-3,3e-3 width=16,32

fit.py streams through tf.data and needs TensorFlow; this script holds one plane's series in
memory and feeds numpy batches, so it also runs under JAX on a GPU machine where TensorFlow is not
installed. Batches have static shapes (k exams plus one padding exam, slices rounded up to a
multiple of 32, padding weighted 0) so that a compiling backend builds a handful of programs, not
one per batch. Each recipe prints its tune AUC per epoch; --out writes them all as JSON.
"""

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow

from learning.recipe import MODEL_KEYS  # noqa: E402

ROUND = 32
GRID_KEYS = ("lr", "weight_decay", *(k for k in MODEL_KEYS if k not in ("backbone", "weights", "crops", "seed")))
SECTION = {"lr": "training", "weight_decay": "compute"}  # the rest are the model's


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom)")
    ap.add_argument("--plane", default="sagittal", choices=["sagittal", "coronal", "axial"])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--exams-per-batch", type=int, default=3)
    ap.add_argument("--tune-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grid", nargs="*", default=[],
                    help="key=v1,v2 ... over " + ", ".join(GRID_KEYS) + " (all combinations; the rest is fit.py's "
                         "recipe, learning/recipe.py)")
    ap.add_argument("--out", type=Path, help="write every recipe's curve as JSON here")
    return ap.parse_args(argv)


def recipes(grid):
    """Every combination of the grid's values, each over the recipe's defaults (learning/recipe.py)."""
    from dataclasses import asdict

    from learning.recipe import fit_config

    config = fit_config()
    base = {**asdict(config.model), "lr": config.training.lr, "weight_decay": config.compute.weight_decay}
    axes = []
    for item in grid:
        key, values = item.split("=", 1)
        if key not in GRID_KEYS:
            raise SystemExit(f"sweep: unknown grid key {key!r}; use one of {', '.join(GRID_KEYS)}")
        cast = type(base[key]) if not isinstance(base[key], bool) else (lambda v: v.lower() in ("1", "true", "on"))
        axes.append([(key, cast(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)] or [{}]


def batches(series, labels, k, order):
    """Static-shape batches: k real exams (short batch: 1-slice dummies) + one padding exam."""
    import numpy as np

    for start in range(0, len(order), k):
        members = list(order[start:start + k])
        arrays = [series[i] for i in members] + [np.zeros((1, 256, 256), np.uint8)] * (k - len(members))
        used = sum(a.shape[0] for a in arrays)
        pad = -(-(used + 1) // ROUND) * ROUND - used
        arrays.append(np.zeros((pad, 256, 256), np.uint8))
        counts = np.array([a.shape[0] for a in arrays], np.int32)
        y = np.zeros((k + 1, labels.shape[1]), np.float32)
        y[: len(members)] = labels[members]
        w = np.zeros(k + 1, np.float32)
        w[: len(members)] = 1.0
        yield {"slices": np.concatenate(arrays), "counts": counts}, y, w, len(members)


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    from learning.distributed import Devices
    from learning.model import build_model
    from learning.pipeline import split
    from learning.recipe import fit_config, model_config
    from learning.training import compile_plane, positive_weights
    from mrnet.contract import TASKS
    from mrnet.layout import read_labels, series_path
    from mrnet.series import open_series
    from phantom.writer import default_phantom
    from scoring.metrics import auc_or_none, auc_text, mean_text

    data_dir = args.data_dir or default_phantom()
    splits, source = split(read_labels(data_dir), args.tune_fraction, args.seed)
    data = {}
    for name in ("fit", "tune"):
        frame = splits[name]
        series = [np.array(open_series(series_path(data_dir, source[name], args.plane, c))) for c in frame.index]
        data[name] = (series, frame[list(TASKS)].values.astype(np.float32))
    print(f"sweep: {args.plane}, fit {len(data['fit'][0])} / tune {len(data['tune'][0])} exams, "
          f"backend {keras.backend.backend()}")

    k = args.exams_per_batch
    steps = -(-len(data["fit"][0]) // k)
    results = []
    for recipe in recipes(args.grid):
        keras.utils.set_random_seed(args.seed)
        sections = {"model": {"seed": args.seed, "crops": False}}  # whole slices: the sweep has no localiser
        for key, value in recipe.items():
            sections.setdefault(SECTION.get(key, "model"), {})[key] = value
        config = fit_config(**sections)
        model = build_model(**model_config(config.model))  # fit.py's model, loss, optimiser and metric
        weights = positive_weights(data["fit"][1], config.training.abnormal_weight)
        compile_plane(model, config.training.lr, config.compute, steps, args.epochs, weights,
                      Devices(strategy=None, xla=keras.backend.backend() != "tensorflow", replicas=1, workers=1, index=0))
        print(f"recipe {json.dumps(recipe)} over fit.py's defaults", flush=True)
        curve, start = [], time.perf_counter()
        rng = np.random.default_rng(args.seed)
        for epoch in range(args.epochs):
            losses = [float(model.train_on_batch(x, y, sample_weight=w))
                      for x, y, w, _ in batches(*data["fit"], k, rng.permutation(len(data["fit"][0])))]
            series, y_tune = data["tune"]
            scores = np.concatenate([np.asarray(model.predict_on_batch(x))[:n]
                                     for x, _, _, n in batches(series, y_tune, k, np.arange(len(series)))])
            aucs = [auc_or_none(y_tune[:, t], scores[:, t]) for t in range(len(TASKS))]
            curve.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "tune_auc": aucs,
                          "tune_mean": mean_text(dict(zip(TASKS, aucs))), "seconds": time.perf_counter() - start})
            print(f"  epoch {epoch + 1}: loss {curve[-1]['loss']:.3f} "
                  f"tune AUC {curve[-1]['tune_mean']} " + " ".join(auc_text(a) for a in aucs) +
                  f"  ({curve[-1]['seconds']:.0f} s)", flush=True)
        results.append({"recipe": recipe, "curve": curve})
        if args.out:  # after every recipe, so a run cut short keeps what it finished
            args.out.write_text(json.dumps({"plane": args.plane, "backend": keras.backend.backend(),
                                            "exams_per_batch": k, "results": results}, indent=1))


if __name__ == "__main__":
    main()
