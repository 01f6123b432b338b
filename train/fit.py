"""Train the MRNet models, combine the planes and freeze everything into submission/bundle.

    python train/fit.py                                  # the phantom, generated on first use
    python train/fit.py --data-dir path/to/MRNet-v1.0    # the real data, same command

Reads top to bottom as six steps (main): validate and split the data, set up the devices, train one
multi-task model per plane, combine the planes, report, freeze the bundle. Splits: `train` is
divided into a fitting part and a tuning part (--tune-fraction); early stopping, model selection
and the combiner use the tuning part only, so the `valid` figures printed at the end come from
exams nothing was selected or fit on.
"""

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

from learning.recipe import FitConfig, parse  # noqa: E402

# Our datasets are finite and reshuffled per epoch by design; Keras warns about both.
warnings.filterwarnings("ignore", message=".*ran out of data.*")
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")


def parse_args(argv=None):
    """The command line, parsed once into fit.py's frozen configuration (learning/recipe.py holds
    every flag and default)."""
    return parse(FitConfig, __doc__, argv)


def main(argv=None):
    config = parse_args(argv)
    training, model, compute = config.training, config.model, config.compute
    start = time.perf_counter()
    from mrnet import runtime

    runtime.configure(compute.verbose)
    import numpy as np

    from mrnet.contract import PLANES, TASKS

    # 1. validate the whole dataset, then split train into fit / tune
    data_dir, labels, splits, source = load_data(config)
    targets = {name: frame[list(TASKS)].values for name, frame in splits.items()}

    # 2. devices, strategy, and the run folder (only the chief keeps one)
    from learning.distributed import setup_devices

    devices = setup_devices(compute, model.backbone, model.seed)
    if training.resume and devices.workers > 1:
        sys.exit("fit: --resume is not supported with --strategy multiworker (only the chief keeps checkpoints); "
                 "start the run again without --resume")
    run_dir = prepare_run_dir(config, devices)
    init = init_weights(config)  # {plane: pretrained weights file}, checked up front
    localiser = localiser_folder(config, data_dir)  # --crops: where the windows come from

    # 3. one multi-task model per plane, side by side on a CPU; each writes its best epoch's logits
    from learning.parallel import own_processes, peak_rss_gib, plane_jobs, train_in_processes

    todo = []  # a unit per plane and ensemble member: "sagittal", "sagittal-1" ...
    for plane in PLANES:
        for unit in members(plane, training.ensemble):
            finished = (run_dir / unit / "logits.npz").exists()
            if plane not in training.planes and not finished:
                sys.exit(f"fit: {unit} not trained in {run_dir}; include {plane} in --planes")
            if plane not in training.planes or (training.resume and finished):
                print(f"[{unit}] reusing finished model from {run_dir / unit}")
            else:
                todo.append(unit)
    data = (data_dir, splits, source, targets, init, localiser)
    jobs = plane_jobs(compute.jobs, devices, len(todo), model.backbone)
    children = own_processes(devices)
    if children and todo:
        train_in_processes(train_one, config, todo, run_dir, jobs, extra=(data, run_dir))
    for plane in () if children else todo:
        train_one(config, plane, data, run_dir, devices)
    logits = {name: {} for name in splits}  # an ensemble's: the mean of its members', as the bundle computes
    for plane in PLANES if devices.chief else ():
        saved = [np.load(run_dir / unit / "logits.npz", allow_pickle=False) for unit in members(plane, training.ensemble)]
        for name in splits:
            logits[name][plane] = np.mean([s[name] for s in saved], axis=0)
    if not devices.chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        print("worker: training done; the chief writes the bundle")
        return

    # 4. the combiner, fit on tune: per task the first of one plane, the mean of its planes, LR over its
    # three logits or over all nine (LR only with enough exams) that repeated CV cannot tell from the
    # best (learning/combine.py)
    from learning.combine import choices, fit_combiner
    from mrnet import combiner as comb

    combiner = fit_combiner(logits["tune"], targets["tune"], fit_on="train (tuning part)", seed=model.seed)
    combined = {name: comb.apply(combiner, logits[name]) for name in splits}

    # 5. the report: AUC per plane and combined, on valid and tune, and the training curves
    from learning.checkpoints import save_json
    from learning.report import auc_table, plot_curves, print_table

    table = auc_table(logits, combined, targets)
    print_table(table, combiner)
    localised = report_localised(run_dir) if model.crops else None
    plot_curves(run_dir, PLANES, run_dir / "training_curves.png")
    print(f"training curves: {run_dir / 'training_curves.png'}")
    save_json({"auc": table, "combiner": choices(combiner), "localised": localised,
               "split": {"data_dir": str(data_dir), "seed": model.seed, "tune_fraction": training.tune_fraction},
               "seconds": round(time.perf_counter() - start, 1)}, run_dir / "report.json", indent=1)

    # 6. freeze the bundle: SavedModels, combiner, manifest, checksums; written whole or not at all
    if model.crops and training.localiser == "truth":
        print("bundle: none (--localiser truth places the windows with the phantom's anatomy, which predict "
              f"does not have); the table is in {run_dir / 'report.json'}")
        return
    freeze(config, run_dir, data_dir, labels, table, combiner, init, localiser)
    peak = max(peak_rss_gib("self"), peak_rss_gib("children"))
    print(f"bundle: {config.bundle}  ({time.perf_counter() - start:.0f} s in all, "
          f"peak memory {peak:.1f} GiB in one process)")


def members(plane, ensemble):
    """The training units of a plane: itself, then "<plane>-1" ... for the other ensemble members."""
    return [plane] + [f"{plane}-{m}" for m in range(1, ensemble)]


def train_one(config, unit, data, run_dir, devices=None):
    """One plane's (or ensemble member's) training, in this process or in one of its own
    (learning/parallel.py passes no `devices`: a fresh process sets up its own, with its share of
    the cores). Member m trains from seed + m: its own start and shuffling, on the run's split."""
    from dataclasses import replace

    from learning.distributed import setup_devices
    from learning.training import positive_weights, train_plane
    from mrnet import runtime

    runtime.configure(config.compute.verbose)
    plane, _, member = unit.partition("-")
    data_dir, splits, source, targets, init, localiser = data
    own = replace(config, model=replace(config.model, seed=config.model.seed + int(member or 0)))
    devices = devices or setup_devices(own.compute, own.model.backbone, own.model.seed)
    datasets, steps = plane_datasets(own, devices, data_dir, splits, source, targets, plane, localiser,
                                     config.model.seed)
    weights = positive_weights(targets["fit"], config.training.abnormal_weight)
    train_plane(unit, run_dir / unit, run_dir, datasets, steps, weights, own, devices, init.get(plane))


def init_weights(config):
    """--init: none -> {}; else the pretrained crop CNN's (or whole model's) folder, the repository's
    own or pretrain.py's (learning/artefacts.pretrained_folder), every plane checked before training:
    {plane: weights file}."""
    if config.training.init == "none":
        return {}
    from learning.artefacts import check_init, pretrained_folder

    folder = pretrained_folder(config)
    return {plane: str(check_init(folder, config.model, plane)) for plane in config.training.planes}


def localiser_folder(config, data_dir):
    """--crops: the localiser's folder (None for the phantom's truth), checked for every plane up front."""
    if not config.model.crops:
        return None
    if config.training.localiser == "truth":
        from phantom.landmarks import ANATOMY

        if not (Path(data_dir) / ANATOMY).is_file():
            sys.exit(f"fit: --localiser truth: {data_dir} has no {ANATOMY} (only this version's phantom has)")
        return None
    from learning.artefacts import localiser_folder as folder_of
    from learning.localiser import load_localiser

    folder = folder_of(config)
    for plane in config.training.planes:
        load_localiser(folder, plane)
    return folder


def load_data(config):
    """(data_dir, labels, {fit, tune, valid: label frame}, {name: MRNet split its files are in})."""
    from learning.pipeline import split
    from mrnet.layout import read_labels
    from mrnet.problems import InputError
    from mrnet.validate import validate_dataset
    from phantom.writer import default_phantom

    data_dir = config.data_dir or default_phantom(progress=not config.compute.quiet)
    try:
        validate_dataset(data_dir)
    except InputError as e:
        sys.exit(f"fit: {e}")
    labels = read_labels(data_dir)
    splits, source = split(labels, config.training.tune_fraction, config.model.seed)
    print(f"data: {data_dir}  " + "  ".join(f"{name} {len(frame)}" for name, frame in splits.items()) + " exams")
    return data_dir, labels, splits, source


def prepare_run_dir(config, devices):
    """--run-dir for the chief (emptied unless --resume); other workers checkpoint to a temporary folder."""
    run_dir = config.run_dir if devices.chief else Path(tempfile.mkdtemp(prefix="mrnet-worker-"))
    if not config.training.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def plane_datasets(config, devices, data_dir, splits, source, targets, plane, localiser, run_seed):
    """(datasets(name, distribute, pooled=distribute) -> tf.data of that split for this plane, fit batches per replica per epoch).

    distribute=True: training's batches (block-averaged to --input-size, fixed shapes under XLA or
    several replicas); False: every exam once, in order, in ragged batches, block-averaged with
    `pooled`, else raw uint8 256 px slices. With --crops, every exam goes once through the frozen
    front (block average, localiser, windows) and the batches come from memory (shifted windows
    for training, centred ones otherwise)."""
    from learning.pipeline import count_batches, make_dataset, split_paths

    paths = split_paths(data_dir, splits, source, plane)
    replicas = devices.replicas
    model, budget = config.model, config.compute.batch_slices
    prepared = prepare_crops(config, data_dir, paths, plane, localiser, run_seed) if model.crops else None

    def datasets(name, distribute, pooled=None):
        pooled = distribute if pooled is None else pooled
        static = distribute and (replicas > 1 or devices.xla)
        shard = (devices.workers, devices.index) if distribute else (1, 0)

        def build(context=None):
            if prepared is not None:
                from learning.crops import MARGIN
                from learning.pipeline import prepared_dataset

                return prepared_dataset(prepared[name], targets[name], budget, shuffle=name == "fit",
                                        seed=model.seed, static=static, margin=MARGIN, shift=distribute,
                                        replicas=replicas if distribute else 1, shard=shard)
            return make_dataset(paths[name], targets[name], budget, shuffle=name == "fit", seed=model.seed,
                                replicas=replicas if distribute else 1, static=static, shard=shard,
                                input_size=model.input_size if pooled and model.input_size < 256 else None)
        # one batch per replica per step, each a whole set of exams (see pipeline.make_dataset)
        return devices.strategy.distribute_datasets_from_function(build) if distribute and replicas > 1 else build()

    return datasets, max(1, count_batches(paths["fit"], budget) // replicas)


def prepare_crops(config, data_dir, paths, plane, localiser, seed):
    """{split: prepared exams} (pipeline.prepare_exams): every exam once through the localiser (or the
    phantom's truth), with --placement-error's offset per exam and place, the same in every run."""
    import numpy as np

    from learning.checkpoints import save_json
    from learning.crops import MARGIN
    from learning.pipeline import prepare_exams

    truth, error = config.training.localiser == "truth", config.training.placement_error
    if truth:
        from phantom.landmarks import read_anatomy

        anatomy = read_anatomy(data_dir)

        def where(path, series):
            marks = anatomy[(plane, Path(path).stem)]
            return marks[..., 1:3], marks[..., 0]
    else:
        from learning.localiser import load_localiser
        from mrnet.runtime import import_tensorflow

        tf = import_tensorflow()
        model = load_localiser(localiser, plane)
        step = tf.function(lambda s: model({"slices": s}, training=False),
                           input_signature=[tf.TensorSpec([None, 256, 256], tf.uint8)])

        def where(path, series):
            out = step(tf.constant(series))
            return out["centre"].numpy(), tf.sigmoid(out["presence"]).numpy()

    def locate(path, series):
        centres, presence = where(path, series)
        if error:
            rng = np.random.default_rng([seed, int(Path(path).stem), len(plane)])
            centres = centres + rng.normal(0, error, (1, *centres.shape[1:]))
        return centres, presence

    prepared = {name: prepare_exams(paths[name], config.model.input_size, locate, MARGIN) for name in paths}
    fell_back = {name: sum(int(not g.any()) for g in p["gates"]) for name, p in prepared.items()}
    (config.run_dir / plane).mkdir(parents=True, exist_ok=True)
    save_json({name: {"exams": len(p["gates"]), "fell_back": fell_back[name],
                      "windows_used": float(np.mean([g.mean() for g in p["gates"]]))} for name, p in prepared.items()},
              config.run_dir / plane / "localised.json", indent=1)
    print(f"[{plane}] windows placed by {'the phantom truth' if truth else 'the localiser'}; "
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


def freeze(config, run_dir, data_dir, labels, table, combiner, init, localiser):
    from learning.export import build_manifest, export_plane
    from learning.training import load_trained
    from mrnet.bundle import write_bundle

    def export(plane, folder):
        placer = None
        if config.model.crops:
            from learning.localiser import load_localiser

            placer = load_localiser(localiser, plane)
        export_plane([load_trained(run_dir / unit) for unit in members(plane, config.training.ensemble)], folder,
                     placer)

    manifest = build_manifest(config, data_dir, labels, table, combiner, init, localiser)
    write_bundle(config.bundle, export, combiner, manifest)


if __name__ == "__main__":
    main()
