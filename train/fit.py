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

from learning.recipe import (LR_FROM_PRETRAINED, LR_FROM_SCRATCH, PLANES, add_compute_arguments,  # noqa: E402
                             add_model_arguments, slice_budget)

# Our datasets are finite and reshuffled per epoch by design; Keras warns about both.
warnings.filterwarnings("ignore", message=".*ran out of data.*")
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom, generated on first use)")
    ap.add_argument("--bundle", type=Path, default=ROOT / "submission" / "bundle", help="output bundle (%(default)s)")
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "latest",
                    help="checkpoints, logs and curves (%(default)s)")
    ap.add_argument("--planes", nargs="+", default=PLANES, choices=PLANES, help="planes to (re)train")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--patience", type=int, default=6,
                    help="early stopping on tuning mean AUC, counted from half of --epochs on (%(default)s)")
    ap.add_argument("--lr", type=float,
                    help=f"peak learning rate (default {LR_FROM_SCRATCH:g} from scratch, {LR_FROM_PRETRAINED:g} "
                         "from a pretrained --init)")
    ap.add_argument("--init", default="none",
                    help="where each plane's network starts: none (random), synthetic (pretrained on the "
                         "randomised phantom corpus by pretrain.py, cached on first use), or PATH (a folder "
                         "pretrain.py wrote) (%(default)s)")
    ap.add_argument("--freeze-epochs", type=int, default=0,
                    help="with a pretrained --init: train only the exam head for the first N epochs, the "
                         "backbone frozen, then the whole network (%(default)s)")
    ap.add_argument("--tune-fraction", type=float, default=0.2,
                    help="share of train held out for early stopping and the combiner (%(default)s)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run in --run-dir")
    ap.add_argument("--strategy", default="auto", choices=["auto", "default", "mirrored", "multiworker"],
                    help="auto: MirroredStrategy over all GPUs when there are several; multiworker: one process "
                         "per machine, cluster from TF_CONFIG (README: several machines) (%(default)s)")
    ap.add_argument("--cpu-replicas", type=int, default=1,
                    help="split the CPU into N logical devices (tests the multi-replica path without GPUs)")
    add_model_arguments(ap)
    add_compute_arguments(ap)
    args = ap.parse_args(argv)
    args.batch_slices = slice_budget(args)
    if args.freeze_epochs and (args.init == "none" or args.freeze_epochs >= args.epochs):
        ap.error("--freeze-epochs needs a pretrained --init and fewer epochs than --epochs")
    if args.lr is None:
        args.lr = LR_FROM_SCRATCH if args.init == "none" else LR_FROM_PRETRAINED
    return args


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
    args.init_weights = init_weights(args)  # {plane: pretrained weights file}, checked up front

    # 3. one multi-task model per plane, side by side on a CPU; each writes its best epoch's logits
    from learning.parallel import own_processes, peak_rss_gib, plane_jobs, train_in_processes

    todo = []
    for plane in PLANES:
        finished = (run_dir / plane / "logits.npz").exists()
        if plane not in args.planes and not finished:
            sys.exit(f"fit: plane {plane} not trained in {run_dir}; include it in --planes")
        if plane not in args.planes or (args.resume and finished):
            print(f"[{plane}] reusing finished model from {run_dir / plane}")
        else:
            todo.append(plane)
    data = (data_dir, splits, source, targets)
    jobs = plane_jobs(args.jobs, devices, len(todo), args.backbone)
    children = own_processes(devices)
    if children and todo:
        train_in_processes(train_one, args, todo, run_dir, jobs, extra=(data, run_dir))
    for plane in () if children else todo:
        train_one(args, plane, data, run_dir, devices)
    logits = {name: {} for name in splits}
    for plane in PLANES if devices.chief else ():
        saved = np.load(run_dir / plane / "logits.npz", allow_pickle=False)
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
    peak = max(peak_rss_gib("self"), peak_rss_gib("children"))
    print(f"bundle: {args.bundle}  ({time.perf_counter() - start:.0f} s in all, "
          f"peak memory {peak:.1f} GiB in one process)")


def train_one(args, plane, data, run_dir, devices=None):
    """One plane's training, in this process or in one of its own (learning/parallel.py passes no
    `devices`: a fresh process sets up its own, with its share of the cores)."""
    from learning.distributed import setup_devices
    from learning.training import positive_weights, train_plane
    from mrnet import runtime

    runtime.configure(args.verbose)
    data_dir, splits, source, targets = data
    devices = devices or setup_devices(args)
    datasets, steps = plane_datasets(args, devices, data_dir, splits, source, targets, plane)
    train_plane(plane, run_dir / plane, run_dir, datasets, steps, positive_weights(targets["fit"]), args, devices)


def init_weights(args):
    """--init: none -> {}; synthetic -> pretrain.py's cached folder for this model shape (made on
    first use); PATH -> a folder pretrain.py wrote. Every plane to train is checked before training."""
    if args.init == "none":
        return {}
    from learning.pretraining import check_init

    if args.init == "synthetic":
        from pretrain import synthetic_init

        folder = synthetic_init(args)
    else:
        folder = Path(args.init)
    return {plane: str(check_init(folder, args, plane)) for plane in args.planes}


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
    """(datasets(name, distribute, pooled=distribute) -> tf.data of that split for this plane, fit batches per replica per epoch).

    distribute=True: training's batches (block-averaged to --input-size, fixed shapes under XLA or
    several replicas); False: every exam once, in order, in ragged batches, block-averaged with
    `pooled`, else raw uint8 256 px slices."""
    from learning.pipeline import count_batches, make_dataset, split_paths

    paths = split_paths(data_dir, splits, source, plane)
    replicas = devices.replicas

    def datasets(name, distribute, pooled=None):
        pooled = distribute if pooled is None else pooled

        def build(context=None):
            return make_dataset(paths[name], targets[name], args.batch_slices, shuffle=name == "fit", seed=args.seed,
                                replicas=replicas if distribute else 1,
                                static=distribute and (replicas > 1 or devices.xla),
                                shard=(devices.workers, devices.index) if distribute else (1, 0),
                                input_size=args.input_size if pooled and args.input_size < 256 else None)
        # one batch per replica per step, each a whole set of exams (see pipeline.make_dataset)
        return devices.strategy.distribute_datasets_from_function(build) if distribute and replicas > 1 else build()

    return datasets, max(1, count_batches(paths["fit"], args.batch_slices) // replicas)


def freeze(args, run_dir, data_dir, labels, table, combiner):
    from learning.export import build_manifest, export_plane
    from learning.training import load_trained
    from mrnet.bundle import write_bundle

    manifest = build_manifest(vars(args), data_dir, labels, table, combiner, args.input_size)
    write_bundle(args.bundle, lambda plane, folder: export_plane(load_trained(run_dir / plane), folder),
                 combiner, manifest)


if __name__ == "__main__":
    main()
