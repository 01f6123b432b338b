"""The artefacts the default recipe learns from the phantom alone: the randomised corpus, the folders
of per-plane weights made from it (a localiser, a pretrained crop CNN), the copies the repository
ships, and the cached ones fit.py makes when a run asks for other ones.

The corpus is phantom exams of a seed of their own (Corpus.seed), so it never holds an exam fit.py
trains or is scored on, drawn with phantom.exam.make_exam(randomise=True): per sub-label signals,
coil, noise, blur, resolution, slice thickness and artefacts per stack, wider knee proportions,
flexion and pose, soft-tissue clutter, stacks that miss the knee, lesions from the ladder's faint
end and beyond (after SynthSeg, Billot et al. 2023).

An artefact folder is the bundle's folder format (mrnet/bundle.py: format version, sha256 per file,
written whole or not at all): `<plane>.weights.h5` per plane and a manifest holding what made it
(the configuration, learning/recipe.py), its corpus, and what it measured. The repository ships the
default recipe's two (SHIPPED, made by benchmarks/shipped_artefacts.py), so that a fresh clone's
fit.py trains neither; a run whose recipe they do not match gets its own, trained on first use into
the cache (`cached`), or whatever folder it names.
"""

import hashlib
import json
from pathlib import Path

from learning.recipe import ROOT, LocaliseConfig, PretrainConfig, from_dict, resolve_localise, resolve_pretrain, \
    to_dict

FORMAT_VERSION = 1
SHIPPED = {"localiser": ROOT / "train" / "artefacts" / "localiser",
           "pretrained": ROOT / "train" / "artefacts" / "crop-cnn"}


def corpus_dirs(corpus, quiet=False):
    """The randomised phantom folders of a Corpus section, one per style (generated on first use into
    the cache), or its `dirs`."""
    from phantom.writer import default_phantom

    if corpus.dirs:
        return list(corpus.dirs)
    return [default_phantom(progress=not quiet, seed=corpus.seed, n_train=corpus.exams,
                            n_valid=max(10, corpus.exams // 5), style=style, randomise=True)
            for style in corpus.styles]


def corpus_record(dirs):
    """What a manifest says of the corpus, from the folders' own truth: enough to know which exams,
    seeds and styles a network saw (so that none of them is what it is then evaluated on)."""
    truth = [json.loads((Path(d) / "phantom-truth.json").read_text()) for d in dirs]
    return {"generator_version": truth[0]["generator_version"], "seeds": [t["seed"] for t in truth],
            "styles": [t["style"] for t in truth], "randomised": [t["randomise"] for t in truth],
            "exams": {"train": sum(t["n_train"] for t in truth), "valid": sum(t["n_valid"] for t in truth)}}


def train_plane_of(config, plane, train, dirs, out_dir, devices=None):
    """Runs in a plane's own process: TensorFlow's start-up kept quiet (mrnet/runtime.py) before
    `train` (a function of learning/localiser.py or learning/pretraining.py) imports Keras."""
    from mrnet import runtime

    runtime.configure(config.compute.verbose)
    train(config, plane, dirs, out_dir, devices)


def write_artefact(config, train, dirs, what, shape, measured, made_by):
    """Train every plane of config.planes with `train` (called as train(config, plane, dirs, folder,
    devices)), side by side in processes of their own on a CPU as fit.py does, then write config.out
    in the bundle's folder format: the `<plane>.weights.h5` files and a manifest (what, made_by, the
    configuration, its recipe (recipe_of), the network's shape, the corpus, and {key: {plane:
    <plane>/<file>}} for every (key, file) of `measured`). Each plane's logs go to `<out>.logs/`."""
    import shutil

    from learning.distributed import setup_devices
    from learning.parallel import own_processes, plane_jobs, train_in_processes
    from mrnet.bundle import write_folder

    work = config.out.with_name(config.out.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    devices = setup_devices(config.compute)
    jobs = plane_jobs(config.compute.jobs, devices, len(config.planes), "compact")
    epochs = config.pretraining.epochs if isinstance(config, PretrainConfig) else \
        config.training.epochs + config.training.refiner_epochs
    if own_processes(devices):
        train_in_processes(train_plane_of, config, config.planes, work, jobs, extra=(train, dirs, work), epochs=epochs)
    else:
        for plane in config.planes:
            train_plane_of(config, plane, train, dirs, work, devices)

    def fill(folder):
        for plane in config.planes:
            shutil.copy2(work / f"{plane}.weights.h5", folder / f"{plane}.weights.h5")

    settings = {**to_dict(config), "out": config.out.name}  # what made it, not where it lay
    if "measure_on" in settings:
        settings["measure_on"] = [Path(d).parent.name for d in config.measure_on]
    if config.corpus.dirs:
        settings["corpus"] = {**settings["corpus"], "dirs": [Path(d).parent.name for d in config.corpus.dirs]}
    manifest = {"what": what, "made_by": made_by, "configuration": settings, "recipe": recipe_of(config),
                "planes": list(config.planes), "model": shape, "corpus": corpus_record(dirs),
                "measured": {key: {p: json.loads((work / p / name).read_text()) for p in config.planes}
                             for key, name in measured.items()}}
    write_folder(config.out, fill, manifest, FORMAT_VERSION)
    logs = config.out.with_name(config.out.name + ".logs")
    shutil.rmtree(logs, ignore_errors=True)
    work.rename(logs)  # each plane's history, log and measurements, beside the folder and out of it
    return config.out


def cached(kind, key, build):
    """The cache's folder for an artefact of `kind` whose shape is `key` (a JSON-able dict): made by
    `build(folder)` on first use, reused after."""
    from phantom.writer import CACHE

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = CACHE / f"{kind}-{digest}"
    if not (folder / "manifest.json").is_file():
        print(f"{kind}: none cached for this recipe yet; training it into {folder} (first use only)", flush=True)
        build(folder)
    return folder


def check_files(folder, plane, who):
    """A weights file of an artefact folder, after checking the folder (format, every file's sha256)
    and that it has the plane: (manifest, path). Raises SystemExit saying what to do."""
    from mrnet.bundle import BundleError, verify_folder

    folder = Path(folder)
    try:
        manifest = verify_folder(folder, FORMAT_VERSION, "artefact")
    except BundleError as e:
        raise SystemExit(f"{who}: {e}") from None
    path = folder / f"{plane}.weights.h5"
    if plane not in manifest["planes"]:
        raise SystemExit(f"{who}: {folder}: no weights for plane {plane}; train it with --planes {plane}")
    return manifest, path


def localiser_config(config, out):
    """The localiser a fit.py configuration asks for, as localise.py's configuration: the recipe's
    localiser trained on the run's corpus, with the run's compute (frozen, resolved)."""
    return resolve_localise(LocaliseConfig(out=out, net=config.localiser, training=config.localiser_training,
                                           corpus=config.corpus, compute=config.compute))


def pretrain_config(config, out):
    """The pretraining a fit.py configuration asks for (its model, corpus and compute)."""
    return resolve_pretrain(PretrainConfig(out=out, model=config.model, corpus=config.corpus, compute=config.compute,
                                           pretraining=config.pretraining))


def recipe_of(config):
    """What decides an artefact's weights, of localise.py's or pretrain.py's configuration (no paths,
    no compute): the key of its cached copy, and what a shipped copy must match to be used."""
    values = to_dict(config)
    if isinstance(config, PretrainConfig):
        return {"pretraining": values["pretraining"], "corpus": values["corpus"], "model": init_shape(config.model)}
    return {"net": values["net"], "training": values["training"], "corpus": values["corpus"]}


def matches(folder, recipe):
    """Whether an artefact folder was made with exactly this recipe."""
    path = Path(folder) / "manifest.json"
    return path.is_file() and json.loads(path.read_text()).get("recipe") == recipe


def chosen(kind, choice, config, make):
    """The folder of --localiser / --init `choice` (auto | shipped | retrain | PATH) for the artefact
    configuration `config`: the shipped one where it was made with this recipe (auto) or asked for
    (shipped), else the cache's, made by make(folder) on first use."""
    if choice not in ("auto", "shipped", "retrain"):
        return Path(choice)
    shipped, recipe = SHIPPED[kind], recipe_of(config)
    if choice == "shipped" or (choice == "auto" and matches(shipped, recipe)):
        if not (shipped / "manifest.json").is_file():
            raise SystemExit(f"fit: {shipped} is missing; train one with --{'init' if kind == 'pretrained' else kind} "
                             "retrain")
        return shipped
    return cached(kind, recipe, make)


def localiser_folder(config):
    """--localiser of a fit.py configuration -> the localiser's folder."""
    from learning.localiser import localise

    return chosen("localiser", config.training.localiser, localiser_config(config, None),
                  lambda folder: localise(localiser_config(config, folder), "python train/fit.py --localiser retrain"))


def pretrained_folder(config):
    """--init of a fit.py configuration -> the pretrained folder (the crop CNN's with crops)."""
    from learning.pretraining import pretrain

    return chosen("pretrained", config.training.init, pretrain_config(config, None),
                  lambda folder: pretrain(pretrain_config(config, folder), "python train/fit.py --init retrain"))


def init_shape(model):
    """What a pretrained folder must match to load into a run's model (a Model section): its target
    and the settings that shape the pretrained network (the crop CNN's, or the whole model's)."""
    from dataclasses import asdict

    if model.crops:
        return {"target": "windows", "crop_width": model.crop_width, "space_pool": model.space_pool}
    return {"target": "slices", **{k: v for k, v in asdict(model).items() if k != "seed"}}


def check_init(folder, model, plane):
    """The weights file for `plane` in a pretrained folder, after checking it was pretrained for this
    model's shape and is the file its manifest hashed. Raises SystemExit with what to do."""
    manifest, path = check_files(folder, plane, "fit: --init")
    wanted = init_shape(model)
    got = {k: manifest["model"].get(k) for k in wanted}
    if got != wanted:
        diff = ", ".join(f"--{k.replace('_', '-')} {got[k]} (this run: {wanted[k]})" for k in wanted if got[k] != wanted[k])
        raise SystemExit(f"fit: --init {folder}: pretrained for another model shape: {diff}")
    return path


def configuration(cls, folder):
    """The configuration an artefact folder was made with, rebuilt (learning/recipe.py)."""
    return from_dict(cls, json.loads((Path(folder) / "manifest.json").read_text())["configuration"])
