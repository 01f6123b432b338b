"""Train the MRNet models, combine the planes and freeze everything into submission/bundle.

    python train/fit.py                                  # the phantom, generated on first use
    python train/fit.py --data-dir path/to/MRNet-v1.0    # the real data, same command

Reads top to bottom as six steps (main): validate and split the data, set up the devices, train one
multi-task model per plane, combine the planes, report, freeze the bundle. Splits: `train` is
divided into a fitting part and a tuning part (--tune-fraction); early stopping, model selection
and the combiner use the tuning part only, so the `valid` figures printed at the end come from
exams nothing was selected or fit on.
"""

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py

# Our datasets are finite and reshuffled per epoch by design; Keras warns about both.
warnings.filterwarnings("ignore", message=".*ran out of data.*")
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom, generated on first use)")
    ap.add_argument("--bundle", type=Path, default=ROOT / "submission" / "bundle", help="output bundle (%(default)s)")
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "latest",
                    help="checkpoints, logs and curves (%(default)s)")
    ap.add_argument("--planes", nargs="+", default=["sagittal", "coronal", "axial"],
                    choices=["sagittal", "coronal", "axial"], help="planes to (re)train")
    ap.add_argument("--backbone", default="compact", choices=["compact", "resnet50", "efficientnetb0"])
    ap.add_argument("--weights", default="none", help="backbone weights: imagenet | none | PATH (%(default)s)")
    ap.add_argument("--width", type=int, default=16, help="compact backbone base width (%(default)s)")
    ap.add_argument("--pooling", default="max", choices=["max", "mean", "attention"], help="over slices")
    ap.add_argument("--space-pool", default="avgmax", choices=["avg", "max", "avgmax"],
                    help="global pooling over each slice's feature map (%(default)s)")
    ap.add_argument("--input-size", type=int, default=64, choices=[64, 128, 256],
                    help="in-plane resolution the CNN sees, by block-averaging the 256 px series "
                         "(%(default)s; README: Input resolution)")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--patience", type=int, default=6,
                    help="early stopping on tuning mean AUC, counted from half of --epochs on (%(default)s)")
    ap.add_argument("--batch-slices", type=int, default=96, help="slice budget per batch (%(default)s)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--augment", action="store_true",
                    help="on-device per-exam augmentation: rotation, shift, flip, intensity (off by default: "
                         "it slows convergence more than the short CPU demo can afford)")
    ap.add_argument("--rotate", type=float, default=25.0, help="augmentation rotation, degrees (%(default)s)")
    ap.add_argument("--shift", type=float, default=25.0, help="augmentation shift, pixels at 256 (%(default)s)")
    ap.add_argument("--tune-fraction", type=float, default=0.2,
                    help="share of train held out for early stopping and the combiner (%(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run in --run-dir")
    ap.add_argument("--strategy", default="auto", choices=["auto", "default", "mirrored", "multiworker"],
                    help="auto: MirroredStrategy over all GPUs when there are several; multiworker: one process "
                         "per machine, cluster from TF_CONFIG (README: several machines) (%(default)s)")
    ap.add_argument("--cpu-replicas", type=int, default=1,
                    help="split the CPU into N logical devices (tests the multi-replica path without GPUs)")
    ap.add_argument("--xla", default="auto", choices=["auto", "on", "off"], help="auto: on when a GPU is present")
    ap.add_argument("--quiet", action="store_true", help="no per-batch progress bars")
    ap.add_argument("--verbose", action="store_true",
                    help="also show TensorFlow's native start-up log lines (or set MRNET_VERBOSE=1)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    from mrnet import runtime

    runtime.configure(args.verbose)
    import numpy as np

    from mrnet.contract import PLANES, TASKS

    # 1. validate the whole dataset, then split train into fit / tune
    data_dir, labels, splits, source = load_data(args)
    targets = {name: frame[list(TASKS)].values for name, frame in splits.items()}

    # 2. devices, strategy, and the run folder (only the chief keeps one)
    from learning.distributed import setup_devices

    devices = setup_devices(args)
    if args.resume and devices.workers > 1:
        sys.exit("fit: --resume is not supported with --strategy multiworker (only the chief keeps checkpoints); "
                 "start the run again without --resume")
    run_dir = prepare_run_dir(args, devices)

    # 3. one multi-task model per plane; each writes its best epoch's logits for every split
    from learning.training import positive_weights, train_plane

    pos_weight = positive_weights(targets["fit"])
    logits = {name: {} for name in splits}
    for plane in PLANES:
        plane_dir = run_dir / plane
        done = plane_dir / "logits.npz"
        if plane not in args.planes and not done.exists():
            sys.exit(f"fit: plane {plane} not trained in {run_dir}; include it in --planes")
        if plane not in args.planes or (args.resume and done.exists()):
            print(f"[{plane}] reusing finished model from {plane_dir}")
        else:
            datasets, steps = plane_datasets(args, devices, data_dir, splits, source, targets, plane)
            train_plane(plane, plane_dir, run_dir, datasets, steps, pos_weight, args, devices)
        if devices.chief:
            saved = np.load(done, allow_pickle=False)
            for name in splits:
                logits[name][plane] = saved[name]
    if not devices.chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        print("worker: training done; the chief writes the bundle")
        return

    # 4. the combiner: a logistic regression per task over the nine plane logits, fit on tune
    from learning.combine import fit_combiner
    from mrnet import combiner as comb

    combiner = fit_combiner(logits["tune"], targets["tune"], fit_on="train (tuning part)")
    combined = {name: comb.apply(combiner, logits[name]) for name in splits}

    # 5. the report: AUC per plane and combined, on valid and tune, and the training curves
    from learning.report import auc_table, plot_curves, print_table

    table = auc_table(logits, combined, targets)
    print_table(table)
    plot_curves(run_dir, PLANES, run_dir / "training_curves.png")
    print(f"training curves: {run_dir / 'training_curves.png'}")

    # 6. freeze the bundle: SavedModels, combiner, manifest, checksums; written whole or not at all
    freeze(args, run_dir, data_dir, labels, table, combiner)
    print(f"bundle: {args.bundle}  ({time.perf_counter() - start:.0f} s in all)")


def load_data(args):
    """(data_dir, labels, {fit, tune, valid: label frame}, {name: MRNet split its files are in})."""
    from learning.pipeline import split
    from mrnet.layout import read_labels
    from mrnet.problems import InputError
    from mrnet.validate import validate_dataset
    from phantom.writer import default_phantom

    data_dir = args.data_dir or default_phantom()
    try:
        validate_dataset(data_dir)
    except InputError as e:
        sys.exit(f"fit: {e}")
    labels = read_labels(data_dir)
    splits, source = split(labels, args.tune_fraction, args.seed)
    print(f"data: {data_dir}  " + "  ".join(f"{name} {len(frame)}" for name, frame in splits.items()) + " exams")
    return data_dir, labels, splits, source


def prepare_run_dir(args, devices):
    """--run-dir for the chief (emptied unless --resume); other workers checkpoint to a temporary folder."""
    run_dir = args.run_dir if devices.chief else Path(tempfile.mkdtemp(prefix="mrnet-worker-"))
    if not args.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def plane_datasets(args, devices, data_dir, splits, source, targets, plane):
    """(datasets(name, distribute) -> tf.data of that split for this plane, fit batches per replica per epoch)."""
    from learning.pipeline import count_batches, make_dataset, split_paths

    paths = split_paths(data_dir, splits, source, plane)
    replicas = devices.replicas

    def datasets(name, distribute):
        def build(context=None):
            return make_dataset(paths[name], targets[name], args.batch_slices, shuffle=name == "fit", seed=args.seed,
                                replicas=replicas if distribute else 1,
                                static=distribute and (replicas > 1 or devices.xla),
                                shard=(devices.workers, devices.index) if distribute else (1, 0))
        # one batch per replica per step, each a whole set of exams (see pipeline.make_dataset)
        return devices.strategy.distribute_datasets_from_function(build) if distribute and replicas > 1 else build()

    return datasets, max(1, count_batches(paths["fit"], args.batch_slices) // replicas)


def freeze(args, run_dir, data_dir, labels, table, combiner):
    from learning.export import build_manifest, export_plane
    from learning.training import load_trained
    from mrnet.bundle import write_bundle

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    manifest = build_manifest(config, data_dir, labels, table, combiner, args.input_size)
    write_bundle(args.bundle, lambda plane, folder: export_plane(load_trained(run_dir / plane), folder),
                 combiner, manifest)


if __name__ == "__main__":
    main()
