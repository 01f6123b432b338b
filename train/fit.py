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
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow

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
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--patience", type=int, default=4,
                    help="early stopping on tuning mean AUC, counted from half of --epochs on (%(default)s)")
    ap.add_argument("--lr", type=float,
                    help=f"peak learning rate (default {LR_FROM_SCRATCH:g}; {LR_FROM_PRETRAINED:g} for a whole-slice "
                         "model started from pretrained weights, which a higher rate made it forget)")
    ap.add_argument("--init", default="auto",
                    help="where the pretrainable network starts: none (random); synthetic (pretrained by pretrain.py "
                         "on the randomised phantom corpus's truth, cached on first use: the crop branch's window "
                         "network with --crops, the whole model without); PATH (a folder pretrain.py wrote); auto: "
                         "synthetic with --crops, none without (%(default)s; README: Localise, then look)")
    ap.add_argument("--freeze-epochs", type=int, default=0,
                    help="with a pretrained --init: train the rest of the model for the first N epochs with the "
                         "pretrained network (the backbone, or the crop CNN with --crops) frozen, then the whole "
                         "model (%(default)s)")
    ap.add_argument("--localiser", default="auto",
                    help="with --crops, what places the windows: auto (the localiser trained by localise.py on the "
                         "corpus of --corpus-styles, cached on first use), PATH (a folder localise.py wrote), or truth "
                         "(the phantom's own anatomy: the benchmark's ceiling; no bundle, since predict has no truth) "
                         "(%(default)s)")
    ap.add_argument("--corpus-styles", nargs="+", default=["anatomical", "geometric"],
                    choices=["anatomical", "geometric"],
                    help="the drawings of the randomised corpus that --localiser auto and --init synthetic learn from; "
                         "leave out the style you evaluate on (%(default)s)")
    ap.add_argument("--placement-error", type=float, default=0.0,
                    help="with --crops: move every exam's windows by a random offset of this sd (px at 256), held for "
                         "the whole exam, in every split: the benchmark's robustness curve (%(default)s)")
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
    if args.init == "auto":
        args.init = "synthetic" if args.crops else "none"
    if args.freeze_epochs and (args.init == "none" or args.freeze_epochs >= args.epochs):
        ap.error("--freeze-epochs needs a pretrained --init and fewer epochs than --epochs")
    if args.backbone == "compact" and args.weights != "none":
        ap.error("--weights is for a keras.applications --backbone; the compact CNN trains from its own start "
                 "(see --init)")
    if args.lr is None:
        # the crop branch's pretrained window network is a small part of its model and kept what it
        # learnt at the from-scratch rate (README: Localise, then look); a whole pretrained model did not
        args.lr = LR_FROM_PRETRAINED if args.init != "none" and not args.crops else LR_FROM_SCRATCH
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
    args.localiser_dir = localiser_folder(args, data_dir)  # --crops: where the windows come from

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

    # 4. the combiner, fit on tune: per task the simplest of the mean of its planes, one plane, LR over
    # its three logits or over all nine that repeated CV cannot tell from the best (learning/combine.py)
    from learning.combine import choices, fit_combiner
    from mrnet import combiner as comb

    combiner = fit_combiner(logits["tune"], targets["tune"], fit_on="train (tuning part)", seed=args.seed)
    combined = {name: comb.apply(combiner, logits[name]) for name in splits}

    # 5. the report: AUC per plane and combined, on valid and tune, and the training curves
    from learning.checkpoints import save_json
    from learning.report import auc_table, plot_curves, print_table

    table = auc_table(logits, combined, targets)
    print_table(table, combiner)
    localised = report_localised(run_dir) if args.crops else None
    plot_curves(run_dir, PLANES, run_dir / "training_curves.png")
    print(f"training curves: {run_dir / 'training_curves.png'}")
    save_json({"auc": table, "combiner": choices(combiner), "localised": localised,
               "split": {"data_dir": str(data_dir), "seed": args.seed, "tune_fraction": args.tune_fraction},
               "seconds": round(time.perf_counter() - start, 1)}, run_dir / "report.json", indent=1)

    # 6. freeze the bundle: SavedModels, combiner, manifest, checksums; written whole or not at all
    if args.crops and args.localiser == "truth":
        print("bundle: none (--localiser truth places the windows with the phantom's anatomy, which predict "
              f"does not have); the table is in {run_dir / 'report.json'}")
        return
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
    from learning.pretraining import check_init, synthetic_init

    folder = synthetic_init(args) if args.init == "synthetic" else Path(args.init)
    return {plane: str(check_init(folder, args, plane)) for plane in args.planes}


def localiser_folder(args, data_dir):
    """--crops: the localiser's folder (None for the phantom's truth), checked for every plane up front."""
    if not args.crops:
        return None
    if args.localiser == "truth":
        from phantom.landmarks import ANATOMY

        if not (Path(data_dir) / ANATOMY).is_file():
            sys.exit(f"fit: --localiser truth: {data_dir} has no {ANATOMY} (only this version's phantom has)")
        return None
    from learning.localiser import cached_localiser, load_localiser

    folder = Path(args.localiser) if args.localiser != "auto" else cached_localiser(args)
    for plane in args.planes:
        load_localiser(folder, plane)
    return folder


def load_data(args):
    """(data_dir, labels, {fit, tune, valid: label frame}, {name: MRNet split its files are in})."""
    from learning.pipeline import split
    from mrnet.layout import read_labels
    from mrnet.problems import InputError
    from mrnet.validate import validate_dataset
    from phantom.writer import default_phantom

    data_dir = args.data_dir or default_phantom(progress=not args.quiet)
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
    `pooled`, else raw uint8 256 px slices. With --crops, every exam goes once through the frozen
    front (block average, localiser, windows) and the batches come from memory (shifted windows
    for training, centred ones otherwise)."""
    from learning.pipeline import count_batches, make_dataset, split_paths

    paths = split_paths(data_dir, splits, source, plane)
    replicas = devices.replicas
    prepared = prepare_crops(args, data_dir, paths, plane) if args.crops else None

    def datasets(name, distribute, pooled=None):
        pooled = distribute if pooled is None else pooled
        static = distribute and (replicas > 1 or devices.xla)
        shard = (devices.workers, devices.index) if distribute else (1, 0)

        def build(context=None):
            if prepared is not None:
                from learning.crops import MARGIN
                from learning.pipeline import prepared_dataset

                return prepared_dataset(prepared[name], targets[name], args.batch_slices, shuffle=name == "fit",
                                        seed=args.seed, static=static, margin=MARGIN, shift=distribute,
                                        replicas=replicas if distribute else 1, shard=shard)
            return make_dataset(paths[name], targets[name], args.batch_slices, shuffle=name == "fit", seed=args.seed,
                                replicas=replicas if distribute else 1, static=static, shard=shard,
                                input_size=args.input_size if pooled and args.input_size < 256 else None)
        # one batch per replica per step, each a whole set of exams (see pipeline.make_dataset)
        return devices.strategy.distribute_datasets_from_function(build) if distribute and replicas > 1 else build()

    return datasets, max(1, count_batches(paths["fit"], args.batch_slices) // replicas)


def prepare_crops(args, data_dir, paths, plane):
    """{split: prepared exams} (pipeline.prepare_exams): every exam once through the localiser (or the
    phantom's truth), with --placement-error's offset per exam and place, the same in every run."""
    import numpy as np

    from learning.checkpoints import save_json
    from learning.crops import MARGIN
    from learning.pipeline import prepare_exams

    if args.localiser == "truth":
        from phantom.landmarks import read_anatomy

        anatomy = read_anatomy(data_dir)

        def where(path, series):
            marks = anatomy[(plane, Path(path).stem)]
            return marks[..., 1:3], marks[..., 0]
    else:
        from learning.localiser import load_localiser
        from mrnet.runtime import import_tensorflow

        tf = import_tensorflow()
        model = load_localiser(args.localiser_dir, plane)
        step = tf.function(lambda s: model({"slices": s}, training=False),
                           input_signature=[tf.TensorSpec([None, 256, 256], tf.uint8)])

        def where(path, series):
            out = step(tf.constant(series))
            return out["centre"].numpy(), tf.sigmoid(out["presence"]).numpy()

    def locate(path, series):
        centres, presence = where(path, series)
        if args.placement_error:
            rng = np.random.default_rng([args.seed, int(Path(path).stem), len(plane)])
            centres = centres + rng.normal(0, args.placement_error, (1, *centres.shape[1:]))
        return centres, presence

    prepared = {name: prepare_exams(paths[name], args.input_size, locate, MARGIN) for name in paths}
    fell_back = {name: sum(int(not g.any()) for g in p["gates"]) for name, p in prepared.items()}
    (args.run_dir / plane).mkdir(parents=True, exist_ok=True)
    save_json({name: {"exams": len(p["gates"]), "fell_back": fell_back[name],
                      "windows_used": float(np.mean([g.mean() for g in p["gates"]]))} for name, p in prepared.items()},
              args.run_dir / plane / "localised.json", indent=1)
    print(f"[{plane}] windows placed by {'the phantom truth' if args.localiser == 'truth' else 'the localiser'}; "
          + ", ".join(f"{name}: {n} of {len(prepared[name]['gates'])} exams without a confident place"
                      for name, n in fell_back.items()), flush=True)
    return prepared


def report_localised(run_dir):
    """{plane: {split: exams, fell_back, windows_used}} from each plane's localised.json, printed."""
    import json

    from mrnet.contract import PLANES

    out = {plane: json.loads((run_dir / plane / "localised.json").read_text()) for plane in PLANES}
    for plane, splits in out.items():
        print(f"crops, {plane}: " + ", ".join(
            f"{name} {s['fell_back']} of {s['exams']} exams fell back to the whole slice" for name, s in splits.items()))
    return out


def freeze(args, run_dir, data_dir, labels, table, combiner):
    from learning.export import build_manifest, export_plane
    from learning.training import load_trained
    from mrnet.bundle import write_bundle

    def export(plane, folder):
        localiser = None
        if args.crops:
            from learning.localiser import load_localiser

            localiser = load_localiser(args.localiser_dir, plane)
        export_plane(load_trained(run_dir / plane), folder, localiser)

    manifest = build_manifest(vars(args), data_dir, labels, table, combiner, args.input_size)
    if args.crops:  # what placed the windows: its corpus, shape and the precision it measured, by name
        import json

        found = json.loads((args.localiser_dir / "manifest.json").read_text())
        manifest["localiser"] = {"folder": args.localiser_dir.name, **{k: found[k] for k in
                                 ("what", "model", "corpus", "training", "precision", "files")}}
    write_bundle(args.bundle, export, combiner, manifest)


if __name__ == "__main__":
    main()
