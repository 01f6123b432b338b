"""Train the MRNet models, combine the planes and freeze everything into submission/bundle.

    python train/fit.py                                  # the phantom, generated on first use
    python train/fit.py --data-dir path/to/MRNet-v1.0    # the real data, same command

Reads top to bottom: configuration, data, one multi-task model per plane, the combiner, the report,
the bundle. Splits: `train` is divided into a fitting part and a tuning part (--tune-fraction);
early stopping, model selection and the combiner use the tuning part only, so the `valid`
figures printed at the end come from exams nothing was selected or fit on.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _paths  # noqa: F401
from _paths import ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
    ap.add_argument("--patience", type=int, default=6, help="early stopping on tuning mean AUC (%(default)s)")
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
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()

    # ---- data: validate everything first, then split train into fit / tune ----------------------
    import numpy as np

    from mrnet.contract import PLANES, TASKS
    from mrnet.layout import read_labels, series_path
    from mrnet.problems import InputError
    from mrnet.validate import validate_dataset
    from phantom.writer import default_phantom
    from splits import split

    data_dir = args.data_dir or default_phantom()
    try:
        validate_dataset(data_dir)
    except InputError as e:
        sys.exit(f"fit: {e}")
    labels = read_labels(data_dir)
    splits, source = split(labels, args.tune_fraction, args.seed)
    print(f"data: {data_dir}  " + "  ".join(f"{name} {len(frame)}" for name, frame in splits.items()) + " exams")

    # ---- devices ---------------------------------------------------------------------------------
    import keras
    import tensorflow as tf

    from distributed import build_from_spec, describe, is_chief, make_strategy, shard as worker_shard
    from export import export_plane
    from losses import WeightedBCE, positive_weights
    from model import build_model
    from pipeline import count_batches, make_dataset
    from report import auc_table, plot_curves, print_table
    from schedule import adamw

    if args.cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_replicas)
    gpus = tf.config.list_physical_devices("GPU")
    strategy = make_strategy(tf, args.strategy, gpus)  # before any other TF op (multi-worker needs that)
    keras.utils.set_random_seed(args.seed)
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    xla = args.xla == "on" or (args.xla == "auto" and bool(gpus))
    replicas = strategy.num_replicas_in_sync
    shard = worker_shard(strategy)  # (workers, this worker's index)
    chief = is_chief(strategy)
    print(f"devices: {len(gpus)} GPU(s), {describe(strategy)}, XLA {'on' if xla else 'off'}")

    if args.resume and shard[0] > 1:
        sys.exit("fit: --resume is not supported with --strategy multiworker (only the chief keeps checkpoints); "
                 "start the run again without --resume")
    # other workers keep their checkpoints to themselves; only the chief writes the run and the bundle
    run_dir = args.run_dir if chief else Path(tempfile.mkdtemp(prefix="mrnet-worker-"))
    if not args.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    pos_weight = positive_weights(splits["fit"][list(TASKS)].values)

    def plane_paths(plane, name):
        return [series_path(data_dir, source[name], plane, c) for c in splits[name].index]

    def plane_data(plane, name, shuffle, distribute=False):
        paths, y = plane_paths(plane, name), splits[name][list(TASKS)].values

        def build(context=None):
            return make_dataset(paths, y, args.batch_slices, shuffle, seed=args.seed,
                                replicas=replicas if distribute else 1, static=distribute and (replicas > 1 or xla),
                                shard=shard if distribute else (1, 0))
        # one batch per replica per step, each a whole set of exams (see pipeline.make_dataset)
        return strategy.distribute_datasets_from_function(build) if distribute and replicas > 1 else build()

    def steps_per_epoch(plane, name):
        """Batches per replica per epoch (for the LR schedule)."""
        return max(1, count_batches(plane_paths(plane, name), args.batch_slices) // replicas)

    def model_config():
        return dict(backbone=args.backbone, pooling=args.pooling, input_size=args.input_size, width=args.width,
                    weights=args.weights, augment=args.augment, rotate=args.rotate, shift=args.shift, seed=args.seed,
                    space_pool=args.space_pool)

    # ---- one multi-task model per plane ------------------------------------------------------------
    logits = {name: {} for name in splits}
    models = {}
    for plane in PLANES:
        plane_dir = run_dir / plane
        done = plane_dir / "logits.npz"
        if plane not in args.planes and not done.exists():
            sys.exit(f"fit: plane {plane} not trained in {run_dir}; include it in --planes")
        if plane not in args.planes or (args.resume and done.exists()):
            print(f"[{plane}] reusing finished model from {plane_dir}")
        else:
            plane_dir.mkdir(parents=True, exist_ok=True)
            fit_ds, tune_ds = plane_data(plane, "fit", True, True), plane_data(plane, "tune", False, True)
            steps = steps_per_epoch(plane, "fit")
            with strategy.scope():
                model = build_model(**model_config())
                model.compile(optimizer=adamw(args.lr, args.weight_decay, steps, args.epochs),
                              loss=WeightedBCE(pos_weight),
                              metrics=[keras.metrics.AUC(multi_label=True, from_logits=True, name="auc",
                                                         num_thresholds=500)],
                              jit_compile=xla)
                if shard[0] > 1:
                    build_from_spec(model, strategy, plane_data(plane, "tune", False).element_spec)
            callbacks = [
                keras.callbacks.BackupAndRestore(str(plane_dir / "backup")),  # per-epoch state for --resume
                keras.callbacks.ModelCheckpoint(str(plane_dir / "best.weights.h5"), monitor="val_auc",
                                                mode="max", save_best_only=True, save_weights_only=True),
                keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=args.patience),
                keras.callbacks.CSVLogger(str(plane_dir / "history.csv"), append=True),
                keras.callbacks.TensorBoard(str(run_dir / "tensorboard" / plane), write_graph=False),
            ]
            print(f"[{plane}] training: {steps} batches/epoch, up to {args.epochs} epochs")
            model.fit(fit_ds, validation_data=tune_ds, epochs=args.epochs, callbacks=callbacks,
                      verbose=0 if args.quiet else 1)
            if not chief:
                continue
            # predict on one device: every exam once, in order, whatever the strategy
            model = build_model(**{**model_config(), "weights": "none"})
            model.load_weights(str(plane_dir / "best.weights.h5"))
            out = {name: model.predict(plane_data(plane, name, False), verbose=0) for name in splits}
            np.savez(done, **out)
            (plane_dir / "model_config.json").write_text(json.dumps(model_config()))
        saved = np.load(done, allow_pickle=False)
        for name in splits:
            logits[name][plane] = saved[name]
        models[plane] = plane_dir

    if not chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        print("worker: training done; the chief writes the bundle")
        return

    # ---- combiner: logistic regression per task, fit on the tuning part ------------------------------
    from combine import fit_combiner
    from mrnet import combiner as comb

    combiner = fit_combiner(logits["tune"], splits["tune"][list(TASKS)].values, fit_on="train (tuning part)")
    combined = {name: comb.apply(combiner, logits[name]) for name in splits}

    # ---- report --------------------------------------------------------------------------------------
    table = auc_table(logits, combined, {n: splits[n][list(TASKS)].values for n in splits})
    print_table(table)
    plot_curves(run_dir, PLANES, run_dir / "training_curves.png")
    print(f"training curves: {run_dir / 'training_curves.png'}")

    # ---- freeze the bundle ------------------------------------------------------------------------
    from manifest import build_manifest
    from mrnet.bundle import write_bundle

    def export(plane, folder):
        cfg = json.loads((models[plane] / "model_config.json").read_text())
        model = build_model(**{**cfg, "weights": "none"})  # augmentation is identity outside training
        model.load_weights(str(models[plane] / "best.weights.h5"))
        export_plane(model, folder)

    manifest = build_manifest(config, data_dir, labels, table, combiner, args.input_size)
    write_bundle(args.bundle, export, combiner, manifest)
    print(f"bundle: {args.bundle}  ({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
