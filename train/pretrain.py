"""Pretrain each plane's network on a randomised phantom corpus with slice labels, for fit.py --init.

    python train/pretrain.py --out runs/pretrained                       # both drawings of the knee
    python train/pretrain.py --out runs/pre-geo --corpus-styles geometric   # leave the anatomical one out
    python train/fit.py --init runs/pretrained                           # exam-level training from it

The corpus is generated on first use into the cache (phantom exams of their own seed, never those
fit.py trains or is evaluated on), with a random contrast, coil, noise, blur and lesion size per
stack. Every slice is a one-slice exam labelled from the generator's truth (learning/pretraining.py).
The network is built from the same model flags as fit.py's (learning/recipe.py), so the weights
load into fit.py's model as they are. Writes, whole or not at all, `<out>/<plane>.weights.h5` and
`<out>/manifest.json` (corpus, model flags, epochs, held-out slice AUCs, sha256 of each file).
`fit.py --init synthetic` calls this with its own flags and caches the result.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py

from learning.pretraining import MODEL_FLAGS  # noqa: E402
from learning.recipe import PLANES, add_compute_arguments, add_model_arguments, slice_budget  # noqa: E402

warnings.filterwarnings("ignore", message=".*ran out of data.*")
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
CORPUS_SEED = 7919  # fit.py's phantom uses seed 0: the corpus never holds an exam fit.py sees


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write the weights and manifest into")
    ap.add_argument("--planes", nargs="+", default=PLANES, choices=PLANES)
    ap.add_argument("--corpus-styles", nargs="+", default=["anatomical", "geometric"],
                    choices=["anatomical", "geometric"],
                    help="drawings of the knee in the corpus; leave out the style you evaluate on (%(default)s)")
    ap.add_argument("--corpus-exams", type=int, default=200, help="training exams per style (%(default)s)")
    ap.add_argument("--corpus-seed", type=int, default=CORPUS_SEED)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1e-3)
    add_model_arguments(ap)
    add_compute_arguments(ap)
    args = ap.parse_args(argv)
    args.batch_slices = slice_budget(args)
    args.strategy, args.cpu_replicas = "default", 1  # what setup_devices reads; one process per plane
    if args.backbone != "compact":
        ap.error("--backbone: pretraining is for the compact backbone (keras.applications ones take --weights)")
    return args


def corpus(args):
    """The randomised phantom folders, one per style (generated on first use)."""
    from phantom.writer import default_phantom

    return [default_phantom(progress=not args.quiet, seed=args.corpus_seed, n_train=args.corpus_exams,
                            n_valid=max(10, args.corpus_exams // 5), style=style, randomise=True)
            for style in args.corpus_styles]


def pretrain_plane(args, plane, corpus_dirs, out_dir, devices=None):
    """One plane: slice-labelled training on the corpus' train split, slice AUCs on its valid split."""
    from learning.distributed import setup_devices
    from mrnet import runtime

    runtime.configure(args.verbose)
    devices = devices or setup_devices(args)
    import keras

    from learning.model import build_model
    from learning.pretraining import load_corpus, slice_aucs, slice_dataset
    from learning.training import compile_plane, model_config, positive_weights

    slices, targets, _ = load_corpus(corpus_dirs, plane, "train", args.input_size)
    held_slices, held_targets, _ = load_corpus(corpus_dirs, plane, "valid", args.input_size)
    data = slice_dataset(slices, targets, args.batch_slices, args.seed)
    steps = sum(1 for _ in data)  # one epoch's batches: every positive slice plus as many negatives
    sampled = targets[targets.any(axis=1)]
    weights = positive_weights(sampled.tolist() + [[0.0] * targets.shape[1]] * len(sampled))
    model = build_model(**model_config(args), pooled_input=True)
    compile_plane(model, args, steps, args.epochs, weights, devices)  # fit.py's loss, optimiser and metric
    plane_dir = out_dir / plane
    plane_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{plane}] pretraining: {len(slices)} corpus slices, {steps} batches/epoch, {args.epochs} epochs")
    model.fit(data, epochs=args.epochs, verbose=0 if args.quiet else 2,
              callbacks=[keras.callbacks.CSVLogger(str(plane_dir / "history.csv"))])
    model.save_weights(str(out_dir / f"{plane}.weights.h5"))
    aucs = slice_aucs(model, held_slices, held_targets)
    (plane_dir / "slice_auc.json").write_text(json.dumps(dict(zip(("abnormal", "acl", "meniscus"), aucs))))
    print(f"[{plane}] held-out slice AUC: " + "  ".join(f"{a:.3f}" for a in aucs))


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    from mrnet import runtime

    runtime.configure(args.verbose)
    from learning.distributed import setup_devices
    from learning.parallel import plane_jobs, train_in_processes

    corpus_dirs = corpus(args)
    tmp = args.out.with_name(args.out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    devices = setup_devices(args)
    jobs = plane_jobs(args.jobs, devices, len(args.planes), args.backbone)
    if jobs > 1:
        train_in_processes(pretrain_plane, args, args.planes, tmp, jobs, extra=(corpus_dirs, tmp))
    else:
        for plane in args.planes:
            pretrain_plane(args, plane, corpus_dirs, tmp, devices)
    truth = [json.loads((d / "phantom-truth.json").read_text()) for d in corpus_dirs]
    manifest = {
        "what": "per-plane weights pretrained on slice labels of a randomised phantom corpus, for fit.py --init",
        "planes": args.planes,
        "model": {k: getattr(args, k) for k in MODEL_FLAGS},
        "corpus": {"generator_version": truth[0]["generator_version"], "seed": args.corpus_seed,
                   "styles": args.corpus_styles, "randomised": True,
                   "exams": {"train": sum(t["n_train"] for t in truth), "valid": sum(t["n_valid"] for t in truth)}},
        "training": {"epochs": args.epochs, "lr": args.lr, "batch_slices": args.batch_slices,
                     "labels": "per slice, from phantom-truth.json (learning/pretraining.slice_targets)"},
        "held_out_slice_auc": {p: json.loads((tmp / p / "slice_auc.json").read_text()) for p in args.planes},
        "files": {f"{p}.weights.h5": hashlib.sha256((tmp / f"{p}.weights.h5").read_bytes()).hexdigest()
                  for p in args.planes},
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, args.out)
    print(f"pretrained: {args.out}  ({time.perf_counter() - start:.0f} s in all)")
    return args.out


def synthetic_init(args):
    """fit.py --init synthetic: the cached pretraining for this model shape (pretrained on first use)."""
    from phantom.writer import CACHE

    model = {k: getattr(args, k) for k in MODEL_FLAGS}
    key = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:12]
    out = CACHE / f"pretrained-v1-{key}"
    if not (out / "manifest.json").is_file():
        print(f"pretrain: no pretrained weights for this model shape yet; pretraining into {out} (first use only)")
        argv = ["--out", str(out)] + [x for k in MODEL_FLAGS if k != "augment"
                                      for x in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]
        argv += (["--augment"] if args.augment else []) + (["--quiet"] if args.quiet else [])
        main(argv + ["--jobs", str(args.jobs), "--threads", str(args.threads)])
    return out


if __name__ == "__main__":
    main()
